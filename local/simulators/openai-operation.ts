import { invalidValue, unsupportedParameter } from './openai-errors';
import type { ResponseStore } from './openai-responses';
import type { PromptCache, ReasoningEffort } from './openai-text';
import { isReasoningModel, REASONING_EFFORTS } from './openai-text';

/**
 * What each model operation of the Azure OpenAI simulator (chat completions, embeddings,
 * responses) gives the dispatcher in openai.ts, and the parameter checks they share.
 */

/** Usage in the Responses API's terms, which every operation reports for the simulator's stats. */
export interface ResponsesUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

/** What an operation generated: the usage the service bills and the answer. */
export interface Generated {
  usage: ResponsesUsage;
  /** The JSON answer. */
  json(): unknown;
  /** Set when the request asked for a stream (`"stream": true`): the answer as SSE frames instead. */
  stream?: {
    frames(): string[];
    /** The fewest frames a `cut` fault lets through: past the first text, before the end and any usage. */
    cutAfterAtLeast: number;
  };
}

export interface OperationInput {
  /** The request's JSON body. */
  request: Record<string, unknown>;
  deployment: string;
  /** The deployment's model. */
  model: string;
  cache: PromptCache;
  store: ResponseStore;
}

/** A POST operation on a deployment. */
export interface Operation {
  /** The operation as the service names it in rate limit messages, e.g. `ChatCompletions_Create`. */
  name: string;
  /**
   * Validates the request and reads its prompt, throwing the service's errors. The function
   * returned generates the answer; it is called only once the request's fault let it through, so
   * that a failed request neither warms the prompt cache nor is stored.
   */
  prepare(input: OperationInput): () => Generated;
}

export function positiveInteger(value: unknown, param: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw invalidValue(param, value, 'Expected a positive integer.');
  }
  return value;
}

/**
 * A reasoning effort parameter: undefined when not given; only reasoning models take one, and
 * `minimal` only gpt-5. `supported` is the list of values as the error message words it.
 */
export function reasoningEffort(
  param: string,
  value: unknown,
  model: string,
  supported: string,
): ReasoningEffort | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isReasoningModel(model)) throw unsupportedParameter(param);
  if (
    typeof value !== 'string' ||
    !REASONING_EFFORTS.includes(value) ||
    (value === 'minimal' && !model.startsWith('gpt-5'))
  ) {
    throw invalidValue(param, value, `Supported values are: ${supported}.`);
  }
  return value as ReasoningEffort;
}
