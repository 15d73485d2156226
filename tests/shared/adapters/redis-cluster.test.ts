import { RedisBudgetLedger } from '../../../shared/adapters/redis-budget';
import { RedisUsageBuffer, usageKeys } from '../../../shared/adapters/redis-usage-buffer';
import type { UsageEvent } from '../../../shared/contracts/usage-event';
import { WINDOW_MS, windowId } from '../../../shared/contracts/window';
import { UsageRecorder } from '../../../shared/metering/usage-recorder';
import { MemorySpool, noSpooledUsage, useRedisCluster } from '../../fixtures/stores';
import { usageEvent } from '../../fixtures/usage';

/**
 * The Redis adapters against a real Redis Cluster of three masters on loopback (redis-cli
 * --cluster create), through ioredis's cluster-aware client: the usage write path, finding the
 * windows (scanned on every master), claim, read, release, and the budget ledger behave as on one
 * node; during a resharding (slots moving between masters under load) no write is lost: what
 * Redis refuses goes to the spool.
 */

jest.setTimeout(120_000);

const t = useRedisCluster(3);

/** Events in `windows` consecutive windows, ending a day ago (all closed). */
function eventsInWindows(windows: number, perWindow: number): UsageEvent[] {
  const first = Date.now() - 24 * 3600_000 - windows * WINDOW_MS;
  return Array.from({ length: windows * perWindow }, (_, i) =>
    usageEvent({
      recordedAt: new Date(first + Math.floor(i / perWindow) * WINDOW_MS + 1000).toISOString(),
      promptTokens: i + 1,
    }),
  );
}

async function keysPerMaster(): Promise<number[]> {
  return Promise.all(
    t.client.nodes('master').map(async (node) => (await node.keys(usageKeys.pattern)).length),
  );
}

it('writes, finds, claims, reads and releases windows spread over every master', async () => {
  const buffer = new RedisUsageBuffer(() => t.client, noSpooledUsage, { readyTimeoutMs: 2000 });
  const events = eventsInWindows(12, 5);
  for (const event of events) await buffer.write(event, AbortSignal.timeout(2000));
  // A window's keys share a slot; different windows land on different masters.
  expect((await keysPerMaster()).filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);

  const windows = await buffer.pendingWindows(new Date(), 0);
  const expected = [...new Set(events.map((e) => windowId(new Date(e.window))))].sort();
  expect(windows.filter((w) => expected.includes(w))).toEqual(expected);

  const read = new Map<string, UsageEvent>();
  for (const id of expected) {
    const batch = await buffer.claim(id, `run-${id}`);
    expect(await buffer.claim(id, 'a-retried-run')).toEqual(batch); // the claim is adopted, not redone
    for await (const page of buffer.read(batch)) {
      for (const json of page) {
        const event = JSON.parse(json) as UsageEvent;
        read.set(event.id, event);
      }
    }
    await buffer.release(batch);
  }
  expect([...read.keys()].sort()).toEqual(events.map((e) => e.id).sort());
  expect(await keysPerMaster()).toEqual([0, 0, 0]);
});

it('keeps budget ledgers per department in one slot: reserve and settle work on the cluster', async () => {
  const ledger = new RedisBudgetLedger(() => t.client, { readyTimeoutMs: 2000 });
  for (const department of ['research', 'marketing', 'customer-support', 'finance', 'engineering']) {
    const granted = await ledger.reserve({
      department,
      month: '2026-12',
      reservationId: `r-${department}`,
      estimateMicros: 100,
      holdMs: 60_000,
      limits: [
        { amountMicros: 1000, hard: true },
        { appId: 'app', amountMicros: 500, hard: true },
      ],
    });
    expect(granted.granted).toBe(true);
    await ledger.settle({
      department,
      appId: 'app',
      month: '2026-12',
      costMicros: 80,
      reservation: { id: `r-${department}`, month: '2026-12' },
    });
    expect(await ledger.spend({ department }, '2026-12')).toEqual({ settledMicros: 80, reservedMicros: 0 });
    expect(await ledger.raiseSettled({ department }, '2026-12', 90)).toBe(80);
  }
});

it('loses no usage while slots move between masters under load: each event is in Redis or the spool', async () => {
  const buffer = new RedisUsageBuffer(() => t.client, noSpooledUsage, { readyTimeoutMs: 2000 });
  const spool = new MemorySpool();
  const recorder = new UsageRecorder(buffer, spool, { redisTimeoutMs: 1000, spoolTimeoutMs: 500 });
  const events = eventsInWindows(40, 10);
  const [from, to] = await Promise.all(
    t.cluster.nodes
      .slice(0, 2)
      .map(async (node) => (await t.cluster.command(node, 'CLUSTER', 'MYID')).trim()),
  );
  const first = `127.0.0.1:${t.cluster.nodes[0]?.port ?? 0}`;
  /** The slots the first master serves, from `redis-cli --cluster info`. */
  const slotsOfFirst = async (): Promise<number> =>
    Number(
      new RegExp(`${first} \\([0-9a-f]+\\.*\\) -> \\d+ keys \\| (\\d+) slots`).exec(
        await t.cluster.cli('info', first),
      )?.[1],
    );
  const slotsBefore = await slotsOfFirst();
  expect(slotsBefore).toBeGreaterThan(2000); // about a third of 16384
  let written = 0;
  const writing = (async () => {
    for (const event of events) {
      await recorder.record(event);
      written += 1;
    }
  })();
  // Move a third of the slots from the first master to the second while the events are written.
  await t.cluster.cli(
    'reshard',
    first,
    '--cluster-from',
    from ?? '',
    '--cluster-to',
    to ?? '',
    '--cluster-slots',
    '2000',
    '--cluster-yes',
  );
  await writing;
  expect(written).toBe(events.length);
  expect(await slotsOfFirst()).toBe(slotsBefore - 2000);

  const inRedis = new Set<string>();
  for (const node of t.client.nodes('master')) {
    for (const key of await node.keys(usageKeys.pattern)) {
      if (key.endsWith(':events')) for (const id of await t.client.hkeys(key)) inRedis.add(id);
    }
  }
  expect(events.filter((e) => !inRedis.has(e.id) && !spool.events.has(e.id)).map((e) => e.id)).toEqual([]);
  // The cluster still agrees on every slot afterwards.
  expect(await t.cluster.cli('check', `127.0.0.1:${t.cluster.nodes[0]?.port ?? 0}`)).toMatch(
    /All 16384 slots covered/,
  );
});
