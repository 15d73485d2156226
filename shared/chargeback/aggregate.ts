import { createHash } from 'node:crypto';
import type Decimal from 'decimal.js';
import { dayOf, monthOf } from '../contracts/report-period';
import { batchPartitionKey, usagePartitionKey } from '../contracts/storage';
import type { UsageApi, UsageEvent } from '../contracts/usage-event';
import { usageEventSchema } from '../contracts/usage-event';
import { parseWindowId, windowEnd } from '../contracts/window';
import type { Meter, PriceEntry, UsageAggregate } from './model';
import { CURRENCY, PRICING_UNITS, primaryMeter } from './model';
import type { BatchRecord, WindowBatch } from './ports';

import { Money } from './money';

/** Exact arithmetic for quantities and costs; nothing here is ever a binary float sum. */
const Exact = Money;

export type PriceLookup = (model: string, meter: Meter, at: Date) => PriceEntry | undefined;

interface Group {
  department: string;
  subscriptionId: string;
  appId: string;
  deployment: string;
  model: string;
  api: UsageApi;
  /** Per meter: the requests that consumed it, and of those the estimated ones. */
  requests: Map<Meter, { requests: number; estimated: number }>;
  /** Token and character counts are integers: plain sums stay exact far beyond any window. */
  inputTokens: number;
  cachedTokens: number;
  outputTokens: number;
  characters: number;
  audioSeconds: Decimal;
}

export interface InvalidEvent {
  raw: string;
  problem: string;
}

/**
 * Aggregates a window batch's raw events by department × subscription × app × deployment ×
 * model × API × meter, and prices each row with the price effective at the window's start. With
 * no usable price table (an invalid override: `priceFor` null) the rows are committed unpriced
 * (`pricePending`), to be priced before any report uses them. Memory grows with the number of
 * groups, not of events.
 */
export class WindowAggregator {
  readonly #groups = new Map<string, Group>();
  readonly #start: Date;
  readonly invalid: InvalidEvent[] = [];
  events = 0;

  constructor(
    readonly window: WindowBatch,
    private readonly priceFor: PriceLookup | null,
  ) {
    this.#start = parseWindowId(window.windowId);
  }

  /** One raw event as stored in Redis (JSON). Events that fail the schema are kept aside, never dropped silently. */
  add(raw: string): void {
    let event: UsageEvent;
    try {
      const parsed = usageEventSchema.safeParse(JSON.parse(raw));
      if (!parsed.success) {
        this.invalid.push({ raw, problem: parsed.error.issues.map((i) => i.message).join('; ') });
        return;
      }
      event = parsed.data;
    } catch (error) {
      this.invalid.push({ raw, problem: `not JSON: ${(error as Error).message}` });
      return;
    }
    this.events++;
    const key = `${event.department}\u0000${event.subscriptionId}\u0000${event.appId}\u0000${event.deployment}\u0000${event.model}\u0000${event.api}`;
    let group = this.#groups.get(key);
    if (!group) {
      group = {
        department: event.department,
        subscriptionId: event.subscriptionId,
        appId: event.appId,
        deployment: event.deployment,
        model: event.model,
        api: event.api,
        requests: new Map(),
        inputTokens: 0,
        cachedTokens: 0,
        outputTokens: 0,
        characters: 0,
        audioSeconds: new Exact(0),
      };
      this.#groups.set(key, group);
    }
    // Cached input is priced separately from the rest of the prompt; reasoning is part of output.
    const cached = Math.min(event.cachedTokens, event.promptTokens);
    // Audio is billed where it is the input (speech-to-text). Synthesis is billed by characters;
    // the length of the audio it produced stays in the event, for telemetry, not on the bill.
    const audio = event.api !== 'tts' ? event.audioSeconds : 0;
    const consumed: Array<[Meter, number]> = [
      ['input-tokens', event.promptTokens - cached],
      ['cached-input-tokens', cached],
      ['output-tokens', event.completionTokens],
      ['audio-seconds', audio],
      ['tts-characters', event.billableCharacters],
    ];
    group.inputTokens += event.promptTokens - cached;
    group.cachedTokens += cached;
    group.outputTokens += event.completionTokens;
    group.characters += event.billableCharacters;
    if (audio > 0) group.audioSeconds = group.audioSeconds.plus(String(audio));
    // Every request counts on its API's primary meter (model.ts primaryMeter), and on every other
    // meter it consumed.
    const primary = primaryMeter(event.api);
    const meters = consumed.filter(([meter, quantity]) => quantity > 0 && meter !== primary).map(([m]) => m);
    for (const meter of [primary, ...meters]) {
      const count = group.requests.get(meter) ?? { requests: 0, estimated: 0 };
      count.requests++;
      if (event.estimated) count.estimated++;
      group.requests.set(meter, count);
    }
  }

  /** The commit marker of this batch, for `rows` rows: written after them, not yet rolled up. */
  batchRecord(rows: number): BatchRecord {
    const start = this.#start;
    return {
      ...batchRecordKeys(this.window, monthOf(start)),
      type: 'batch',
      windowId: this.window.windowId,
      batch: this.window.batch,
      windowStart: start.toISOString(),
      windowEnd: windowEnd(start).toISOString(),
      month: monthOf(start),
      day: dayOf(start),
      events: this.events,
      invalidEvents: this.invalid.length,
      aggregates: rows,
      rolledUp: false,
    };
  }

  /** The priced rows, sorted by id (deterministic whatever order the events came in). */
  aggregates(): UsageAggregate[] {
    const rows: UsageAggregate[] = [];
    const start = this.#start.toISOString();
    const month = start.slice(0, 7);
    const day = start.slice(0, 10);
    for (const group of this.#groups.values()) {
      const quantities: Array<[Meter, Decimal]> = [
        ['input-tokens', new Exact(group.inputTokens)],
        ['cached-input-tokens', new Exact(group.cachedTokens)],
        ['output-tokens', new Exact(group.outputTokens)],
        ['audio-seconds', group.audioSeconds],
        ['tts-characters', new Exact(group.characters)],
      ];
      // A meter with a quantity, or with requests that consumed nothing (they still show).
      const metered = quantities.filter(
        ([meter, quantity]) => !quantity.isZero() || group.requests.has(meter),
      );
      for (const [meter, quantity] of metered) {
        const count = group.requests.get(meter) ?? { requests: 0, estimated: 0 };
        const unit = PRICING_UNITS[meter];
        const dims = [
          group.department,
          group.subscriptionId,
          group.appId,
          group.deployment,
          group.model,
          group.api,
        ];
        const row: UsageAggregate = {
          id: aggregateId(this.window, [...dims, meter]),
          pk: usagePartitionKey(month, group.department),
          type: 'usage',
          month,
          day,
          windowId: this.window.windowId,
          windowStart: start,
          windowEnd: windowEnd(this.#start).toISOString(),
          batch: this.window.batch,
          department: group.department,
          subscriptionId: group.subscriptionId,
          appId: group.appId,
          deployment: group.deployment,
          model: group.model,
          api: group.api,
          meter,
          quantity: quantity.toFixed(),
          requests: count.requests,
          estimatedRequests: count.estimated,
          priceId: null,
          unitPrice: '0',
          pricingUnit: unit.unit,
          pricingQuantity: quantity.div(unit.size).toFixed(),
          cost: '0',
          currency: CURRENCY,
        };
        rows.push(this.priceFor ? priceRow(row, this.priceFor) : { ...row, pricePending: true });
      }
    }
    return rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}

/**
 * A row priced with the price in effect at its window's start: the price entry, the unit price
 * and the exact cost. A row no price matches is priced at 0 and keeps `priceId: null` (flagged).
 */
export function priceRow(row: UsageAggregate, priceFor: PriceLookup): UsageAggregate {
  const { pricePending: _pending, ...unpriced } = row;
  const price = priceFor(row.model, row.meter, new Date(row.windowStart));
  const unitPrice = new Exact(price?.unitPrice ?? 0);
  return {
    ...unpriced,
    priceId: price?.id ?? null,
    unitPrice: unitPrice.toFixed(),
    cost: new Exact(row.quantity).times(unitPrice).div(PRICING_UNITS[row.meter].size).toFixed(),
  };
}

export function aggregateId(window: WindowBatch, dims: string[]): string {
  return createHash('sha256')
    .update([window.windowId, window.batch, ...dims].join('\u0000'))
    .digest('hex')
    .slice(0, 40);
}

/** The id and partition of a batch's commit record. */
export function batchRecordKeys(window: WindowBatch, month: string): { id: string; pk: string } {
  return { id: `batch|${window.windowId}|${window.batch}`, pk: batchPartitionKey(month) };
}
