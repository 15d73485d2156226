import { z } from 'zod';
import { DEFAULT_CHARGEBACK_CONFIG } from '../chargeback/default-config';
import type { ChargebackConfigState } from '../chargeback/model';
import { checkChargebackConfig } from '../chargeback/model';
import { GATEWAY_HEADERS } from '../contracts/gateway-headers';
import type { SettingName } from '../contracts/settings';
import { REQUIRED_SETTING_GROUPS, SECRET_SETTING_NAMES, SETTING_NAMES } from '../contracts/settings';
import { BLOB_CONTAINERS, COSMOS_DATABASE } from '../contracts/storage';

/**
 * Every setting the app reads, in one place. Parsed once at start-up (an `appStart` hook), so a
 * bad or missing setting stops the app with a message that names it instead of failing on the
 * first request. In Azure, connections are identity-based (DefaultAzureCredential / managed
 * identity) and secrets come from Key Vault; keys and connection strings are for local stand-ins.
 */

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Environment values are trimmed and an empty value counts as unset. */
const optionalString = z.preprocess(
  (value) => (typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined),
  z.string().optional(),
);

const url = (protocols: string[], example: string) =>
  z.preprocess(
    (value) => (typeof value === 'string' ? value.trim() : value),
    z
      .string({ error: `required (for example ${example})` })
      .min(1, { message: `required (for example ${example})`, abort: true })
      .refine(
        (value) => {
          try {
            return protocols.includes(new URL(value).protocol);
          } catch {
            return false;
          }
        },
        `must be a ${protocols.join(' or ')} URL such as ${example}`,
      )
      .transform((value) => value.replace(/\/+$/, '')),
  );

const optionalUrl = (protocols: string[], example: string) =>
  z.preprocess(
    (value) => (typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined),
    url(protocols, example).optional(),
  );

const flag = z.preprocess(
  (value) => (typeof value === 'string' ? value.trim().toLowerCase() : value),
  z
    .enum(['true', 'false', '1', '0', ''])
    .optional()
    .transform((value) => value === 'true' || value === '1'),
);

const positiveInt = (fallback: number) =>
  z.preprocess(
    (value) => (typeof value === 'string' && value.trim() !== '' ? Number(value) : undefined),
    z.number().int().positive().default(fallback),
  );

const MIN_GATEWAY_SECRET_LENGTH = 16;

/** `keyvault:<secret-name>`: resolved from the vault named by KEY_VAULT_URI at start-up. */
const KEY_VAULT_REFERENCE = /^keyvault:([0-9a-zA-Z-]{1,127})$/;

const GATEWAY_SECRET_REQUIRED = `required: the secret APIM sends in ${GATEWAY_HEADERS.gatewayKey} (use keyvault:<name> in Azure)`;

/** Typed against contracts/settings.ts: a setting added there and not here (or the reverse) fails to compile. */
const rawSchema = z.object({
  KEY_VAULT_URI: optionalUrl(['https:'], 'https://kv-chargeback.vault.azure.net'),

  REDIS_URL: url(['redis:', 'rediss:'], 'rediss://redis-chargeback.redis.cache.windows.net:6380'),
  REDIS_PASSWORD: optionalString,
  /**
   * Entra ID authentication to Redis (Azure Managed Redis with access keys disabled): the object id
   * of the app's identity, the Redis user its tokens authenticate as. Instead of REDIS_PASSWORD.
   */
  /**
   * `true` for a Redis that exposes its shards to the client (Azure Managed Redis with the OSS
   * clustering policy, a self-managed Redis Cluster): the app then uses a cluster-aware client.
   * Every key layout keeps a script's keys in one slot, so both policies work.
   */
  REDIS_CLUSTER: z.preprocess(
    (value) => (typeof value === 'string' && value.trim() !== '' ? value.trim().toLowerCase() : undefined),
    z
      .enum(['true', 'false'])
      .default('false')
      .transform((v) => v === 'true'),
  ),
  REDIS_ENTRA_OBJECT_ID: z.preprocess(
    (value) => (typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined),
    z.uuid("must be the object (principal) id of the app's identity, a GUID").optional(),
  ),

  STORAGE_CONNECTION_STRING: optionalString,
  STORAGE_BLOB_URL: optionalUrl(['https:', 'http:'], 'https://stchargeback.blob.core.windows.net'),
  REPORTS_CONTAINER: z.preprocess(
    (value) => (typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined),
    z
      .string()
      .regex(/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/, 'must be a valid blob container name')
      .default(BLOB_CONTAINERS.reports),
  ),

  COSMOS_ENDPOINT: url(['https:'], 'https://cosmos-chargeback.documents.azure.com'),
  COSMOS_KEY: optionalString,
  COSMOS_DATABASE: z.preprocess(
    (value) => (typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined),
    z.string().default(COSMOS_DATABASE),
  ),
  COSMOS_ALLOW_SELF_SIGNED_CERT: flag,

  AZURE_OPENAI_ENDPOINT: url(['https:', 'http:'], 'https://aoai-chargeback.openai.azure.com'),
  AZURE_OPENAI_API_KEY: optionalString,
  AZURE_OPENAI_API_VERSION: z.preprocess(
    (value) => (typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined),
    z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}(-preview)?$/, 'must look like 2024-10-21')
      .default('2024-10-21'),
  ),

  SPEECH_REGION: optionalString,
  SPEECH_ENDPOINT: optionalUrl(['https:', 'http:'], 'https://eastus.api.cognitive.microsoft.com'),
  SPEECH_KEY: optionalString,
  /**
   * The Speech resource's ARM id, for Entra ID tokens on a regional endpoint (`aad#<id>#<token>`).
   * Not needed with a custom-domain SPEECH_ENDPOINT, nor with SPEECH_KEY.
   */
  SPEECH_RESOURCE_ID: z.preprocess(
    (value) => (typeof value === 'string' && value.trim() === '' ? undefined : value),
    z
      .string()
      .trim()
      .regex(
        /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.CognitiveServices\/accounts\/[^/]+$/i,
        'must be a Cognitive Services account id: /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.CognitiveServices/accounts/<name>',
      )
      .optional(),
  ),

  GATEWAY_SHARED_SECRET: z.preprocess(
    (value) => (typeof value === 'string' ? value.trim() : value),
    z
      .string({
        error: GATEWAY_SECRET_REQUIRED,
      })
      .min(1, GATEWAY_SECRET_REQUIRED)
      .refine(
        (value) => KEY_VAULT_REFERENCE.test(value) || value.length >= MIN_GATEWAY_SECRET_LENGTH,
        `must be at least ${MIN_GATEWAY_SECRET_LENGTH} characters`,
      ),
  ),
  MAX_REQUEST_BYTES: positiveInt(8 * 1024 * 1024),
  UPSTREAM_TIMEOUT_MS: positiveInt(120_000),
  REDIS_WRITE_TIMEOUT_MS: positiveInt(250),
  /**
   * Durable writes: how many replicas must acknowledge a usage write (Redis WAIT) before it counts
   * as recorded; 0 (the default) trusts the primary alone. When fewer acknowledge in time, the
   * event also goes to the spool (both are merged by id).
   */
  REDIS_WAIT_REPLICAS: z.preprocess(
    (value) => (typeof value === 'string' && value.trim() !== '' ? Number(value) : undefined),
    z.number().int().min(0).max(5).default(0),
  ),
  REDIS_WAIT_TIMEOUT_MS: positiveInt(100),
  /** Longest wait for one spool (Blob Storage) write before the last-resort record is written. */
  SPOOL_WRITE_TIMEOUT_MS: positiveInt(2000),
  MAX_AUDIO_BYTES: positiveInt(10 * 1024 * 1024),
  /** Azure's short-audio recognition takes up to 60 s. */
  MAX_AUDIO_SECONDS: positiveInt(60),
  MAX_TTS_CHARACTERS: positiveInt(10_000),

  APPLICATIONINSIGHTS_CONNECTION_STRING: optionalString,
  HEALTH_CHECK_TIMEOUT_MS: positiveInt(2000),

  /**
   * Departments, app mapping, shared costs and markup (JSON, see README); defaults to the shipped
   * example. Checked in full at start, but never fatal: a bad configuration is reported (start-up
   * log, health, the run's status) and only report writing waits for it; metering goes on.
   */
  CHARGEBACK_CONFIG: z.preprocess(
    (value) => (typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined),
    z
      .string()
      .optional()
      .transform((value): ChargebackConfigState => {
        if (value === undefined) return { ok: true, config: DEFAULT_CHARGEBACK_CONFIG };
        let json: unknown;
        try {
          json = JSON.parse(value);
        } catch {
          return { ok: false, problems: ['must be JSON'] };
        }
        return checkChargebackConfig(json);
      }),
  ),
  /** How long after a window closes its usage is aggregated: streams in flight and spool retries land first. */
  CHARGEBACK_GRACE_SECONDS: positiveInt(120),
  /**
   * How long the chargeback configuration the admin API keeps in Cosmos DB is cached: a change
   * reaches the proxies and the runs within this many seconds (plus one read).
   */
  CONFIG_REFRESH_SECONDS: positiveInt(30),
} satisfies Record<SettingName, z.ZodType>);

/** Rules that span settings; checked on the raw environment so they are reported with the rest. */
function crossFieldProblems(env: NodeJS.ProcessEnv): string[] {
  const value = (name: string): string | undefined => {
    const raw = env[name]?.trim();
    return raw ? raw : undefined;
  };
  const problems: string[] = [];
  if (value('REDIS_CLUSTER')?.toLowerCase() === 'true' && value('REDIS_ENTRA_OBJECT_ID')) {
    problems.push(
      'REDIS_CLUSTER: Entra ID sign-in (REDIS_ENTRA_OBJECT_ID) is supported on a single endpoint (the Enterprise clustering policy), not with a cluster-aware client yet',
    );
  }
  if (value('REDIS_PASSWORD') && value('REDIS_ENTRA_OBJECT_ID')) {
    problems.push(
      'REDIS_ENTRA_OBJECT_ID: set REDIS_PASSWORD (an access key) or REDIS_ENTRA_OBJECT_ID (Entra ID), not both',
    );
  }
  if (!REQUIRED_SETTING_GROUPS.storage.some(value)) {
    problems.push(
      'STORAGE_BLOB_URL: set STORAGE_BLOB_URL (identity-based, in Azure) or STORAGE_CONNECTION_STRING (local stand-ins)',
    );
  }
  if (!REQUIRED_SETTING_GROUPS.speech.some(value)) {
    problems.push('SPEECH_REGION: set SPEECH_REGION or SPEECH_ENDPOINT');
  }
  const cosmos = value('COSMOS_ENDPOINT');
  const selfSigned = value('COSMOS_ALLOW_SELF_SIGNED_CERT')?.toLowerCase();
  if (
    (selfSigned === 'true' || selfSigned === '1') &&
    cosmos &&
    URL.canParse(cosmos) &&
    !isLoopback(cosmos)
  ) {
    problems.push(
      'COSMOS_ALLOW_SELF_SIGNED_CERT: is only allowed for a Cosmos DB emulator on a loopback address',
    );
  }
  for (const name of SECRET_SETTING_NAMES) {
    if (value(name)?.startsWith('@Microsoft.KeyVault(')) {
      problems.push(
        `${name}: the App Service Key Vault reference was not resolved; check that the app's identity can read the secret`,
      );
    }
  }
  if (!value('KEY_VAULT_URI')) {
    for (const name of SECRET_SETTING_NAMES) {
      if (KEY_VAULT_REFERENCE.test(value(name) ?? '')) {
        problems.push(`${name}: refers to Key Vault but KEY_VAULT_URI is not set`);
      }
    }
  }
  // A durable write waits for the replicas inside the wait for Redis: it must fit in it.
  const replicas = Number(value('REDIS_WAIT_REPLICAS') ?? 0);
  const waitMs = Number(value('REDIS_WAIT_TIMEOUT_MS') ?? 100);
  const writeMs = Number(value('REDIS_WRITE_TIMEOUT_MS') ?? 250);
  if (replicas > 0 && waitMs >= writeMs) {
    problems.push(
      `REDIS_WAIT_TIMEOUT_MS: must be shorter than REDIS_WRITE_TIMEOUT_MS (${writeMs} ms) when REDIS_WAIT_REPLICAS is set`,
    );
  }
  return problems;
}

export type RawConfig = z.infer<typeof rawSchema>;

/** The name of every setting the app reads. */
export const APP_SETTING_NAMES: readonly string[] = SETTING_NAMES;

export interface AppConfig {
  keyVaultUri?: string;
  /** `entraObjectId`: authenticate with the app identity's Entra ID tokens (renewed before they expire). */
  redis: { url: string; password?: string; entraObjectId?: string; cluster: boolean };
  storage: { connectionString?: string; blobUrl?: string; reportsContainer: string };
  cosmos: { endpoint: string; key?: string; database: string; allowSelfSignedCert: boolean };
  openai: { endpoint: string; apiKey?: string; apiVersion: string };
  speech: {
    region?: string;
    endpoint?: string;
    key?: string;
    resourceId?: string;
    maxAudioBytes: number;
    maxAudioSeconds: number;
    maxCharacters: number;
  };
  appInsightsConnectionString?: string;
  healthCheckTimeoutMs: number;
  chargeback: {
    config: ChargebackConfigState;
    graceMs: number;
    /** How long the stored configuration is cached (CONFIG_REFRESH_SECONDS). */
    configRefreshMs: number;
  };
  proxy: {
    gatewaySecret: string;
    maxRequestBytes: number;
    upstreamTimeoutMs: number;
    redisWriteTimeoutMs: number;
    /** Replicas that must acknowledge a usage write (0: the primary alone), and the wait for them. */
    redisWaitReplicas: number;
    redisWaitTimeoutMs: number;
    spoolWriteTimeoutMs: number;
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Reads a secret by name; in Azure this is Key Vault through the app's managed identity. */
export type SecretReader = (name: string) => Promise<string>;

/** Validates the environment. Pure: no I/O, Key Vault references stay unresolved. */
export function parseConfig(env: NodeJS.ProcessEnv): RawConfig {
  const parsed = rawSchema.safeParse(env);
  const problems = [
    ...(parsed.success
      ? []
      : parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`)),
    ...crossFieldProblems(env),
  ];
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  return parsed.data;
}

/** Validates the environment and resolves `keyvault:` references into an AppConfig. */
export async function loadConfig(env: NodeJS.ProcessEnv, readSecret?: SecretReader): Promise<AppConfig> {
  const raw = parseConfig(env);
  const resolve = async (name: SettingName): Promise<string | undefined> => {
    const value = raw[name];
    if (typeof value !== 'string') return undefined;
    const reference = KEY_VAULT_REFERENCE.exec(value);
    if (!reference) return value;
    if (!readSecret)
      throw new ConfigError([`${name}: refers to Key Vault but no secret reader is available`]);
    try {
      return await readSecret(reference[1] as string);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ConfigError([
        `${name}: cannot read secret '${reference[1]}' from ${raw.KEY_VAULT_URI}: ${reason}`,
      ]);
    }
  };
  const secrets = new Map(
    await Promise.all(SECRET_SETTING_NAMES.map(async (name) => [name, await resolve(name)] as const)),
  );
  const secret = (name: SettingName): string | undefined => secrets.get(name);
  const redisPassword = secret('REDIS_PASSWORD');
  const storageConnectionString = secret('STORAGE_CONNECTION_STRING');
  const cosmosKey = secret('COSMOS_KEY');
  const openaiKey = secret('AZURE_OPENAI_API_KEY');
  const speechKey = secret('SPEECH_KEY');
  const appInsights = secret('APPLICATIONINSIGHTS_CONNECTION_STRING');
  const gatewaySecret = secret('GATEWAY_SHARED_SECRET');
  return {
    keyVaultUri: raw.KEY_VAULT_URI,
    redis: {
      url: raw.REDIS_URL,
      password: redisPassword,
      entraObjectId: raw.REDIS_ENTRA_OBJECT_ID,
      cluster: raw.REDIS_CLUSTER,
    },
    storage: {
      connectionString: storageConnectionString,
      blobUrl: raw.STORAGE_BLOB_URL,
      reportsContainer: raw.REPORTS_CONTAINER,
    },
    cosmos: {
      endpoint: raw.COSMOS_ENDPOINT,
      key: cosmosKey,
      database: raw.COSMOS_DATABASE,
      allowSelfSignedCert: raw.COSMOS_ALLOW_SELF_SIGNED_CERT,
    },
    openai: {
      endpoint: raw.AZURE_OPENAI_ENDPOINT,
      apiKey: openaiKey,
      apiVersion: raw.AZURE_OPENAI_API_VERSION,
    },
    speech: {
      region: raw.SPEECH_REGION,
      endpoint: raw.SPEECH_ENDPOINT,
      key: speechKey,
      resourceId: raw.SPEECH_RESOURCE_ID,
      maxAudioBytes: raw.MAX_AUDIO_BYTES,
      maxAudioSeconds: raw.MAX_AUDIO_SECONDS,
      maxCharacters: raw.MAX_TTS_CHARACTERS,
    },
    appInsightsConnectionString: appInsights,
    healthCheckTimeoutMs: raw.HEALTH_CHECK_TIMEOUT_MS,
    chargeback: {
      config: raw.CHARGEBACK_CONFIG,
      graceMs: raw.CHARGEBACK_GRACE_SECONDS * 1000,
      configRefreshMs: raw.CONFIG_REFRESH_SECONDS * 1000,
    },
    proxy: {
      gatewaySecret: checkedGatewaySecret(gatewaySecret ?? raw.GATEWAY_SHARED_SECRET),
      maxRequestBytes: raw.MAX_REQUEST_BYTES,
      upstreamTimeoutMs: raw.UPSTREAM_TIMEOUT_MS,
      redisWriteTimeoutMs: raw.REDIS_WRITE_TIMEOUT_MS,
      redisWaitReplicas: raw.REDIS_WAIT_REPLICAS,
      redisWaitTimeoutMs: raw.REDIS_WAIT_TIMEOUT_MS,
      spoolWriteTimeoutMs: raw.SPOOL_WRITE_TIMEOUT_MS,
    },
  };
}

/** The gateway secret is checked again once a Key Vault reference has been resolved. */
function checkedGatewaySecret(secret: string): string {
  if (secret.length < MIN_GATEWAY_SECRET_LENGTH) {
    throw new ConfigError([
      `GATEWAY_SHARED_SECRET: must be at least ${MIN_GATEWAY_SECRET_LENGTH} characters`,
    ]);
  }
  return secret;
}

function isLoopback(endpoint: string): boolean {
  try {
    return LOOPBACK_HOSTS.has(new URL(endpoint).hostname);
  } catch {
    return false;
  }
}
