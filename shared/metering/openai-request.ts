import { z } from 'zod';
import { ApiError, badRequest } from '../contracts/api-errors';
import type { UsageApi } from '../contracts/usage-event';
import { estimateChatPromptTokens, estimateEmbeddingInputTokens } from './token-estimate';

/**
 * An Azure OpenAI data-plane request, validated before anything is sent upstream: content type,
 * api-version, JSON body, the fields each operation needs, and which deployment it names.
 */

export type OpenAiOperation = 'chat/completions' | 'embeddings' | 'responses';

/**
 * `deployment`: `/openai/deployments/{deployment}/...?api-version=`; `azure`: `/openai/responses?api-version=`
 * (what `AzureOpenAI` calls for the Responses API); `v1`: `/openai/v1/...`. The last two name the
 * deployment in the body's `model`.
 */
export type OpenAiPathForm = 'deployment' | 'azure' | 'v1';

const message = z.object({ role: z.string().min(1), content: z.unknown().optional() }).passthrough();
const chatBody = z
  .object({
    model: z.string().min(1).optional(),
    messages: z
      .array(message, { error: "'messages' must be a non-empty array of messages" })
      .min(1, "'messages' must not be empty"),
    stream: z.boolean().optional(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).passthrough().nullish(),
  })
  .passthrough();
const embeddingsBody = z
  .object({
    model: z.string().min(1).optional(),
    input: z.union(
      [
        z.string().min(1),
        z.array(z.string().min(1)).min(1),
        z.array(z.number().int()).min(1),
        z.array(z.array(z.number().int()).min(1)).min(1),
      ],
      { error: "'input' must be a non-empty string, array of strings, or token arrays" },
    ),
  })
  .passthrough();

const responsesBody = z
  .object({
    model: z.string({ error: "Missing required parameter 'model'." }).min(1),
    input: z.union([z.string().min(1), z.array(z.unknown()).min(1)], {
      error: "'input' must be a non-empty string or array of input items",
    }),
    stream: z.boolean().optional(),
  })
  .passthrough();

const SCHEMAS = {
  'chat/completions': chatBody,
  embeddings: embeddingsBody,
  responses: responsesBody,
} as const;
const APIS: Record<OpenAiOperation, UsageApi> = {
  'chat/completions': 'chat',
  embeddings: 'embeddings',
  responses: 'responses',
};

type ParsedBody = Partial<z.infer<typeof chatBody> & z.infer<typeof responsesBody>> & { model?: string };

export interface OpenAiCall {
  api: UsageApi;
  deployment: string;
  streaming: boolean;
  /** The caller asked for the usage chunk itself (`stream_options.include_usage`). */
  callerWantsUsage: boolean;
  /** The upstream path and query, relative to the endpoint. */
  path: string;
  /** What goes upstream: the caller's bytes, or with `include_usage` added to a chat stream. */
  upstreamBody: Uint8Array<ArrayBuffer>;
  body: ParsedBody;
}

/** An Azure OpenAI request as it arrived: which operation on which path form, and its bytes. */
export interface OpenAiRequestInput {
  operation: OpenAiOperation;
  form: OpenAiPathForm;
  deployment?: string;
  apiVersion: string | null;
  contentType: string | null;
  body: Uint8Array<ArrayBuffer>;
}

export function parseOpenAiCall(request: OpenAiRequestInput): OpenAiCall {
  if (!/^application\/json\b/i.test(request.contentType ?? '')) {
    throw new ApiError(415, 'UnsupportedMediaType', "Content-Type must be 'application/json'.");
  }
  if (request.form !== 'v1' && !request.apiVersion) {
    throw badRequest("Missing required query parameter 'api-version'.", 'api-version');
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(request.body).toString('utf8'));
  } catch {
    throw badRequest('The request body is not valid JSON.');
  }
  const parsed = SCHEMAS[request.operation].safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw badRequest(issue?.message ?? 'Invalid request body.', issue?.path.join('.') || null);
  }
  const body = parsed.data as ParsedBody;
  const deployment = request.deployment ?? body.model;
  if (!deployment) throw badRequest("Missing required parameter 'model'.", 'model');

  const api = APIS[request.operation];
  const streaming = api !== 'embeddings' && body.stream === true;
  const callerWantsUsage = body.stream_options?.include_usage === true;
  let upstreamBody = request.body;
  if (api === 'chat' && streaming && !callerWantsUsage) {
    // Usage only arrives in a final chunk when asked for; ask, and hide that chunk again later.
    upstreamBody = new TextEncoder().encode(
      JSON.stringify({ ...body, stream_options: { ...body.stream_options, include_usage: true } }),
    );
  }
  const version = `api-version=${encodeURIComponent(request.apiVersion ?? '')}`;
  const path =
    request.form === 'deployment'
      ? `/openai/deployments/${encodeURIComponent(deployment)}/${request.operation}?${version}`
      : request.form === 'azure'
        ? `/openai/${request.operation}?${version}`
        : `/openai/v1/${request.operation}`;
  return { api, deployment, streaming, callerWantsUsage, path, upstreamBody, body };
}

/** The prompt tokens of a request, estimated from its body (before the call, or when the upstream reported none). */
export function estimatePromptTokens({ api, body }: Pick<OpenAiCall, 'api' | 'body'>): number {
  if (api === 'embeddings') return estimateEmbeddingInputTokens(body.input);
  return estimateChatPromptTokens(
    body.messages ??
      (typeof body.input === 'string'
        ? [{ content: body.input }]
        : ((body.input ?? []) as Array<{ content?: unknown }>)),
  );
}
