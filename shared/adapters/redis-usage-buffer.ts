import type { Cluster, Redis } from 'ioredis';
import { ensureError } from '../contracts/api-errors';
import type { UsageEvent } from '../contracts/usage-event';
import { isWindowId, parseWindowId, WINDOW_ID_SOURCE, windowEnd, windowId } from '../contracts/window';
import type { SpooledUsage, UsageBuffer, WindowBatch } from '../chargeback/ports';
import type { LiveUsageBuffer } from '../metering/usage-recorder';
import { NotStoredError } from '../metering/usage-recorder';
import { whenRedisReady } from './redis-ready';

/** ioredis refusing a command while disconnected (no offline queue): it was never sent. */
const OFFLINE = /Stream isn't writeable|enableOfflineQueue|Connection is closed/;

/**
 * The raw usage of a window moves through three states, so that no event is lost and none is
 * counted twice whatever fails in between:
 *
 * 1. live: the proxy writes events to `usage:{w:<window>}:events` (and, when Redis is down, to
 *    spool blobs `usage-spool/<window>/<id>.json`);
 * 2. claimed: a chargeback run moves them into a frozen batch, `usage:{w:<window>}:batch:<name>`,
 *    recorded in `usage:{w:<window>}:open`. Nothing writes to a batch after its claim but a
 *    resumed claim of the same batch, so the batch's content (and therefore its aggregates,
 *    whose Cosmos ids derive from the window, the batch and the dimensions) is the same on
 *    every retry. Spooled events are copied into the batch by id (HSETNX: an event both in Redis
 *    and in the spool counts once) and their blob names kept in the batch's manifest set;
 * 3. released, only after the batch's aggregates and reports are committed: the manifest's spool
 *    blobs are deleted, then the batch, its manifest and the open marker go in one DEL (one
 *    hash slot, so one atomic command).
 *
 * A window has at most one open batch: a run that finds one (an earlier run crashed before its
 * release) adopts it and resumes, instead of starting a second batch that could hold the same
 * spooled events. An event arriving after a release starts a new batch of the same window, with
 * new aggregate ids, so it adds to the window instead of overwriting it.
 */

/**
 * The key layout: every key of a window carries the `{w:<window id>}` hash tag, so a window's keys
 * live in one Redis Cluster slot (its Lua scripts and multi-key commands stay single-slot). There
 * is deliberately no cross-window index (it would live in another slot): windows are found by
 * scanning every master for the prefix.
 */
const PREFIX = 'usage';
export const usageKeys = {
  events: (windowId: string): string => `${PREFIX}:{w:${windowId}}:events`,
  open: (windowId: string): string => `${PREFIX}:{w:${windowId}}:open`,
  batch: (windowId: string, batch: string): string => `${PREFIX}:{w:${windowId}}:batch:${batch}`,
  manifest: (windowId: string, batch: string): string => `${PREFIX}:{w:${windowId}}:batch:${batch}:spool`,
  /** Every usage key of every window, for SCAN. */
  pattern: `${PREFIX}:{w:*}:*`,
};
const KEY_SHAPE = new RegExp(String.raw`^${PREFIX}:\{w:(${WINDOW_ID_SOURCE})\}:(events|open|batch:[\w.-]+)$`);

/** The window id a usage key belongs to, or undefined for any other key. */
export function windowOfKey(key: string): string | undefined {
  const id = KEY_SHAPE.exec(key)?.[1];
  return id !== undefined && isWindowId(id) ? id : undefined;
}

const BATCH_NAME = /^[\w.-]{1,100}$/;

/** Adopts the window's open batch, or opens `proposed`. */
const OPEN_BATCH = `
local open = redis.call('GET', KEYS[1])
if open then return open end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]`;

/** Moves the live events into the batch: a rename, or a merge by id when the batch exists. */
const MOVE_EVENTS = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('RENAME', KEYS[1], KEYS[2])
  return redis.call('HLEN', KEYS[2])
end
local moved = 0
local cursor = '0'
repeat
  local page = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', 1000)
  cursor = page[1]
  local fields = page[2]
  for i = 1, #fields, 2 do
    moved = moved + redis.call('HSETNX', KEYS[2], fields[i], fields[i + 1])
  end
until cursor == '0'
redis.call('DEL', KEYS[1])
return moved`;

/**
 * Is the event live or in the open batch? One script: a claim cannot run between the reads. The
 * batch key is built from the open marker: it carries the same hash tag, so the same slot.
 */
const HOLDS = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 1 end
local open = redis.call('GET', KEYS[2])
if open and redis.call('HEXISTS', ARGV[2] .. open, ARGV[1]) == 1 then return 1 end
return 0`;

type RedisLike = Redis | Cluster;

function eventIdOf(content: string): string | undefined {
  try {
    const id = (JSON.parse(content) as { id?: unknown } | null)?.id;
    return typeof id === 'string' && id ? id : undefined;
  } catch {
    return undefined;
  }
}

function masters(redis: RedisLike): Redis[] {
  return redis.isCluster ? (redis as Cluster).nodes('master') : [redis as Redis];
}

/**
 * The usage buffer in Redis: the proxy's live writes (one HSETNX per event: one round trip, one
 * slot, idempotent by event id) and the chargeback's claim, read and release of frozen batches.
 */
export interface RedisUsageBufferOptions {
  /** Longest wait for a (re)connecting client in the chargeback steps. */
  readyTimeoutMs?: number;
  /**
   * Durable writes: replicas that must acknowledge each usage write (WAIT) before it counts as
   * recorded. 0 trusts the primary alone: a failover can then lose what it had not yet replicated.
   */
  waitReplicas?: number;
  /** Longest wait for those acknowledgements; fewer in time fail the write (the event is spooled too). */
  waitTimeoutMs?: number;
  /**
   * The client the proxy's writes go through, when not the chargeback's: a WAIT blocks its
   * connection, so durable writes get a connection of their own.
   */
  writer?: () => RedisLike;
  /**
   * Told when an event's id is already stored with a different bill: the same request id reused
   * for another request (the first is kept: HSETNX). A faithful retry, which differs only in when
   * it was recorded and how long it took, is not a replay.
   */
  onReplay?: (stored: UsageEvent, replayed: UsageEvent, differences: string[]) => void;
}

/** What a retry of the same request may change: when it was recorded, and how long it took. */
const RETRY_FIELDS = new Set<string>(['recordedAt', 'window', 'latencyMs']);

/** The fields on which two events of one id differ, other than a retry's. */
function billDifferences(stored: Record<string, unknown>, replayed: Record<string, unknown>): string[] {
  return [...new Set([...Object.keys(stored), ...Object.keys(replayed)])]
    .filter((field) => !RETRY_FIELDS.has(field) && stored[field] !== replayed[field])
    .sort();
}

export class ReplicaAcknowledgementError extends Error {
  override readonly name = 'ReplicaAcknowledgementError';
}

export class RedisUsageBuffer implements LiveUsageBuffer, UsageBuffer {
  readonly #readyTimeoutMs: number;
  readonly #waitReplicas: number;
  readonly #waitTimeoutMs: number;
  readonly #writer: () => RedisLike;
  readonly #onReplay: RedisUsageBufferOptions['onReplay'];
  #waitInFlight: Promise<number> | undefined;
  #nextWait: Promise<number> | undefined;

  constructor(
    private readonly redis: () => RedisLike,
    private readonly spool: SpooledUsage,
    options: RedisUsageBufferOptions = {},
  ) {
    this.#readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
    this.#waitReplicas = options.waitReplicas ?? 0;
    this.#waitTimeoutMs = options.waitTimeoutMs ?? 100;
    this.#writer = options.writer ?? redis;
    this.#onReplay = options.onReplay;
  }

  async write(event: UsageEvent, deadline: AbortSignal): Promise<void> {
    const redis = this.#writer();
    const key = usageKeys.events(windowId(new Date(event.window)));
    // Not connected (right after start-up, or during an outage; the client does not queue): the
    // command is never sent, so the event is certainly not in Redis. A failure after sending (a
    // reply that never came) may hide a write that landed.
    const notStored = (error: unknown): NotStoredError =>
      new NotStoredError(`Redis is not connected: ${ensureError(error).message}`, { cause: error });
    if (redis.status !== 'ready') {
      try {
        await whenRedisReady(redis, deadline);
      } catch (error) {
        throw notStored(error);
      }
    }
    let added: number;
    try {
      added = await redis.hsetnx(key, event.id, JSON.stringify(event));
    } catch (error) {
      throw OFFLINE.test(ensureError(error).message) ? notStored(error) : error;
    }
    if (added === 0 && this.#onReplay) await this.#checkReplay(redis, key, event);
    if (this.#waitReplicas > 0) {
      // A cluster client would have to send WAIT on the connection of the master owning the key's
      // slot; the app connects to one endpoint (composition.ts), so that is not supported here.
      if (redis.isCluster) throw new Error('REDIS_WAIT_REPLICAS needs a single-endpoint Redis client');
      const acknowledged = await this.#replicated(redis as Redis);
      if (acknowledged < this.#waitReplicas) {
        throw new ReplicaAcknowledgementError(
          `${acknowledged} of ${this.#waitReplicas} Redis replicas acknowledged the usage write within ${this.#waitTimeoutMs} ms`,
        );
      }
    }
  }

  /** The id was already stored: a retry, or another request under a reused id (reported). */
  async #checkReplay(redis: RedisLike, key: string, event: UsageEvent): Promise<void> {
    const stored = await redis.hget(key, event.id);
    if (stored === null) return; // claimed into a batch meanwhile: nothing to compare with here
    const previous = JSON.parse(stored) as UsageEvent;
    const differences = billDifferences(previous, event);
    if (differences.length > 0) this.#onReplay?.(previous, event, differences);
  }

  /**
   * Replicas acknowledging every write this connection made so far. WAIT blocks the connection it
   * is sent on until the replicas answer or it times out, and covers every write sent before it:
   * so one WAIT at a time, shared by every write made before it is sent (a group commit). A write
   * acknowledged while one is in flight waits for the next, which leaves when that one returns.
   * However many requests write, at most one WAIT blocks the connection and one waits to follow.
   */
  #replicated(redis: Redis): Promise<number> {
    this.#nextWait ??= (this.#waitInFlight ?? Promise.resolve(0))
      .catch(() => 0)
      .then(() => {
        const wait = redis.call('WAIT', String(this.#waitReplicas), String(this.#waitTimeoutMs)).then(Number);
        this.#waitInFlight = wait;
        this.#nextWait = undefined;
        return wait;
      });
    return this.#nextWait;
  }

  async #connected(): Promise<RedisLike> {
    const redis = this.redis();
    // The app's client does not queue commands while it connects (the proxy must fail fast).
    if (redis.status !== 'ready') await whenRedisReady(redis, AbortSignal.timeout(this.#readyTimeoutMs));
    return redis;
  }

  /**
   * Windows that hold raw usage and are closed: ended at least `graceMs` before `asOf` (streams
   * still in flight and spool retries land within the grace). Every such window is returned, so
   * a run after an outage catches up on all of them. Oldest first.
   */
  async pendingWindows(asOf: Date, graceMs: number): Promise<string[]> {
    const redis = await this.#connected();
    const found = new Set<string>(await this.spool.windows());
    for (const node of masters(redis)) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', usageKeys.pattern, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) {
          const id = windowOfKey(key);
          if (id) found.add(id);
        }
      } while (cursor !== '0');
    }
    return [...found]
      .filter((id) => windowEnd(parseWindowId(id)).getTime() + graceMs <= asOf.getTime())
      .sort();
  }

  /**
   * Claims the window's live events and spooled events into its open batch (adopting one left
   * by an earlier run, else opening `proposed`). Safe to repeat: a retried claim resumes.
   */
  async claim(windowId: string, proposed: string): Promise<WindowBatch> {
    if (!isWindowId(windowId)) throw new Error(`'${windowId}' is not a window id`);
    if (!BATCH_NAME.test(proposed)) throw new Error(`invalid batch name '${proposed}'`);
    const redis = await this.#connected();
    const batch = String(await redis.eval(OPEN_BATCH, 1, usageKeys.open(windowId), proposed));
    const batchKey = usageKeys.batch(windowId, batch);
    await redis.eval(MOVE_EVENTS, 2, usageKeys.events(windowId), batchKey);
    const manifest = usageKeys.manifest(windowId, batch);
    let page: Array<Promise<void>> = [];
    for await (const name of this.spool.names(windowId)) {
      page.push(this.#claimSpooled(redis, name, batchKey, manifest));
      if (page.length === 32) {
        await Promise.all(page);
        page = [];
      }
    }
    await Promise.all(page);
    return { windowId, batch };
  }

  async #claimSpooled(redis: RedisLike, name: string, batchKey: string, manifest: string): Promise<void> {
    const content = await this.spool.read(name);
    // A damaged blob (not JSON, no id) is claimed as it is, under its blob name (which no event id
    // can equal: ids have no '/'): the run's aggregation sets it aside in the quarantine, and the
    // release deletes it. Failing the claim instead would block its window on every run.
    const field = eventIdOf(content) ?? `damaged:${name}`;
    // Manifest first: a blob copied into the batch is always one the release will delete.
    await redis.multi().sadd(manifest, name).hsetnx(batchKey, field, content).exec();
  }

  /**
   * The batch's raw events, page by page (the batch is frozen: the same pages on every read).
   * The next page is fetched while the caller works on the current one.
   */
  async *read({ windowId, batch }: WindowBatch, pageSize = 10_000): AsyncGenerator<string[]> {
    const redis = await this.#connected();
    const key = usageKeys.batch(windowId, batch);
    const fetchPage = (cursor: string): Promise<[string, string[]]> =>
      redis.hscan(key, cursor, 'COUNT', pageSize);
    let pending: Promise<[string, string[]]> | undefined = fetchPage('0');
    while (pending) {
      const [next, flat]: [string, string[]] = await pending;
      pending = next === '0' ? undefined : fetchPage(next);
      const values: string[] = [];
      for (let i = 1; i < flat.length; i += 2) values.push(flat[i] as string);
      if (values.length > 0) yield values;
    }
  }

  /**
   * Is the event in the spool, or in Redis (live, or in the window's open batch)? The spool first:
   * a claim copies a spooled event into the batch before its blob goes, so an event moving between
   * them is seen in one or the other. Redis is read in one script, so a claim moving the live
   * events into the batch cannot slip between two reads. What this cannot see is an event whose
   * window was claimed, committed and released in full between the two checks.
   */
  async holds(event: Pick<UsageEvent, 'window' | 'id'>): Promise<boolean> {
    if (await this.spool.holds(event)) return true;
    const redis = await this.#connected();
    const window = windowId(new Date(event.window));
    const held = await redis.eval(
      HOLDS,
      2,
      usageKeys.events(window),
      usageKeys.open(window),
      event.id,
      usageKeys.batch(window, ''),
    );
    return Number(held) === 1;
  }

  /** Deletes the batch's raw data. Only after its aggregates and reports are committed. */
  async release({ windowId, batch }: WindowBatch): Promise<void> {
    const redis = await this.#connected();
    const manifest = usageKeys.manifest(windowId, batch);
    const spooled = await redis.smembers(manifest);
    for (let i = 0; i < spooled.length; i += 32) {
      await Promise.all(spooled.slice(i, i + 32).map((name) => this.spool.delete(name)));
    }
    // One command over one hash slot: the batch, its manifest and the open marker go together.
    // UNLINK: one atomic removal of the three keys; a big batch's memory is freed in the background.
    await redis.unlink(usageKeys.batch(windowId, batch), manifest, usageKeys.open(windowId));
  }
}
