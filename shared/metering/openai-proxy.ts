import type { ReadableStream } from 'node:stream/web';
import type { UsageEvent, UsageFigures } from '../contracts/usage-event';
import { NO_USAGE } from '../contracts/usage-event';
import type { Attribution } from './attribution';
import type { OpenAiRequestInput } from './openai-request';
import { parseOpenAiCall } from './openai-request';
import { usageEventFor } from './served-usage';
import type { UpstreamBody } from './sse-relay';
import { relayStream } from './sse-relay';
import { countTextTokens, estimateChatPromptTokens } from './token-estimate';
import { usageFigures } from './usage-figures';

/**
 * The Azure OpenAI data plane, proxied: validates the request, calls the upstream, streams the
 * answer back unchanged, and produces exactly one usage event per served request.
 */

export interface OpenAiProxyRequest extends OpenAiRequestInput {
  attribution: Attribution;
  correlationId: string;
  startedAt: number;
}

/** An upstream answer: status, headers, and the body as it arrives. */
export interface UpstreamAnswer extends UpstreamBody {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The whole body (a non-streamed answer). */
  bytes(): Promise<Uint8Array<ArrayBuffer>>;
}

/**
 * The Azure OpenAI endpoint (adapters/openai-upstream.ts). It authenticates, pools connections,
 * bounds every wait, and maps a failure to reach it to an ApiError (502/504).
 */
export interface OpenAiUpstream {
  post(path: string, body: Uint8Array, correlationId: string): Promise<UpstreamAnswer>;
}

export interface OpenAiProxyDeps {
  upstream: OpenAiUpstream;
  record: (event: UsageEvent) => Promise<void>;
  now?: () => Date;
}

export interface OpenAiProxyResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array>;
}

/** Headers of an upstream answer that a caller may rely on (rate limits, retry hints, request ids). */
const PASSED_HEADERS = ['content-type', 'retry-after', 'retry-after-ms', 'apim-request-id', 'x-request-id'];
const PASSED_PREFIXES = ['x-ratelimit-'];

export async function proxyOpenAi(
  request: OpenAiProxyRequest,
  deps: OpenAiProxyDeps,
): Promise<OpenAiProxyResponse> {
  const now = deps.now ?? (() => new Date());
  const call = parseOpenAiCall(request);
  const { api, deployment, streaming, body } = call;
  const upstream = await deps.upstream.post(call.path, call.upstreamBody, request.correlationId);
  const status = upstream.status;
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
    const bytes = await upstream.bytes();
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
    body: relayStream(upstream, {
      hideUsage: api === 'chat' && !call.callerWantsUsage,
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

function parseJsonObject(bytes: Uint8Array): Record<string, unknown> {
  try {
    const value = JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function passedHeaders(upstream: UpstreamAnswer['headers']): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(upstream)) {
    if (value === undefined) continue;
    if (PASSED_HEADERS.includes(name) || PASSED_PREFIXES.some((prefix) => name.startsWith(prefix))) {
      headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
  }
  return headers;
}
