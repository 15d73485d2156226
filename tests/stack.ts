import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LocalStack } from '../local/stack';
import { startLocalStack } from '../local/stack';

/**
 * The whole local stack for a test file: real Redis, Azurite, Cosmos emulator and upstream
 * simulators on random ports, in memory (or, with `persist`, in a fresh temporary folder, as a
 * production Redis with persistence keeps its data across a restart), and the app's own
 * functions loaded from source.
 */
export function startTestStack(options: { persist?: boolean } = {}): Promise<LocalStack> {
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
  if (options.persist) process.env.LOCAL_DATA_DIR = mkdtempSync(join(tmpdir(), 'chargeback-test-'));
  return startLocalStack({
    port: 0,
    persist: options.persist ?? false,
    mode: 'source',
    timers: 'manual',
    readSettingsFile: false,
  });
}
