/**
 * `npm run bench:chargeback`, two scenarios on the local stack (real redis-server, Azurite, the
 * Cosmos DB emulator, the local Functions host running the orchestration):
 * - window: one window of BENCH_EVENTS (default 1 000 000) usage events processed by the run
 *   (claim, aggregate, price, Cosmos DB commit, release, roll-up, reports in Blob Storage), against
 *   the floor: the time it takes merely to read those events from Redis (HSCAN, same page size);
 * - month-end: a month of windows already committed (every quarter hour of every day, rolled up
 *   and reported, as a month of runs leaves it), then one more run at the month's last day; against
 *   the same run in the middle of a month (day 15), at the same time of day with the same traffic.
 * BENCH_SCENARIOS picks them (default `window,month-end`).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { usageKeys } from '../shared/adapters/redis-usage-buffer';
import { appServices } from '../shared/config/composition';
import { COSMOS_CONTAINERS } from '../shared/contracts/storage';
import type { ChargebackRunSummary } from '../shared/chargeback/run';
import { CHARGEBACK_ORCHESTRATION } from '../shared/chargeback/run';
import { WindowAggregator } from '../shared/chargeback/aggregate';
import { DEFAULT_PRICES, PriceTable } from '../shared/chargeback/prices';
import { ChargebackSteps } from '../shared/chargeback/run';
import { BlobQuarantine, BlobReportStore } from '../shared/adapters/blob-reports';
import { RedisUsageBuffer } from '../shared/adapters/redis-usage-buffer';
import { BLOB_CONTAINERS } from '../shared/contracts/storage';
import { MemoryAggregateStore } from './memory-store';
import type { AppServices } from '../shared/config/composition';
import type { LocalStack } from '../local/stack';
import type { UsageEvent } from '../shared/contracts/usage-event';
import { WINDOW_MS, windowId, windowStart } from '../shared/contracts/window';
import { startLocalStack } from '../local/stack';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const PAGE = 10_000;

const DEPARTMENTS = [
  'research',
  'marketing',
  'customer-support',
  'finance',
  'engineering',
  'legal',
  'sales',
  'unassigned',
];
const MODELS: Array<{ deployment: string; model: string; api: UsageEvent['api'] }> = [
  { deployment: 'gpt-4o', model: 'gpt-4o-2024-11-20', api: 'chat' },
  { deployment: 'gpt-4o-mini', model: 'gpt-4o-mini-2024-07-18', api: 'chat' },
  { deployment: 'o3-mini', model: 'o3-mini-2025-01-31', api: 'responses' },
  { deployment: 'embeddings', model: 'text-embedding-3-small', api: 'embeddings' },
  { deployment: 'speech', model: 'azure-speech-stt-standard', api: 'stt' },
  { deployment: 'speech', model: 'azure-speech-tts-neural', api: 'tts' },
];

/** A deterministic pseudo-random sequence, so every run benchmarks the same data. */
function* random(seed: number): Generator<number> {
  let x = seed;
  for (;;) {
    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
    yield x / 2_147_483_648;
  }
}

function syntheticEvent(i: number, window: Date, r: Generator<number>): UsageEvent {
  const next = (): number => r.next().value as number;
  const department = DEPARTMENTS[Math.floor(next() * DEPARTMENTS.length)] as string;
  const target = MODELS[Math.floor(next() * MODELS.length)] as (typeof MODELS)[number];
  const prompt = target.api === 'stt' || target.api === 'tts' ? 0 : 50 + Math.floor(next() * 4_000);
  const recordedAt = new Date(window.getTime() + Math.floor(next() * 899_000));
  return {
    id: `bench-${i}-${randomUUID()}`,
    recordedAt: recordedAt.toISOString(),
    window: window.toISOString(),
    subscriptionId: `sub-${department}`,
    appId: `${department}-app-${Math.floor(next() * 3)}`,
    department,
    userId: `user-${Math.floor(next() * 500)}`,
    api: target.api,
    deployment: target.deployment,
    model: target.model,
    promptTokens: prompt,
    cachedTokens: Math.floor(prompt * next() * 0.5),
    completionTokens: target.api === 'chat' || target.api === 'responses' ? Math.floor(next() * 800) : 0,
    reasoningTokens: target.api === 'responses' ? Math.floor(next() * 300) : 0,
    audioSeconds: target.api === 'stt' ? Math.round(next() * 60_000) / 1000 : 0,
    billableCharacters: target.api === 'tts' ? Math.floor(next() * 2_000) : 0,
    status: 200,
    latencyMs: Math.round(next() * 5_000),
    streamed: next() < 0.6,
    estimated: next() < 0.01,
  };
}

async function fill(redis: Redis, window: Date): Promise<number> {
  const r = random(42);
  const key = usageKeys.events(windowId(window));
  let bytes = 0;
  for (let i = 0; i < EVENTS; i += 1_000) {
    const args: string[] = [];
    for (let j = i; j < Math.min(EVENTS, i + 1_000); j++) {
      const event = syntheticEvent(j, window, r);
      const json = JSON.stringify(event);
      bytes += json.length;
      args.push(event.id, json);
    }
    await redis.hset(key, ...args);
  }
  return bytes;
}

/**
 * The floor: every event read from Redis and nothing else done with it, with the same HSCAN page
 * size and the same one-page read-ahead as the run's reader.
 */
async function readFloor(redis: Redis, key: string): Promise<{ ms: number; count: number }> {
  const started = performance.now();
  let count = 0;
  const page = (cursor: string): Promise<[string, string[]]> => redis.hscan(key, cursor, 'COUNT', PAGE);
  let pending: Promise<[string, string[]]> | undefined = page('0');
  while (pending) {
    const [next, flat]: [string, string[]] = await pending;
    pending = next === '0' ? undefined : page(next);
    count += flat.length / 2;
  }
  return { ms: performance.now() - started, count };
}

async function windowScenario(stack: LocalStack, app: AppServices): Promise<string[]> {
  const redis = new Redis(process.env.REDIS_URL as string);
  // A closed window (an hour ago), so the run picks it up at once.
  const window = windowStart(new Date(Date.now() - 3_600_000));
  const key = usageKeys.events(windowId(window));
  console.error(`filling one window with ${EVENTS.toLocaleString('en-US')} events...`);
  const bytes = await fill(redis, window);
  const floor = await readFloor(redis, key);
  if (floor.count !== EVENTS) throw new Error(`floor read ${floor.count} events, expected ${EVENTS}`);

  const { ms, summary } = await timedRun(stack);
  if (summary.events !== EVENTS) throw new Error(`run counted ${summary.events} events, expected ${EVENTS}`);
  if ((await redis.exists(key)) !== 0) throw new Error('raw events were not released');
  const month = window.toISOString().slice(0, 7);
  const { resources } = await app
    .cosmos()
    .database(app.config.cosmos.database)
    .container(COSMOS_CONTAINERS.usage.id)
    .items.query<number>({
      query: 'SELECT VALUE COUNT(1) FROM c WHERE c.month = @m AND c.type = "usage"',
      parameters: [{ name: '@m', value: month }],
    })
    .fetchAll();
  redis.disconnect();

  return [
    `Events: ${EVENTS.toLocaleString('en-US')} in one window (${(bytes / 1e6).toFixed(0)} MB of JSON in Redis); ${new Date().toISOString().slice(0, 10)}; Node ${process.versions.node}.`,
    '',
    '| step | time | events/s | ratio to floor |',
    '| --- | --- | --- | --- |',
    `| floor: read every event from Redis (HSCAN, ${PAGE.toLocaleString('en-US')} per page, one page read ahead) | ${(floor.ms / 1000).toFixed(2)} s | ${Math.round((EVENTS * 1000) / floor.ms).toLocaleString('en-US')} | 1.00× |`,
    `| chargeback run: claim, aggregate, price, Cosmos commit, release, roll-up, reports | ${(ms / 1000).toFixed(2)} s | ${Math.round((EVENTS * 1000) / ms).toLocaleString('en-US')} | ${(ms / floor.ms).toFixed(2)}× |`,
    '',
    `Cosmos DB usage documents written: ${summary.aggregates} (${String(resources[0] ?? '?')} in the month) for ${EVENTS.toLocaleString('en-US')} events — one per department × subscription × app × deployment × model × meter, not per event.`,
    `Reports written: ${summary.reports.length} files. Target: under 30 s and within 3× of the floor: ${ms < 30_000 && ms / floor.ms <= 3 ? 'met' : 'NOT met'}.`,
  ];
}

async function timedRun(stack: LocalStack): Promise<{ ms: number; summary: ChargebackRunSummary }> {
  const id = `bench-${randomUUID()}`;
  const started = performance.now();
  stack.host.durable.startNew(CHARGEBACK_ORCHESTRATION, { instanceId: id });
  const status = await stack.host.durable.waitForCompletion(id, 20 * 60_000);
  const ms = performance.now() - started;
  if (status.runtimeStatus !== 'Completed')
    throw new Error(`run ${String(status.runtimeStatus)}: ${JSON.stringify(status.output)}`);
  const summary = status.output as ChargebackRunSummary;
  if (summary.waiting.length > 0) throw new Error(`reports waiting: ${JSON.stringify(summary.waiting)}`);
  return { ms, summary };
}

/** Windows per day already committed on the measured day, before the measured window (the same time of day in both months). */
const MEASURED_WINDOW_OF_DAY = 48;
/** Events per seeded window: one per department × app × model, so each window commits the same rows. */
const SEED_APPS = Number(process.env.BENCH_SEED_APPS ?? 3);
const SEED_MODELS = MODELS.filter((m) => m.deployment === 'gpt-4o');
/** Measured runs of each kind (the median is reported). */
const MONTH_END_RUNS = Number(process.env.BENCH_MONTH_END_RUNS ?? 5);
/** Events in the measured window. */
const MONTH_END_EVENTS = Number(process.env.BENCH_MONTH_END_EVENTS ?? 20_000);

/**
 * Commits a month's windows from its first day up to `lastDay` (that day until the measured window),
 * rolls every day up and writes every report that is due: what a month of runs leaves behind.
 */
async function seedMonth(
  store: MemoryAggregateStore,
  steps: ChargebackSteps,
  month: string,
  lastDay: number,
): Promise<{ windows: number; rows: number }> {
  const table = new PriceTable(DEFAULT_PRICES.map((entry) => ({ entry })));
  let windows = 0;
  let rows = 0;
  const first = new Date(`${month}-01T00:00:00.000Z`);
  for (let day = 0; day < lastDay; day++) {
    const perDay = day === lastDay - 1 ? MEASURED_WINDOW_OF_DAY : 86_400_000 / WINDOW_MS;
    for (let w = 0; w < perDay; w++) {
      const start = new Date(first.getTime() + day * 86_400_000 + w * WINDOW_MS);
      const batch = { windowId: windowId(start), batch: `seed-${windowId(start)}` };
      const aggregator = new WindowAggregator(batch, (model, meter, at) => table.priceFor(model, meter, at));
      const r = random(windows + 1);
      let i = 0;
      for (const department of DEPARTMENTS) {
        for (let a = 0; a < SEED_APPS; a++) {
          for (const target of SEED_MODELS) {
            const event = syntheticEvent(i++, start, r);
            aggregator.add(
              JSON.stringify({
                ...event,
                department,
                subscriptionId: `sub-${department}`,
                appId: `${department}-app-${a}`,
                api: target.api,
                deployment: target.deployment,
                model: target.model,
              }),
            );
          }
        }
      }
      const committed = aggregator.aggregates();
      const record = aggregator.batchRecord(committed.length);
      rows += committed.length;
      windows++;
      await store.commit(committed, record);
    }
    // What that day's runs left behind: the day rolled up and its reports written.
    for (const d of await steps.daysToRollUp()) await steps.rollUpDay(d);
    for (const due of await steps.reportsDue()) await steps.writePeriodReports(due);
  }
  return { windows, rows };
}

/** The measured run: one more window of traffic on `day`, after the seeded ones. */
async function measuredRun(
  stack: LocalStack,
  store: MemoryAggregateStore,
  month: string,
  day: number,
  attempt: number,
): Promise<{ ms: number; reports: number; documentsRead: number }> {
  const redis = new Redis(process.env.REDIS_URL as string);
  const start = new Date(
    Date.parse(`${month}-${String(day).padStart(2, '0')}T00:00:00.000Z`) +
      (MEASURED_WINDOW_OF_DAY + attempt) * WINDOW_MS,
  );
  const key = usageKeys.events(windowId(start));
  const r = random(7);
  for (let i = 0; i < MONTH_END_EVENTS; i += 1_000) {
    const args: string[] = [];
    for (let j = i; j < Math.min(MONTH_END_EVENTS, i + 1_000); j++) {
      const event = syntheticEvent(j, start, r);
      args.push(event.id, JSON.stringify(event));
    }
    await redis.hset(key, ...args);
  }
  redis.disconnect();
  store.documentsRead = 0;
  const { ms, summary } = await timedRun(stack);
  if (summary.events !== MONTH_END_EVENTS) throw new Error(`run counted ${summary.events} events`);
  return { ms, reports: summary.reports.length, documentsRead: store.documentsRead };
}

async function monthEndScenario(stack: LocalStack, app: AppServices): Promise<string[]> {
  // The run's steps on the local host as usual (real Redis and Blob Storage, the orchestration on
  // the durable engine), with the aggregate store behind its port in memory (bench/memory-store.ts).
  const store = new MemoryAggregateStore();
  const redis = new Redis(process.env.REDIS_URL as string);
  const steps = new ChargebackSteps({
    buffer: new RedisUsageBuffer(() => redis, app.spool()),
    store,
    prices: { overrides: () => Promise.resolve([]) },
    reports: new BlobReportStore(app.reportsContainer()),
    quarantine: new BlobQuarantine(app.blobService().getContainerClient(BLOB_CONTAINERS.usageQuarantine)),
    config: app.config.chargeback.config,
    graceMs: app.config.chargeback.graceMs,
  });
  Object.assign(app, { chargeback: () => steps });
  try {
    // Past months (31 days each), so every seeded window is closed: mid-month runs on the 15th of
    // one, month-end on the 31st of the next, both from 12:00, with the same traffic. Both months are
    // seeded first, then the runs alternate, so both see the same process and heap.
    const [mid, end] = ['2026-07', '2026-08'];
    console.error('seeding half a month of committed windows (2026-07-01..15 12:00)...');
    const midSeed = await seedMonth(store, steps, mid, 15);
    console.error('seeding a whole month of committed windows (2026-08-01..31 12:00)...');
    const endSeed = await seedMonth(store, steps, end, 31);
    const midRuns: Array<Awaited<ReturnType<typeof measuredRun>>> = [];
    const endRuns: typeof midRuns = [];
    for (let attempt = 0; attempt < MONTH_END_RUNS; attempt++) {
      midRuns.push(await measuredRun(stack, store, mid, 15, attempt));
      endRuns.push(await measuredRun(stack, store, end, 31, attempt));
    }
    const median = (runs: typeof midRuns): (typeof midRuns)[number] =>
      [...runs].sort((a, b) => a.ms - b.ms)[Math.floor(runs.length / 2)] as (typeof midRuns)[number];
    const [midRun, endRun] = [median(midRuns), median(endRuns)];
    const ratio = endRun.ms / midRun.ms;
    const times = (runs: typeof midRuns): string => runs.map((r) => (r.ms / 1000).toFixed(2)).join(', ');
    const row = (
      label: string,
      seed: { windows: number; rows: number },
      run: typeof midRun,
      r: number,
    ): string =>
      `| ${label} | ${seed.windows.toLocaleString('en-US')} | ${seed.rows.toLocaleString('en-US')} | ${run.documentsRead.toLocaleString('en-US')} | ${(run.ms / 1000).toFixed(2)} s | ${r.toFixed(2)}× |`;
    return [
      `Month end: one more window of ${MONTH_END_EVENTS.toLocaleString('en-US')} events after a month of windows committed, rolled up and reported (every quarter hour, ${SEED_APPS * DEPARTMENTS.length * SEED_MODELS.length} app × model groups per window); the aggregate store in memory with Cosmos DB's access paths (bench/memory-store.ts), Redis and Blob Storage real. Median of ${MONTH_END_RUNS} runs each, alternating.`,
      '',
      '| run | windows already committed | window rows in the month | documents the run read | time (median) | ratio to mid-month |',
      '| --- | --- | --- | --- | --- | --- |',
      row('mid-month (day 15, from 12:00)', midSeed, midRun, 1),
      row('month end (day 31, from 12:00)', endSeed, endRun, ratio),
      '',
      `Every run: mid-month ${times(midRuns)} s; month end ${times(endRuns)} s.`,
      `Target: the month-end run costs at most 2× a mid-month run: ${ratio <= 2 ? 'met' : 'NOT met'}.`,
    ];
  } finally {
    redis.disconnect();
  }
}

async function main(): Promise<void> {
  const scenarios = (process.env.BENCH_SCENARIOS ?? 'window,month-end').split(',').map((s) => s.trim());
  const stack = await startLocalStack({
    port: 0,
    persist: false,
    mode: 'compiled',
    timers: 'manual',
    readSettingsFile: false,
  });
  try {
    const app = await appServices();
    const out: string[] = [];
    if (scenarios.includes('window')) out.push(...(await windowScenario(stack, app)), '');
    if (scenarios.includes('month-end')) out.push(...(await monthEndScenario(stack, app)));
    console.log(out.join('\n'));
  } finally {
    await stack.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
