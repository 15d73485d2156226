/**
 * `npm run bench:chargeback`: one window of BENCH_EVENTS (default 1 000 000) usage events in a
 * real redis-server, processed by the chargeback run (claim, aggregate, price, Cosmos DB commit,
 * allocation, reports in Blob Storage, release) on the local stack, against the floor: the time
 * it takes merely to read those events from Redis (HSCAN of the same hash, same page size).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { usageKeys } from '../shared/adapters/redis-usage-buffer';
import { appServices } from '../shared/config/composition';
import { COSMOS_CONTAINERS } from '../shared/contracts/storage';
import type { ChargebackRunSummary } from '../shared/chargeback/run';
import { CHARGEBACK_ORCHESTRATION } from '../shared/chargeback/run';
import type { UsageEvent } from '../shared/contracts/usage-event';
import { windowId, windowStart } from '../shared/contracts/window';
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

async function main(): Promise<void> {
  const stack = await startLocalStack({
    port: 0,
    persist: false,
    mode: 'compiled',
    timers: 'manual',
    readSettingsFile: false,
  });
  try {
    const app = await appServices();
    const redis = new Redis(process.env.REDIS_URL as string);
    // A closed window (an hour ago), so the run picks it up at once.
    const window = windowStart(new Date(Date.now() - 3_600_000));
    const key = usageKeys.events(windowId(window));
    console.error(`filling one window with ${EVENTS.toLocaleString('en-US')} events...`);
    const bytes = await fill(redis, window);
    const floor = await readFloor(redis, key);
    if (floor.count !== EVENTS) throw new Error(`floor read ${floor.count} events, expected ${EVENTS}`);

    const id = `bench-${randomUUID()}`;
    const started = performance.now();
    stack.host.durable.startNew(CHARGEBACK_ORCHESTRATION, { instanceId: id });
    const status = await stack.host.durable.waitForCompletion(id, 20 * 60_000);
    const ms = performance.now() - started;
    if (status.runtimeStatus !== 'Completed')
      throw new Error(`run ${String(status.runtimeStatus)}: ${JSON.stringify(status.output)}`);
    const summary = status.output as ChargebackRunSummary;
    if (summary.events !== EVENTS)
      throw new Error(`run counted ${summary.events} events, expected ${EVENTS}`);
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

    const rows = [
      `Events: ${EVENTS.toLocaleString('en-US')} in one window (${(bytes / 1e6).toFixed(0)} MB of JSON in Redis); ${new Date().toISOString().slice(0, 10)}; Node ${process.versions.node}.`,
      '',
      '| step | time | events/s | ratio to floor |',
      '| --- | --- | --- | --- |',
      `| floor: read every event from Redis (HSCAN, ${PAGE.toLocaleString('en-US')} per page, one page read ahead) | ${(floor.ms / 1000).toFixed(2)} s | ${Math.round((EVENTS * 1000) / floor.ms).toLocaleString('en-US')} | 1.00× |`,
      `| chargeback run: claim, aggregate, price, Cosmos commit, allocate, reports, release | ${(ms / 1000).toFixed(2)} s | ${Math.round((EVENTS * 1000) / ms).toLocaleString('en-US')} | ${(ms / floor.ms).toFixed(2)}× |`,
      '',
      `Cosmos DB usage documents written: ${summary.aggregates} (${String(resources[0] ?? '?')} in the month) for ${EVENTS.toLocaleString('en-US')} events — one per department × subscription × app × deployment × model × meter, not per event.`,
      `Reports written: ${summary.reports.length} files. Target: under 30 s and within 3× of the floor: ${ms < 30_000 && ms / floor.ms <= 3 ? 'met' : 'NOT met'}.`,
    ];
    console.log(rows.join('\n'));
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
