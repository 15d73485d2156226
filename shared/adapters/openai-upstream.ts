import type { Dispatcher } from 'undici';
import { Agent, errors as undiciErrors, request as undiciRequest } from 'undici';
import { ApiError } from '../contracts/api-errors';
import type { OpenAiUpstream, UpstreamAnswer } from '../metering/openai-proxy';

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
      bytes: async () => new Uint8Array(await responseBody.arrayBuffer()),
    };
  }
}
