import { invalidRequest, invalidValue, operationNotSupported, responseNotFound } from './openai-errors';
import type { Generated, Operation, OperationInput, ResponsesUsage } from './openai-operation';
import { reasoningEffort } from './openai-operation';
import type { Completion } from './openai-text';
import {
  complete,
  isEmbeddingModel,
  isReasoningModel,
  PromptBuilder,
  serviceId,
  tokenizerFor,
  trimOldest,
} from './openai-text';

/**
 * The Responses API (`POST /openai/v1/responses`, and `/openai/responses?api-version=` as the
 * AzureOpenAI client calls it): the response object, its SSE event sequence, and stored responses
 * (`GET` / `DELETE /openai/v1/responses/{id}`) so that `previous_response_id` carries the earlier
 * turn's context, billed as input tokens.
 */

interface StoredResponse {
  response: Record<string, unknown>;
  /** The whole conversation so far (input and output) as prompt ids, for a follow-up turn. */
  contextIds: number[];
}

/** Stored responses (`store` defaults to true), bounded: the oldest are forgotten first. */
export class ResponseStore {
  private readonly entries = new Map<string, StoredResponse>();

  constructor(private readonly capacity = 2000) {}

  get(id: string): StoredResponse | undefined {
    return this.entries.get(id);
  }

  set(id: string, entry: StoredResponse): void {
    this.entries.set(id, entry);
    trimOldest(this.entries, this.capacity);
  }

  delete(id: string): boolean {
    return this.entries.delete(id);
  }
}

/** A stored response (`GET`), or the answer to its deletion (`DELETE`). */
export function storedResponse(store: ResponseStore, id: string, remove: boolean): Record<string, unknown> {
  const stored = store.get(id);
  if (!stored) throw responseNotFound(id);
  if (!remove) return stored.response;
  store.delete(id);
  return { id, object: 'response', deleted: true };
}

const MIN_OUTPUT_TOKENS = 16;

export const responses: Operation = { name: 'Responses_Create', prepare: prepareResponse };

function prepareResponse({ request, deployment, model, cache, store }: OperationInput): () => Generated {
  if (isEmbeddingModel(model)) throw operationNotSupported('responses', model);
  const tokenizer = tokenizerFor(model);
  const reasoning = isReasoningModel(model);
  const effort =
    request.reasoning === undefined || request.reasoning === null
      ? undefined
      : reasoningEffort(
          'reasoning.effort',
          (request.reasoning as { effort?: unknown }).effort,
          model,
          "'low', 'medium' and 'high'",
        );
  const limit = request.max_output_tokens;
  if (limit !== undefined && limit !== null) {
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < MIN_OUTPUT_TOKENS) {
      throw invalidRequest(
        `Invalid 'max_output_tokens': integer below minimum value. Expected a value >= ${MIN_OUTPUT_TOKENS}, but got ${JSON.stringify(limit)} instead.`,
        'max_output_tokens',
        'integer_below_min_value',
      );
    }
  }

  const builder = new PromptBuilder(tokenizer);
  const previousId = request.previous_response_id;
  if (previousId !== undefined && previousId !== null) {
    const previous = typeof previousId === 'string' ? store.get(previousId) : undefined;
    if (!previous) {
      throw invalidRequest(
        `Previous response with id '${typeof previousId === 'string' ? previousId : JSON.stringify(previousId)}' not found.`,
        'previous_response_id',
        'previous_response_not_found',
      );
    }
    builder.addIds(previous.contextIds);
  }
  builder.addJson(Array.isArray(request.tools) && request.tools.length > 0 ? request.tools : undefined);
  if (typeof request.instructions === 'string' && request.instructions) {
    builder.addMessage({ role: 'developer', content: request.instructions });
  }
  addInput(builder, request.input);
  const prompt = builder.build();

  return () => {
    const cachedTokens = cache.use(deployment, prompt.ids);
    const completion = complete(
      tokenizer,
      model,
      prompt,
      typeof limit === 'number' ? limit : undefined,
      effort ?? 'medium',
    );

    const usage: ResponsesUsage = {
      input_tokens: prompt.tokens,
      input_tokens_details: { cached_tokens: cachedTokens },
      output_tokens: completion.textTokens + completion.reasoningTokens,
      output_tokens_details: { reasoning_tokens: completion.reasoningTokens },
      total_tokens: prompt.tokens + completion.textTokens + completion.reasoningTokens,
    };
    const id = `resp_${serviceId(48).toLowerCase()}`;
    const messageId = `msg_${serviceId(48).toLowerCase()}`;
    const reasoningItem = reasoning
      ? { id: `rs_${serviceId(48).toLowerCase()}`, type: 'reasoning', summary: [] }
      : undefined;
    const status = completion.truncated ? 'incomplete' : 'completed';
    const textPart = { type: 'output_text', annotations: [], logprobs: [], text: completion.text };
    const message = {
      id: messageId,
      type: 'message',
      status,
      role: 'assistant',
      content: completion.truncated && completion.textTokens === 0 ? [] : [textPart],
    };
    const base = {
      id,
      object: 'response',
      created_at: Math.floor(Date.now() / 1000),
      error: null,
      instructions: typeof request.instructions === 'string' ? request.instructions : null,
      max_output_tokens: typeof limit === 'number' ? limit : null,
      model,
      parallel_tool_calls: request.parallel_tool_calls ?? true,
      previous_response_id: typeof previousId === 'string' ? previousId : null,
      reasoning: { effort: reasoning ? (effort ?? 'medium') : null, summary: null },
      store: request.store !== false,
      temperature: typeof request.temperature === 'number' ? request.temperature : 1,
      text: request.text ?? { format: { type: 'text' } },
      tool_choice: request.tool_choice ?? 'auto',
      tools: Array.isArray(request.tools) ? request.tools : [],
      top_p: typeof request.top_p === 'number' ? request.top_p : 1,
      truncation: request.truncation ?? 'disabled',
      user: typeof request.user === 'string' ? request.user : null,
      metadata: request.metadata ?? {},
    };
    const output = [...(reasoningItem ? [reasoningItem] : []), ...(message.content.length ? [message] : [])];
    const response = {
      ...base,
      status,
      incomplete_details: completion.truncated ? { reason: 'max_output_tokens' } : null,
      output,
      usage,
    };

    if (request.store !== false) {
      const context = new PromptBuilder(tokenizer)
        .addIds(prompt.ids)
        .addMessage({ role: 'assistant', content: completion.text });
      store.set(id, { response, contextIds: context.ids });
    }

    return {
      usage,
      json: () => response,
      stream:
        request.stream === true
          ? {
              frames: () => responseFrames(base, response, reasoningItem, message, completion),
              cutAfterAtLeast: 4,
            }
          : undefined,
    };
  };
}

function addInput(builder: PromptBuilder, input: unknown): void {
  if (typeof input === 'string') {
    if (!input) throw invalidRequest("Invalid 'input': empty string.", 'input', 'empty_string');
    builder.addMessage({ role: 'user', content: input });
    return;
  }
  if (!Array.isArray(input) || input.length === 0) {
    throw invalidRequest("Missing required parameter: 'input'.", 'input', 'missing_required_parameter');
  }
  input.forEach((item: unknown, index) => {
    if (typeof item !== 'object' || item === null) {
      throw invalidRequest(`Invalid type for 'input[${index}]': expected an object.`, `input[${index}]`);
    }
    const { role, content, type } = item as { role?: unknown; content?: unknown; type?: unknown };
    if (type === undefined || type === 'message') {
      if (typeof role !== 'string' || !['user', 'assistant', 'system', 'developer'].includes(role)) {
        throw invalidValue(
          `input[${index}].role`,
          role,
          "Supported values are: 'assistant', 'system', 'developer', and 'user'.",
        );
      }
      builder.addMessage({ role, content });
    } else {
      // Tool calls, their outputs and other items are rendered into the prompt as structured text.
      builder.addMessage({ role: 'tool', content: '', extra: item });
    }
  });
}

function responseFrames(
  base: Record<string, unknown>,
  final: Record<string, unknown>,
  reasoningItem: Record<string, unknown> | undefined,
  message: { id: string; status: string; content: unknown[] } & Record<string, unknown>,
  completion: Completion,
): string[] {
  const frames: string[] = [];
  let sequence = 0;
  const emit = (type: string, body: Record<string, unknown>): void => {
    frames.push(
      `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...body })}\n\n`,
    );
  };
  const pending = { ...base, status: 'in_progress', incomplete_details: null, output: [], usage: null };
  emit('response.created', { response: pending });
  emit('response.in_progress', { response: pending });
  let outputIndex = 0;
  if (reasoningItem) {
    emit('response.output_item.added', { output_index: outputIndex, item: reasoningItem });
    emit('response.output_item.done', { output_index: outputIndex, item: reasoningItem });
    outputIndex += 1;
  }
  if (message.content.length > 0) {
    const ids = { item_id: message.id, output_index: outputIndex };
    emit('response.output_item.added', {
      output_index: outputIndex,
      item: { ...message, status: 'in_progress', content: [] },
    });
    emit('response.content_part.added', {
      ...ids,
      content_index: 0,
      part: { type: 'output_text', annotations: [], logprobs: [], text: '' },
    });
    // The deltas share everything but the text: serialise the frame once, splice each piece in.
    const [head, tail] = JSON.stringify({ ...ids, content_index: 0, delta: '\u0000', logprobs: [] }).split(
      '"\\u0000"',
    ) as [string, string];
    for (const piece of completion.pieces) {
      const data = `{"type":"response.output_text.delta","sequence_number":${sequence++},${head.slice(1)}${JSON.stringify(piece)}${tail}`;
      frames.push(`event: response.output_text.delta\ndata: ${data}\n\n`);
    }
    emit('response.output_text.done', { ...ids, content_index: 0, text: completion.text, logprobs: [] });
    emit('response.content_part.done', { ...ids, content_index: 0, part: message.content[0] });
    emit('response.output_item.done', { output_index: outputIndex, item: message });
  }
  emit(completion.truncated ? 'response.incomplete' : 'response.completed', { response: final });
  return frames;
}
