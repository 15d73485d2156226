import { createHash } from 'node:crypto';
import { invalidRequest, invalidValue, operationNotSupported, unsupportedParameter } from './openai-errors';
import type { Generated, Operation, OperationInput } from './openai-operation';
import { positiveInteger, reasoningEffort } from './openai-operation';
import type { PromptPart } from './openai-text';
import {
  complete,
  isEmbeddingModel,
  isReasoningModel,
  PromptBuilder,
  serviceId,
  tokenizerFor,
} from './openai-text';

/**
 * Chat completions (`POST /openai/deployments/{deployment}/chat/completions`, and
 * `/openai/v1/chat/completions`): the completion object, or its SSE chunks in Azure's sequence
 * (prompt filter results first, the usage chunk last when `stream_options.include_usage`).
 */

const FILTER_OK = {
  hate: { filtered: false, severity: 'safe' },
  self_harm: { filtered: false, severity: 'safe' },
  sexual: { filtered: false, severity: 'safe' },
  violence: { filtered: false, severity: 'safe' },
};
const PROMPT_FILTER = [{ prompt_index: 0, content_filter_results: FILTER_OK }];
const FILTER_OK_JSON = JSON.stringify(FILTER_OK);

const CHAT_ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'];

export const chatCompletions: Operation = { name: 'ChatCompletions_Create', prepare: prepareChat };

function prepareChat({ request, deployment, model, cache }: OperationInput): () => Generated {
  if (isEmbeddingModel(model)) throw operationNotSupported('chatCompletion', model);
  const messages = validateMessages(request.messages);
  const reasoning = isReasoningModel(model);
  const stream = request.stream === true;
  if (request.stream_options !== undefined && request.stream_options !== null && !stream) {
    throw invalidRequest(
      "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
      'stream_options',
    );
  }
  const includeUsage =
    stream && (request.stream_options as { include_usage?: unknown } | null)?.include_usage === true;
  if (reasoning && request.max_tokens !== undefined && request.max_tokens !== null) {
    throw unsupportedParameter('max_tokens', 'max_completion_tokens');
  }
  const limit =
    positiveInteger(request.max_completion_tokens, 'max_completion_tokens') ??
    positiveInteger(request.max_tokens, 'max_tokens');
  const choices = positiveInteger(request.n, 'n') ?? 1;
  if (choices > 128) throw invalidValue('n', request.n, 'Expected a value <= 128.');
  const effort =
    reasoningEffort('reasoning_effort', request.reasoning_effort, model, "'low', 'medium', and 'high'") ??
    'medium';

  const tokenizer = tokenizerFor(model);
  const builder = new PromptBuilder(tokenizer);
  builder.addJson(Array.isArray(request.tools) && request.tools.length > 0 ? request.tools : undefined);
  builder.addJson(Array.isArray(request.functions) ? request.functions : undefined);
  for (const message of messages) builder.addMessage(message);
  const prompt = builder.build();

  return () => {
    const cachedTokens = cache.use(deployment, prompt.ids);
    const completion = complete(tokenizer, model, prompt, limit, effort);
    const completionTokens = choices * (completion.textTokens + completion.reasoningTokens);
    const usage = {
      completion_tokens: completionTokens,
      completion_tokens_details: {
        accepted_prediction_tokens: 0,
        audio_tokens: 0,
        reasoning_tokens: choices * completion.reasoningTokens,
        rejected_prediction_tokens: 0,
      },
      prompt_tokens: prompt.tokens,
      prompt_tokens_details: { audio_tokens: 0, cached_tokens: cachedTokens },
      total_tokens: prompt.tokens + completionTokens,
    };
    const finishReason = completion.truncated ? 'length' : 'stop';
    const id = `chatcmpl-${serviceId(29)}`;
    const created = Math.floor(Date.now() / 1000);
    const fingerprint = systemFingerprint(model);
    const indexes = Array.from({ length: choices }, (_, i) => i);

    const frames = (): string[] => {
      // Every chunk but the text is the same: serialise the envelope once, splice each piece in.
      const tail = `],"created":${created},"id":${JSON.stringify(id)},"model":${JSON.stringify(model)},"object":"chat.completion.chunk","system_fingerprint":${JSON.stringify(fingerprint)}${includeUsage ? ',"usage":null' : ''}}\n\n`;
      const frames = [
        // Azure's first chunk carries only the prompt filter results.
        `data: ${JSON.stringify({
          choices: [],
          created: 0,
          id: '',
          model: '',
          object: '',
          prompt_filter_results: PROMPT_FILTER,
          ...(includeUsage ? { usage: null } : {}),
        })}\n\n`,
      ];
      for (const index of indexes) {
        frames.push(
          `data: {"choices":[{"content_filter_results":{},"delta":{"content":"","refusal":null,"role":"assistant"},"finish_reason":null,"index":${index},"logprobs":null}${tail}`,
        );
        const head = `data: {"choices":[{"content_filter_results":${FILTER_OK_JSON},"delta":{"content":`;
        const close = `},"finish_reason":null,"index":${index},"logprobs":null}${tail}`;
        for (const piece of completion.pieces) frames.push(`${head}${JSON.stringify(piece)}${close}`);
        frames.push(
          `data: {"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"${finishReason}","index":${index},"logprobs":null}${tail}`,
        );
      }
      if (includeUsage) {
        frames.push(
          `data: ${JSON.stringify({ choices: [], created, id, model, object: 'chat.completion.chunk', system_fingerprint: fingerprint, usage })}\n\n`,
        );
      }
      frames.push('data: [DONE]\n\n');
      return frames;
    };

    return {
      usage: {
        input_tokens: prompt.tokens,
        input_tokens_details: { cached_tokens: cachedTokens },
        output_tokens: completionTokens,
        output_tokens_details: { reasoning_tokens: usage.completion_tokens_details.reasoning_tokens },
        total_tokens: usage.total_tokens,
      },
      json: () => ({
        choices: indexes.map((index) => ({
          content_filter_results: FILTER_OK,
          finish_reason: finishReason,
          index,
          logprobs: null,
          message: { annotations: [], content: completion.text, refusal: null, role: 'assistant' },
        })),
        created,
        id,
        model,
        object: 'chat.completion',
        prompt_filter_results: PROMPT_FILTER,
        system_fingerprint: fingerprint,
        usage,
      }),
      stream: stream ? { frames, cutAfterAtLeast: 3 } : undefined,
    };
  };
}

const fingerprints = new Map<string, string>();

/** A `system_fingerprint` per model, stable across runs. */
function systemFingerprint(model: string): string {
  let fingerprint = fingerprints.get(model);
  if (!fingerprint) {
    fingerprint = `fp_${createHash('sha1').update(model).digest('hex').slice(0, 10)}`;
    fingerprints.set(model, fingerprint);
  }
  return fingerprint;
}

function validateMessages(messages: unknown): PromptPart[] {
  if (messages === undefined || messages === null) {
    throw invalidRequest("Missing required parameter: 'messages'.", 'messages', 'missing_required_parameter');
  }
  if (!Array.isArray(messages)) {
    throw invalidRequest("Invalid type for 'messages': expected an array.", 'messages', 'invalid_type');
  }
  if (messages.length === 0) {
    throw invalidRequest(
      "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
      'messages',
      'empty_array',
    );
  }
  return messages.map((message: unknown, index) => {
    const { role, content, name, tool_calls, function_call } = (message ?? {}) as Record<string, unknown>;
    if (typeof role !== 'string' || !CHAT_ROLES.includes(role)) {
      throw invalidValue(
        `messages[${index}].role`,
        role,
        "Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.",
      );
    }
    return {
      role,
      content,
      name: typeof name === 'string' ? name : undefined,
      extra: tool_calls ?? function_call,
    };
  });
}
