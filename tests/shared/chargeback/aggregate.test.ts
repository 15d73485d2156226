import { createHash } from 'node:crypto';
import type { PriceLookup } from '../../../shared/chargeback/aggregate';
import { aggregateId, batchRecordKeys, WindowAggregator } from '../../../shared/chargeback/aggregate';
import type { Meter, PriceEntry, UsageAggregate } from '../../../shared/chargeback/model';
import type { WindowBatch } from '../../../shared/chargeback/ports';
import { DEFAULT_PRICES, PriceTable } from '../../../shared/chargeback/prices';
import { usagePartitionKey } from '../../../shared/contracts/storage';
import type { UsageEvent } from '../../../shared/contracts/usage-event';
import { InvalidWindowIdError } from '../../../shared/contracts/window';
import { usageEvent } from '../../fixtures/usage';

const WINDOW: WindowBatch = { windowId: '20260315T1230Z', batch: 'b-0001' };
const WINDOW_START = '2026-03-15T12:30:00.000Z';

const defaults = new PriceTable(DEFAULT_PRICES.map((entry) => ({ entry })));
const listPrices: PriceLookup = (model, meter, at) => defaults.priceFor(model, meter, at);

let sequence = 0;
function event(fields: Partial<UsageEvent> = {}): UsageEvent {
  sequence++;
  return usageEvent({
    id: `req-${sequence}`,
    recordedAt: '2026-03-15T12:31:07.250Z',
    window: WINDOW_START,
    appId: 'app-notebooks',
    latencyMs: 840,
    ...fields,
  });
}

function aggregate(
  events: ReadonlyArray<UsageEvent | string>,
  prices = listPrices,
  window = WINDOW,
): UsageAggregate[] {
  const aggregator = new WindowAggregator(window, prices);
  for (const e of events) aggregator.add(typeof e === 'string' ? e : JSON.stringify(e));
  return aggregator.aggregates();
}

function rowOf(rows: UsageAggregate[], meter: Meter, where: Partial<UsageAggregate> = {}): UsageAggregate {
  const matches = rows.filter(
    (r) => r.meter === meter && Object.entries(where).every(([k, v]) => r[k as keyof UsageAggregate] === v),
  );
  if (matches.length !== 1) throw new Error(`expected one ${meter} row, found ${matches.length}`);
  return matches[0] as UsageAggregate;
}

const totalRequests = (rows: UsageAggregate[]): number => rows.reduce((n, r) => n + r.requests, 0);

describe('WindowAggregator', () => {
  it('prices a chat request per meter: input, cached input and output', () => {
    // gpt-4o list prices per 1M tokens: input 2.50, cached 1.25, output 10.00
    const rows = aggregate([event({ promptTokens: 1_234, cachedTokens: 234, completionTokens: 567 })]);

    expect(rows.map((r) => r.meter).sort()).toEqual(['cached-input-tokens', 'input-tokens', 'output-tokens']);
    expect(rowOf(rows, 'input-tokens')).toEqual({
      id: aggregateId(WINDOW, [
        'research',
        'sub-research',
        'app-notebooks',
        'gpt-4o',
        'gpt-4o-2024-11-20',
        'chat',
        'input-tokens',
      ]),
      pk: '2026-03|research',
      type: 'usage',
      month: '2026-03',
      day: '2026-03-15',
      windowId: '20260315T1230Z',
      windowStart: '2026-03-15T12:30:00.000Z',
      windowEnd: '2026-03-15T12:45:00.000Z',
      batch: 'b-0001',
      department: 'research',
      subscriptionId: 'sub-research',
      appId: 'app-notebooks',
      deployment: 'gpt-4o',
      model: 'gpt-4o-2024-11-20',
      api: 'chat',
      meter: 'input-tokens',
      quantity: '1000', // 1 234 prompt − 234 cached
      requests: 1,
      estimatedRequests: 0,
      priceId: 'default:gpt-4o:input-tokens:2025-01-01',
      unitPrice: '2.5',
      pricingUnit: '1M Tokens',
      pricingQuantity: '0.001',
      cost: '0.0025', // 1 000 × 2.50 / 1 000 000
      currency: 'USD',
    });
    expect(rowOf(rows, 'cached-input-tokens')).toMatchObject({
      quantity: '234',
      priceId: 'default:gpt-4o:cached-input-tokens:2025-01-01',
      unitPrice: '1.25',
      pricingQuantity: '0.000234',
      cost: '0.0002925', // 234 × 1.25 / 1 000 000
      requests: 1,
    });
    expect(rowOf(rows, 'output-tokens')).toMatchObject({
      quantity: '567',
      unitPrice: '10',
      pricingQuantity: '0.000567',
      cost: '0.00567', // 567 × 10 / 1 000 000
      requests: 1,
    });
  });

  it('sums the events of one group', () => {
    const rows = aggregate([
      event({ promptTokens: 100, completionTokens: 10 }),
      event({ promptTokens: 250, cachedTokens: 50, completionTokens: 20 }),
      event({ promptTokens: 1_000, cachedTokens: 1_000, completionTokens: 5 }),
    ]);
    expect(rowOf(rows, 'input-tokens').quantity).toBe('300'); // 100 + 200 + 0
    expect(rowOf(rows, 'cached-input-tokens').quantity).toBe('1050'); // 50 + 1 000
    expect(rowOf(rows, 'output-tokens').quantity).toBe('35');
    // The third request's prompt was all cached: it still counts on the primary (input) line.
    expect(rows.map((r) => [r.meter, r.requests])).toEqual(
      expect.arrayContaining([
        ['input-tokens', 3],
        ['cached-input-tokens', 2],
        ['output-tokens', 3],
      ]),
    );
  });

  it.each([
    ['department', { department: 'marketing' }],
    ['subscription', { subscriptionId: 'sub-other' }],
    ['app', { appId: 'app-other' }],
    ['deployment', { deployment: 'gpt-4o-eu' }],
    ['model', { model: 'gpt-4o-2024-08-06' }],
    ['api', { api: 'responses' as const }],
  ])('keeps a different %s in its own group', (_, difference) => {
    const rows = aggregate([event({ promptTokens: 10 }), event({ promptTokens: 20, ...difference })]);
    expect(rows).toHaveLength(2);
    expect(rows.map((r) => r.quantity).sort()).toEqual(['10', '20']);
    expect(rows.map((r) => r.requests)).toEqual([1, 1]);
    expect(new Set(rows.map((r) => r.id)).size).toBe(2);
  });

  it('never counts more cached tokens than prompt tokens', () => {
    const rows = aggregate([event({ promptTokens: 100, cachedTokens: 150, completionTokens: 7 })]);
    // All 100 prompt tokens were cached: no negative quantity; the input-tokens row is zero and
    // only carries the request (primary meter).
    expect(rows.map((r) => r.meter).sort()).toEqual(['cached-input-tokens', 'input-tokens', 'output-tokens']);
    expect(rowOf(rows, 'input-tokens')).toMatchObject({ quantity: '0', cost: '0', requests: 1 });
    expect(rowOf(rows, 'cached-input-tokens').quantity).toBe('100');
    expect(rowOf(rows, 'cached-input-tokens').cost).toBe('0.000125'); // 100 × 1.25 / 1M
  });

  it('bills reasoning tokens as output, counted once (they are part of the completion)', () => {
    const rows = aggregate([
      event({
        model: 'o3-mini-2025-01-31',
        deployment: 'o3-mini',
        promptTokens: 1_000,
        completionTokens: 5_000,
        reasoningTokens: 4_200,
      }),
    ]);
    expect(rowOf(rows, 'output-tokens').quantity).toBe('5000');
    expect(rowOf(rows, 'output-tokens').cost).toBe('0.022'); // 5 000 × 4.40 / 1M
    expect(rows.some((r) => r.quantity === '9200')).toBe(false);
  });

  it('adds audio seconds as exact decimals', () => {
    const stt = { api: 'stt' as const, deployment: 'stt-en-US', model: 'azure-speech-stt-standard' };
    const rows = aggregate([event({ ...stt, audioSeconds: 0.1 }), event({ ...stt, audioSeconds: 0.2 })]);
    expect(0.1 + 0.2).not.toBe(0.3); // what a float sum would give
    expect(rows).toHaveLength(1);
    const row = rowOf(rows, 'audio-seconds');
    expect(row.quantity).toBe('0.3');
    // 0.3 s at 1.00 per hour: 0.3 / 3 600 = 0.0000833…, to 40 significant digits
    const perHour = `0.00008${'3'.repeat(39)}`;
    expect(row).toMatchObject({
      priceId: 'default:azure-speech-stt-standard:audio-seconds:2025-01-01',
      unitPrice: '1',
      pricingUnit: 'Hours',
      pricingQuantity: perHour,
      cost: perHour,
      requests: 2,
    });
  });

  it('keeps ten tenths of a second at exactly one second', () => {
    const stt = { api: 'stt' as const, deployment: 'stt-en-US', model: 'azure-speech-stt-standard' };
    const rows = aggregate(Array.from({ length: 10 }, () => event({ ...stt, audioSeconds: 0.1 })));
    expect(rowOf(rows, 'audio-seconds').quantity).toBe('1');
  });

  it('prices text-to-speech characters per million', () => {
    const tts = { api: 'tts' as const, deployment: 'tts-neural', model: 'azure-speech-tts-neural' };
    const rows = aggregate([event({ ...tts, billableCharacters: 1_234 })]);
    expect(rowOf(rows, 'tts-characters')).toMatchObject({
      quantity: '1234',
      pricingUnit: '1M Characters',
      pricingQuantity: '0.001234',
      unitPrice: '15',
      cost: '0.01851', // 1 234 × 15 / 1M
      requests: 1,
    });
  });

  it('bills text-to-speech by characters only: the audio it produced is no zero-priced line of its own', () => {
    const tts = { api: 'tts' as const, deployment: 'tts-neural', model: 'azure-speech-tts-neural' };
    const rows = aggregate([event({ ...tts, billableCharacters: 120, audioSeconds: 3.2 })]);
    expect(rows.map((r) => r.meter)).toEqual(['tts-characters']);
    expect(rows[0]).toMatchObject({ quantity: '120', requests: 1, cost: '0.0018' });
    expect(rows[0]?.priceId).not.toBeNull();
  });

  it('counts every request on its primary meter line, and on every other line whose meter it consumed', () => {
    const rows = aggregate([
      event({ promptTokens: 100, cachedTokens: 20, completionTokens: 30 }),
      event({ promptTokens: 200, cachedTokens: 40, completionTokens: 60, estimated: true }),
      event({ promptTokens: 300 }),
    ]);
    expect(rows).toHaveLength(3);
    expect(rowOf(rows, 'input-tokens')).toMatchObject({ requests: 3, estimatedRequests: 1 });
    expect(rowOf(rows, 'cached-input-tokens')).toMatchObject({ requests: 2, estimatedRequests: 1 });
    expect(rowOf(rows, 'output-tokens')).toMatchObject({ requests: 2, estimatedRequests: 1 });
  });

  it('counts a request that consumed nothing on its primary meter, which shows with a zero quantity', () => {
    const rows = aggregate([event({ promptTokens: 0 }), event({ completionTokens: 5 })]);
    expect(rowOf(rows, 'input-tokens')).toMatchObject({ quantity: '0', requests: 2 });
    expect(rowOf(rows, 'output-tokens')).toMatchObject({ quantity: '5', requests: 1 });
  });

  it.each([
    ['chat', 'input-tokens'],
    ['embeddings', 'input-tokens'],
    ['responses', 'input-tokens'],
    ['stt', 'audio-seconds'],
    ['tts', 'tts-characters'],
  ] as const)('still shows a %s request that consumed nothing billable, as one row', (api, meter) => {
    const rows = aggregate([event({ api, status: 200 }), event({ api, status: 400 })]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      api,
      meter,
      quantity: '0',
      pricingQuantity: '0',
      cost: '0',
      requests: 2,
    });
  });

  it('sets invalid JSON aside with its problem, without counting it', () => {
    const aggregator = new WindowAggregator(WINDOW, listPrices);
    aggregator.add('{"id": "req-broken", ');
    aggregator.add(JSON.stringify(event({ promptTokens: 10 })));

    expect(aggregator.events).toBe(1);
    expect(aggregator.invalid).toHaveLength(1);
    expect(aggregator.invalid[0]?.raw).toBe('{"id": "req-broken", ');
    expect(aggregator.invalid[0]?.problem).toMatch(/^not JSON: /);
    expect(totalRequests(aggregator.aggregates())).toBe(1);
  });

  it('sets schema-failing events aside with the schema problem, without counting them', () => {
    const aggregator = new WindowAggregator(WINDOW, listPrices);
    const negative = JSON.stringify({ ...event(), promptTokens: -5 });
    const unknownApi = JSON.stringify({ ...event(), api: 'images', promptTokens: 1_000_000 });
    const notAnEvent = 'null';
    for (const raw of [negative, unknownApi, notAnEvent]) aggregator.add(raw);

    expect(aggregator.events).toBe(0);
    expect(aggregator.invalid.map((i) => i.raw)).toEqual([negative, unknownApi, notAnEvent]);
    for (const { problem } of aggregator.invalid) {
      expect(problem).not.toBe('');
      expect(problem).not.toMatch(/^not JSON/);
    }
    expect(aggregator.invalid[0]?.problem).toMatch(/>=\s*0/);
    expect(aggregator.aggregates()).toEqual([]);
  });

  it('counts the valid events it took', () => {
    const aggregator = new WindowAggregator(WINDOW, listPrices);
    for (let i = 0; i < 5; i++) aggregator.add(JSON.stringify(event({ promptTokens: i })));
    aggregator.add('not json');
    expect(aggregator.events).toBe(5);
  });

  it('gives the same rows, ids and order whatever order the events came in', () => {
    const events = [
      event({ promptTokens: 100, completionTokens: 5 }),
      event({
        department: 'marketing',
        model: 'gpt-4o-mini-2024-07-18',
        deployment: 'gpt-4o-mini',
        promptTokens: 7,
      }),
      event({ api: 'stt', deployment: 'stt-en-US', model: 'azure-speech-stt-standard', audioSeconds: 1.5 }),
      event({ promptTokens: 50, cachedTokens: 10, completionTokens: 1 }),
      event({
        api: 'tts',
        deployment: 'tts-neural',
        model: 'azure-speech-tts-neural',
        billableCharacters: 80,
      }),
    ];
    const forward = aggregate(events);
    const backward = aggregate([...events].reverse());
    const shuffled = aggregate([events[2], events[0], events[4], events[3], events[1]] as UsageEvent[]);

    expect(forward).toHaveLength(6); // research gpt-4o: 3 meters; marketing, stt, tts: 1 each
    expect(backward).toEqual(forward);
    expect(shuffled).toEqual(forward);
  });

  it('sorts rows by id', () => {
    const rows = aggregate([
      event({ promptTokens: 100, cachedTokens: 20, completionTokens: 30 }),
      event({ department: 'marketing', promptTokens: 1, completionTokens: 2 }),
      event({ department: 'legal', appId: 'app-contracts', promptTokens: 3 }),
    ]);
    const ids = rows.map((r) => r.id);
    expect(ids).toHaveLength(6);
    expect(ids).toEqual([...ids].sort());
  });

  it('derives ids from the window, batch, dimensions and meter only', () => {
    const rows = aggregate([event({ promptTokens: 10 })]);
    const expected = createHash('sha256')
      .update(
        [
          '20260315T1230Z',
          'b-0001',
          'research',
          'sub-research',
          'app-notebooks',
          'gpt-4o',
          'gpt-4o-2024-11-20',
          'chat',
          'input-tokens',
        ].join('\u0000'),
      )
      .digest('hex')
      .slice(0, 40);
    expect(rows[0]?.id).toBe(expected);
    expect(rows[0]?.id).toMatch(/^[0-9a-f]{40}$/);
    // The figures do not enter the id: reprocessing a batch overwrites the same documents.
    expect(aggregate([event({ promptTokens: 99 })])[0]?.id).toBe(expected);
  });

  it('gives another batch of the same window other ids', () => {
    const e = event({ promptTokens: 10 });
    const first = aggregate([e]);
    const second = aggregate([e], listPrices, { windowId: WINDOW.windowId, batch: 'b-0002' });
    expect(second[0]?.id).not.toBe(first[0]?.id);
    expect(second[0]?.batch).toBe('b-0002');
  });

  it('partitions rows by month and department', () => {
    const rows = aggregate([
      event({ promptTokens: 1 }),
      event({ department: 'unassigned', promptTokens: 1 }),
      event({ department: 'marketing', promptTokens: 1 }),
    ]);
    for (const row of rows) expect(row.pk).toBe(usagePartitionKey('2026-03', row.department));
    expect(rows.map((r) => r.pk).sort()).toEqual([
      '2026-03|marketing',
      '2026-03|research',
      '2026-03|unassigned',
    ]);
  });

  it("dates a month's last window by its start", () => {
    const last: WindowBatch = { windowId: '20260331T2345Z', batch: 'b-9' };
    const [row] = aggregate([event({ promptTokens: 1 })], listPrices, last);
    expect(row).toMatchObject({
      month: '2026-03',
      day: '2026-03-31',
      pk: '2026-03|research',
      windowStart: '2026-03-31T23:45:00.000Z',
      windowEnd: '2026-04-01T00:00:00.000Z',
    });
  });

  it('costs quantity × unit price / unit size exactly, for large quantities too', () => {
    // 123 456 789 input tokens of gpt-4o-mini at 0.15 per 1M = 18.51851835
    const rows = aggregate([
      event({ deployment: 'gpt-4o-mini', model: 'gpt-4o-mini-2024-07-18', promptTokens: 123_456_789 }),
    ]);
    expect(rowOf(rows, 'input-tokens')).toMatchObject({
      quantity: '123456789',
      pricingQuantity: '123.456789',
      unitPrice: '0.15',
      cost: '18.51851835',
    });
  });

  it('marks an unpriced model with priceId null and cost 0, still counting its usage', () => {
    const rows = aggregate([
      event({ deployment: 'llama', model: 'llama-3-70b', promptTokens: 5_000, completionTokens: 300 }),
    ]);
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row).toMatchObject({ priceId: null, unitPrice: '0', cost: '0', pricingUnit: '1M Tokens' });
    }
    expect(rowOf(rows, 'input-tokens')).toMatchObject({
      quantity: '5000',
      pricingQuantity: '0.005',
      requests: 1,
    });
  });

  it("prices with the price in effect at the window's start", () => {
    const price = (id: string, unitPrice: string, effectiveFrom: string): { entry: PriceEntry } => ({
      entry: {
        id,
        model: 'gpt-4o',
        meter: 'input-tokens',
        unitPrice,
        currency: 'USD',
        effectiveFrom,
        source: 'test',
      },
    });
    const table = new PriceTable([
      price('old', '2.00', '2026-01-01T00:00:00.000Z'),
      price('at-start', '3.00', WINDOW_START),
      price('later', '4.00', '2026-03-15T12:30:00.001Z'),
    ]);
    const rows = aggregate([event({ promptTokens: 1_000_000 })], (m, meter, at) =>
      table.priceFor(m, meter, at),
    );
    expect(rowOf(rows, 'input-tokens')).toMatchObject({ priceId: 'at-start', unitPrice: '3', cost: '3' });
  });

  it("asks the price lookup for each row's model and meter at the window's start", () => {
    const asked: string[] = [];
    const lookup: PriceLookup = (model, meter, at) => {
      asked.push(`${model} ${meter} ${at.toISOString()}`);
      return undefined;
    };
    aggregate([event({ promptTokens: 10, completionTokens: 1 })], lookup);
    expect(asked.sort()).toEqual([
      `gpt-4o-2024-11-20 input-tokens ${WINDOW_START}`,
      `gpt-4o-2024-11-20 output-tokens ${WINDOW_START}`,
    ]);
  });

  it('refuses a batch whose window id is not a window', () => {
    expect(() => new WindowAggregator({ windowId: '20260315T1231Z', batch: 'b' }, listPrices)).toThrow(
      InvalidWindowIdError,
    );
  });

  it('has no rows before any event', () => {
    expect(new WindowAggregator(WINDOW, listPrices).aggregates()).toEqual([]);
  });
});

describe('batchRecordKeys', () => {
  it("names the batch record by window and batch, in the month's batch partition", () => {
    expect(batchRecordKeys(WINDOW, '2026-03')).toEqual({
      id: 'batch|20260315T1230Z|b-0001',
      pk: '2026-03|~batches',
    });
  });

  it('differs per batch of the same window', () => {
    const other = batchRecordKeys({ windowId: WINDOW.windowId, batch: 'b-0002' }, '2026-03');
    expect(other.id).toBe('batch|20260315T1230Z|b-0002');
    expect(other.id).not.toBe(batchRecordKeys(WINDOW, '2026-03').id);
  });
});
