import { join } from 'node:path';
import type { AzuriteServer } from './azurite';
import { startAzurite } from './azurite';
import type { CosmosServer } from './cosmos';
import { startCosmos } from './cosmos';
import type { RedisServer } from './redis';
import { startRedis } from './redis';

export type { AzuriteServer } from './azurite';
export type { CosmosServer } from './cosmos';
export type { LifelineProcess } from './lifeline';
export type { RedisServer } from './redis';
export { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite } from './azurite';
export { COSMOS_EMULATOR_KEY, createLocalCosmosClient, startCosmos } from './cosmos';
export { spawnWithLifeline } from './lifeline';
export { getFreePort } from './ports';
export { findRedisServer, startRedis } from './redis';

export interface BackingServices {
  readonly redis: RedisServer;
  readonly azurite: AzuriteServer;
  readonly cosmos: CosmosServer;
  /** Stops all three; safe to call more than once. */
  stop(): Promise<void>;
}

export interface BackingServicesOptions {
  /**
   * Keep Redis and Azurite data in `<dataDir>/redis` and `<dataDir>/azurite` (npm start); without it
   * everything is in memory (tests). The Cosmos DB emulator is always in memory.
   */
  dataDir?: string;
  log?: (line: string) => void;
}

interface Started<T> {
  name: string;
  service: T;
  stop(): Promise<void>;
}

/**
 * Redis, Azurite and the Cosmos DB emulator, started in parallel on free loopback ports. If any of
 * them fails, the others are stopped again and the error names the one(s) that failed.
 */
export async function startBackingServices(options: BackingServicesOptions = {}): Promise<BackingServices> {
  const { dataDir, log } = options;
  const start = async <T extends { stop(): Promise<void> }>(
    name: string,
    run: () => Promise<T>,
    describe: (service: T) => string,
  ): Promise<Started<T>> => {
    const began = Date.now();
    try {
      const service = await run();
      log?.(`${name} ready in ${Date.now() - began} ms: ${describe(service)}`);
      return { name, service, stop: () => service.stop() };
    } catch (error) {
      throw new Error(`${name} failed to start: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
      });
    }
  };
  const where = (sub: string): string => (dataDir ? `data in ${join(dataDir, sub)}` : 'in memory');

  const results = await Promise.allSettled([
    start(
      'Redis',
      () => startRedis({ dataDir: dataDir && join(dataDir, 'redis'), log }),
      (r) => `${r.url} (${where('redis')})`,
    ),
    start(
      'Azurite',
      () => startAzurite({ dataDir: dataDir && join(dataDir, 'azurite'), log }),
      (a) =>
        `blob ${a.blobEndpoint}, queue ${a.queueEndpoint}, table ${a.tableEndpoint} (${where('azurite')})`,
    ),
    start(
      'Cosmos DB emulator',
      () => startCosmos(),
      (c) => `${c.endpoint} (in memory)`,
    ),
  ]);
  const [redis, azurite, cosmos] = results;

  if (redis.status === 'rejected' || azurite.status === 'rejected' || cosmos.status === 'rejected') {
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    await Promise.allSettled(results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.stop()] : [])));
    throw new Error(
      `Could not start the backing services:\n${failures.map((f) => `  - ${f.message}`).join('\n')}`,
      { cause: failures.length === 1 ? failures[0] : failures },
    );
  }

  const started: Array<Started<unknown>> = [redis.value, azurite.value, cosmos.value];
  let stopping: Promise<void> | undefined;
  return {
    redis: redis.value.service,
    azurite: azurite.value.service,
    cosmos: cosmos.value.service,
    stop: () =>
      (stopping ??= (async () => {
        const outcomes = await Promise.allSettled(started.map((s) => s.stop()));
        const failed = started.flatMap((s, i) => {
          const outcome = outcomes[i];
          return outcome?.status === 'rejected' ? [`  - ${s.name}: ${String(outcome.reason)}`] : [];
        });
        if (failed.length > 0) throw new Error(`Could not stop every backing service:\n${failed.join('\n')}`);
      })()),
  };
}
