import https from 'node:https';
import type { CosmosClient } from '@azure/cosmos';
import type { CosmosServer } from '../../../local/services/cosmos';
import { COSMOS_EMULATOR_KEY, createLocalCosmosClient, startCosmos } from '../../../local/services/cosmos';

describe('Cosmos DB emulator', () => {
  let cosmos: CosmosServer;
  let client: CosmosClient;
  beforeAll(async () => {
    cosmos = await startCosmos();
    client = createLocalCosmosClient(cosmos.endpoint, cosmos.key);
  });
  afterAll(async () => {
    client.dispose();
    await cosmos.stop();
  });

  it('listens on loopback over HTTPS with the emulator key', () => {
    expect(cosmos.endpoint).toBe(`https://127.0.0.1:${cosmos.port}`);
    expect(cosmos.key).toBe(COSMOS_EMULATOR_KEY);
  });

  it('creates a database and a container, upserts and queries', async () => {
    const { database } = await client.databases.createIfNotExists({ id: 'chargeback' });
    const { container } = await database.containers.createIfNotExists({
      id: 'aggregates',
      partitionKey: { paths: ['/window'] },
    });
    await container.items.upsert({ id: 'research', window: '2026-11-22T12:00', tokens: 2 });
    await container.items.upsert({ id: 'finance', window: '2026-11-22T12:00', tokens: 3 });
    await container.items.upsert({ id: 'research', window: '2026-11-22T12:00', tokens: 5 }); // replaces
    const { resources } = await container.items
      .query<number>({
        query: 'SELECT VALUE SUM(c.tokens) FROM c WHERE c.window = @window',
        parameters: [{ name: '@window', value: '2026-11-22T12:00' }],
      })
      .fetchAll();
    expect(resources).toEqual([8]);
    const { resource } = await container.item('finance', '2026-11-22T12:00').read<{ tokens: number }>();
    expect(resource?.tokens).toBe(3);
  });

  it('trusts the self-signed certificate for its own client only', async () => {
    expect(process.env.NODE_TLS_REJECT_UNAUTHORIZED).toBeUndefined();
    const error = await new Promise<NodeJS.ErrnoException>((resolve, reject) => {
      https
        .get(`${cosmos.endpoint}/`, () => reject(new Error('the default agent accepted the certificate')))
        .on('error', resolve);
    });
    // The bundled certificate is self-signed and, since 2021, expired: Node reports the expiry first.
    expect(error.code).toMatch(/CERT_HAS_EXPIRED|SELF_SIGNED|UNABLE_TO_VERIFY/);
  });
});

describe('Cosmos DB emulator stop()', () => {
  it('closes keep-alive connections that a client still holds, and frees the port', async () => {
    const cosmos = await startCosmos();
    const client = createLocalCosmosClient(cosmos.endpoint);
    await client.databases.createIfNotExists({ id: 'kept-alive' });
    const began = Date.now();
    await cosmos.stop(); // the client is deliberately not disposed first
    expect(Date.now() - began).toBeLessThan(1000);
    client.dispose();

    const again = await startCosmos({ port: cosmos.port });
    await again.stop();
  });

  it('reports a fixed port that is taken', async () => {
    const holder = await startCosmos();
    try {
      await expect(startCosmos({ port: holder.port })).rejects.toThrow(`port ${holder.port}`);
    } finally {
      await holder.stop();
    }
  });
});
