import type { Server } from 'node:https';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { CosmosClient } from '@azure/cosmos';
import { createHttpsServer } from '@vercel/cosmosdb-server';

/** The Cosmos DB emulator's well-known key; valid only against an emulator. */
export const COSMOS_EMULATOR_KEY =
  'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==';

export interface CosmosServer {
  readonly endpoint: string;
  readonly key: string;
  stop(): Promise<void>;
}

/**
 * `@vercel/cosmosdb-server` in-process, over HTTPS with its own self-signed certificate. It keeps
 * data in memory and lacks GROUP BY, DISTINCT, OFFSET/LIMIT, TTL and atomic transactional batches
 * (see notes/local-runtime.md): code that needs them must not rely on the emulator to prove them.
 */
export async function startCosmos(options: { port?: number } = {}): Promise<CosmosServer> {
  const server: Server = createHttpsServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `https://127.0.0.1:${port}`,
    key: COSMOS_EMULATOR_KEY,
    stop: () =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A client that trusts the emulator's self-signed certificate, for this client only. */
export function createLocalCosmosClient(endpoint: string, key: string = COSMOS_EMULATOR_KEY): CosmosClient {
  return new CosmosClient({
    endpoint,
    key,
    agent: new https.Agent({ rejectUnauthorized: false, keepAlive: false }),
  });
}
