import { z } from 'zod';

/**
 * The usage event: one per served request, the only record the chargeback is computed from.
 * Everything that writes or reads usage imports this schema.
 */

export const USAGE_APIS = ['chat', 'embeddings', 'responses', 'stt', 'tts'] as const;
export type UsageApi = (typeof USAGE_APIS)[number];

const count = z.number().int().nonnegative();

export const usageEventSchema = z.object({
  /** Correlation id: the idempotency key of the event (a retried write never counts twice). */
  id: z.string().min(1).max(128),
  /** When the proxy recorded the event (ISO 8601, UTC); decides the window. */
  recordedAt: z.iso.datetime(),
  /** Start of the 15-minute UTC window the event belongs to (see window.ts). */
  window: z.iso.datetime(),
  subscriptionId: z.string().min(1),
  appId: z.string().min(1),
  department: z.string().min(1),
  userId: z.string().min(1).optional(),
  api: z.enum(USAGE_APIS),
  deployment: z.string().min(1),
  /** The model the upstream reported (e.g. gpt-4o-2024-11-20), not the deployment name. */
  model: z.string().min(1),
  promptTokens: count,
  cachedTokens: count,
  completionTokens: count,
  reasoningTokens: count,
  audioSeconds: z.number().nonnegative(),
  billableCharacters: count,
  /** HTTP status served to the caller. */
  status: z.number().int().min(100).max(599),
  latencyMs: z.number().nonnegative(),
  streamed: z.boolean(),
  /** True when a figure was estimated (interrupted stream, upstream sent no usage). */
  estimated: z.boolean(),
});

export type UsageEvent = z.infer<typeof usageEventSchema>;

export type UsageFigures = Pick<
  UsageEvent,
  | 'promptTokens'
  | 'cachedTokens'
  | 'completionTokens'
  | 'reasoningTokens'
  | 'audioSeconds'
  | 'billableCharacters'
>;

export const NO_USAGE: UsageFigures = {
  promptTokens: 0,
  cachedTokens: 0,
  completionTokens: 0,
  reasoningTokens: 0,
  audioSeconds: 0,
  billableCharacters: 0,
};
