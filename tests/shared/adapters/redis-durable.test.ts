import { Redis } from 'ioredis';
import type { RedisServer } from '../../../local/services/redis';
import { startRedis } from '../../../local/services/redis';
import { RedisUsageBuffer, usageKeys } from '../../../shared/adapters/redis-usage-buffer';
import type { UsageEvent } from '../../../shared/contracts/usage-event';
import { windowId } from '../../../shared/contracts/window';
import type { RecordOutcome } from '../../../shared/metering/usage-recorder';
import { UsageRecorder } from '../../../shared/metering/usage-recorder';
import { MemorySpool, noSpooledUsage } from '../../fixtures/stores';
import { usageEvent } from '../../fixtures/usage';

/**
 * The durable setting (REDIS_WAIT_REPLICAS=1) against a real primary and replica: the primary is
 * killed with SIGKILL in the middle of concurrent writes and the replica is promoted. Every write
 * the recorder reported as recorded in Redis is on the promoted replica; every other one is in the
 * spool: nothing acknowledged is lost.
 */

jest.setTimeout(60_000);

let primary: RedisServer;
let replica: RedisServer;

beforeAll(async () => {
  primary = await startRedis();
  replica = await startRedis({ replicaOf: primary.port });
  const probe = new Redis(replica.url);
  try {
    for (let i = 0; !/master_link_status:up/.test(await probe.info('replication')); i++) {
      if (i > 100) throw new Error('the replica did not connect to its primary');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    probe.disconnect();
  }
});
afterAll(async () => {
  await Promise.allSettled([primary?.stop(), replica?.stop()]);
});

it('loses no acknowledged usage write when the primary is killed and its replica promoted', async () => {
  // The client as the composition root builds it.
  const client = new Redis(primary.url, {
    connectTimeout: 1000,
    commandTimeout: 1000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    enableAutoPipelining: true,
  });
  client.on('error', () => undefined); // the crash is the point
  // Generous bounds: on a loaded machine a healthy replica must still acknowledge in time, so
  // that the writes before the partition are acknowledged (the test needs acknowledged writes).
  const buffer = new RedisUsageBuffer(() => client, noSpooledUsage, { waitReplicas: 1, waitTimeoutMs: 800 });
  const spool = new MemorySpool();
  const recorder = new UsageRecorder(buffer, spool, { redisTimeoutMs: 1500, spoolTimeoutMs: 500 });

  const outcomes = new Map<string, RecordOutcome>();
  const events: UsageEvent[] = [];
  /** `count` more writes, 8 at a time. */
  const traffic = async (count: number): Promise<void> => {
    const until = events.length + count;
    const worker = async (): Promise<void> => {
      while (events.length < until) {
        const event = usageEvent({ id: `durable-${events.length}` });
        events.push(event);
        outcomes.set(event.id, await recorder.record(event));
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  };
  try {
    await traffic(300);
    // The replica falls behind (paused, its replication link dropped: a network partition), the
    // primary keeps taking writes, then crashes with SIGKILL while writes are in flight.
    process.kill(replica.pid, 'SIGSTOP');
    const admin = new Redis(primary.url);
    try {
      await admin.call('CLIENT', 'KILL', 'TYPE', 'replica');
      admin.disconnect();
      await traffic(60);
      const crash = primary.kill();
      await traffic(40);
      await crash;
    } finally {
      admin.disconnect();
      process.kill(replica.pid, 'SIGCONT');
    }
  } finally {
    client.disconnect();
  }

  const promoted = new Redis(replica.url);
  try {
    await promoted.call('REPLICAOF', 'NO', 'ONE');
    const stored = new Set<string>();
    for (const window of new Set(events.map((e) => windowId(new Date(e.window))))) {
      for (const id of await promoted.hkeys(usageKeys.events(window))) stored.add(id);
    }
    const acknowledged = [...outcomes].filter(([, outcome]) => outcome === 'redis').map(([id]) => id);
    // Most of the 300 writes before the partition (a write whose WAIT timed out on a loaded
    // machine went to the spool as well, which is correct and covered below).
    expect(acknowledged.length).toBeGreaterThanOrEqual(200);
    expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
    // The rest went to the spool once the primary was gone: each event is in one store or both.
    expect([...spool.events.keys()].length).toBeGreaterThan(0);
    expect(events.filter((e) => !stored.has(e.id) && !spool.events.has(e.id))).toEqual([]);
  } finally {
    promoted.disconnect();
  }
});

it('sends the write to the spool too when the replica does not acknowledge in time', async () => {
  const lonely = await startRedis(); // no replica at all
  const client = new Redis(lonely.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  try {
    const buffer = new RedisUsageBuffer(() => client, noSpooledUsage, { waitReplicas: 1, waitTimeoutMs: 50 });
    const spool = new MemorySpool();
    const reasons: unknown[] = [];
    const recorder = new UsageRecorder(buffer, spool, {
      redisTimeoutMs: 500,
      onSpooled: (_event, reason) => reasons.push(reason),
    });
    const event = usageEvent();
    await expect(recorder.record(event)).resolves.toBe('spool');
    expect(String(reasons[0])).toMatch(/0 of 1 Redis replicas acknowledged/);
    // In both stores: the aggregation merges them by id.
    expect(await client.hexists(usageKeys.events(windowId(new Date(event.window))), event.id)).toBe(1);
    expect(spool.events.has(event.id)).toBe(true);
  } finally {
    client.disconnect();
    await lonely.stop();
  }
});

it('keeps the connection usable when no replica acknowledges: one WAIT at a time, shared by the writes', async () => {
  const lonely = await startRedis(); // no replica: every WAIT runs to its timeout
  const client = new Redis(lonely.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    enableAutoPipelining: true,
  });
  try {
    const buffer = new RedisUsageBuffer(() => client, noSpooledUsage, {
      waitReplicas: 1,
      waitTimeoutMs: 100,
    });
    const spool = new MemorySpool();
    const recorder = new UsageRecorder(buffer, spool, { redisTimeoutMs: 250 });
    const burst = Array.from({ length: 60 }, () => usageEvent());
    const outcomes = await Promise.all(burst.map((event) => recorder.record(event)));
    expect(outcomes.every((outcome) => outcome === 'spool')).toBe(true);
    // Every WAIT blocks the connection for its timeout: one per write would leave 60 × 100 ms of
    // them queued on the server, and the next command (here a PING) behind them.
    const began = Date.now();
    await client.ping();
    expect(Date.now() - began).toBeLessThan(500);
    // Every write did reach the primary (and is spooled too: merged by id).
    const window = windowId(new Date(burst[0]?.window as string));
    expect(await client.hlen(usageKeys.events(window))).toBeGreaterThanOrEqual(60);
  } finally {
    client.disconnect();
    await lonely.stop();
  }
});
