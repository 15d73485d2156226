import { createHash } from 'node:crypto';
import type Decimal from 'decimal.js';
import { batchPartitionKey, usagePartitionKey } from '../contracts/storage';
import type { UsageApi, UsageEvent } from '../contracts/usage-event';
import { usageEventSchema } from '../contracts/usage-event';
import { parseWindowId, windowEnd } from '../contracts/window';
import type { Meter, PriceEntry, UsageAggregate } from './model';
import { CURRENCY, PRICING_UNITS } from './model';
import type { WindowBatch } from './ports';

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
  requests: number;
  estimatedRequests: number;
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
 * model × API × meter, and prices each row with the price effective at the window's start.
 * Memory grows with the number of groups, not of events.
 */
export class WindowAggregator {
  readonly #groups = new Map<string, Group>();
  readonly #start: Date;
  readonly invalid: InvalidEvent[] = [];
  events = 0;

  constructor(
    readonly window: WindowBatch,
    private readonly priceFor: PriceLookup,
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
        requests: 0,
        estimatedRequests: 0,
        inputTokens: 0,
        cachedTokens: 0,
        outputTokens: 0,
        characters: 0,
        audioSeconds: new Exact(0),
      };
      this.#groups.set(key, group);
    }
    group.requests++;
    if (event.estimated) group.estimatedRequests++;
    // Cached input is priced separately from the rest of the prompt; reasoning is part of output.
    group.inputTokens += event.promptTokens - Math.min(event.cachedTokens, event.promptTokens);
    group.cachedTokens += Math.min(event.cachedTokens, event.promptTokens);
    group.outputTokens += event.completionTokens;
    group.characters += event.billableCharacters;
    // Audio is billed where it is the input (speech-to-text). Synthesis is billed by characters;
    // the length of the audio it produced stays in the event, for telemetry, not on the bill.
    if (event.audioSeconds > 0 && event.api !== 'tts') {
      group.audioSeconds = group.audioSeconds.plus(String(event.audioSeconds));
    }
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
      const metered = quantities.filter(([, quantity]) => !quantity.isZero());
      // A request that consumed nothing billable (e.g. empty input) still shows as a request.
      if (metered.length === 0) metered.push([meterOf(group.api), new Exact(0)]);
      metered.forEach(([meter, quantity], index) => {
        const price = this.priceFor(group.model, meter, this.#start);
        const unit = PRICING_UNITS[meter];
        const pricingQuantity = quantity.div(unit.size);
        const unitPrice = new Exact(price?.unitPrice ?? 0);
        const dims = [
          group.department,
          group.subscriptionId,
          group.appId,
          group.deployment,
          group.model,
          group.api,
        ];
        rows.push({
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
          // Requests are counted once per group, on its first meter, so they add up across meters.
          requests: index === 0 ? group.requests : 0,
          estimatedRequests: index === 0 ? group.estimatedRequests : 0,
          priceId: price?.id ?? null,
          unitPrice: unitPrice.toFixed(),
          pricingUnit: unit.unit,
          pricingQuantity: pricingQuantity.toFixed(),
          cost: quantity.times(unitPrice).div(unit.size).toFixed(),
          currency: CURRENCY,
        });
      });
    }
    return rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}

function meterOf(api: UsageApi): Meter {
  return api === 'stt' ? 'audio-seconds' : api === 'tts' ? 'tts-characters' : 'input-tokens';
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
