import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { ContainerClient } from '@azure/storage-blob';
import type { LocalStack } from '../../../local/stack';
import { usageEvent } from '../../fixtures/usage';
import { startTestStack } from '../../stack';
import type { Container } from '@azure/cosmos';
import { ActivityFaults } from '../../../local/host/activity-faults';
import { CHARGEBACK_ACTIVITIES } from '../../../functions/chargeback/chargeback-run';
import { BlobUsageSpool } from '../../../shared/adapters/blob-spool';
import { CosmosChargebackStore } from '../../../shared/adapters/cosmos-store';
import { usageKeys } from '../../../shared/adapters/redis-usage-buffer';
import type { ChargebackConfig, UsageAggregate } from '../../../shared/chargeback/model';
import { money, sum } from '../../../shared/chargeback/money';
import type { ChargebackRunSummary } from '../../../shared/chargeback/run';
import { CHARGEBACK_ORCHESTRATION } from '../../../shared/chargeback/run';
import { appServices } from '../../../shared/config/composition';
import { BLOB_CONTAINERS, COSMOS_CONTAINERS } from '../../../shared/contracts/storage';
import type { UsageEvent } from '../../../shared/contracts/usage-event';
import { windowId } from '../../../shared/contracts/window';

/**
 * The chargeback run end to end on the local stack: real Redis, Azurite and the Cosmos emulator,
 * the orchestration on the durable engine, faults injected at every step.
 */

const CONFIG: ChargebackConfig = {
  currency: 'USD',
  departments: [
    { id: 'research', name: 'Research', costCenter: 'CC-1' },
    { id: 'marketing', name: 'Marketing' },
    { id: 'customer-support', name: 'Customer Support' },
  ],
  apps: [],
  // 300.00 a month: 10.00 a day in 30-day months, 9.677... in 31-day ones.
  sharedCosts: [
    { id: 'apim', name: 'API Management', monthlyAmount: '300.00', rule: { kind: 'proportional-cost' } },
  ],
  markupPercent: '0',
  budgets: [],
};

jest.setTimeout(120_000);

let stack: LocalStack;
let redis: Redis;
let reports: ContainerClient;
let spoolContainer: ContainerClient;
let store: CosmosChargebackStore;
let prices: Container;

/** Faults injected into the chargeback activities by the local host, as a crash or an outage at that step would. */
const faults = new ActivityFaults();
const FAULT_POINTS = {
  find: [CHARGEBACK_ACTIVITIES.find, 'before'],
  aggregate: [CHARGEBACK_ACTIVITIES.aggregate, 'before'],
  /** After the activity committed to Cosmos DB, before the orchestration learns of it. */
  'aggregate:committed': [CHARGEBACK_ACTIVITIES.aggregate, 'after'],
  release: [CHARGEBACK_ACTIVITIES.release, 'before'],
  days: [CHARGEBACK_ACTIVITIES.daysToRollUp, 'before'],
  rollUp: [CHARGEBACK_ACTIVITIES.rollUp, 'before'],
  due: [CHARGEBACK_ACTIVITIES.reportsDue, 'before'],
  report: [CHARGEBACK_ACTIVITIES.report, 'before'],
} as const;
type FaultPoint = keyof typeof FAULT_POINTS;
function armFault(point: FaultPoint, times = 1): void {
  const [activity, phase] = FAULT_POINTS[point];
  faults.arm(activity, phase, times);
}
function faultPasses(point: FaultPoint): number {
  const [activity, phase] = FAULT_POINTS[point];
  return faults.passes(activity, phase);
}

beforeAll(async () => {
  process.env.CHARGEBACK_CONFIG = JSON.stringify(CONFIG);
  stack = await startTestStack();
  stack.host.durable.interceptActivities(faults);
  const app = await appServices();
  redis = new Redis(process.env.REDIS_URL as string);
  reports = app.reportsContainer();
  spoolContainer = app.blobService().getContainerClient(BLOB_CONTAINERS.usageSpool);
  store = new CosmosChargebackStore(app.cosmos(), app.config.cosmos.database);
  prices = app.cosmos().database(app.config.cosmos.database).container(COSMOS_CONTAINERS.prices.id);
});

afterAll(async () => {
  redis.disconnect();
  await stack.stop();
  delete process.env.CHARGEBACK_CONFIG;
});

afterEach(() => faults.reset());

function event(at: string, fields: Partial<UsageEvent>): UsageEvent {
  return usageEvent({
    recordedAt: new Date(at).toISOString(),
    subscriptionId: 'sub-1',
    appId: 'app-1',
    ...fields,
  });
}

async function toRedis(...events: UsageEvent[]): Promise<void> {
  for (const e of events)
    await redis.hsetnx(usageKeys.events(windowId(new Date(e.window))), e.id, JSON.stringify(e));
}

async function toSpool(...events: UsageEvent[]): Promise<void> {
  const spool = new BlobUsageSpool(spoolContainer);
  for (const e of events) await spool.write(e);
}

async function run(): Promise<{ status: string; output: ChargebackRunSummary | undefined; error?: string }> {
  const id = `test-${randomUUID()}`;
  stack.host.durable.startNew(CHARGEBACK_ORCHESTRATION, { instanceId: id });
  const status = await stack.host.durable.waitForCompletion(id, 110_000);
  return {
    status: String(status.runtimeStatus),
    output: status.output as ChargebackRunSummary | undefined,
    error: status.runtimeStatus === 'Completed' ? undefined : JSON.stringify(status.output),
  };
}

async function download(path: string): Promise<string> {
  return (await reports.getBlobClient(path).downloadToBuffer()).toString('utf8');
}

interface JsonReport {
  total: string;
  departments: Array<{ department: string; usage: string; shared: string; total: string }>;
  rows: Array<Record<string, string>>;
}

async function jsonReport(path: string): Promise<JsonReport> {
  return JSON.parse(await download(path)) as JsonReport;
}

/** Exact usage cost per department, from the report's unrounded column. */
function exactUsage(report: JsonReport): Record<string, string> {
  const by: Record<string, ReturnType<typeof money>> = {};
  for (const row of report.rows) {
    if (row.ChargeCategory !== 'Usage') continue;
    const d = row.SubAccountId as string;
    by[d] = (by[d] ?? money(0)).plus(row.x_ExactCost as string);
  }
  return Object.fromEntries(Object.entries(by).map(([d, v]) => [d, v.toFixed()]));
}

async function rawUsageKeys(): Promise<string[]> {
  return (await redis.keys(usageKeys.pattern)).sort();
}

async function spooled(): Promise<string[]> {
  const names: string[] = [];
  if (!(await spoolContainer.exists())) return names;
  for await (const blob of spoolContainer.listBlobsFlat()) names.push(blob.name);
  return names;
}

function comparable(rows: UsageAggregate[]): UsageAggregate[] {
  return [...rows].sort((a, b) => (a.id < b.id ? -1 : 1));
}

describe('chargeback run', () => {
  it('prices every request exactly as by hand, allocates shared costs to the cent, and releases the raw data', async () => {
    const at = '2026-06-10T09:05:00Z';
    const events = [
      // gpt-4o: input 2.50, cached 1.25, output 10.00 per 1M tokens.
      // (2M − 0.4M) × 2.50 + 0.4M × 1.25 + 0.5M × 10 = 4.00 + 0.50 + 5.00 = 9.50
      event(at, { promptTokens: 2_000_000, cachedTokens: 400_000, completionTokens: 500_000 }),
      // 1M × 2.50 + 0.1M × 10 (reasoning is part of completion, billed as output) = 3.50
      event(at, { promptTokens: 1_000_000, completionTokens: 100_000, reasoningTokens: 60_000 }),
      // gpt-4o-mini: 0.15 / 0.075 / 0.60. 2M × 0.15 + 1M × 0.075 + 1M × 0.60 = 0.975
      event(at, {
        department: 'marketing',
        deployment: 'gpt-4o-mini',
        model: 'gpt-4o-mini-2024-07-18',
        promptTokens: 3_000_000,
        cachedTokens: 1_000_000,
        completionTokens: 1_000_000,
      }),
      // Speech: 5 400 s = 1.5 h × 1.00 = 1.50; 200 000 characters × 15.00 / 1M = 3.00
      event(at, {
        department: 'customer-support',
        api: 'stt',
        deployment: 'speech',
        model: 'azure-speech-stt-standard',
        audioSeconds: 5_400,
      }),
      event(at, {
        department: 'customer-support',
        api: 'tts',
        deployment: 'speech',
        model: 'azure-speech-tts-neural',
        billableCharacters: 200_000,
      }),
      // o3-mini: 1.10 / 4.40. 0.1M × 1.10 + 0.3M × 4.40 = 0.11 + 1.32 = 1.43, to nobody's department
      event(at, {
        department: 'unassigned',
        deployment: 'o3-mini',
        model: 'o3-mini-2025-01-31',
        promptTokens: 100_000,
        completionTokens: 300_000,
      }),
    ];
    await toRedis(...events.slice(0, 4));
    await toSpool(...events.slice(3)); // one event in both stores: it counts once

    const result = await run();
    expect(result.error).toBeUndefined();
    expect(result.output?.events).toBe(6);

    const day = await jsonReport('daily/2026-06-10/chargeback-2026-06-10.json');
    expect(exactUsage(day)).toEqual({
      research: '13',
      marketing: '0.975',
      'customer-support': '4.5',
      unassigned: '1.43',
    });
    // Usage 19.905 + one day of API Management (300.00 / 30 = 10.00) = 29.905 → 29.90 (half to even)
    expect(day.total).toBe('29.90');
    const cents = (values: string[]): string => sum(values.map((v) => money(v))).toFixed(2);
    expect(cents(day.departments.map((d) => d.total))).toBe(day.total);
    expect(cents(day.rows.map((r) => r.BilledCost as string))).toBe(day.total);
    // API Management split by usage cost: research 13 / 19.905 of 10.00 = 6.5310...
    const apim = day.rows.filter((r) => r.x_SharedCostId === 'apim');
    expect(sum(apim.map((r) => money(r.x_ExactCost as string))).toFixed()).toBe('10');
    expect(money(apim.find((r) => r.SubAccountId === 'research')?.x_ExactCost as string).toFixed(6)).toBe(
      money(13).div('19.905').times(10).toFixed(6),
    );

    // Month to date: June 10 is the only day with usage, so it is the only day that accrues
    // shared cost, and the month is exactly that day.
    const month = await jsonReport('monthly/2026-06/chargeback-2026-06.json');
    expect(month.total).toBe('29.90');
    expect(cents(month.rows.map((r) => r.BilledCost as string))).toBe(month.total);
    expect(month.departments.find((d) => d.department === 'unassigned')?.usage).toBe('1.43');

    const html = await download('monthly/2026-06/chargeback-2026-06.html');
    expect(html).toContain('<svg');
    expect(html).toContain('Cost per department');
    const props = await reports.getBlobClient('monthly/2026-06/chargeback-2026-06.csv').getProperties();
    expect(props.contentType).toBe('text/csv; charset=utf-8');
    expect(props.metadata).toMatchObject({ period: '2026-06', total: '29.90', kind: 'monthly' });

    expect(await rawUsageKeys()).toEqual([]);
    expect(await spooled()).toEqual([]);
  });

  it('each activity failing once still converges to the same result', async () => {
    const at = '2026-07-03T10:20:00Z';
    await toRedis(
      event(at, { promptTokens: 1_000_000 }), // 2.50
      event(at, { department: 'marketing', promptTokens: 2_000_000 }), // 5.00
    );
    const points = Object.keys(FAULT_POINTS) as FaultPoint[];
    for (const point of points) armFault(point);
    const result = await run();
    expect(result.error).toBeUndefined();
    for (const point of points) expect(faultPasses(point)).toBeGreaterThanOrEqual(2);
    const day = await jsonReport('daily/2026-07-03/chargeback-2026-07-03.json');
    expect(exactUsage(day)).toEqual({ research: '2.5', marketing: '5' });
    expect(await rawUsageKeys()).toEqual([]);
  });

  it('a crash between the Cosmos commit and the release: the rerun writes identical documents and reports, and counts nothing twice', async () => {
    const at = '2026-08-14T23:50:00Z';
    await toRedis(event(at, { promptTokens: 4_000_000, completionTokens: 10_000 })); // 10.00 + 0.10
    await toSpool(event(at, { department: 'marketing', promptTokens: 400_000 })); // 1.00

    // The run dies after committing: its release keeps failing and the instance is then killed.
    armFault('release', 100);
    const crashedId = `test-${randomUUID()}`;
    stack.host.durable.startNew(CHARGEBACK_ORCHESTRATION, { instanceId: crashedId });
    for (let i = 0; i < 200 && faultPasses('release') === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(faultPasses('release')).toBeGreaterThan(0);
    stack.host.durable.terminate(crashedId, 'crash');
    const docsAfterCrash = comparable(await store.usage({ month: '2026-08' }));
    expect(docsAfterCrash.length).toBeGreaterThan(0);
    expect(await rawUsageKeys()).not.toEqual([]); // the raw data is still there

    faults.reset();
    const rerun = await run();
    expect(rerun.error).toBeUndefined();
    expect(rerun.output?.events).toBe(2); // the same batch, adopted: not a second one
    expect(comparable(await store.usage({ month: '2026-08' }))).toEqual(docsAfterCrash);
    const files = ['csv', 'json', 'html'].map((f) => `daily/2026-08-14/chargeback-2026-08-14.${f}`);
    const bytes = await Promise.all(files.map(download));
    expect(exactUsage(await jsonReport(files[1] as string))).toEqual({ research: '10.1', marketing: '1' });
    expect(await rawUsageKeys()).toEqual([]);
    expect(await spooled()).toEqual([]);

    // Processed again with nothing new: no window, nothing due, same documents, same bytes.
    const again = await run();
    expect(again.output?.windows).toEqual([]);
    expect(again.output?.reports).toEqual([]);
    expect(comparable(await store.usage({ month: '2026-08' }))).toEqual(docsAfterCrash);
    expect(await Promise.all(files.map(download))).toEqual(bytes);
  });

  it('a crash after the release, before the reports: the next run writes them from the ledger', async () => {
    const at = '2026-08-20T10:05:00Z';
    await toRedis(event(at, { promptTokens: 2_000_000 })); // 5.00
    armFault('report', 100);
    const crashedId = `test-${randomUUID()}`;
    stack.host.durable.startNew(CHARGEBACK_ORCHESTRATION, { instanceId: crashedId });
    for (let i = 0; i < 200 && faultPasses('report') === 0; i++) await new Promise((r) => setTimeout(r, 50));
    stack.host.durable.terminate(crashedId, 'crash');
    // Committed and released: nothing raw is left to find.
    expect(await rawUsageKeys()).toEqual([]);
    const path = 'daily/2026-08-20/chargeback-2026-08-20.json';
    expect(await reports.getBlobClient(path).exists()).toBe(false);

    faults.reset();
    const next = await run();
    expect(next.error).toBeUndefined();
    expect(next.output?.windows).toEqual([]);
    expect(next.output?.reports).toEqual(
      expect.arrayContaining([path, 'monthly/2026-08/chargeback-2026-08.json']),
    );
    expect(exactUsage(await jsonReport(path))).toEqual({ research: '5' });
  });

  it('after an outage of several windows, one run catches up on all of them', async () => {
    const windows = [
      '2026-09-01T22:10:00Z',
      '2026-09-01T22:40:00Z',
      '2026-09-01T23:55:00Z',
      '2026-09-02T00:05:00Z',
    ];
    for (const [i, at] of windows.entries()) {
      // Redis was down for the middle two: their events are only in the spool.
      const e = event(at, { promptTokens: 1_000_000 * (i + 1) }); // 2.50, 5.00, 7.50, 10.00
      if (i === 1 || i === 2) await toSpool(e);
      else await toRedis(e);
    }
    const result = await run();
    expect(result.error).toBeUndefined();
    expect(result.output?.windows.map((w) => w.windowId)).toEqual([
      '20260901T2200Z',
      '20260901T2230Z',
      '20260901T2345Z',
      '20260902T0000Z',
    ]);
    expect(exactUsage(await jsonReport('daily/2026-09-01/chargeback-2026-09-01.json'))).toEqual({
      research: '15',
    });
    expect(exactUsage(await jsonReport('daily/2026-09-02/chargeback-2026-09-02.json'))).toEqual({
      research: '10',
    });
    expect(exactUsage(await jsonReport('monthly/2026-09/chargeback-2026-09.json'))).toEqual({
      research: '25',
    });
    expect(await rawUsageKeys()).toEqual([]);
    expect(await spooled()).toEqual([]);
  });

  it('an event that arrives after its window was released adds to the window instead of replacing it', async () => {
    const at = '2026-10-05T08:00:00Z';
    await toRedis(event(at, { promptTokens: 1_000_000 })); // 2.50
    expect((await run()).error).toBeUndefined();
    await toSpool(event(at, { promptTokens: 2_000_000 })); // 5.00, late
    expect((await run()).error).toBeUndefined();
    expect(exactUsage(await jsonReport('daily/2026-10-05/chargeback-2026-10-05.json'))).toEqual({
      research: '7.5',
    });
  });

  it('a price override written now never reprices an earlier window, even when backdated', async () => {
    await prices.items.upsert({
      id: 'override-gpt-4o-input-cheap',
      model: 'gpt-4o',
      meter: 'input-tokens',
      unitPrice: '0.01',
      currency: 'USD',
      effectiveFrom: '2026-01-01T00:00:00.000Z', // backdated
      source: 'test admin',
    });
    try {
      await toRedis(event('2026-05-06T07:00:00Z', { promptTokens: 1_000_000 }));
      expect((await run()).error).toBeUndefined();
      const [row] = await store.usage({ month: '2026-05' });
      expect(row).toMatchObject({ priceId: 'default:gpt-4o:input-tokens:2025-01-01', cost: '2.5' });
    } finally {
      await prices.item('override-gpt-4o-input-cheap', 'gpt-4o').delete();
    }
  });

  it('the timer starts one run per quarter hour, and none while a run is in progress', async () => {
    const timerRuns = (): string[] =>
      stack.host.durable
        .list()
        .map((s) => String(s.instanceId))
        .filter((id) => id.startsWith('chargeback-'));
    // A run in progress (held in a retry by a failing first step) blocks the timer.
    armFault('find');
    const held = `test-${randomUUID()}`;
    stack.host.durable.startNew(CHARGEBACK_ORCHESTRATION, { instanceId: held });
    await stack.host.runTimer('chargebackTimer');
    expect(timerRuns()).toEqual([]);
    await stack.host.durable.waitForCompletion(held, 60_000);

    // Then one run per quarter hour, however often the timer fires in it.
    await stack.host.runTimer('chargebackTimer');
    await stack.host.runTimer('chargebackTimer');
    expect(timerRuns()).toHaveLength(1);
    const status = await stack.host.durable.waitForCompletion(timerRuns()[0] as string, 60_000);
    expect(status.runtimeStatus).toBe('Completed');
  });
});
