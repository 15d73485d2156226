import https from 'node:https';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { DefaultAzureCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { BlobServiceClient } from '@azure/storage-blob';
import { CosmosClient } from '@azure/cosmos';
import { Redis } from 'ioredis';
import type { AppConfig } from './config';
import { loadConfig } from './config';
import type { Telemetry } from './telemetry';
import { createTelemetry } from './telemetry';
import type { UsageEvent } from './usage';
import { ensureError } from './errors';
import { UsageRecorder } from './usage-recorder';
import { BlobUsageSpool, USAGE_SPOOL_CONTAINER } from './usage-spool';

export const COGNITIVE_SERVICES_SCOPE = 'https://cognitiveservices.azure.com/.default';

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
  usageRecorder(): UsageRecorder;
  telemetry: Telemetry;
  /** Records a served request's usage (Redis, else the spool) and reports it to telemetry. */
  recordUsage(event: UsageEvent): Promise<void>;
  usageSpool(): BlobUsageSpool;
  /** Headers that authenticate an upstream Azure OpenAI / Speech call: the key, or an Entra token. */
  cognitiveAuthHeaders(key: string | undefined): Promise<Record<string, string>>;
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
  let spool: BlobUsageSpool | undefined;
  let recorder: UsageRecorder | undefined;
  let token: AccessToken | undefined;
  let lastSpoolWarning = 0;
  const telemetry = await createTelemetry(config.appInsightsConnectionString);
  const blobs = (): BlobServiceClient =>
    (blobService ??= config.storage.connectionString
      ? BlobServiceClient.fromConnectionString(config.storage.connectionString)
      : new BlobServiceClient(config.storage.blobUrl as string, getCredential()));
  const redisClient = (): Redis =>
    (redis ??= new Redis(config.redis.url, {
      password: config.redis.password,
      connectTimeout: 5000,
      commandTimeout: 5000,
      maxRetriesPerRequest: 2,
      // A down Redis must fail fast, not queue commands forever (usage then goes to the spool).
      enableOfflineQueue: false,
      // Writes issued in the same tick share one socket write: one syscall for many requests' events.
      enableAutoPipelining: true,
    }));
  const usageSpool = (): BlobUsageSpool =>
    (spool ??= new BlobUsageSpool(blobs().getContainerClient(USAGE_SPOOL_CONTAINER)));
  const usageRecorder = (): UsageRecorder =>
    (recorder ??= new UsageRecorder(redisClient, usageSpool(), {
      redisTimeoutMs: config.proxy.redisWriteTimeoutMs,
      onSpooled: (_event, reason) => {
        // One line per outage, not per request: the spool is doing its job.
        if (Date.now() - lastSpoolWarning < 60_000) return;
        lastSpoolWarning = Date.now();
        console.warn(
          `Redis unavailable (${ensureError(reason).message}); spooling usage events to blob storage.`,
        );
      },
      onUnrecorded: (event, error) =>
        console.error(`USAGE_EVENT_UNRECORDED ${JSON.stringify(event)} ${ensureError(error).message}`),
    }));
  return {
    config,
    credential: getCredential,
    redis: redisClient,
    blobService: blobs,
    cosmos: () =>
      (cosmos ??= new CosmosClient({
        endpoint: config.cosmos.endpoint,
        ...(config.cosmos.key ? { key: config.cosmos.key } : { aadCredentials: getCredential() }),
        // Only ever for the emulator on loopback (enforced by the config schema).
        ...(config.cosmos.allowSelfSignedCert
          ? { agent: new https.Agent({ rejectUnauthorized: false, keepAlive: true }) }
          : {}),
        connectionPolicy: { requestTimeout: 10_000 },
      })),
    usageSpool,
    telemetry,
    async recordUsage(event) {
      const outcome = await usageRecorder().record(event);
      telemetry.usage(event, outcome);
    },
    usageRecorder,
    async cognitiveAuthHeaders(key): Promise<Record<string, string>> {
      if (key) return { 'api-key': key };
      // Tokens last about an hour; refresh five minutes before expiry.
      if (!token || token.expiresOnTimestamp - Date.now() < 5 * 60_000) {
        const fresh = await getCredential().getToken(COGNITIVE_SERVICES_SCOPE);
        if (!fresh) throw new Error('No Entra ID token for Azure AI services (Cognitive Services scope).');
        token = fresh;
      }
      return { authorization: `Bearer ${token.token}` };
    },
    close() {
      redis?.disconnect();
      cosmos?.dispose();
      return Promise.resolve();
    },
  };
}
