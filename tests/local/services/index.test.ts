import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { Redis } from 'ioredis';
import { createLocalCosmosClient, startBackingServices } from '../../../local/services';
import { alive, descendants } from './helpers';

describe('startBackingServices', () => {
  it('starts all three in parallel on distinct ports, and stop() leaves nothing', async () => {
    const before = descendants(process.pid);
    const lines: string[] = [];
    const services = await startBackingServices({ log: (line) => lines.push(line) });
    try {
      const ports = [
        services.redis.port,
        ...[
          services.azurite.blobEndpoint,
          services.azurite.queueEndpoint,
          services.azurite.tableEndpoint,
        ].map((u) => Number(new URL(u).port)),
        services.cosmos.port,
      ];
      expect(new Set(ports).size).toBe(5);
      expect(lines).toEqual([
        expect.stringMatching(/^(Redis|Azurite|Cosmos DB emulator) ready in \d+ ms: .*in memory/),
        expect.stringMatching(/ready in/),
        expect.stringMatching(/ready in/),
      ]);

      const redis = new Redis(services.redis.url);
      await redis.set('k', 'v');
      expect(await redis.get('k')).toBe('v');
      redis.disconnect();
      const container = BlobServiceClient.fromConnectionString(
        services.azurite.connectionString,
      ).getContainerClient('reports');
      await container.create();
      const cosmos = createLocalCosmosClient(services.cosmos.endpoint, services.cosmos.key);
      await cosmos.databases.createIfNotExists({ id: 'db' });
      cosmos.dispose();
    } finally {
      await services.stop();
    }
    expect(alive(services.redis.pid)).toBe(false);
    expect(alive(services.azurite.pid)).toBe(false);
    expect(descendants(process.pid)).toEqual(before);
    await services.stop(); // idempotent
  });

  it('keeps Redis and Azurite data under the data folder', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'backing-services-'));
    try {
      const services = await startBackingServices({ dataDir });
      await services.stop();
      expect(services.redis.dataDir).toBe(join(dataDir, 'redis'));
      expect(services.azurite.dataDir).toBe(join(dataDir, 'azurite'));
      expect(existsSync(join(dataDir, 'redis', 'appendonlydir'))).toBe(true);
      expect(existsSync(join(dataDir, 'azurite', '__blobstorage__'))).toBe(true);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
