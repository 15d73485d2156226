import type { CosmosClient } from '@azure/cosmos';
import type { BlobServiceClient } from '@azure/storage-blob';
import type { Cluster, Redis } from 'ioredis';
import type { AppConfig } from '../config/settings';
import type { Probe } from './health';
import { ProbeError } from './health';
import { whenRedisReady } from './redis-ready';
import { speechUrl } from './speech-upstream';

/** What the probes reach: the app's own clients, so a probe tests the connections the app uses. */
export interface ProbeTargets {
  config: AppConfig;
  redis(): Redis | Cluster;
  blobService(): BlobServiceClient;
  cosmos(): CosmosClient;
  cognitiveAuthHeaders(key: string | undefined): Promise<Record<string, string>>;
  /** Azure Speech's REST authentication, as the Speech calls use it (key, or `aad#…` Entra token). */
  speechAuthHeaders(): Promise<Record<string, string>>;
}

/** One probe per dependency the app cannot work without. */
export function dependencyProbes(app: ProbeTargets): Record<string, Probe> {
  const { config } = app;
  return {
    redis: async (signal) => {
      const redis = app.redis();
      await whenRedisReady(redis, signal);
      await redis.ping();
    },
    blobStorage: async (signal) => {
      await app
        .blobService()
        .getContainerClient(config.storage.reportsContainer)
        .exists({ abortSignal: signal });
    },
    cosmosDb: async (signal) => {
      await app.cosmos().getDatabaseAccount({ abortSignal: signal });
    },
    azureOpenAI: async (signal) => {
      const version = encodeURIComponent(config.openai.apiVersion);
      const headers = await app.cognitiveAuthHeaders(config.openai.apiKey);
      await expectOk(`${config.openai.endpoint}/openai/models?api-version=${version}`, headers, signal);
    },
    azureSpeech: async (signal) => {
      const headers = await app.speechAuthHeaders();
      const url = speechUrl(config.speech, 'tts', '/cognitiveservices/voices/list', 'https');
      await expectOk(url.toString(), headers, signal);
    },
  };
}

async function expectOk(url: string, headers: Record<string, string>, signal: AbortSignal): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url, { headers, signal });
  } catch (error) {
    throw new ProbeError(
      'unreachable',
      error instanceof Error && error.cause instanceof Error
        ? `${error.message}: ${error.cause.message}`
        : String(error),
    );
  }
  await response.body?.cancel();
  if (response.status === 401 || response.status === 403) {
    throw new ProbeError('unauthorized', `${url} answered ${response.status}`);
  }
  if (!response.ok) throw new ProbeError('error', `${url} answered ${response.status}`);
}
