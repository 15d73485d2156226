import type { ContainerClient } from '@azure/storage-blob';
import type { Cluster, Redis } from 'ioredis';
import { usageKeys } from '../usage-recorder';
import { windowEnd } from '../usage';

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

export const USAGE_KEY_PATTERN = 'usage:{w:*}:*';
const KEY_SHAPE = /^usage:\{w:(\d{8}T\d{4}Z)\}:(events|open|batch:([\w.-]+))$/;

export const batchKeys = {
  events: (windowId: string): string => `usage:{w:${windowId}}:events`,
  open: (windowId: string): string => `usage:{w:${windowId}}:open`,
  batch: (windowId: string, batch: string): string => `usage:{w:${windowId}}:batch:${batch}`,
  manifest: (windowId: string, batch: string): string => `usage:{w:${windowId}}:batch:${batch}:spool`,
};

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

export interface WindowBatch {
  windowId: string;
  batch: string;
}

export function windowStartOf(windowId: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})Z$/.exec(windowId);
  if (!m) throw new Error(`'${windowId}' is not a window id`);
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5])));
}

type RedisLike = Redis | Cluster;

function masters(redis: RedisLike): Redis[] {
  return redis.isCluster ? (redis as Cluster).nodes('master') : [redis as Redis];
}

export class UsageBatches {
  constructor(
    private readonly redis: RedisLike,
    private readonly spool: ContainerClient,
  ) {}

  /**
   * Windows that hold raw usage and are closed: ended at least `graceMs` before `asOf` (streams
   * still in flight and spool retries land within the grace). Every such window is returned, so
   * a run after an outage catches up on all of them. Oldest first.
   */
  async pendingWindows(asOf: Date, graceMs: number): Promise<string[]> {
    const found = new Set<string>();
    for (const node of masters(this.redis)) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', USAGE_KEY_PATTERN, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) {
          const id = KEY_SHAPE.exec(key)?.[1];
          if (id) found.add(id);
        }
      } while (cursor !== '0');
    }
    if (await this.spool.exists()) {
      for await (const item of this.spool.listBlobsByHierarchy('/')) {
        if (item.kind === 'prefix') {
          const id = /^(\d{8}T\d{4}Z)\/$/.exec(item.name)?.[1];
          if (id) found.add(id);
        }
      }
    }
    return [...found]
      .filter((id) => windowEnd(windowStartOf(id)).getTime() + graceMs <= asOf.getTime())
      .sort();
  }

  /**
   * Claims the window's live events and spooled events into its open batch (adopting one left
   * by an earlier run, else opening `proposed`). Safe to repeat: a retried claim resumes.
   */
  async claim(windowId: string, proposed: string): Promise<WindowBatch> {
    if (!/^[\w.-]{1,100}$/.test(proposed)) throw new Error(`invalid batch name '${proposed}'`);
    const batch = String(await this.redis.eval(OPEN_BATCH, 1, batchKeys.open(windowId), proposed));
    const batchKey = batchKeys.batch(windowId, batch);
    await this.redis.eval(MOVE_EVENTS, 2, batchKeys.events(windowId), batchKey);
    if (await this.spool.exists()) {
      const manifest = batchKeys.manifest(windowId, batch);
      let page: Array<Promise<void>> = [];
      for await (const blob of this.spool.listBlobsFlat({ prefix: `${windowId}/` })) {
        page.push(this.#claimSpooled(blob.name, batchKey, manifest));
        if (page.length === 32) {
          await Promise.all(page);
          page = [];
        }
      }
      await Promise.all(page);
    }
    return { windowId, batch };
  }

  async #claimSpooled(name: string, batchKey: string, manifest: string): Promise<void> {
    const content = (await this.spool.getBlobClient(name).downloadToBuffer()).toString('utf8');
    const id = (JSON.parse(content) as { id?: unknown }).id;
    if (typeof id !== 'string' || !id) throw new Error(`spooled usage blob '${name}' has no event id`);
    // Manifest first: a blob copied into the batch is always one the release will delete.
    await this.redis.multi().sadd(manifest, name).hsetnx(batchKey, id, content).exec();
  }

  /**
   * The batch's raw events, page by page (the batch is frozen: the same pages on every read).
   * The next page is fetched while the caller works on the current one.
   */
  async *read({ windowId, batch }: WindowBatch, pageSize = 10_000): AsyncGenerator<string[]> {
    const key = batchKeys.batch(windowId, batch);
    const fetchPage = (cursor: string): Promise<[string, string[]]> =>
      this.redis.hscan(key, cursor, 'COUNT', pageSize);
    let pending: Promise<[string, string[]]> | undefined = fetchPage('0');
    while (pending) {
      const [next, flat]: [string, string[]] = await pending;
      pending = next === '0' ? undefined : fetchPage(next);
      const values: string[] = [];
      for (let i = 1; i < flat.length; i += 2) values.push(flat[i] as string);
      if (values.length > 0) yield values;
    }
  }

  /** Deletes the batch's raw data. Only after its aggregates and reports are committed. */
  async release({ windowId, batch }: WindowBatch): Promise<void> {
    const manifest = batchKeys.manifest(windowId, batch);
    const spooled = await this.redis.smembers(manifest);
    for (let i = 0; i < spooled.length; i += 32) {
      await Promise.all(
        spooled.slice(i, i + 32).map((name) => this.spool.getBlobClient(name).deleteIfExists()),
      );
    }
    // One command over one hash slot: the batch, its manifest and the open marker go together.
    // UNLINK: one atomic removal of the three keys; a big batch's memory is freed in the background.
    await this.redis.unlink(batchKeys.batch(windowId, batch), manifest, batchKeys.open(windowId));
  }
}

/** The live key the proxy writes to, for tests and tools. */
export const liveEventsKey = (window: Date): string => usageKeys.events(window);
