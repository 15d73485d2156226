import type { Dispatcher } from 'undici';
import { Agent, errors as undiciErrors, request as undiciRequest } from 'undici';
import { ApiError, ensureError } from '../contracts/api-errors';
import type { OpenAiUpstream, UpstreamAnswer } from '../metering/openai-proxy';
import { UpstreamBodyError } from '../metering/openai-proxy';

/** Connections to Azure OpenAI are pooled and kept alive across invocations. */
const sharedPool = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connections: 512 });

export interface OpenAiUpstreamOptions {
  endpoint: string;
  authHeaders: () => Promise<Record<string, string>>;
  /** Longest wait for the upstream's response headers, and between two streamed chunks. */
  timeoutMs: number;
  /** Connection pool to the upstream; one shared keep-alive pool by default. */
  dispatcher?: Dispatcher;
}

/** Azure OpenAI over undici: one keep-alive pool, bounded waits, failures mapped to 502/504. */
export class UndiciOpenAiUpstream implements OpenAiUpstream {
  constructor(private readonly options: OpenAiUpstreamOptions) {}

  async post(path: string, body: Uint8Array, correlationId: string): Promise<UpstreamAnswer> {
    const { timeoutMs } = this.options;
    let response: Dispatcher.ResponseData;
    try {
      response = await undiciRequest(`${this.options.endpoint}${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-ms-client-request-id': correlationId,
          ...(await this.options.authHeaders()),
        },
        body,
        dispatcher: this.options.dispatcher ?? sharedPool,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (error) {
      throw error instanceof undiciErrors.HeadersTimeoutError ||
        error instanceof undiciErrors.ConnectTimeoutError
        ? new ApiError(504, 'GatewayTimeout', `Azure OpenAI did not answer within ${timeoutMs} ms.`)
        : new ApiError(
            502,
            'BadGateway',
            'Azure OpenAI could not be reached.',
            null,
            {},
            (error as Error).message,
          );
    }
    const responseBody = response.body;
    return {
      status: response.statusCode,
      headers: response.headers,
      chunks: responseBody,
      cancel: (reason) => responseBody.destroy(reason),
      bytes: () => readBody(responseBody, timeoutMs),
    };
  }
}

/**
 * The whole body. When it breaks off (the connection dropped: undici's `SocketError: other side
 * closed`; or nothing came for `timeoutMs`: its BodyTimeoutError), an UpstreamBodyError that says
 * so without the cause, which names addresses (kept in its `detail`), with the bytes received.
 */
async function readBody(
  body: Dispatcher.ResponseData['body'],
  timeoutMs: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  try {
    for await (const chunk of body) chunks.push(chunk as Uint8Array);
  } catch (error) {
    const cause = ensureError(error);
    throw cause instanceof undiciErrors.BodyTimeoutError
      ? new UpstreamBodyError(
          504,
          `Azure OpenAI stopped sending its answer for more than ${timeoutMs} ms: the answer was cut off.`,
          cause.message,
          concat(chunks),
        )
      : new UpstreamBodyError(
          502,
          'The answer from Azure OpenAI was cut off before it was complete.',
          cause.message,
          concat(chunks),
        );
  }
  return concat(chunks);
}

function concat(chunks: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  let size = 0;
  for (const chunk of chunks) size += chunk.byteLength;
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
