import https from 'node:https';
import type { TokenCredential } from '@azure/identity';
import { DefaultAzureCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { BlobServiceClient } from '@azure/storage-blob';
import { CosmosClient } from '@azure/cosmos';
import { Redis } from 'ioredis';
import type { AppConfig } from './config';
import { loadConfig } from './config';

/**
 * The app's configuration and SDK clients: loaded once at start-up, clients created lazily on
 * first use and then reused for every invocation (connections are pooled by the SDKs).
 */
export interface AppContext {
  config: AppConfig;
  credential(): TokenCredential;
  redis(): Redis;
  blobService(): BlobServiceClient;
  cosmos(): CosmosClient;
  close(): Promise<void>;
}

let current: Promise<AppContext> | undefined;

/** Called by the appStart hook; later calls return the same context. */
export function initializeAppContext(env: NodeJS.ProcessEnv = process.env): Promise<AppContext> {
  current ??= createAppContext(env).catch((error: unknown) => {
    current = undefined;
    throw error;
  });
  return current;
}

export function getAppContext(): Promise<AppContext> {
  return initializeAppContext();
}

export async function closeAppContext(): Promise<void> {
  const context = current;
  current = undefined;
  if (context) await (await context).close();
}

async function createAppContext(env: NodeJS.ProcessEnv): Promise<AppContext> {
  let credential: TokenCredential | undefined;
  const getCredential = (): TokenCredential => (credential ??= new DefaultAzureCredential());
  const vault = env.KEY_VAULT_URI?.trim();
  const config = await loadConfig(
    env,
    vault
      ? async (name) => {
          const secret = await new SecretClient(vault, getCredential()).getSecret(name);
          if (!secret.value) throw new Error(`secret '${name}' has no value`);
          return secret.value;
        }
      : undefined,
  );

  let redis: Redis | undefined;
  let blobService: BlobServiceClient | undefined;
  let cosmos: CosmosClient | undefined;
  return {
    config,
    credential: getCredential,
    redis: () =>
      (redis ??= new Redis(config.redis.url, {
        password: config.redis.password,
        connectTimeout: 5000,
        commandTimeout: 5000,
        maxRetriesPerRequest: 2,
        // A down Redis must fail fast, not queue commands forever (the proxy falls back to a spool).
        enableOfflineQueue: false,
        lazyConnect: false,
      })),
    blobService: () =>
      (blobService ??= config.storage.connectionString
        ? BlobServiceClient.fromConnectionString(config.storage.connectionString)
        : new BlobServiceClient(config.storage.blobUrl as string, getCredential())),
    cosmos: () =>
      (cosmos ??= new CosmosClient({
        endpoint: config.cosmos.endpoint,
        ...(config.cosmos.key ? { key: config.cosmos.key } : { aadCredentials: getCredential() }),
        // Only ever for the emulator on loopback (enforced by the config schema).
        ...(config.cosmos.allowSelfSignedCert
          ? { agent: new https.Agent({ rejectUnauthorized: false }) }
          : {}),
        connectionPolicy: { requestTimeout: 10_000 },
      })),
    close() {
      redis?.disconnect();
      cosmos?.dispose();
      return Promise.resolve();
    },
  };
}
