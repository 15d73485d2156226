import { randomUUID } from 'node:crypto';
import https from 'node:https';
import { CosmosClient } from '@azure/cosmos';
import { BlobServiceClient } from '@azure/storage-blob';
import type { Cluster } from 'ioredis';
import { Redis } from 'ioredis';
import { clusterClient } from '../adapters/redis-cluster-client';
import { BlobQuarantine, BlobReportStore } from '../adapters/blob-reports';
import { BlobUsageSpool } from '../adapters/blob-spool';
import { CosmosConfigSource, CosmosConfigStore } from '../adapters/cosmos-config-store';
import { CosmosChargebackStore } from '../adapters/cosmos-store';
import type { Probe } from '../adapters/health';
import { dependencyProbes } from '../adapters/health-probes';
import { AppIdentity } from '../adapters/identity';
import { UndiciOpenAiUpstream } from '../adapters/openai-upstream';
import { RedisBudgetLedger } from '../adapters/redis-budget';
import { REDIS_ENTRA_SCOPE, RedisEntraAuth } from '../adapters/redis-entra';
import { watchRedisConnection } from '../adapters/redis-ready';
import { RedisUsageBuffer } from '../adapters/redis-usage-buffer';
import { SdkSpeechUpstream } from '../adapters/speech-upstream';
import type { Telemetry } from '../adapters/telemetry';
import { createTelemetry } from '../adapters/telemetry';
import type { ConfigSource } from '../chargeback/ports';
import { ChargebackSteps } from '../chargeback/run';
import { ensureError } from '../contracts/api-errors';
import { BLOB_CONTAINERS } from '../contracts/storage';
import type { UsageEvent } from '../contracts/usage-event';
import { BudgetGate } from '../metering/budget';
import type { OpenAiUpstream } from '../metering/openai-proxy';
import type { SpeechUpstream } from '../metering/speech-proxy';
import { lastResortLine, UNUSABLE_MARKER } from '../metering/last-resort';
import type { RecordOutcome } from '../metering/usage-recorder';
import { UsageRecorder } from '../metering/usage-recorder';
import type { AppConfig } from './settings';
import { loadConfig } from './settings';

/**
 * The composition root: reads the settings once and builds every adapter once, lazily on first
 * use, then reuses it for every invocation (the SDKs pool their connections). Functions take what
 * they need from here; the domain modules (metering, chargeback) receive their ports and never
 * reach for a global.
 */
export interface AppServices {
  config: AppConfig;
  telemetry: Telemetry;
  blobService(): BlobServiceClient;
  cosmos(): CosmosClient;
  /** The container finance reads reports from. */
  reportsContainer(): ReturnType<BlobServiceClient['getContainerClient']>;
  spool(): BlobUsageSpool;
  /** Records a served request's usage (Redis, else the spool) and reports it to telemetry. */
  recordUsage(event: UsageEvent): Promise<void>;
  openAiUpstream(): OpenAiUpstream;
  speechUpstream(): SpeechUpstream;
  /**
   * Monthly budgets: checks a proxied request against them before the provider is called, and counts
   * its cost after (Redis; the configuration from configSource(), the chargeback's price table).
   */
  budgets(): BudgetGate;
  chargeback(): ChargebackSteps;
  /**
   * The chargeback configuration in force and its version (budgets, runs): the admin API's, in
   * Cosmos DB (seeded from CHARGEBACK_CONFIG), cached for CONFIG_REFRESH_SECONDS.
   */
  configSource(): ConfigSource;
  /** The admin API's store: the configuration document, its audit trail, the price overrides. */
  configStore(): CosmosConfigStore;
  healthProbes(): Record<string, Probe>;
  /**
   * Creates the Blob containers the app writes to when they are missing, once, at start-up (the
   * deployment normally has). Cosmos DB containers are never created by the app: with data-plane
   * RBAC its identity may not. Returns what could not be ensured; metering goes on regardless.
   */
  ensureBlobContainers(): Promise<string[]>;
  /** Opens the Redis connection now (at start-up), so that the first requests do not wait for it. */
  connectRedis(): void;
  close(): Promise<void>;
}

/** Lazily creates a value once. */
function once<T>(create: () => T): () => T {
  let value: { v: T } | undefined;
  return () => (value ??= { v: create() }).v;
}

export async function createAppServices(env: NodeJS.ProcessEnv = process.env): Promise<AppServices> {
  const identity = new AppIdentity();
  const vault = env.KEY_VAULT_URI?.trim();
  const config = await loadConfig(env, vault ? identity.secretReader(vault) : undefined);
  const telemetry = await createTelemetry(config.appInsightsConnectionString);
  let lastSpoolWarning = 0;
  /** Neither store took a served request's usage: the whole event goes to the logs and telemetry. */
  const lastResort = (event: UsageEvent, reason: string, maybeStored: boolean): void => {
    console.error(lastResortLine(event, reason, maybeStored));
    telemetry.lastResort(event, reason, maybeStored);
  };

  let redisClient: Redis | Cluster | undefined;
  let writerClient: Redis | Cluster | undefined;
  let cosmosClient: CosmosClient | undefined;
  // Entra ID instead of a key: tokens of the app's identity, renewed before they expire.
  const redisEntra = config.redis.entraObjectId
    ? new RedisEntraAuth({
        username: config.redis.entraObjectId,
        token: () => identity.token(REDIS_ENTRA_SCOPE),
        log: (line) => console.warn(line),
      })
    : undefined;
  const clientOptions = {
    connectTimeout: 5000,
    commandTimeout: 5000,
    maxRetriesPerRequest: 2,
    // Writes issued in the same tick share one socket write: one syscall for many requests' events.
    enableAutoPipelining: true,
  };
  const newRedisClient = (label: string): Redis | Cluster => {
    const client = config.redis.cluster
      ? clusterClient(config.redis.url, config.redis.password, clientOptions)
      : new Redis(config.redis.url, {
          ...clientOptions,
          password: config.redis.password,
          // With Entra ID the client connects once it has a token (below).
          lazyConnect: redisEntra !== undefined,
          // A down Redis must fail fast, not queue commands forever (usage then goes to the spool).
          enableOfflineQueue: false,
        });
    // Errors handled, an outage logged once when it starts and once when it ends.
    watchRedisConnection(client, (line) => console.warn(`${label}${line}`));
    if (redisEntra && client instanceof Redis) {
      redisEntra.connect(client).catch((error: unknown) => {
        console.warn(`${label}Redis Entra ID sign-in failed: ${ensureError(error).message}`);
      });
    }
    return client;
  };
  const redis = (): Redis | Cluster => (redisClient ??= newRedisClient(''));
  // Durable writes (WAIT) block their connection while the replicas answer: a connection of their own.
  const usageWriter = (): Redis | Cluster =>
    config.proxy.redisWaitReplicas > 0 ? (writerClient ??= newRedisClient('(usage writes) ')) : redis();
  const blobService = once(() =>
    config.storage.connectionString
      ? BlobServiceClient.fromConnectionString(config.storage.connectionString)
      : new BlobServiceClient(config.storage.blobUrl as string, identity.credential()),
  );
  const cosmos = (): CosmosClient =>
    (cosmosClient ??= new CosmosClient({
      endpoint: config.cosmos.endpoint,
      ...(config.cosmos.key ? { key: config.cosmos.key } : { aadCredentials: identity.credential() }),
      // Only ever for the emulator on loopback (enforced by the config schema).
      ...(config.cosmos.allowSelfSignedCert
        ? { agent: new https.Agent({ rejectUnauthorized: false, keepAlive: true }) }
        : {}),
      connectionPolicy: { requestTimeout: 10_000 },
    }));
  const container = (name: string) => blobService().getContainerClient(name);
  const reportsContainer = once(() => container(config.storage.reportsContainer));
  const spool = once(() => new BlobUsageSpool(container(BLOB_CONTAINERS.usageSpool)));
  const usageBuffer = once(
    () =>
      new RedisUsageBuffer(redis, spool(), {
        waitReplicas: config.proxy.redisWaitReplicas,
        waitTimeoutMs: config.proxy.redisWaitTimeoutMs,
        writer: usageWriter,
        onReplay: (_stored, replayed, differences) => {
          console.warn(
            `USAGE_EVENT_REPLAYED id ${replayed.id}: already recorded with a different ${differences.join(', ')}; the first is kept. ${JSON.stringify(replayed)}`,
          );
          telemetry.replayed(replayed);
        },
      }),
  );
  const cognitiveAuthHeaders = (key: string | undefined) => identity.cognitiveAuthHeaders(key);
  const usageRecorder = once(
    () =>
      new UsageRecorder(usageBuffer(), spool(), {
        redisTimeoutMs: config.proxy.redisWriteTimeoutMs,
        onSpooled: (_event, reason) => {
          // One line per outage, not per request: the spool is doing its job.
          if (Date.now() - lastSpoolWarning < 60_000) return;
          lastSpoolWarning = Date.now();
          console.warn(
            `Redis unavailable (${ensureError(reason).message}); spooling usage events to blob storage.`,
          );
        },
        spoolTimeoutMs: config.proxy.spoolWriteTimeoutMs,
        onUnrecorded: (event, error, maybeStored) =>
          lastResort(event, ensureError(error).message, maybeStored),
      }),
  );
  const store = once(() => new CosmosChargebackStore(cosmos(), config.cosmos.database));
  const speech = once(
    () =>
      new SdkSpeechUpstream({
        endpoint: config.speech.endpoint,
        region: config.speech.region,
        key: config.speech.key,
        resourceId: config.speech.resourceId,
        entraToken: () => identity.cognitiveToken(),
        timeoutMs: config.proxy.upstreamTimeoutMs,
      }),
  );
  const configStore = once(
    () => new CosmosConfigStore(cosmos(), config.cosmos.database, config.chargeback.config),
  );
  const configSource = once(
    () =>
      new CosmosConfigSource(configStore(), config.chargeback.config, {
        ttlMs: config.chargeback.configRefreshMs,
        log: (line) => console.warn(line),
      }),
  );
  const services: AppServices = {
    config,
    telemetry,
    configSource,
    configStore,
    blobService,
    cosmos,
    reportsContainer,
    spool,
    async recordUsage(event) {
      let outcome: RecordOutcome;
      try {
        outcome = await usageRecorder().record(event);
      } catch (error) {
        // Not a store failing (those end in the last resort): the event itself is unusable (a
        // defect). The request was served all the same; the line keeps what there is, for an admin
        // to read, under a marker of its own: no re-import could take it.
        console.error(`${UNUSABLE_MARKER} ${JSON.stringify({ event, reason: ensureError(error).message })}`);
        outcome = 'last-resort';
      }
      telemetry.usage(event, outcome);
    },
    openAiUpstream: once(
      () =>
        new UndiciOpenAiUpstream({
          endpoint: config.openai.endpoint,
          authHeaders: () => cognitiveAuthHeaders(config.openai.apiKey),
          timeoutMs: config.proxy.upstreamTimeoutMs,
        }),
    ),
    speechUpstream: speech,
    budgets: once(
      () =>
        new BudgetGate({
          ledger: new RedisBudgetLedger(redis, { readyTimeoutMs: config.proxy.redisWriteTimeoutMs }),
          config: { current: () => services.configSource().current() },
          prices: store(),
          ledgerTimeoutMs: config.proxy.redisWriteTimeoutMs,
          configTimeoutMs: 2000,
          newId: randomUUID,
        }),
    ),
    chargeback: once(
      () =>
        new ChargebackSteps({
          buffer: usageBuffer(),
          store: store(),
          prices: store(),
          reports: new BlobReportStore(reportsContainer()),
          quarantine: new BlobQuarantine(container(BLOB_CONTAINERS.usageQuarantine)),
          config: configSource(),
          graceMs: config.chargeback.graceMs,
          onReportWritten: (report) => telemetry.reportWritten(report),
        }),
    ),
    healthProbes: () =>
      dependencyProbes({
        config,
        redis,
        blobService,
        cosmos,
        cognitiveAuthHeaders,
        speechAuthHeaders: () => speech().restAuthHeaders(),
      }),
    async ensureBlobContainers() {
      const names = [
        ...new Set([
          BLOB_CONTAINERS.usageSpool,
          BLOB_CONTAINERS.usageQuarantine,
          config.storage.reportsContainer,
        ]),
      ];
      const outcomes = await Promise.allSettled(names.map((name) => container(name).createIfNotExists()));
      return outcomes.flatMap((outcome, i) =>
        outcome.status === 'rejected' ? [`${names[i]}: ${ensureError(outcome.reason).message}`] : [],
      );
    },
    connectRedis() {
      redis();
      usageWriter();
    },
    close() {
      redisEntra?.close();
      redisClient?.disconnect();
      writerClient?.disconnect();
      cosmosClient?.dispose();
      return Promise.resolve();
    },
  };
  return services;
}

let current: Promise<AppServices> | undefined;

/** Built once, by the appStart hook; later calls return the same services. */
export function initializeAppServices(env: NodeJS.ProcessEnv = process.env): Promise<AppServices> {
  current ??= createAppServices(env).catch((error: unknown) => {
    current = undefined;
    throw error;
  });
  return current;
}

/** The services the functions use (built at start-up; built now if the start-up hook has not run). */
export function appServices(): Promise<AppServices> {
  return initializeAppServices();
}

export async function closeAppServices(): Promise<void> {
  const services = current;
  current = undefined;
  if (services) await (await services).close();
}
