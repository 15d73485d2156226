import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { Redis } from 'ioredis';
import { startAzurite } from '../../../local/services/azurite';
import { LIFELINE_WRAPPER } from '../../../local/services/lifeline';
import { createLocalCosmosClient, startCosmos } from '../../../local/services/cosmos';
import { startRedis } from '../../../local/services/redis';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return condition();
}

describe('Redis stand-in', () => {
  it('starts on a random loopback port, answers, and is gone after stop()', async () => {
    const [a, b] = await Promise.all([startRedis(), startRedis()]);
    expect(a.port).not.toBe(b.port);
    const client = new Redis(a.url);
    await client.set('k', 'v');
    expect(await client.get('k')).toBe('v');
    client.disconnect();
    await Promise.all([a.stop(), b.stop()]);
    const probe = new Redis(a.url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    await expect(probe.connect()).rejects.toThrow();
    probe.disconnect();
  });

  it('survives kill() and restart() on the same port, keeping data when persisted', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'redis-test-'));
    try {
      const redis = await startRedis({ dataDir });
      const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
      await client.set('kept', 'yes');
      await redis.stop();
      await redis.restart();
      expect(await client.get('kept')).toBe('yes');
      await redis.kill();
      await redis.restart();
      expect(await client.get('kept')).toBe('yes'); // appendonly fsyncs every second; written long before
      client.disconnect();
      await redis.stop();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('dies with its parent, even when the parent is SIGKILLed', async () => {
    // A parent process that starts a server under the lifeline wrapper, then is killed outright.
    const parent = spawn(
      process.execPath,
      [
        '-e',
        `const { spawn } = require('node:child_process');
         const w = spawn('bash', ['-c', process.env.WRAPPER, 'lifeline', 'sleep', '300'], { stdio: ['pipe', 'ignore', 'ignore'] });
         setTimeout(() => console.log('wrapper', w.pid), 300);
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, WRAPPER: LIFELINE_WRAPPER } },
    );
    const wrapperPid = await new Promise<number>((resolve) =>
      parent.stdout.on('data', (chunk: Buffer) => {
        const found = /wrapper (\d+)/.exec(chunk.toString());
        if (found) resolve(Number(found[1]));
      }),
    );
    const serverPid = Number(
      execFileSync('pgrep', ['-P', String(wrapperPid), '-x', 'sleep'], { encoding: 'utf8' }).trim(),
    );
    expect(alive(serverPid)).toBe(true);
    parent.kill('SIGKILL');
    expect(await until(() => !alive(serverPid) && !alive(wrapperPid), 5000)).toBe(true);
  });
});

describe('Azurite stand-in', () => {
  it('serves Blob, Queue and Table on loopback with the development account', async () => {
    const azurite = await startAzurite();
    try {
      const blob = BlobServiceClient.fromConnectionString(azurite.connectionString);
      const container = blob.getContainerClient('reports');
      await container.create();
      await container.getBlockBlobClient('a.txt').upload('hello', 5);
      expect((await container.getBlockBlobClient('a.txt').downloadToBuffer()).toString()).toBe('hello');
      const queues = await fetch(`${azurite.queueEndpoint}?comp=list`);
      expect(queues.status).toBe(403); // reachable; unsigned requests are refused like Azure
      const tables = await fetch(`${azurite.tableEndpoint}/Tables`);
      expect([401, 403]).toContain(tables.status);
    } finally {
      await azurite.stop();
    }
  });
});

describe('Cosmos DB emulator', () => {
  it('creates databases and containers, upserts and queries', async () => {
    const cosmos = await startCosmos();
    const client = createLocalCosmosClient(cosmos.endpoint, cosmos.key);
    try {
      const { database } = await client.databases.createIfNotExists({ id: 'db' });
      const { container } = await database.containers.createIfNotExists({
        id: 'c',
        partitionKey: { paths: ['/pk'] },
      });
      await container.items.upsert({ id: '1', pk: 'a', n: 2 });
      await container.items.upsert({ id: '2', pk: 'a', n: 3 });
      const { resources } = await container.items
        .query<number>({
          query: 'SELECT VALUE SUM(c.n) FROM c WHERE c.pk = @pk',
          parameters: [{ name: '@pk', value: 'a' }],
        })
        .fetchAll();
      expect(resources).toEqual([5]);
    } finally {
      client.dispose();
      await cosmos.stop();
    }
  });
});
