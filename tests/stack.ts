import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { LocalStack } from '../local/stack';
import { usageKeys } from '../shared/adapters/redis-usage-buffer';
import { appServices } from '../shared/config/composition';
import type { UsageEvent } from '../shared/contracts/usage-event';
import { usageEventSchema } from '../shared/contracts/usage-event';
import { windowEnd, windowId, windowStart } from '../shared/contracts/window';
import { FUNCTION_KEY_HEADER, GATEWAY_HEADERS } from '../shared/contracts/gateway-headers';
import { startLocalStack } from '../local/stack';

/**
 * The whole local stack for a test file: real Redis, Azurite, Cosmos emulator and upstream
 * simulators on random ports, in memory (or, with `persist`, in a fresh temporary folder, as a
 * production Redis with persistence keeps its data across a restart), and the app's own
 * functions loaded from source.
 */
export function startTestStack(
  options: {
    persist?: boolean;
    requestLog?: (line: string) => void;
    log?: (line: string) => void;
    /** Dependencies the test provides itself (their settings are kept, e.g. a Redis Cluster's REDIS_URL). */
    keep?: readonly string[];
  } = {},
): Promise<LocalStack> {
  for (const name of [
    'REDIS_URL',
    'STORAGE_CONNECTION_STRING',
    'STORAGE_BLOB_URL',
    'COSMOS_ENDPOINT',
    'AZURE_OPENAI_ENDPOINT',
    'SPEECH_ENDPOINT',
    'SPEECH_REGION',
  ].filter((name) => !options.keep?.includes(name))) {
    delete process.env[name];
  }
  if (options.persist) process.env.LOCAL_DATA_DIR = mkdtempSync(join(tmpdir(), 'chargeback-test-'));
  return startLocalStack({
    port: 0,
    persist: options.persist ?? false,
    mode: 'source',
    timers: 'manual',
    readSettingsFile: false,
    ...(options.requestLog ? { requestLog: options.requestLog } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
}

/** A test file's local stack, and a Redis client to read back what was recorded. */
export interface TestStack {
  readonly stack: LocalStack;
  readonly redis: Redis;
}

/**
 * Starts the whole local stack before a test file's tests (after setting `env`, read once by the
 * app at start-up) and stops it after them: the set-up every proxy test file shares.
 */
export function useTestStack(
  env: Record<string, string> = {},
  options: Parameters<typeof startTestStack>[0] = {},
): TestStack {
  const started: { stack?: LocalStack; redis?: Redis } = {};
  beforeAll(async () => {
    Object.assign(process.env, env);
    started.stack = await startTestStack(options);
    started.redis = new Redis(process.env.REDIS_URL as string);
  }, 60_000);
  afterAll(async () => {
    started.redis?.disconnect();
    await started.stack?.stop();
  });
  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the test stack is used before it started');
    return value;
  };
  return {
    get stack() {
      return ready(started.stack);
    },
    get redis() {
      return ready(started.redis);
    },
  };
}

export interface Caller {
  subscription: string;
  app?: string;
  department?: string;
  user?: string;
}

/**
 * The headers APIM adds to every request it forwards: the function key, the gateway secret and
 * the caller's attribution. An override set to undefined leaves that header out.
 */
export function gatewayHeaders(
  stack: LocalStack,
  requestId: string,
  caller: Caller,
  overrides: Record<string, string | undefined> = {},
): Record<string, string> {
  const all: Record<string, string | undefined> = {
    [FUNCTION_KEY_HEADER]: stack.settings.LOCAL_FUNCTION_KEY,
    [GATEWAY_HEADERS.gatewayKey]: process.env.GATEWAY_SHARED_SECRET,
    [GATEWAY_HEADERS.subscription]: caller.subscription,
    [GATEWAY_HEADERS.app]: caller.app,
    [GATEWAY_HEADERS.department]: caller.department,
    [GATEWAY_HEADERS.user]: caller.user,
    [GATEWAY_HEADERS.requestId]: requestId,
    ...overrides,
  };
  return Object.fromEntries(
    Object.entries(all).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

/** When this test file's process started: the earliest window any of its requests could land in. */
const TESTS_STARTED = new Date();

export interface Recording {
  store: 'redis' | 'spool';
  event: UsageEvent;
}

/**
 * Every usage event recorded for a request id, and where: in Redis (live events) and in the spool,
 * in every window from when the tests started until now. A check that nothing was recorded
 * therefore cannot pass by looking at the wrong window or the wrong store.
 */
export async function recordings(
  redis: Redis,
  id: string,
  since: Date = TESTS_STARTED,
): Promise<Recording[]> {
  const spool = (await appServices()).spool();
  const found: Recording[] = [];
  for (let w = windowStart(since); w.getTime() <= Date.now(); w = windowEnd(w)) {
    const json = await redis.hget(usageKeys.events(windowId(w)), id);
    if (json) found.push({ store: 'redis', event: usageEventSchema.parse(JSON.parse(json)) });
    for (const event of await spool.eventsOf(windowId(w)))
      if (event.id === id) found.push({ store: 'spool', event });
  }
  return found;
}

/** Every usage event recorded for a request id, in either store (see recordings). */
export async function recordedEvents(redis: Redis, id: string): Promise<UsageEvent[]> {
  return (await recordings(redis, id)).map((r) => r.event);
}

/**
 * The one usage event recorded for a request id in Redis, or undefined when there is none; one in
 * the spool (Redis was up) or more than one (a double count) fails the test.
 */
export async function recordedEvent(redis: Redis, id: string): Promise<UsageEvent | undefined> {
  const found = await recordings(redis, id);
  if (found.length > 1) throw new Error(`request ${id} was recorded ${found.length} times`);
  if (found[0]?.store === 'spool') throw new Error(`request ${id} was spooled, not written to Redis`);
  return found[0]?.event;
}
