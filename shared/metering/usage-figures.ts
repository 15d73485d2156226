import { z } from 'zod';
import type { UsageFigures } from '../contracts/usage-event';
import { NO_USAGE } from '../contracts/usage-event';

/** The usage figures an Azure OpenAI answer reports, for chat, embeddings and the Responses API. */

const tokenCount = z.number().int().nonnegative();
const upstreamUsage = z
  .object({
    prompt_tokens: tokenCount.optional(),
    completion_tokens: tokenCount.optional(),
    prompt_tokens_details: z.object({ cached_tokens: tokenCount.nullish() }).nullish(),
    completion_tokens_details: z.object({ reasoning_tokens: tokenCount.nullish() }).nullish(),
    // The Responses API reports the same figures under other names.
    input_tokens: tokenCount.optional(),
    output_tokens: tokenCount.optional(),
    input_tokens_details: z.object({ cached_tokens: tokenCount.nullish() }).nullish(),
    output_tokens_details: z.object({ reasoning_tokens: tokenCount.nullish() }).nullish(),
  })
  .passthrough();

/** The usage the upstream reported, field by field (reasoning tokens are part of completion tokens). */
export function usageFigures(usage: unknown): UsageFigures {
  const parsed = upstreamUsage.safeParse(usage ?? {});
  if (!parsed.success) return NO_USAGE;
  const reported = parsed.data;
  return {
    ...NO_USAGE,
    promptTokens: reported.prompt_tokens ?? reported.input_tokens ?? 0,
    cachedTokens:
      reported.prompt_tokens_details?.cached_tokens ?? reported.input_tokens_details?.cached_tokens ?? 0,
    completionTokens: reported.completion_tokens ?? reported.output_tokens ?? 0,
    reasoningTokens:
      reported.completion_tokens_details?.reasoning_tokens ??
      reported.output_tokens_details?.reasoning_tokens ??
      0,
  };
}
