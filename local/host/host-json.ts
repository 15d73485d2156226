import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

const timeSpan = z.string().regex(/^(\d+\.)?\d{1,2}:\d{2}:\d{2}(\.\d+)?$/, 'a TimeSpan such as "00:05:00"');

const hostJsonSchema = z
  .object({
    version: z.literal('2.0'),
    functionTimeout: timeSpan.optional(),
    extensions: z
      .object({
        http: z.object({ routePrefix: z.string().optional() }).passthrough().optional(),
        durableTask: z.object({ hubName: z.string().optional() }).passthrough().optional(),
      })
      .passthrough()
      .optional(),
  })
  .passthrough();

export interface HostSettings {
  routePrefix: string;
  functionTimeoutMs: number | undefined;
  hubName: string;
}

export function parseTimeSpanMs(value: string): number {
  const match = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?$/.exec(value);
  if (!match) throw new Error(`'${value}' is not a TimeSpan.`);
  const [, days = '0', hours = '0', minutes = '0', seconds = '0', fraction = '0'] = match;
  return (
    ((Number(days) * 24 + Number(hours)) * 60 + Number(minutes)) * 60_000 +
    Number(seconds) * 1000 +
    Math.round(Number(`0.${fraction}`) * 1000)
  );
}

export function readHostJson(appRoot: string): HostSettings {
  const path = join(appRoot, 'host.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`Cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  const parsed = hostJsonSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`Invalid ${path}: ${issues}`);
  }
  const { functionTimeout, extensions } = parsed.data;
  return {
    routePrefix: (extensions?.http?.routePrefix ?? 'api').replace(/^\/+|\/+$/g, ''),
    functionTimeoutMs:
      functionTimeout && functionTimeout !== '-1' ? parseTimeSpanMs(functionTimeout) : undefined,
    hubName: extensions?.durableTask?.hubName ?? 'TestHubName',
  };
}
