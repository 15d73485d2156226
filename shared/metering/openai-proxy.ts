import { ReadableStream } from 'node:stream/web';
import { createParser } from 'eventsource-parser';
import type { Dispatcher } from 'undici';
import { Agent, errors as undiciErrors, request as undiciRequest } from 'undici';
import { z } from 'zod';
import type { Attribution } from './attribution';
import { ApiError, badRequest } from './errors';
import { estimateChatPromptTokens, countTextTokens } from './token-estimate';
import type { UsageApi, UsageEvent, UsageFigures } from './usage';
import { NO_USAGE } from './usage';
import { usageEventFor } from './usage-event';

/**
 * The Azure OpenAI data plane, proxied: validates the request, calls the upstream, streams the
 * answer back unchanged, and produces exactly one usage event per served request.
 */

export type OpenAiOperation = 'chat/completions' | 'embeddings' | 'responses';

export interface OpenAiProxyRequest {
  operation: OpenAiOperation;
  /**
   * `deployment`: `/openai/deployments/{deployment}/...?api-version=`; `azure`: `/openai/responses?api-version=`
   * (what `AzureOpenAI` calls for the Responses API); `v1`: `/openai/v1/...`. The last two name the
   * deployment in the body's `model`.
   */
  form: 'deployment' | 'azure' | 'v1';
  deployment?: string;
  apiVersion: string | null;
  contentType: string | null;
  body: Uint8Array<ArrayBuffer>;
  attribution: Attribution;
  correlationId: string;
  startedAt: number;
}

export interface OpenAiProxyDeps {
  endpoint: string;
  authHeaders: () => Promise<Record<string, string>>;
  record: (event: UsageEvent) => Promise<void>;
  /** Longest wait for the upstream's response headers, and between two streamed chunks. */
  timeoutMs: number;
  /** Connection pool to the upstream; one shared keep-alive pool by default. */
  dispatcher?: Dispatcher;
  now?: () => Date;
}

export interface OpenAiProxyResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array>;
}

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

/** Connections to Azure OpenAI are pooled and kept alive across invocations. */
const upstreamPool = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connections: 512 });

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

/** Headers of an upstream answer that a caller may rely on (rate limits, retry hints, request ids). */
const PASSED_HEADERS = ['content-type', 'retry-after', 'retry-after-ms', 'apim-request-id', 'x-request-id'];
const PASSED_PREFIXES = ['x-ratelimit-'];

export async function proxyOpenAi(
  request: OpenAiProxyRequest,
  deps: OpenAiProxyDeps,
): Promise<OpenAiProxyResponse> {
  const now = deps.now ?? (() => new Date());
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
  const body = parsed.data as Partial<z.infer<typeof chatBody> & z.infer<typeof responsesBody>> & {
    model?: string;
  };
  const deployment = request.deployment ?? body.model;
  if (!deployment) throw badRequest("Missing required parameter 'model'.", 'model');

  const api = APIS[request.operation];
  const streaming = api !== 'embeddings' && body.stream === true;
  const callerWantsUsage = body.stream_options?.include_usage === true;
  let upstreamBody = request.body;
  if (api === 'chat' && streaming && !callerWantsUsage) {
    // Usage only arrives in a final chunk when asked for; ask, and hide that chunk again below.
    upstreamBody = new TextEncoder().encode(
      JSON.stringify({ ...body, stream_options: { ...body.stream_options, include_usage: true } }),
    );
  }

  const version = `api-version=${encodeURIComponent(request.apiVersion ?? '')}`;
  const url =
    request.form === 'deployment'
      ? `${deps.endpoint}/openai/deployments/${encodeURIComponent(deployment)}/${request.operation}?${version}`
      : request.form === 'azure'
        ? `${deps.endpoint}/openai/${request.operation}?${version}`
        : `${deps.endpoint}/openai/v1/${request.operation}`;
  let upstream: Dispatcher.ResponseData;
  try {
    upstream = await undiciRequest(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-ms-client-request-id': request.correlationId,
        ...(await deps.authHeaders()),
      },
      body: upstreamBody,
      dispatcher: deps.dispatcher ?? upstreamPool,
      headersTimeout: deps.timeoutMs,
      bodyTimeout: deps.timeoutMs,
    });
  } catch (error) {
    throw error instanceof undiciErrors.HeadersTimeoutError ||
      error instanceof undiciErrors.ConnectTimeoutError
      ? new ApiError(504, 'GatewayTimeout', `Azure OpenAI did not answer within ${deps.timeoutMs} ms.`)
      : new ApiError(502, 'BadGateway', `Azure OpenAI could not be reached: ${(error as Error).message}`);
  }
  const status = upstream.statusCode;
  const ok = status >= 200 && status < 300;
  const headers = passedHeaders(upstream.headers);
  const event = (figures: UsageFigures, model: string, estimated: boolean): UsageEvent =>
    usageEventFor(
      request,
      { api, deployment, model, figures, status, streamed: streaming, estimated },
      now(),
    );

  const isEventStream = /text\/event-stream/i.test(headers['content-type'] ?? '');
  if (!ok || !streaming || !isEventStream) {
    const bytes = new Uint8Array(await upstream.body.arrayBuffer());
    if (ok) {
      // Nothing billable is recorded for a failed call; a served one is recorded before answering.
      const answer = parseJsonObject(bytes);
      await deps.record(
        event(usageFigures(answer.usage), typeof answer.model === 'string' ? answer.model : '', false),
      );
    }
    return { status, headers, body: bytes };
  }

  return {
    status,
    headers,
    body: relayStream(upstream.body, {
      hideUsage: api === 'chat' && !callerWantsUsage,
      finish: async ({ usage, model, text }) => {
        const exact = usage !== undefined;
        const figures = exact
          ? usageFigures(usage)
          : {
              ...NO_USAGE,
              promptTokens: estimateChatPromptTokens(
                body.messages ??
                  (typeof body.input === 'string'
                    ? [{ content: body.input }]
                    : ((body.input ?? []) as Array<{ content?: unknown }>)),
              ),
              completionTokens: countTextTokens(text()),
            };
        await deps.record(event(figures, model, !exact));
      },
    }),
  };
}

interface StreamOutcome {
  usage: unknown;
  model: string;
  /** The streamed text, only worked out when the upstream sent no usage (to estimate it). */
  text: () => string;
}

interface StreamChunk {
  type?: unknown;
  model?: unknown;
  usage?: unknown;
  delta?: unknown;
  response?: { model?: unknown; usage?: unknown };
  choices?: Array<{ delta?: { content?: unknown } }>;
}

/** A usage object (not `usage: null`): only the final chunk of a stream carries one. */
const USAGE_OBJECT = /"usage"\s*:\s*\{/;
/** `"usage":null` with the comma that joins it to its neighbours; quotes inside JSON strings are escaped, so a match is always a key. */
const USAGE_NULL = /\s*,\s*"usage"\s*:\s*null(?=\s*[,}])|"usage"\s*:\s*null\s*,?/;

/**
 * Passes SSE through as it arrives. Watches the events for the model and the final usage, parsing
 * only the few that carry them (the first event and the usage chunk), not every token's event.
 * When the caller did not ask for usage, hides the usage-only chunk and the `usage: null` fields
 * that came with the other chunks; otherwise the upstream's bytes go out untouched. `finish` runs
 * exactly once: at the end, on a broken upstream, or when the caller goes away (the upstream call
 * is then cancelled).
 */
function relayStream(
  upstream: Dispatcher.ResponseData['body'],
  options: {
    hideUsage: boolean;
    finish: (outcome: StreamOutcome) => Promise<void>;
  },
): ReadableStream<Uint8Array> {
  // undici's bodyTimeout fails the read when the upstream goes quiet for too long.
  const chunks = upstream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const decoder = new TextDecoder();
  const events: string[] = [];
  const outcome: StreamOutcome = { usage: undefined, model: '', text: () => streamedText(events) };
  let rewritten = '';
  let finished: Promise<void> | undefined;
  const finish = (): Promise<void> => (finished ??= options.finish(outcome));

  const parser = createParser({
    onEvent(sse) {
      const data = sse.data;
      if (data === '[DONE]') {
        if (options.hideUsage) rewritten += 'data: [DONE]\n\n';
        return;
      }
      events.push(data);
      let chunk: StreamChunk | undefined;
      if (!outcome.model || USAGE_OBJECT.test(data)) {
        chunk = parseChunk(data);
        if (chunk) observe(chunk, outcome);
      }
      if (!options.hideUsage) return;
      const prefix = sse.event ? `event: ${sse.event}\n` : '';
      if (chunk && 'usage' in chunk) {
        if (chunk.usage && (chunk.choices ?? []).length === 0) return; // the usage-only chunk
        delete chunk.usage;
        rewritten += `${prefix}data: ${JSON.stringify(chunk)}\n\n`;
        return;
      }
      rewritten += `${prefix}data: ${data.replace(USAGE_NULL, '')}\n\n`;
    },
  });

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        for (;;) {
          const next: IteratorResult<Buffer> = await chunks.next();
          if (next.done) {
            await finish();
            controller.close();
            return;
          }
          parser.feed(decoder.decode(next.value, { stream: true }));
          if (!options.hideUsage) {
            controller.enqueue(next.value); // the upstream's own bytes
            return;
          }
          if (rewritten) {
            // Everything one upstream read produced goes out in one write.
            controller.enqueue(Buffer.from(rewritten, 'utf8'));
            rewritten = '';
            return;
          }
        }
      } catch (error) {
        await finish();
        controller.error(error);
      }
    },
    async cancel(reason) {
      // The caller went away: stop the upstream generation too, then account for what was served.
      upstream.destroy(reason instanceof Error ? reason : new Error('client disconnected'));
      await finish();
    },
  });
}

function parseChunk(data: string): StreamChunk | undefined {
  try {
    const value = JSON.parse(data) as unknown;
    return typeof value === 'object' && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

function observe(chunk: StreamChunk, outcome: StreamOutcome): void {
  // The Responses API's final event carries the response, with its model and usage.
  if (chunk.type === 'response.completed' && chunk.response) {
    outcome.usage = chunk.response.usage;
    if (typeof chunk.response.model === 'string') outcome.model = chunk.response.model;
  }
  if (typeof chunk.model === 'string' && chunk.model) outcome.model = chunk.model;
  if (chunk.usage) outcome.usage = chunk.usage;
}

/** The text of a stream's events (chat deltas or Responses API text deltas). */
function streamedText(events: readonly string[]): string {
  let text = '';
  for (const data of events) {
    const chunk = parseChunk(data);
    if (!chunk) continue;
    if (chunk.type === 'response.output_text.delta' && typeof chunk.delta === 'string') text += chunk.delta;
    for (const choice of chunk.choices ?? []) {
      if (typeof choice.delta?.content === 'string') text += choice.delta.content;
    }
  }
  return text;
}

function parseJsonObject(bytes: Uint8Array): Record<string, unknown> {
  try {
    const value = JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

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

function passedHeaders(upstream: Dispatcher.ResponseData['headers']): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(upstream)) {
    if (value === undefined) continue;
    if (PASSED_HEADERS.includes(name) || PASSED_PREFIXES.some((prefix) => name.startsWith(prefix))) {
      headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
  }
  return headers;
}
