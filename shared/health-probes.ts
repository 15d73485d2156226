import type { Redis } from 'ioredis';
import type { AppContext } from './app-context';
import type { Probe } from './health';
import { ProbeError } from './health';

const COGNITIVE_SERVICES_SCOPE = 'https://cognitiveservices.azure.com/.default';

/** One probe per dependency the app cannot work without. */
export function dependencyProbes(app: AppContext): Record<string, Probe> {
  const { config } = app;
  return {
    redis: async (signal) => {
      const redis = app.redis();
      await connected(redis, signal);
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
      const headers: Record<string, string> = config.openai.apiKey
        ? { 'api-key': config.openai.apiKey }
        : { authorization: `Bearer ${await bearerToken(app)}` };
      await expectOk(
        `${config.openai.endpoint}/openai/models?api-version=${encodeURIComponent(config.openai.apiVersion)}`,
        headers,
        signal,
      );
    },
    azureSpeech: async (signal) => {
      const base = config.speech.endpoint ?? `https://${config.speech.region}.tts.speech.microsoft.com`;
      const headers: Record<string, string> = config.speech.key
        ? { 'Ocp-Apim-Subscription-Key': config.speech.key }
        : { authorization: `Bearer ${await bearerToken(app)}` };
      await expectOk(`${base}/cognitiveservices/voices/list`, headers, signal);
    },
  };
}

/** Waits for the client's connection: commands fail fast while it is down (no offline queue). */
function connected(redis: Redis, signal: AbortSignal): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (error?: Error): void => {
      redis.off('ready', onReady);
      redis.off('error', onError);
      signal.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else resolve();
    };
    const onReady = (): void => done();
    const onError = (error: Error): void => done(error);
    const onAbort = (): void => done(new ProbeError('timeout', 'Redis did not connect in time'));
    redis.once('ready', onReady);
    redis.once('error', onError);
    signal.addEventListener('abort', onAbort);
  });
}

async function bearerToken(app: AppContext): Promise<string> {
  const token = await app.credential().getToken(COGNITIVE_SERVICES_SCOPE);
  if (!token) throw new ProbeError('unauthorized', 'no token for Cognitive Services');
  return token.token;
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
