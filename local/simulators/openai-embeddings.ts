import type { OpenAiError } from './openai-errors';
import { invalidRequest, invalidValue, operationNotSupported } from './openai-errors';
import type { Generated, Operation, OperationInput } from './openai-operation';
import { positiveInteger } from './openai-operation';
import { EMBEDDING_DIMENSIONS, embeddingVector, isEmbeddingModel, tokenizerFor } from './openai-text';

/**
 * Embeddings (`POST /openai/deployments/{deployment}/embeddings`, and `/openai/v1/embeddings`):
 * deterministic unit vectors per input text, as floats or base64, with the input tokens billed.
 */

const MAX_EMBEDDING_INPUTS = 2048;
const MAX_EMBEDDING_TOKENS = 8192;

export const embeddings: Operation = { name: 'Embeddings_Create', prepare: prepareEmbeddings };

function prepareEmbeddings({ request, model }: OperationInput): () => Generated {
  if (!isEmbeddingModel(model)) throw operationNotSupported('embeddings', model);
  const inputs = embeddingInputs(request.input);
  const native = EMBEDDING_DIMENSIONS[model] ?? 1536;
  let dimensions = native;
  if (request.dimensions !== undefined && request.dimensions !== null) {
    if (model === 'text-embedding-ada-002') {
      throw invalidRequest('This model does not support specifying dimensions.', 'dimensions');
    }
    const asked = positiveInteger(request.dimensions, 'dimensions') ?? native;
    if (asked > native) throw invalidValue('dimensions', asked, `Expected a value <= ${native}.`);
    dimensions = asked;
  }
  const format = request.encoding_format ?? 'float';
  if (format !== 'float' && format !== 'base64') {
    throw invalidValue('encoding_format', format, "Supported values are: 'float' and 'base64'.");
  }
  const tokenizer = tokenizerFor(model);
  let promptTokens = 0;
  const texts = inputs.map((input, index) => {
    const tokens = typeof input === 'string' ? tokenizer.encode(input).length : input.length;
    if (tokens > MAX_EMBEDDING_TOKENS) {
      throw invalidRequest(
        `This model's maximum context length is ${MAX_EMBEDDING_TOKENS} tokens, however you requested ${tokens} tokens (${tokens} in your prompt; 0 for the completion). Please reduce your prompt; or completion length.`,
        `input[${index}]`,
        'context_length_exceeded',
      );
    }
    promptTokens += tokens;
    return typeof input === 'string' ? input : input.join(' ');
  });

  return () => ({
    usage: {
      input_tokens: promptTokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: 0,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: promptTokens,
    },
    json: () => ({
      data: texts.map((text, index) => {
        const vector = embeddingVector(text, dimensions);
        return {
          embedding:
            format === 'base64'
              ? Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64')
              : Array.from(vector),
          index,
          object: 'embedding',
        };
      }),
      model,
      object: 'list',
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    }),
  });
}

function embeddingInputs(input: unknown): Array<string | number[]> {
  const invalid = (): OpenAiError =>
    invalidRequest(
      "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
      'input',
    );
  const isTokens = (value: unknown): value is number[] =>
    Array.isArray(value) && value.length > 0 && value.every((t) => Number.isInteger(t) && (t as number) >= 0);
  let items: unknown[];
  if (typeof input === 'string') items = [input];
  else if (isTokens(input)) items = [input];
  else if (Array.isArray(input)) items = input;
  else throw invalid();
  if (items.length === 0) throw invalid();
  if (items.length > MAX_EMBEDDING_INPUTS) {
    throw invalidRequest(`Too many inputs. The max number of inputs is ${MAX_EMBEDDING_INPUTS}.`, 'input');
  }
  return items.map((item) => {
    if (typeof item === 'string' && item.length > 0) return item;
    if (isTokens(item)) return item;
    throw invalid();
  });
}
