import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { CosmosClient } from '@azure/cosmos';
import { createHttpsServer } from '@vercel/cosmosdb-server';

/** The Cosmos DB emulator's well-known key; valid only against an emulator. */
export const COSMOS_EMULATOR_KEY =
  'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==';

export interface CosmosServer {
  /** `https://127.0.0.1:PORT` (self-signed certificate: use createLocalCosmosClient). */
  readonly endpoint: string;
  readonly key: string;
  readonly port: number;
  /** Closes the listener and every open (keep-alive) connection; resolves once closed. */
  stop(): Promise<void>;
}

/**
 * `@vercel/cosmosdb-server`, in this process, over HTTPS with its own self-signed certificate.
 *
 * What it is not (checked against 1.0.1; the batch items as recorded in notes/local-runtime.md):
 * - memory only: nothing survives stop(), even under `npm start`;
 * - its bundled certificate (CN=cosmosdb) is self-signed and expired in January 2021: a client must
 *   skip verification altogether, which is why only createLocalCosmosClient's own agent does that;
 * - it never checks the key or the request signature, so authorization failures cannot be tested;
 * - queries: no GROUP BY, DISTINCT or OFFSET/LIMIT (400); TTL is ignored;
 * - transactional batches are not atomic, and patch operations are refused inside batch/bulk;
 * - a handler error is a 500 with the message, also written to this process's console.
 * Code that depends on any of these must be proven elsewhere, not against this emulator.
 */
export async function startCosmos(options: { port?: number } = {}): Promise<CosmosServer> {
  // HTTP keep-alive: with a TLS handshake per request a point read took 2.4 ms instead of 0.7 ms.
  const server = createHttpsServer({ keepAlive: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(`Cosmos DB emulator: port ${options.port} on 127.0.0.1 is already in use`)
          : error,
      );
    });
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let stopping: Promise<void> | undefined;
  return {
    endpoint: `https://127.0.0.1:${port}`,
    key: COSMOS_EMULATOR_KEY,
    port,
    stop: () =>
      (stopping ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // close() only stops accepting: idle keep-alive connections would hold it open for good.
        server.closeAllConnections();
      })),
  };
}

/**
 * A CosmosClient that trusts the emulator's self-signed certificate, for this client only (its own
 * https.Agent; NODE_TLS_REJECT_UNAUTHORIZED is never touched). dispose() also closes its sockets.
 */
export function createLocalCosmosClient(endpoint: string, key: string = COSMOS_EMULATOR_KEY): CosmosClient {
  const agent = new https.Agent({ rejectUnauthorized: false, keepAlive: true });
  class LocalCosmosClient extends CosmosClient {
    override dispose(): void {
      super.dispose();
      agent.destroy();
    }
  }
  return new LocalCosmosClient({ endpoint, key, agent });
}
