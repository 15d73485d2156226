import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { RedisServer } from './redis';
import { startRedis } from './redis';
import { sleep } from './wait';

const run = promisify(execFile);

/** How long the nodes get to agree on the slot map (cluster_state:ok on every node). */
const CLUSTER_OK_TIMEOUT_MS = 30_000;

export interface RedisCluster {
  /** Every node (masters and replicas), in start order. */
  readonly nodes: readonly RedisServer[];
  /** Where a cluster-aware client starts (any node; it learns the rest). */
  readonly seeds: ReadonlyArray<{ host: string; port: number }>;
  /** `redis-cli --cluster …` (reshard, check; address a node as `127.0.0.1:<port>`), its output. */
  cli(...args: string[]): Promise<string>;
  /** Runs a command on one node with redis-cli, its output (CLUSTER MYID, INFO, ...). */
  command(node: RedisServer, ...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/**
 * A real Redis Cluster on loopback: `masters` redis-server processes with `cluster-enabled yes`,
 * joined and given the 16384 slots by `redis-cli --cluster create`, each with `replicas` replicas
 * (for failover tests), as Azure Managed Redis's OSS clustering policy presents itself to a
 * cluster-aware client.
 */
export async function startRedisCluster(masters = 3, replicas = 0): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'redis-cluster-'));
  const nodes: RedisServer[] = [];
  const stop = async (): Promise<void> => {
    await Promise.allSettled(nodes.map((n) => n.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) nodes.push(await startRedis({ clusterDir: dir }));
    const cli = async (...args: string[]): Promise<string> =>
      (await run('redis-cli', ['--cluster', ...args], { timeout: 60_000 })).stdout;
    const command = async (node: RedisServer, ...args: string[]): Promise<string> =>
      (await run('redis-cli', ['-p', String(node.port), ...args], { timeout: 10_000 })).stdout;
    await cli(
      'create',
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas',
      String(replicas),
      '--cluster-yes',
    );
    const deadline = Date.now() + CLUSTER_OK_TIMEOUT_MS;
    for (;;) {
      const states = await Promise.all(nodes.map((n) => command(n, 'CLUSTER', 'INFO')));
      const replication = await Promise.all(nodes.map((n) => command(n, 'INFO', 'replication')));
      const linked = replication.filter(
        (r) => /role:slave/.test(r) && /master_link_status:up/.test(r),
      ).length;
      if (states.every((s) => /cluster_state:ok/.test(s)) && linked === masters * replicas) break;
      if (Date.now() > deadline)
        throw new Error(`the Redis Cluster did not reach cluster_state:ok:\n${states.join('\n')}`);
      await sleep(100);
    }
    return {
      nodes,
      seeds: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
      cli,
      command,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
