import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LocalStack } from '../local/stack';
import { ATTRIBUTION_HEADERS } from '../shared/attribution';
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

export interface Caller {
  subscription: string;
  app?: string;
  department?: string;
  user?: string;
}

/**
 * The headers APIM adds to every request it forwards: the function key, the gateway secret and
 * the caller's attribution. An override set to undefined leaves that header out.
 */
export function gatewayHeaders(
  stack: LocalStack,
  requestId: string,
  caller: Caller,
  overrides: Record<string, string | undefined> = {},
): Record<string, string> {
  const all: Record<string, string | undefined> = {
    'x-functions-key': stack.settings.LOCAL_FUNCTION_KEY,
    [ATTRIBUTION_HEADERS.gatewaySecret]: process.env.GATEWAY_SHARED_SECRET,
    [ATTRIBUTION_HEADERS.subscription]: caller.subscription,
    [ATTRIBUTION_HEADERS.app]: caller.app,
    [ATTRIBUTION_HEADERS.department]: caller.department,
    [ATTRIBUTION_HEADERS.user]: caller.user,
    [ATTRIBUTION_HEADERS.requestId]: requestId,
    ...overrides,
  };
  return Object.fromEntries(
    Object.entries(all).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}
