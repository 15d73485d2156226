import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { countTokens, encode } from 'gpt-tokenizer/encoding/o200k_base';

/**
 * A local Azure OpenAI data plane: chat completions (JSON and SSE), embeddings and the model list,
 * in the real request and response shapes, with realistic token counts (o200k tokenizer), prompt
 * caching, reasoning tokens, latency and injected failures. Plain node:http so that it is never
 * the bottleneck of a benchmark.
 */

/** `slow:<ms>` delays the response, `drip:<ms>` spaces SSE chunks, `cut` drops a stream half-way. */
export type SimulatorFault = '429' | '500' | '503' | 'timeout' | 'cut' | `slow:${number}` | `drip:${number}`;

export interface OpenAiSimulatorOptions {
  port?: number;
  apiKey?: string;
  /** Delay before the response (or the first SSE chunk). */
  latencyMs?: number;
  /** Delay between SSE chunks. */
  chunkDelayMs?: number;
  /** Deployment name → model name. */
  deployments?: Record<string, string>;
  fault?: SimulatorFault;
}

export interface OpenAiSimulator {
  readonly url: string;
  readonly port: number;
  readonly apiKey: string;
  readonly deployments: Readonly<Record<string, string>>;
  /** `aborted`: streams whose client went away before the end. */
  readonly stats: { requests: number; aborted: number };
  /** Applies to every later request; a request's `x-simulator-fault` header wins. */
  setFault(fault: SimulatorFault | undefined): void;
  close(): Promise<void>;
}

export const SIMULATOR_API_KEY = 'local-openai-simulator-key';

export const DEFAULT_DEPLOYMENTS: Readonly<Record<string, string>> = {
  'gpt-4o': 'gpt-4o-2024-11-20',
  'gpt-4o-mini': 'gpt-4o-mini-2024-07-18',
  'gpt-4.1': 'gpt-4.1-2025-04-14',
  'o3-mini': 'o3-mini-2025-01-31',
  'o4-mini': 'o4-mini-2025-04-16',
  'text-embedding-3-small': 'text-embedding-3-small',
  'text-embedding-3-large': 'text-embedding-3-large',
};

const EMBEDDING_DIMENSIONS: Record<string, number> = {
  'text-embedding-3-small': 1536,
  'text-embedding-3-large': 3072,
  'text-embedding-ada-002': 1536,
};

/** Azure caches prompts of at least 1024 tokens, in steps of 128 tokens. */
const CACHE_MIN_TOKENS = 1024;
const CACHE_STEP_TOKENS = 128;
const CACHE_CAPACITY = 10_000;

const FILTER_OK = {
  hate: { filtered: false, severity: 'safe' },
  self_harm: { filtered: false, severity: 'safe' },
  sexual: { filtered: false, severity: 'safe' },
  violence: { filtered: false, severity: 'safe' },
};

class SimulatorError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

interface ChatMessage {
  role?: unknown;
  content?: unknown;
}

export async function startOpenAiSimulator(options: OpenAiSimulatorOptions = {}): Promise<OpenAiSimulator> {
  const apiKey = options.apiKey ?? SIMULATOR_API_KEY;
  const deployments = { ...(options.deployments ?? DEFAULT_DEPLOYMENTS) };
  const stats = { requests: 0, aborted: 0 };
  let fault = options.fault;
  const promptCache = new Set<string>();

  const rememberPrefixes = (tokens: number[]): number => {
    // Longest previously-seen prefix (in 128-token steps from 1024) counts as cached; then remember
    // this prompt's prefixes for later requests.
    let cached = 0;
    const keys: string[] = [];
    for (let length = CACHE_MIN_TOKENS; length <= tokens.length; length += CACHE_STEP_TOKENS) {
      const key = createHash('sha1')
        .update(Int32Array.from(tokens.slice(0, length)))
        .digest('base64');
      keys.push(key);
      if (promptCache.has(key)) cached = length;
    }
    for (const key of keys) {
      if (promptCache.size >= CACHE_CAPACITY) promptCache.delete(promptCache.values().next().value as string);
      promptCache.add(key);
    }
    return cached;
  };

  const server = http.createServer((req, res) => {
    stats.requests += 1;
    handle(req, res).catch((error: unknown) => {
      if (error instanceof SimulatorError) return sendError(res, error);
      sendError(
        res,
        new SimulatorError(500, 'InternalServerError', error instanceof Error ? error.message : 'error'),
      );
    });
  });
  server.keepAliveTimeout = 65_000;

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const requestFault = (req.headers['x-simulator-fault'] as SimulatorFault | undefined) ?? fault;
    const body = await readBody(req);

    const apiKeyHeader = req.headers['api-key'];
    const bearer = /^Bearer\s+\S+/i.test(req.headers.authorization ?? '');
    if (apiKeyHeader !== apiKey && !bearer) {
      throw new SimulatorError(
        401,
        '401',
        'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
      );
    }

    const path = url.pathname;
    if (req.method === 'GET' && (path === '/openai/models' || path === '/openai/v1/models')) {
      return sendJson(res, 200, {
        object: 'list',
        data: Object.entries(deployments).map(([id, model]) => ({
          id,
          object: 'model',
          created: 0,
          owned_by: 'system',
          model,
        })),
      });
    }

    const deploymentForm = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings)$/.exec(path);
    const v1Form = /^\/openai\/v1\/(chat\/completions|embeddings|responses)$/.exec(path);
    if (req.method !== 'POST' || (!deploymentForm && !v1Form)) {
      throw new SimulatorError(404, '404', 'Resource not found');
    }
    if (deploymentForm && !url.searchParams.get('api-version')) {
      throw new SimulatorError(404, '404', 'Resource not found'); // what Azure answers without api-version
    }
    if (!/application\/json/i.test(req.headers['content-type'] ?? '')) {
      throw new SimulatorError(
        415,
        'UnsupportedMediaType',
        "Unsupported Content-Type; expected 'application/json'.",
      );
    }
    let request: Record<string, unknown>;
    try {
      const parsed = JSON.parse(body.toString('utf8')) as unknown;
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw new Error('not an object');
      request = parsed as Record<string, unknown>;
    } catch {
      throw new SimulatorError(
        400,
        'invalid_request_error',
        'We could not parse the JSON body of your request.',
      );
    }
    const deployment = deploymentForm
      ? decodeURIComponent(deploymentForm[1] ?? '')
      : typeof request.model === 'string'
        ? request.model
        : '';
    const operation = (deploymentForm?.[2] ?? v1Form?.[1]) as 'chat/completions' | 'embeddings' | 'responses';
    const model = deployments[deployment];
    if (!model) {
      throw new SimulatorError(
        404,
        'DeploymentNotFound',
        'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.',
      );
    }

    const delay = requestFault?.startsWith('slow:')
      ? Number(requestFault.slice(5))
      : (options.latencyMs ?? 0);
    if (requestFault === 'timeout') return; // accept, never answer (until close())
    if (requestFault === '429') {
      throw new SimulatorError(
        429,
        '429',
        'Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second.',
        null,
        {
          'retry-after': '1',
          'retry-after-ms': '1000',
          'x-ratelimit-remaining-requests': '0',
          'x-ratelimit-remaining-tokens': '0',
        },
      );
    }
    if (requestFault === '500' || requestFault === '503') {
      throw new SimulatorError(
        Number(requestFault),
        'InternalServerError',
        'The server had an error while processing your request.',
      );
    }
    if (delay > 0) await sleep(delay);

    if (operation === 'embeddings') return embeddings(res, request, model);
    if (operation === 'responses') return responses(res, request, model, requestFault === 'cut');
    const chunkDelayMs = requestFault?.startsWith('drip:')
      ? Number(requestFault.slice(5))
      : (options.chunkDelayMs ?? 0);
    return chat(res, request, model, requestFault === 'cut', chunkDelayMs);
  }

  function chat(
    res: http.ServerResponse,
    request: Record<string, unknown>,
    model: string,
    cut: boolean,
    chunkDelayMs: number,
  ): Promise<void> | void {
    const messages = request.messages;
    if (!Array.isArray(messages) || messages.length === 0) {
      throw new SimulatorError(
        400,
        'invalid_request_error',
        "Missing required parameter: 'messages'.",
        'messages',
      );
    }
    const promptTokenIds = (messages as ChatMessage[]).flatMap((m) => encode(contentText(m.content)));
    // As OpenAI counts chat prompts: 3 framing tokens and 1 role token per message, 3 to prime the reply.
    const promptTokens = promptTokenIds.length + 4 * messages.length + 3;
    const cachedTokens = promptTokenIds.length >= CACHE_MIN_TOKENS ? rememberPrefixes(promptTokenIds) : 0;

    const limit = numberOrUndefined(request.max_completion_tokens) ?? numberOrUndefined(request.max_tokens);
    const isReasoning = /^(o\d|gpt-5)/.test(model);
    const reasoningTokens = isReasoning ? 64 + (promptTokens % 192) : 0;
    const lastUser = [...(messages as ChatMessage[])].reverse().find((m) => m.role === 'user');
    let reply = composeReply(contentText(lastUser?.content), promptTokens);
    let replyTokens = countTokens(reply);
    let finishReason = 'stop';
    if (limit !== undefined && replyTokens + reasoningTokens > limit) {
      const visible = Math.max(0, limit - reasoningTokens);
      reply = decodeFirstTokens(reply, visible);
      replyTokens = visible;
      finishReason = 'length';
    }
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: replyTokens + reasoningTokens,
      total_tokens: promptTokens + replyTokens + reasoningTokens,
      prompt_tokens_details: { audio_tokens: 0, cached_tokens: cachedTokens },
      completion_tokens_details: {
        accepted_prediction_tokens: 0,
        audio_tokens: 0,
        reasoning_tokens: reasoningTokens,
        rejected_prediction_tokens: 0,
      },
    };
    const id = `chatcmpl-${randomUUID().replace(/-/g, '').slice(0, 29)}`;
    const created = Math.floor(Date.now() / 1000);
    const fingerprint = 'fp_local_sim';

    if (request.stream !== true) {
      return sendJson(res, 200, {
        id,
        object: 'chat.completion',
        created,
        model,
        system_fingerprint: fingerprint,
        prompt_filter_results: [{ prompt_index: 0, content_filter_results: FILTER_OK }],
        choices: [
          {
            index: 0,
            finish_reason: finishReason,
            logprobs: null,
            message: { role: 'assistant', content: reply, refusal: null },
            content_filter_results: FILTER_OK,
          },
        ],
        usage,
      });
    }

    const includeUsage =
      (request.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
    const base = { id, object: 'chat.completion.chunk', created, model, system_fingerprint: fingerprint };
    const withUsage = (chunk: Record<string, unknown>): Record<string, unknown> =>
      includeUsage ? { ...chunk, usage: null } : chunk;
    const chunks: Array<Record<string, unknown>> = [
      // Azure's first chunk carries only the prompt filter results.
      {
        choices: [],
        created: 0,
        id: '',
        model: '',
        object: '',
        prompt_filter_results: [{ prompt_index: 0, content_filter_results: FILTER_OK }],
      },
      withUsage({
        ...base,
        choices: [
          {
            index: 0,
            delta: { role: 'assistant', content: '', refusal: null },
            finish_reason: null,
            logprobs: null,
          },
        ],
      }),
      ...splitPieces(reply).map((piece) =>
        withUsage({
          ...base,
          choices: [
            {
              index: 0,
              delta: { content: piece },
              finish_reason: null,
              logprobs: null,
              content_filter_results: FILTER_OK,
            },
          ],
        }),
      ),
      withUsage({ ...base, choices: [{ index: 0, delta: {}, finish_reason: finishReason, logprobs: null }] }),
    ];
    if (includeUsage) chunks.push({ ...base, choices: [], usage });
    return streamChunks(res, chunks, cut, chunkDelayMs);
  }

  async function streamChunks(
    res: http.ServerResponse,
    chunks: Array<Record<string, unknown>>,
    cut: boolean,
    chunkDelayMs: number,
  ): Promise<void> {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'apim-request-id': randomUUID(),
      'x-request-id': randomUUID(),
    });
    res.flushHeaders();
    const cutAt = cut ? Math.max(2, Math.floor(chunks.length / 2)) : Infinity;
    for (let i = 0; i < chunks.length; i++) {
      if (res.destroyed) {
        stats.aborted += 1;
        return;
      }
      if (i === cutAt) {
        // Let what was written reach the client, then drop the connection without [DONE].
        await sleep(20);
        res.socket?.destroy();
        return;
      }
      res.write(`data: ${JSON.stringify(chunks[i])}\n\n`);
      if (chunkDelayMs) await sleep(chunkDelayMs);
    }
    res.end('data: [DONE]\n\n');
  }

  /** The Responses API: usage in the response object, and in the `response.completed` event when streaming. */
  function responses(
    res: http.ServerResponse,
    request: Record<string, unknown>,
    model: string,
    cut: boolean,
  ): Promise<void> | void {
    const input = request.input;
    const messages: ChatMessage[] =
      typeof input === 'string'
        ? [{ role: 'user', content: input }]
        : Array.isArray(input)
          ? (input as ChatMessage[])
          : [];
    if (messages.length === 0) {
      throw new SimulatorError(400, 'invalid_request_error', "Missing required parameter: 'input'.", 'input');
    }
    const promptTokenIds = messages.flatMap((m) => encode(contentText(m.content)));
    const inputTokens = promptTokenIds.length + 4 * messages.length + 3;
    const cachedTokens = promptTokenIds.length >= CACHE_MIN_TOKENS ? rememberPrefixes(promptTokenIds) : 0;
    const reasoningTokens = /^(o\d|gpt-5)/.test(model) ? 64 + (inputTokens % 192) : 0;
    let text = composeReply(contentText(messages[messages.length - 1]?.content), inputTokens);
    const cap = numberOrUndefined(request.max_output_tokens);
    if (cap !== undefined && countTokens(text) + reasoningTokens > cap)
      text = decodeFirstTokens(text, Math.max(0, cap - reasoningTokens));
    const outputTokens = countTokens(text) + reasoningTokens;
    const usage = {
      input_tokens: inputTokens,
      input_tokens_details: { cached_tokens: cachedTokens },
      output_tokens: outputTokens,
      output_tokens_details: { reasoning_tokens: reasoningTokens },
      total_tokens: inputTokens + outputTokens,
    };
    const id = `resp_${randomUUID().replace(/-/g, '')}`;
    const itemId = `msg_${randomUUID().replace(/-/g, '')}`;
    const base = {
      id,
      object: 'response',
      created_at: Math.floor(Date.now() / 1000),
      model,
      error: null,
      incomplete_details: null,
      instructions: null,
      max_output_tokens: cap ?? null,
      parallel_tool_calls: true,
      previous_response_id: null,
      temperature: 1,
      tool_choice: 'auto',
      tools: [],
      top_p: 1,
      metadata: {},
    };
    const message = (content: string) => ({
      type: 'message',
      id: itemId,
      status: 'completed',
      role: 'assistant',
      content: [{ type: 'output_text', text: content, annotations: [] }],
    });
    const completed = { ...base, status: 'completed', output: [message(text)], output_text: text, usage };
    if (request.stream !== true) return sendJson(res, 200, completed);

    let sequence = 0;
    const event = (type: string, body: Record<string, unknown>) => ({
      type,
      sequence_number: sequence++,
      ...body,
    });
    const events: Array<Record<string, unknown>> = [
      event('response.created', { response: { ...base, status: 'in_progress', output: [], usage: null } }),
      event('response.output_item.added', {
        output_index: 0,
        item: { ...message(''), status: 'in_progress', content: [] },
      }),
      ...splitPieces(text).map((delta) =>
        event('response.output_text.delta', { item_id: itemId, output_index: 0, content_index: 0, delta }),
      ),
      event('response.output_text.done', { item_id: itemId, output_index: 0, content_index: 0, text }),
      event('response.output_item.done', { output_index: 0, item: message(text) }),
      event('response.completed', { response: completed }),
    ];
    return streamEvents(res, events, cut);
  }

  async function streamEvents(
    res: http.ServerResponse,
    events: Array<Record<string, unknown>>,
    cut: boolean,
  ): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    res.flushHeaders();
    const cutAt = cut ? Math.max(2, Math.floor(events.length / 2)) : Infinity;
    for (let i = 0; i < events.length; i++) {
      if (i === cutAt) {
        await sleep(20);
        res.socket?.destroy();
        return;
      }
      const event = events[i] as { type: string };
      res.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
    }
    res.end();
  }

  function embeddings(res: http.ServerResponse, request: Record<string, unknown>, model: string): void {
    const input = request.input;
    const items: Array<string | number[]> =
      typeof input === 'string'
        ? [input]
        : Array.isArray(input) && input.every((i) => typeof i === 'number')
          ? [input]
          : Array.isArray(input)
            ? (input as Array<string | number[]>)
            : [];
    if (
      items.length === 0 ||
      items.some((i) => (typeof i === 'string' ? i.length === 0 : !Array.isArray(i)))
    ) {
      throw new SimulatorError(
        400,
        'invalid_request_error',
        "'input' must be a non-empty string or array.",
        'input',
      );
    }
    const dimensions = numberOrUndefined(request.dimensions) ?? EMBEDDING_DIMENSIONS[model] ?? 1536;
    const base64 = request.encoding_format === 'base64';
    let promptTokens = 0;
    const data = items.map((item, index) => {
      const text = typeof item === 'string' ? item : item.join(' ');
      promptTokens += typeof item === 'string' ? countTokens(item) : item.length;
      const vector = embeddingVector(text, dimensions);
      return {
        object: 'embedding',
        index,
        embedding: base64
          ? Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64')
          : Array.from(vector),
      };
    });
    sendJson(res, 200, {
      object: 'list',
      data,
      model,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    apiKey,
    deployments,
    stats,
    setFault(next) {
      fault = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part) =>
        typeof part === 'object' && part !== null && 'text' in part
          ? String((part as { text: unknown }).text)
          : '',
      )
      .join('');
  }
  return '';
}

const SENTENCES = [
  'Here is a concise answer based on what you asked.',
  'The main point is that usage is measured per request and charged per department.',
  'Costs are computed from prompt, cached and completion tokens at the published prices.',
  'Let me know if you would like more detail on any part of this.',
  'Streaming responses arrive token by token, and the last chunk reports usage.',
  'Shared platform costs are allocated by a configurable rule.',
];

/** A deterministic reply whose length depends on the prompt (between ~2 and ~6 sentences). */
function composeReply(question: string, promptTokens: number): string {
  const topic = question.split(/\s+/).filter(Boolean).slice(0, 8).join(' ');
  const count = 2 + (promptTokens % 5);
  const start = promptTokens % SENTENCES.length;
  const body = Array.from({ length: count }, (_, i) => SENTENCES[(start + i) % SENTENCES.length]).join(' ');
  return topic ? `You asked about "${topic}". ${body}` : body;
}

function decodeFirstTokens(text: string, tokens: number): string {
  let out = '';
  for (const piece of splitPieces(text)) {
    if (countTokens(out + piece) > tokens) break;
    out += piece;
  }
  return out;
}

/** Word-sized pieces, as the service streams them (roughly one token each). */
function splitPieces(text: string): string[] {
  return text.match(/\s*\S+/g) ?? [];
}

function embeddingVector(text: string, dimensions: number): Float32Array {
  const vector = new Float32Array(dimensions);
  let seed = createHash('sha256').update(text).digest();
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    const byte = i % 32;
    if (byte === 0 && i > 0) seed = createHash('sha256').update(seed).digest();
    const value = ((seed[byte] ?? 0) - 127.5) / 127.5;
    vector[i] = value;
    norm += value * value;
  }
  const scale = 1 / Math.sqrt(norm || 1);
  for (let i = 0; i < dimensions; i++) vector[i] = (vector[i] ?? 0) * scale;
  return vector;
}

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sendJson(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'apim-request-id': randomUUID(),
    ...headers,
  });
  res.end(text);
}

function sendError(res: http.ServerResponse, error: SimulatorError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(
    res,
    error.status,
    {
      error: {
        code: error.code,
        message: error.message,
        param: error.param,
        type: error.status < 500 ? 'invalid_request_error' : null,
      },
    },
    error.headers,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
