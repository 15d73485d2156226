import { randomUUID } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import { Redis } from 'ioredis';
import type { AzuriteServer } from '../../../local/services/azurite';
import { startAzurite } from '../../../local/services/azurite';
import { provisionBlobContainers } from '../../../local/services/provision';
import type { RedisServer } from '../../../local/services/redis';
import { startRedis } from '../../../local/services/redis';
import { BlobUsageSpool } from '../../../shared/adapters/blob-spool';
import { RedisNotReadyError } from '../../../shared/adapters/redis-ready';
import { NotStoredError } from '../../../shared/metering/usage-recorder';
import { RedisUsageBuffer, usageKeys, windowOfKey } from '../../../shared/adapters/redis-usage-buffer';
import type { WindowBatch } from '../../../shared/chargeback/ports';
import { BLOB_CONTAINERS } from '../../../shared/contracts/storage';
import type { UsageEvent } from '../../../shared/contracts/usage-event';
import { usageEventSchema } from '../../../shared/contracts/usage-event';
import { parseWindowId, WINDOW_MS, windowEnd, windowId, windowStart } from '../../../shared/contracts/window';
import { usageEvent as anEvent } from '../../fixtures/usage';

/** RedisUsageBuffer against a real redis-server, with the spool on Azurite. */

let redisServer: RedisServer;
let azurite: AzuriteServer;
let redis: Redis;
let spool: BlobUsageSpool;
let buffer: RedisUsageBuffer;

/** The client as the composition root builds it (no offline queue, auto-pipelining). */
function appRedisClient(url: string): Redis {
  return new Redis(url, {
    connectTimeout: 5000,
    commandTimeout: 5000,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: false,
    enableAutoPipelining: true,
  });
}

beforeAll(async () => {
  [redisServer, azurite] = await Promise.all([startRedis(), startAzurite()]);
  await provisionBlobContainers(azurite.connectionString);
  spool = new BlobUsageSpool(
    BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
      BLOB_CONTAINERS.usageSpool,
    ),
  );
  redis = appRedisClient(redisServer.url);
  buffer = new RedisUsageBuffer(() => redis, spool);
}, 30_000);
afterAll(async () => {
  redis?.disconnect();
  await Promise.all([redisServer?.stop(), azurite?.stop()]);
});

/**
 * A window of its own for every test: consecutive 15-minute windows from 2040-01-01. The
 * pendingWindows tests use their own years (earlier) so that these never count as closed there.
 */
let windows = 0;
function freshWindow(): Date {
  return windowStart(new Date(Date.UTC(2040, 0, 1) + windows++ * WINDOW_MS));
}

function usageEvent(id: string, window: Date, fields: Partial<UsageEvent> = {}): UsageEvent {
  const recordedAt = new Date(window.getTime() + 5 * 60_000).toISOString();
  return anEvent({ id, recordedAt, promptTokens: 100, completionTokens: 25, ...fields });
}

function events(window: Date, count: number, tag = 'e'): UsageEvent[] {
  return Array.from({ length: count }, (_, i) => usageEvent(`${tag}-${i}-${randomUUID()}`, window));
}

const soon = (): AbortSignal => AbortSignal.timeout(5000);

async function writeAll(list: readonly UsageEvent[]): Promise<void> {
  await Promise.all(list.map((e) => buffer.write(e, soon())));
}

/** Every raw event of a batch, over all pages, and the page sizes. */
async function readBatch(batch: WindowBatch, pageSize?: number): Promise<{ raw: string[]; pages: number[] }> {
  const raw: string[] = [];
  const pages: number[] = [];
  for await (const page of buffer.read(batch, pageSize)) {
    pages.push(page.length);
    raw.push(...page);
  }
  return { raw, pages };
}

const idsOf = (raw: readonly string[]): string[] => raw.map((r) => (JSON.parse(r) as UsageEvent).id).sort();
const sortedIds = (list: readonly UsageEvent[]): string[] => list.map((e) => e.id).sort();

describe('write()', () => {
  it('puts one hash field per event id in the window’s events key', async () => {
    const window = freshWindow();
    const written = events(window, 3);
    await writeAll(written);
    const key = usageKeys.events(windowId(window));
    expect(await redis.hlen(key)).toBe(3);
    for (const event of written) {
      expect(JSON.parse((await redis.hget(key, event.id)) as string)).toEqual(event);
    }
    expect(windowOfKey(key)).toBe(windowId(window));
  });

  it('never overwrites: a retried write of the same id keeps the first content (HSETNX)', async () => {
    const window = freshWindow();
    const first = usageEvent(`retry-${randomUUID()}`, window, { completionTokens: 1 });
    await buffer.write(first, soon());
    await buffer.write({ ...first, completionTokens: 999 }, soon());
    await buffer.write(first, soon());
    const key = usageKeys.events(windowId(window));
    expect(await redis.hlen(key)).toBe(1);
    expect(JSON.parse((await redis.hget(key, first.id)) as string)).toEqual(first);
  });

  it('tells a replay whose bill differs from the stored event (the same id reused), and not a faithful retry', async () => {
    const replays: Array<{ stored: UsageEvent; replayed: UsageEvent; differences: string[] }> = [];
    const watched = new RedisUsageBuffer(() => redis, spool, {
      onReplay: (stored, replayed, differences) => replays.push({ stored, replayed, differences }),
    });
    const window = freshWindow();
    const first = usageEvent(`reused-${randomUUID()}`, window, { promptTokens: 10, completionTokens: 1 });
    await watched.write(first, soon());
    // A retry of the same request, later: only when and how long differ.
    await watched.write({ ...first, latencyMs: first.latencyMs + 500 }, soon());
    expect(replays).toEqual([]);
    // Another request under the same id: a different bill. Kept out (HSETNX), but reported.
    const other = { ...first, promptTokens: 4000, deployment: 'gpt-4o-mini' };
    await watched.write(other, soon());
    expect(replays).toEqual([
      { stored: first, replayed: other, differences: ['deployment', 'promptTokens'] },
    ]);
    expect(JSON.parse((await redis.hget(usageKeys.events(windowId(window)), first.id)) as string)).toEqual(
      first,
    );
  });

  it('files the event under the window of its `window` field', async () => {
    const a = freshWindow();
    const b = freshWindow();
    await buffer.write(usageEvent(`in-a-${randomUUID()}`, a), soon());
    await buffer.write(usageEvent(`in-b-${randomUUID()}`, b), soon());
    expect(await redis.hlen(usageKeys.events(windowId(a)))).toBe(1);
    expect(await redis.hlen(usageKeys.events(windowId(b)))).toBe(1);
  });
});

/**
 * A client of the app's options pointed at a Redis that has gone away, after its first failed
 * attempt: it waits 10 s between attempts, so nothing but a write's own deadline can end a write.
 */
async function reconnectingClient(): Promise<{ client: Redis; offline: RedisUsageBuffer }> {
  const stopped = await startRedis();
  await stopped.stop();
  const client = new Redis(stopped.url, {
    connectTimeout: 5000,
    commandTimeout: 5000,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    retryStrategy: () => 10_000,
  });
  client.on('error', () => undefined);
  await new Promise<void>((resolve) => client.once('reconnecting', () => resolve()));
  return { client, offline: new RedisUsageBuffer(() => client, spool) };
}

/** The write gave up before sending anything: certainly not stored, because the client was not ready. */
function notConnected(error: unknown): boolean {
  return error instanceof NotStoredError && error.cause instanceof RedisNotReadyError;
}

describe('write() while Redis is not connected', () => {
  it('gives up by the deadline against a stopped server, and queues nothing for later', async () => {
    const stopped = await startRedis();
    await stopped.stop();
    const client = appRedisClient(stopped.url);
    client.on('error', () => undefined); // the outage is the point
    const offline = new RedisUsageBuffer(() => client, spool);
    const event = usageEvent(`offline-${randomUUID()}`, freshWindow());
    try {
      const deadlineMs = 300;
      const began = Date.now();
      const outcome = await offline.write(event, AbortSignal.timeout(deadlineMs)).then(
        () => 'written',
        (error: unknown) => (notConnected(error) ? 'deadline' : String(error)),
      );
      const elapsed = Date.now() - began;
      // The deadline (RedisNotReadyError) or the connection error, whichever comes first: never
      // the client's 5 s connect and command timeouts.
      expect(outcome === 'deadline' || /ECONNREFUSED/.test(outcome)).toBe(true);
      expect(elapsed).toBeLessThan(deadlineMs + 1500);

      // The server comes back: the refused write was not queued and replayed behind the caller's back.
      await stopped.restart();
      await new Promise<void>((resolve) =>
        client.status === 'ready' ? resolve() : client.once('ready', () => resolve()),
      );
      expect(await client.exists(usageKeys.events(windowId(new Date(event.window))))).toBe(0);
      // And the same buffer writes again once connected.
      await offline.write(event, soon());
      expect(await client.hlen(usageKeys.events(windowId(new Date(event.window))))).toBe(1);
    } finally {
      client.disconnect();
      await stopped.stop();
    }
  });

  it('gives up at the deadline, sending nothing, while the client waits to reconnect', async () => {
    const { client, offline } = await reconnectingClient();
    try {
      expect(client.status).toBe('reconnecting');
      const began = Date.now();
      await expect(
        offline.write(usageEvent(`offline-${randomUUID()}`, freshWindow()), AbortSignal.timeout(250)),
      ).rejects.toThrow(
        expect.objectContaining({ cause: expect.any(RedisNotReadyError) as unknown }) as never,
      );
      const elapsed = Date.now() - began;
      expect(elapsed).toBeGreaterThanOrEqual(200);
      expect(elapsed).toBeLessThan(2000);
    } finally {
      client.disconnect();
    }
  });
});

describe('write() with a deadline that has already passed', () => {
  it('gives up at once, sending nothing, without waiting for the next reconnect attempt', async () => {
    const { client, offline } = await reconnectingClient();
    try {
      const expired = AbortSignal.abort();
      const outcome = await Promise.race([
        offline.write(usageEvent(`expired-${randomUUID()}`, freshWindow()), expired).then(
          () => 'written',
          (error: unknown) => (notConnected(error) ? 'gave up' : String(error)),
        ),
        new Promise<string>((resolve) => setTimeout(() => resolve('still waiting after 3 s'), 3_000)),
      ]);
      expect(outcome).toBe('gave up');
    } finally {
      client.disconnect();
    }
  });
});

describe('pendingWindows()', () => {
  it('returns windows closed for graceMs, oldest first, from Redis keys and spool folders', async () => {
    // Windows of 2001 only: every other test's window (2040) is still open as of 2001.
    const base = Date.UTC(2001, 4, 10, 8, 0);
    const at = (i: number): Date => windowStart(new Date(base + i * WINDOW_MS));
    const [w0, w1, w2, w3, w4] = [0, 1, 2, 3, 4].map(at) as [Date, Date, Date, Date, Date];
    await buffer.write(usageEvent(`p-${randomUUID()}`, w2), soon()); // live in Redis
    await spool.write(usageEvent(`p-${randomUUID()}`, w0)); // spooled only
    await buffer.write(usageEvent(`p-${randomUUID()}`, w1), soon());
    await spool.write(usageEvent(`p-${randomUUID()}`, w1)); // both: listed once
    await buffer.write(usageEvent(`p-${randomUUID()}`, w3), soon()); // closed, but within the grace
    await buffer.write(usageEvent(`p-${randomUUID()}`, w4), soon()); // still open
    const claimedOnly = at(-1); // a window whose raw usage is only a claimed batch
    await buffer.write(usageEvent(`p-${randomUUID()}`, claimedOnly), soon());
    await buffer.claim(windowId(claimedOnly), `run-${randomUUID()}`);

    const graceMs = 5 * 60_000;
    // As of 4 minutes after w3's end: w3 ended less than graceMs ago.
    const asOf = new Date(windowEnd(w3).getTime() + 4 * 60_000);
    expect(await buffer.pendingWindows(asOf, graceMs)).toEqual(
      [claimedOnly, w0, w1, w2].map((w) => windowId(w)),
    );
    // Exactly graceMs after w3's end, it is closed too.
    expect(await buffer.pendingWindows(new Date(windowEnd(w3).getTime() + graceMs), graceMs)).toEqual(
      [claimedOnly, w0, w1, w2, w3].map((w) => windowId(w)),
    );
    // With no grace, a window counts as closed the moment it ends (w4 ends at asOf).
    expect(await buffer.pendingWindows(windowEnd(w4), 0)).toEqual(
      [claimedOnly, w0, w1, w2, w3, w4].map((w) => windowId(w)),
    );
  });

  it('ignores keys and spool folders that are not windows', async () => {
    // Windows of 2002 only, and an asOf in 2002 (see above).
    const window = windowStart(new Date(Date.UTC(2002, 1, 3, 4, 0)));
    await buffer.write(usageEvent(`q-${randomUUID()}`, window), soon());
    const asOf = new Date(windowEnd(window).getTime() + 60 * 60_000);
    const strays = [
      'usage:{w:20261301T0000Z}:events', // month 13
      'usage:{w:20020203T0407Z}:events', // off the 15-minute grid
      'usage:{w:not-a-window}:events',
      `usage:{w:${windowId(window).slice(0, -1)}}:events`,
      'usage:{w:20020203T0300Z}:other', // a real window but no usage key
      'usage:20020203T0300Z:events', // no hash tag
      'session:20020203T0300Z',
    ];
    for (const key of strays) await redis.set(key, 'x');
    const blobs = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
      BLOB_CONTAINERS.usageSpool,
    );
    for (const folder of ['notes', '20021301T0000Z', '20020203T0301Z']) {
      await blobs.getBlockBlobClient(`${folder}/x.json`).upload('{}', 2);
    }
    const pending = await buffer.pendingWindows(asOf, 0);
    expect(pending.filter((id) => id.startsWith('2002'))).toEqual([windowId(window)]);
    expect(pending.every((id) => parseWindowId(id).getTime() + WINDOW_MS <= asOf.getTime())).toBe(true);
    expect([...pending].sort()).toEqual(pending);
    // The strays are still there: pendingWindows reads, it never deletes.
    expect(await redis.exists(...strays)).toBe(strays.length);
  });
});

describe('claim()', () => {
  it('moves the live events into a new batch and records it as the open batch', async () => {
    const window = freshWindow();
    const id = windowId(window);
    const written = events(window, 5);
    await writeAll(written);
    const proposed = `run-${randomUUID()}`;

    const batch = await buffer.claim(id, proposed);
    expect(batch).toEqual({ windowId: id, batch: proposed });
    expect(await redis.exists(usageKeys.events(id))).toBe(0);
    expect(await redis.get(usageKeys.open(id))).toBe(proposed);
    expect(await redis.hlen(usageKeys.batch(id, proposed))).toBe(5);
    expect(idsOf((await readBatch(batch)).raw)).toEqual(sortedIds(written));
  });

  it('adopts the open batch instead of opening a second, and merges later events into it', async () => {
    const window = freshWindow();
    const id = windowId(window);
    const before = events(window, 3, 'before');
    await writeAll(before);
    const first = await buffer.claim(id, `first-${randomUUID()}`);

    // A run crashed after its claim; events still arrive for the window; a new run proposes another name.
    const late = events(window, 2, 'late');
    await writeAll(late);
    const secondName = `second-${randomUUID()}`;
    const second = await buffer.claim(id, secondName);
    expect(second).toEqual(first);
    expect(await redis.exists(usageKeys.batch(id, secondName))).toBe(0);
    expect(await redis.exists(usageKeys.events(id))).toBe(0);
    expect(idsOf((await readBatch(first)).raw)).toEqual(sortedIds([...before, ...late]));
  });

  it('merging into an open batch never overwrites an event already in it', async () => {
    const window = freshWindow();
    const id = windowId(window);
    const event = usageEvent(`same-${randomUUID()}`, window, { promptTokens: 1 });
    await buffer.write(event, soon());
    const batch = await buffer.claim(id, `run-${randomUUID()}`);
    // The same id written again after the claim (a late retry): the batch keeps its first content.
    await buffer.write({ ...event, promptTokens: 500 }, soon());
    await buffer.claim(id, `other-${randomUUID()}`);
    const { raw } = await readBatch(batch);
    expect(raw.map((r) => JSON.parse(r) as UsageEvent)).toEqual([event]);
  });

  it('merges spooled events by id: an event both in Redis and in the spool counts once', async () => {
    const window = freshWindow();
    const id = windowId(window);
    const [onlyRedis, both, onlySpool] = [
      usageEvent(`redis-${randomUUID()}`, window),
      usageEvent(`both-${randomUUID()}`, window),
      usageEvent(`spool-${randomUUID()}`, window),
    ] as [UsageEvent, UsageEvent, UsageEvent];
    await buffer.write(onlyRedis, soon());
    await buffer.write(both, soon());
    await spool.write(both);
    await spool.write(onlySpool);

    const batch = await buffer.claim(id, `run-${randomUUID()}`);
    const { raw } = await readBatch(batch);
    expect(idsOf(raw)).toEqual(sortedIds([onlyRedis, both, onlySpool]));
    // The manifest lists the spool blobs the release will delete.
    expect((await redis.smembers(usageKeys.manifest(id, batch.batch))).sort()).toEqual(
      [both, onlySpool].map((e) => BlobUsageSpool.blobName(e)).sort(),
    );
    // Claiming leaves the spool blobs in place until the release.
    expect(sortedIds(await spool.eventsOf(id))).toEqual(sortedIds([both, onlySpool]));
  });

  it('claims a window that has only spooled events', async () => {
    const window = freshWindow();
    const id = windowId(window);
    const spooled = events(window, 4, 'spooled');
    for (const e of spooled) await spool.write(e);
    const batch = await buffer.claim(id, `run-${randomUUID()}`);
    expect(idsOf((await readBatch(batch)).raw)).toEqual(sortedIds(spooled));
    expect(await redis.exists(usageKeys.events(id))).toBe(0);
  });

  it('claims a spooled blob that is not a usage event as it is, for the run to quarantine, instead of failing', async () => {
    const window = freshWindow();
    const id = windowId(window);
    const good = events(window, 2, 'spooled');
    for (const e of good) await spool.write(e);
    const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
      BLOB_CONTAINERS.usageSpool,
    );
    const damaged = ['{"truncated": ', '{"no":"id"}'];
    for (const [i, body] of damaged.entries()) {
      await container.getBlockBlobClient(`${id}/damaged-${i}.json`).upload(body, body.length);
    }
    const batch = await buffer.claim(id, `run-${randomUUID()}`);
    const { raw } = await readBatch(batch);
    expect(raw.filter((r) => damaged.includes(r)).sort()).toEqual([...damaged].sort());
    expect(raw).toHaveLength(4);
    // Released with the batch: the run quarantines them (the aggregator sets invalid events aside).
    await buffer.release(batch);
    expect(await spool.windows()).not.toContain(id);
  });

  it('is safe to repeat: the same batch, the same content', async () => {
    const window = freshWindow();
    const id = windowId(window);
    const live = events(window, 6, 'live');
    const spooled = events(window, 3, 'spooled');
    await writeAll(live);
    for (const e of spooled) await spool.write(e);
    await spool.write(live[0] as UsageEvent);

    const proposed = `run-${randomUUID()}`;
    const batch = await buffer.claim(id, proposed);
    const once = (await readBatch(batch)).raw.sort();
    const manifest = (await redis.smembers(usageKeys.manifest(id, proposed))).sort();
    for (let i = 0; i < 3; i++) expect(await buffer.claim(id, proposed)).toEqual(batch);
    expect(await buffer.claim(id, `another-${randomUUID()}`)).toEqual(batch);
    expect((await readBatch(batch)).raw.sort()).toEqual(once);
    expect(once).toHaveLength(9);
    expect((await redis.smembers(usageKeys.manifest(id, proposed))).sort()).toEqual(manifest);
  });

  it('claims an empty window as an empty batch', async () => {
    const id = windowId(freshWindow());
    const batch = await buffer.claim(id, `run-${randomUUID()}`);
    expect((await readBatch(batch)).raw).toEqual([]);
    await buffer.release(batch);
    expect(await redis.exists(usageKeys.open(id))).toBe(0);
  });

  it('rejects an invalid batch name', async () => {
    const id = windowId(freshWindow());
    for (const name of ['', 'has space', 'a/b', 'x:y', '{w}', 'a'.repeat(101), 'ünï']) {
      await expect(buffer.claim(id, name)).rejects.toThrow(/invalid batch name/);
    }
    // Nothing was opened for the window.
    expect(await redis.exists(usageKeys.open(id))).toBe(0);
    // Letters, digits, '_', '.', '-' up to 100 characters are fine.
    await expect(buffer.claim(id, `Run_1.2-${'x'.repeat(92)}`)).resolves.toEqual({
      windowId: id,
      batch: `Run_1.2-${'x'.repeat(92)}`,
    });
  });

  it('rejects an invalid window id', async () => {
    const valid = windowId(freshWindow());
    for (const id of [
      '20261301T0000Z',
      '20300101T0007Z',
      'not-a-window',
      '',
      `${valid}x`,
      valid.toLowerCase(),
    ]) {
      await expect(buffer.claim(id, 'run')).rejects.toThrow(/not a window id/);
    }
  });
});

describe('read()', () => {
  it('returns every event exactly once over small pages', async () => {
    const window = freshWindow();
    const id = windowId(window);
    const live = events(window, 57, 'live');
    const spooled = events(window, 8, 'spooled');
    await writeAll(live);
    for (const e of spooled) await spool.write(e);
    const batch = await buffer.claim(id, `run-${randomUUID()}`);

    const { raw, pages } = await readBatch(batch, 5);
    expect(pages.length).toBeGreaterThan(1);
    expect(pages.every((n) => n > 0)).toBe(true);
    expect(raw).toHaveLength(65);
    expect(idsOf(raw)).toEqual(sortedIds([...live, ...spooled]));
    expect(new Set(raw).size).toBe(65);
    // Each page is raw JSON as written, every one a valid usage event.
    for (const r of raw) expect(() => usageEventSchema.parse(JSON.parse(r))).not.toThrow();

    // The batch is frozen: a second read gives the same events.
    expect(idsOf((await readBatch(batch, 7)).raw)).toEqual(idsOf(raw));
    // A single default-sized page holds them all.
    expect((await readBatch(batch)).pages).toEqual([65]);
  });

  it('yields nothing for an unknown batch', async () => {
    const batch = { windowId: windowId(freshWindow()), batch: `none-${randomUUID()}` };
    expect((await readBatch(batch, 3)).pages).toEqual([]);
  });
});

describe('holds()', () => {
  it('sees an event live, spooled, or claimed into the open batch, and not once released', async () => {
    const window = freshWindow();
    const id = windowId(window);
    const [live, spooled, unknown] = events(window, 3, 'held');
    if (!live || !spooled || !unknown) throw new Error('three events expected');
    await writeAll([live]);
    await spool.write(spooled);
    expect(await buffer.holds(live)).toBe(true);
    expect(await buffer.holds(spooled)).toBe(true);
    expect(await buffer.holds(unknown)).toBe(false);
    const batch = await buffer.claim(id, `run-${randomUUID()}`);
    expect(await redis.exists(usageKeys.events(id))).toBe(0); // moved into the batch
    expect(await buffer.holds(live)).toBe(true);
    expect(await buffer.holds(spooled)).toBe(true);
    await buffer.release(batch);
    expect(await buffer.holds(live)).toBe(false);
    expect(await buffer.holds(spooled)).toBe(false);
  });
});

describe('release()', () => {
  it('deletes the batch, its manifest, the open marker and the spooled blobs', async () => {
    const window = freshWindow();
    const id = windowId(window);
    const live = events(window, 3, 'live');
    const spooled = events(window, 3, 'spooled');
    await writeAll(live);
    for (const e of spooled) await spool.write(e);
    const batch = await buffer.claim(id, `run-${randomUUID()}`);
    expect(await redis.exists(usageKeys.manifest(id, batch.batch))).toBe(1);

    await buffer.release(batch);
    expect(
      await redis.exists(
        usageKeys.batch(id, batch.batch),
        usageKeys.manifest(id, batch.batch),
        usageKeys.open(id),
      ),
    ).toBe(0);
    expect(await spool.eventsOf(id)).toEqual([]);
    expect(await spool.windows()).not.toContain(id);
    // The window is no longer pending.
    expect(await buffer.pendingWindows(windowEnd(window), 0)).not.toContain(id);
    // A repeated release is harmless.
    await expect(buffer.release(batch)).resolves.toBeUndefined();
  });

  it('leaves spool blobs that arrived after the claim for the next batch', async () => {
    const window = freshWindow();
    const id = windowId(window);
    const claimed = usageEvent(`claimed-${randomUUID()}`, window);
    await spool.write(claimed);
    const batch = await buffer.claim(id, `run-${randomUUID()}`);
    const late = usageEvent(`late-${randomUUID()}`, window);
    await spool.write(late);

    await buffer.release(batch);
    expect(await spool.eventsOf(id)).toEqual([late]);
    const next = await buffer.claim(id, `next-${randomUUID()}`);
    expect(idsOf((await readBatch(next)).raw)).toEqual([late.id]);
  });

  it('an event written after the release starts a new batch of the same window', async () => {
    const window = freshWindow();
    const id = windowId(window);
    const early = events(window, 2, 'early');
    await writeAll(early);
    const firstName = `first-${randomUUID()}`;
    const first = await buffer.claim(id, firstName);
    await buffer.release(first);

    const later = usageEvent(`later-${randomUUID()}`, window);
    await buffer.write(later, soon());
    expect(await buffer.pendingWindows(windowEnd(window), 0)).toContain(id);
    const secondName = `second-${randomUUID()}`;
    const second = await buffer.claim(id, secondName);
    expect(second).toEqual({ windowId: id, batch: secondName });
    expect(idsOf((await readBatch(second)).raw)).toEqual([later.id]);
    expect(await redis.exists(usageKeys.batch(id, firstName))).toBe(0);
  });
});
