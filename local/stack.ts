import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LocalFunctionsHost } from './host/host';
import { findAppRoot, resolveEntryModules } from './host/app-entry';
import type { LocalCredentials } from './credentials';
import { localCredentials } from './credentials';
import type { GatewayConfig } from './gateway/local-config';
import { readGatewayConfig } from './gateway/local-config';
import type { LocalGateway } from './gateway/server';
import { startLocalGateway } from './gateway/server';
import { observeRecordedUsage, requestLogLine } from './request-log';
import { installFunctionsCore } from './host/install-core';
import { startAzurite } from './services/azurite';
import { createLocalCosmosClient, startCosmos } from './services/cosmos';
import { provisionBlobContainers, provisionCosmos } from './services/provision';
import { startRedis } from './services/redis';
import type { OpenAiSimulator } from './simulators/openai';
import { startOpenAiSimulator } from './simulators/openai';
import type { SpeechSimulator } from './simulators/speech';
import { startSpeechSimulator } from './simulators/speech';
import type { LocalSettings } from './settings';
import { applyLocalSettingsFile, readLocalSettings } from './settings';

export interface StandIn {
  name: string;
  url: string;
  detail?: string;
  stop(): Promise<void>;
  /** Start again after stop(), where the stand-in supports it (Redis: outage tests). */
  restart?(): Promise<void>;
  /** The stand-in's process, where it runs as one (outage tests pause it with SIGSTOP). */
  pid?(): number;
}

const STAND_IN_ORDER = [
  'Redis',
  'Azurite',
  'Cosmos DB emulator',
  'Azure OpenAI simulator',
  'Azure Speech simulator',
];

export interface LocalStack {
  host: LocalFunctionsHost;
  /** The local gateway: the APIM policy files, executed, in front of the host. */
  gateway: LocalGateway;
  gatewayConfig: GatewayConfig;
  settings: LocalSettings;
  /** What a caller sends in place of API Management (keys, gateway secret). */
  credentials: LocalCredentials;
  /** The stand-ins this stack started (dependencies configured in the environment are not listed). */
  standIns: StandIn[];
  /** The upstream simulators, when they were started (tests inject faults through them). */
  openAiSimulator?: OpenAiSimulator;
  speechSimulator?: SpeechSimulator;
  /** Real endpoints taken from the environment instead of a stand-in. */
  configured: Array<{ name: string; url: string }>;
  settingsFile?: string;
  stop(): Promise<void>;
}

export interface LocalStackOptions {
  /** Overrides LOCAL_HOST_PORT; 0 picks a free port (tests). */
  port?: number;
  /** Overrides LOCAL_GATEWAY_PORT; 0 picks a free port (tests). Tests pass 0 or leave the port to `port`. */
  gatewayPort?: number;
  /** Overrides the gateway configuration file (tests with low limits). */
  gatewayConfig?: GatewayConfig;
  /** Keep Redis and Azurite data under LOCAL_DATA_DIR (npm start); tests keep everything in memory. */
  persist: boolean;
  /** `compiled` loads dist/ (npm start); `source` loads the TypeScript sources (tests under jest). */
  mode: 'compiled' | 'source';
  timers: 'schedule' | 'manual';
  /** Read local.settings.json as Core Tools does (npm start only: tests must not depend on it). */
  readSettingsFile: boolean;
  log?: (line: string) => void;
  /**
   * One line per HTTP request the host answers (see request-log.ts), without a timestamp: on for
   * `npm start`, off unless given (tests, the demo's private stack).
   */
  requestLog?: (line: string) => void;
}

/**
 * Starts whatever the app needs that is not configured (Redis, Azurite, the Cosmos DB emulator, the
 * Azure OpenAI and Speech simulators), points the app's settings at them, then starts the local
 * Functions host on the app's own registrations.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const env = process.env;
  const appRoot = findAppRoot(__dirname);
  const settingsFile = options.readSettingsFile ? applyLocalSettingsFile(appRoot, env) : undefined;
  const settings = readLocalSettings(env, appRoot);
  const dataDir = (name: string): string | undefined => {
    if (!options.persist) return undefined;
    const dir = join(settings.LOCAL_DATA_DIR, name);
    mkdirSync(dir, { recursive: true });
    return dir;
  };

  env.GATEWAY_SHARED_SECRET ||= settings.LOCAL_GATEWAY_KEY;
  const standIns: StandIn[] = [];
  let openAiSimulator: OpenAiSimulator | undefined;
  let speechSimulator: SpeechSimulator | undefined;
  const configured: Array<{ name: string; url: string }> = [];
  const starting: Array<Promise<void>> = [];
  const add = (name: string, configuredUrl: string | undefined, start: () => Promise<StandIn>): void => {
    if (configuredUrl) {
      configured.push({ name, url: configuredUrl });
      return;
    }
    starting.push(start().then((standIn) => void standIns.push(standIn)));
  };

  add('Redis', env.REDIS_URL, async () => {
    const dir = dataDir('redis');
    const redis = await startRedis({ dataDir: dir });
    env.REDIS_URL = redis.url;
    return {
      name: 'Redis',
      url: redis.url,
      detail: dir ? `data in ${dir}` : 'in memory',
      stop: () => redis.stop(),
      restart: () => redis.restart(),
      pid: () => redis.pid,
    };
  });
  add(
    'Storage',
    env.STORAGE_BLOB_URL ?? (env.STORAGE_CONNECTION_STRING ? 'connection string' : undefined),
    async () => {
      const dir = dataDir('azurite');
      const azurite = await startAzurite({ dataDir: dir });
      env.STORAGE_CONNECTION_STRING = azurite.connectionString;
      env.AzureWebJobsStorage ||= azurite.connectionString;
      await provisionBlobContainers(azurite.connectionString, env.REPORTS_CONTAINER).catch(
        async (error: unknown) => {
          await azurite.stop();
          throw error;
        },
      );
      return {
        name: 'Azurite',
        url: azurite.blobEndpoint,
        detail: `queue ${azurite.queueEndpoint}, table ${azurite.tableEndpoint}; ${dir ? `data in ${dir}` : 'in memory'}`,
        stop: () => azurite.stop(),
        pid: () => azurite.pid,
      };
    },
  );
  add('Cosmos DB', env.COSMOS_ENDPOINT, async () => {
    const cosmos = await startCosmos();
    env.COSMOS_ENDPOINT = cosmos.endpoint;
    env.COSMOS_KEY = cosmos.key;
    env.COSMOS_ALLOW_SELF_SIGNED_CERT = 'true';
    const client = createLocalCosmosClient(cosmos.endpoint, cosmos.key);
    try {
      await provisionCosmos(client, env.COSMOS_DATABASE);
    } catch (error) {
      await cosmos.stop();
      throw error;
    } finally {
      client.dispose();
    }
    return {
      name: 'Cosmos DB emulator',
      url: cosmos.endpoint,
      detail: 'in memory',
      stop: () => cosmos.stop(),
    };
  });
  add('Azure OpenAI', env.AZURE_OPENAI_ENDPOINT, async () => {
    const simulator = await startOpenAiSimulator();
    openAiSimulator = simulator;
    env.AZURE_OPENAI_ENDPOINT = simulator.url;
    env.AZURE_OPENAI_API_KEY = simulator.apiKey;
    return { name: 'Azure OpenAI simulator', url: simulator.url, stop: () => simulator.close() };
  });
  add('Azure Speech', env.SPEECH_ENDPOINT ?? env.SPEECH_REGION, async () => {
    const simulator = await startSpeechSimulator();
    speechSimulator = simulator;
    env.SPEECH_ENDPOINT = simulator.url;
    env.SPEECH_KEY = simulator.key;
    env.SPEECH_REGION ||= simulator.region;
    return { name: 'Azure Speech simulator', url: simulator.url, stop: () => simulator.close() };
  });

  const stopStandIns = async (): Promise<void> => {
    await Promise.allSettled(standIns.map((s) => s.stop()));
  };
  const results = await Promise.allSettled(starting);
  standIns.sort((a, b) => STAND_IN_ORDER.indexOf(a.name) - STAND_IN_ORDER.indexOf(b.name));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length > 0) {
    await stopStandIns();
    throw new Error(
      `Could not start the local stand-ins:\n${failed.map((f) => `  - ${describe(f.reason)}`).join('\n')}`,
    );
  }

  const requestLog = options.requestLog;
  installFunctionsCore();
  const host = new LocalFunctionsHost({
    appRoot,
    entryModules: resolveEntryModules(appRoot, options.mode),
    port: options.port ?? settings.LOCAL_HOST_PORT,
    keys: { functionKey: settings.LOCAL_FUNCTION_KEY, masterKey: settings.LOCAL_MASTER_KEY },
    timers: options.timers,
    log: options.log,
    onHttpExchange: requestLog && ((exchange) => requestLog(requestLogLine(exchange))),
  });
  try {
    await host.start();
  } catch (error) {
    await stopStandIns();
    throw error;
  }
  if (requestLog) {
    try {
      await observeRecordedUsage(host);
    } catch (error) {
      await host.stop();
      await stopStandIns();
      throw error;
    }
  }

  const credentials = localCredentials(settings, env);
  let gateway: LocalGateway;
  const gatewayConfig = options.gatewayConfig ?? readGatewayConfig(appRoot, settings.LOCAL_GATEWAY_CONFIG);
  try {
    gateway = await startLocalGateway({
      port: options.gatewayPort ?? (options.port === 0 ? 0 : settings.LOCAL_GATEWAY_PORT),
      config: gatewayConfig,
      supplied: {
        functionsBaseUrl: `${host.url}/api`,
        functionKey: settings.LOCAL_FUNCTION_KEY,
        gatewaySecret: credentials.gatewaySecret,
      },
      root: appRoot,
    });
  } catch (error) {
    await host.stop();
    await stopStandIns();
    throw error;
  }

  let stopping: Promise<void> | undefined;
  return {
    host,
    gateway,
    gatewayConfig,
    settings,
    credentials,
    standIns,
    openAiSimulator,
    speechSimulator,
    configured,
    settingsFile,
    stop: () =>
      (stopping ??= (async () => {
        await gateway.stop();
        await host.stop();
        await stopStandIns();
      })()),
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
