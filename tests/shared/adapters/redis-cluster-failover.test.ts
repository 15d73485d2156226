import type { RedisServer } from '../../../local/services/redis';
import { RedisUsageBuffer, usageKeys } from '../../../shared/adapters/redis-usage-buffer';
import { WINDOW_MS } from '../../../shared/contracts/window';
import { UsageRecorder } from '../../../shared/metering/usage-recorder';
import { MemorySpool, noSpooledUsage, useRedisCluster } from '../../fixtures/stores';
import { usageEvent } from '../../fixtures/usage';

/**
 * A failover staged on a real Redis Cluster of three masters, each with a replica: while usage is
 * written through the cluster-aware client, a replica takes over its master's slots
 * (`CLUSTER FAILOVER`, the coordinated failover Azure performs for maintenance: the replica first
 * catches up with its master). No usage is lost: each event is in Redis or in the spool, and the
 * client follows the slots to the new master.
 */

jest.setTimeout(120_000);

const t = useRedisCluster(3, 1);

async function role(node: RedisServer): Promise<string> {
  return /role:(\w+)/.exec(await t.cluster.command(node, 'INFO', 'replication'))?.[1] ?? 'unknown';
}

it('loses no usage while a replica takes over its master (CLUSTER FAILOVER) under load', async () => {
  const roles = await Promise.all(t.cluster.nodes.map(role));
  const replica = t.cluster.nodes[roles.indexOf('slave')];
  if (!replica) throw new Error(`no replica among the nodes: ${roles.join(', ')}`);

  const buffer = new RedisUsageBuffer(() => t.client, noSpooledUsage, { readyTimeoutMs: 2000 });
  const spool = new MemorySpool();
  const recorder = new UsageRecorder(buffer, spool, { redisTimeoutMs: 1000, spoolTimeoutMs: 500 });
  const first = Date.now() - 24 * 3600_000 - 60 * WINDOW_MS;
  const events = Array.from({ length: 600 }, (_, i) =>
    usageEvent({
      recordedAt: new Date(first + (i % 60) * WINDOW_MS + 1000).toISOString(),
      promptTokens: i + 1,
    }),
  );
  let written = 0;
  const writing = (async () => {
    for (const event of events) {
      await recorder.record(event);
      written += 1;
    }
  })();
  while (written < 100) await new Promise((resolve) => setTimeout(resolve, 5));
  // A manual failover that does not complete in time (its election timed out) is asked for again,
  // as an operator would.
  for (let attempt = 0; attempt < 4 && (await role(replica)) !== 'master'; attempt++) {
    expect(await t.cluster.command(replica, 'CLUSTER', 'FAILOVER')).toMatch(/OK/);
    for (let i = 0; i < 100 && (await role(replica)) !== 'master'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  expect(await role(replica)).toBe('master');
  await writing;
  expect(written).toBe(events.length);

  const inRedis = new Set<string>();
  for (const node of t.client.nodes('master')) {
    for (const key of await node.keys(usageKeys.pattern)) {
      if (key.endsWith(':events')) for (const id of await t.client.hkeys(key)) inRedis.add(id);
    }
  }
  expect(events.filter((e) => !inRedis.has(e.id) && !spool.events.has(e.id)).map((e) => e.id)).toEqual([]);
  // After the failover the client writes to the new master again: nothing more goes to the spool.
  const after = usageEvent({ recordedAt: new Date(first + 1000).toISOString() });
  expect(await recorder.record(after)).toBe('redis');
});
