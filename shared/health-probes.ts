import type { AppContext } from './app-context';
import type { Probe } from './health';
import { ProbeError } from './health';

const COGNITIVE_SERVICES_SCOPE = 'https://cognitiveservices.azure.com/.default';

/** One probe per dependency the app cannot work without. */
export function dependencyProbes(app: AppContext): Record<string, Probe> {
  const { config } = app;
  return {
    redis: async () => {
      await app.redis().ping();
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
      error instanceof Error ? `${error.message} (${String(error.cause)})` : String(error),
    );
  }
  await response.body?.cancel();
  if (response.status === 401 || response.status === 403) {
    throw new ProbeError('unauthorized', `${url} answered ${response.status}`);
  }
  if (!response.ok) throw new ProbeError('error', `${url} answered ${response.status}`);
}
