import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';

/** Settings of the local runtime itself (never read by the app in Azure). Embedded defaults. */
const localSchema = z.object({
  LOCAL_HOST_PORT: z.coerce.number().int().min(0).max(65535).default(7071),
  /** The local gateway (the APIM policies, executed) in front of the host. */
  LOCAL_GATEWAY_PORT: z.coerce.number().int().min(0).max(65535).default(7080),
  /** The local gateway's products, subscriptions, keys and users (default local/gateway/apim.local.json). */
  LOCAL_GATEWAY_CONFIG: z.string().min(1).optional(),
  LOCAL_DATA_DIR: z.string().min(1).default('.data'),
  // Local-only keys, like the storage emulator's well-known key: never used in Azure.
  LOCAL_FUNCTION_KEY: z.string().min(8).default('local-function-key'),
  LOCAL_MASTER_KEY: z.string().min(8).default('local-master-key'),
  /** The gateway secret the local stack's callers present, standing in for APIM's named value. */
  LOCAL_GATEWAY_KEY: z.string().min(16).default('local-gateway-shared-secret'),
});

export type LocalSettings = z.infer<typeof localSchema>;

export const LOCAL_SETTING_NAMES: readonly string[] = Object.keys(localSchema.shape);

export function readLocalSettings(env: NodeJS.ProcessEnv, appRoot: string): LocalSettings {
  const defined = Object.fromEntries(
    Object.entries(env).filter(
      ([key, value]) => key.startsWith('LOCAL_') && value !== undefined && value.trim() !== '',
    ),
  );
  const parsed = localSchema.safeParse(defined);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`Invalid local runtime setting: ${problems}`);
  }
  return { ...parsed.data, LOCAL_DATA_DIR: resolve(appRoot, parsed.data.LOCAL_DATA_DIR) };
}

/**
 * Copies `Values` from local.settings.json into the environment, as Core Tools does; variables
 * already set win. Empty values are skipped so that the local stand-ins are used for them.
 */
export function applyLocalSettingsFile(appRoot: string, env: NodeJS.ProcessEnv): string | undefined {
  const path = join(appRoot, 'local.settings.json');
  if (!existsSync(path)) return undefined;
  let values: Record<string, unknown>;
  try {
    values = (JSON.parse(readFileSync(path, 'utf8')) as { Values?: Record<string, unknown> }).Values ?? {};
  } catch (error) {
    throw new Error(`Cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  for (const [key, value] of Object.entries(values)) {
    if (typeof value !== 'string' || value.trim() === '') continue;
    if (env[key] === undefined || env[key]?.trim() === '') env[key] = value;
  }
  return path;
}
