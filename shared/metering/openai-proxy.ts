import type { ReadableStream } from 'node:stream/web';
import { ApiError } from '../contracts/api-errors';
import type { UsageEvent, UsageFigures } from '../contracts/usage-event';
import { NO_USAGE } from '../contracts/usage-event';
import type { Attribution } from './attribution';
import type { RequestBudget } from './budget';
import { openAiEstimate } from './budget';
import type { OpenAiCall, OpenAiRequestInput } from './openai-request';
import { estimatePromptTokens, parseOpenAiCall } from './openai-request';
import { usageEventFor } from './served-usage';
import type { UpstreamBody } from './sse-relay';
import { jsonString, relayStream, stringValueAt } from './sse-relay';
import { countTextTokens } from './token-estimate';
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
  /**
   * The whole body (a non-streamed answer). Rejects with an UpstreamBodyError when the body breaks
   * off (the connection dropped, or the upstream went quiet for too long).
   */
  bytes(): Promise<Uint8Array<ArrayBuffer>>;
}

/**
 * An answer's body that broke off after the upstream had answered: the error the caller gets (a
 * 502, or a 504 when the upstream went quiet for too long; the cause only in `detail`), and the
 * bytes that arrived before the break.
 */
export class UpstreamBodyError extends ApiError {
  constructor(
    status: 502 | 504,
    message: string,
    detail: string,
    readonly received: Uint8Array,
  ) {
    super(status, status === 504 ? 'GatewayTimeout' : 'BadGateway', message, null, {}, detail);
    this.name = 'UpstreamBodyError';
  }
}

/**
 * The Azure OpenAI endpoint (adapters/openai-upstream.ts). It authenticates, pools connections,
 * bounds every wait, and maps a failure to reach it to an ApiError (502/504), and a body that
 * breaks off to an UpstreamBodyError.
 */
export interface OpenAiUpstream {
  post(path: string, body: Uint8Array, correlationId: string): Promise<UpstreamAnswer>;
}

export interface OpenAiProxyDeps {
  upstream: OpenAiUpstream;
  record: (event: UsageEvent) => Promise<void>;
  /** Monthly budgets, checked before the upstream is called (none: no budgets are checked). */
  budget?: RequestBudget;
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
  const { api, deployment, streaming } = call;
  // Budgets are checked before the upstream sees the request: a refusal (429) throws here.
  const hold = await deps.budget?.reserve({
    attribution: request.attribution,
    api,
    deployment,
    figures: openAiEstimate(call),
  });
  /** Records a served request's usage, then counts its cost against its budgets (neither throws). */
  const record = async (served: UsageEvent): Promise<void> => {
    await deps.record(served);
    await hold?.settle(served);
  };
  let upstream: UpstreamAnswer;
  try {
    upstream = await deps.upstream.post(call.path, call.upstreamBody, request.correlationId);
  } catch (error) {
    await hold?.settle(undefined); // nothing was served: the hold is released
    throw error;
  }
  const status = upstream.status;
  const ok = status >= 200 && status < 300;
  const headers = { ...passedHeaders(upstream.headers), ...hold?.headers };
  const event = (figures: UsageFigures, model: string, estimated: boolean, served = status): UsageEvent =>
    usageEventFor(
      request,
      { api, deployment, model, figures, status: served, streamed: streaming, estimated },
      now(),
    );

  const isEventStream = /text\/event-stream/i.test(headers['content-type'] ?? '');
  if (!ok || !streaming || !isEventStream) {
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = await upstream.bytes();
    } catch (error) {
      // A served answer that broke off mid-body: the upstream did the work (the prompt was read and
      // the answer generated before it was sent), so it is recorded like a cut stream, estimated,
      // with the status the caller gets. The completion is counted, conservatively, from the text
      // that arrived before the break (the cut stream's rule: what reached the proxy), none if
      // nothing of it did. Nothing is recorded for a failed call whose error body broke off.
      if (ok) {
        const received = error instanceof UpstreamBodyError ? error.received : new Uint8Array();
        const partial = new TextDecoder().decode(received, { stream: true });
        await record(
          event(
            {
              ...NO_USAGE,
              promptTokens: estimatePromptTokens(call),
              completionTokens: countTextTokens(recoverText(api, partial)),
            },
            MODEL_FIELD.exec(partial)?.[1] ?? '',
            true,
            error instanceof ApiError ? error.status : 500,
          ),
        );
      } else {
        await hold?.settle(undefined);
      }
      throw error;
    }
    if (ok) {
      // Nothing billable is recorded for a failed call; a served one is recorded before answering.
      const answer = parseJsonObject(bytes);
      await record(
        event(usageFigures(answer.usage), typeof answer.model === 'string' ? answer.model : '', false),
      );
    } else {
      await hold?.settle(undefined);
    }
    return { status, headers, body: bytes };
  }

  return {
    status,
    headers,
    body: relayStream(upstream, {
      hideUsage: api === 'chat' && !call.callerWantsUsage,
      finish: async ({ usage, model, completionTokens }) => {
        const exact = usage !== undefined;
        const figures = exact
          ? usageFigures(usage)
          : { ...NO_USAGE, promptTokens: estimatePromptTokens(call), completionTokens: completionTokens() };
        await record(event(figures, model, !exact));
      },
    }),
  };
}

/** The top-level `model` of an answer's JSON (complete: its closing quote arrived). */
const MODEL_FIELD = /"model"\s*:\s*"([^"\\]*)"/;
/**
 * The key of the strings holding an answer's generated text: a chat completion's
 * `message.content`, a response's `output[].content[].text`.
 */
const TEXT_KEYS: Partial<Record<OpenAiCall['api'], string>> = { chat: '"content"', responses: '"text"' };

/** The generated text in the start of an answer's JSON: whatever arrived of it. */
function recoverText(api: OpenAiCall['api'], partial: string): string {
  const key = TEXT_KEYS[api];
  if (!key) return '';
  let text = '';
  for (let at = partial.indexOf(key); at !== -1;) {
    const value = stringValueAt(partial, at + key.length);
    if (!value) {
      at = partial.indexOf(key, at + key.length); // another value (an object, null)
      continue;
    }
    if (value.end === -1) return text + jsonStringPrefix(partial.slice(value.start)); // cut off inside
    text += jsonString(partial.slice(value.start, value.end)) ?? '';
    at = partial.indexOf(key, value.end + 1);
  }
  return text;
}

/** What arrived of a JSON string's contents: an escape cut in half is left out. */
function jsonStringPrefix(raw: string): string {
  for (let end = raw.length; end >= Math.max(0, raw.length - 6); end--) {
    const text = jsonString(raw.slice(0, end));
    if (text !== undefined) return text;
  }
  return '';
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
