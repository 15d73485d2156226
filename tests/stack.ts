import type { LocalStack } from '../local/stack';
import { startLocalStack } from '../local/stack';

/**
 * The whole local stack for a test file: real Redis, Azurite, Cosmos emulator and upstream
 * simulators on random ports, in memory, and the app's own functions loaded from source.
 */
export function startTestStack(): Promise<LocalStack> {
  for (const name of [
    'REDIS_URL',
    'STORAGE_CONNECTION_STRING',
    'STORAGE_BLOB_URL',
    'COSMOS_ENDPOINT',
    'AZURE_OPENAI_ENDPOINT',
    'SPEECH_ENDPOINT',
    'SPEECH_REGION',
  ]) {
    delete process.env[name];
  }
  return startLocalStack({
    port: 0,
    persist: false,
    mode: 'source',
    timers: 'manual',
    readSettingsFile: false,
  });
}
