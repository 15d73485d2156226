import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { FaultPlan, FaultSetting } from './faults';
import { FAULT_HEADER, parseFault } from './faults';
import { closeServer, listen, pause, readBody, sendJson, writeFrames } from './http';
import {
  ACCESS_DENIED,
  DEPLOYMENT_NOT_FOUND,
  invalidRequest,
  invalidValue,
  OpenAiError,
  operationNotSupported,
  RESOURCE_NOT_FOUND,
  unsupportedParameter,
} from './openai-errors';
import type { ResponsesUsage } from './openai-responses';
import { prepareResponse, ResponseStore } from './openai-responses';
import type { PromptPart, ReasoningEffort } from './openai-text';
import {
  complete,
  EMBEDDING_DIMENSIONS,
  embeddingVector,
  isEmbeddingModel,
  isReasoningModel,
  PromptBuilder,
  PromptCache,
  REASONING_EFFORTS,
  serviceId,
  tokenizerFor,
} from './openai-text';

/**
 * A local Azure OpenAI data plane on plain node:http, so that it is never a benchmark's bottleneck:
 * chat completions (JSON and SSE), embeddings, the Responses API and the model list, in the
 * service's request, response and error shapes, with realistic usage (o200k/cl100k tokenizers,
 * chat framing, Azure prompt caching, reasoning tokens), latency and injected failures.
 *
 * Routes (the resource endpoint is `url`):
 *   POST /openai/deployments/{deployment}/chat/completions?api-version=…   POST /openai/v1/chat/completions
 *   POST /openai/deployments/{deployment}/embeddings?api-version=…         POST /openai/v1/embeddings
 *   POST /openai/responses?api-version=…                                   POST /openai/v1/responses
 *   GET|DELETE /openai/responses/{id}?api-version=…                        GET|DELETE /openai/v1/responses/{id}
 *   GET /openai/models?api-version=…                                       GET /openai/v1/models[/{id}]
 * Auth: `api-key: <apiKey>`, or `Authorization: Bearer <any token>` standing in for Entra ID.
 */

export type { FaultSetting, SimulatorFault } from './faults';
export { FAULT_HEADER } from './faults';

export interface OpenAiSimulatorOptions {
  /** Default 0: a free port. */
  port?: number;
  apiKey?: string;
  /** Delay before the response (or the first SSE chunk). Default 0. */
  latencyMs?: number;
  /** Delay between SSE chunks. Default 0. */
  chunkDelayMs?: number;
  /** Deployment name → model name. Default DEFAULT_DEPLOYMENTS. */
  deployments?: Record<string, string>;
  fault?: FaultSetting;
}

export interface OpenAiSimulatorStats {
  /** HTTP requests received. */
  requests: number;
  /** Streams whose client went away before the end. */
  aborted: number;
  /** Requests a fault was injected into. */
  faulted: number;
  /**
   * Usage of every completion, response and embedding generated (including streams cut by a fault
   * or abandoned by the client: the service bills what it generated), for cross-checking a meter.
   */
  usage: { promptTokens: number; cachedTokens: number; completionTokens: number; reasoningTokens: number };
}

export interface OpenAiSimulator {
  readonly url: string;
  readonly port: number;
  readonly apiKey: string;
  readonly deployments: Readonly<Record<string, string>>;
  readonly stats: OpenAiSimulatorStats;
  /** Applies to every later request; a request's `x-simulator-fault` header wins. Throws if invalid. */
  setFault(fault: FaultSetting | undefined): void;
  /** Stops listening and drops every open connection (held `timeout` requests included). */
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

const FILTER_OK = {
  hate: { filtered: false, severity: 'safe' },
  self_harm: { filtered: false, severity: 'safe' },
  sexual: { filtered: false, severity: 'safe' },
  violence: { filtered: false, severity: 'safe' },
};
const PROMPT_FILTER = [{ prompt_index: 0, content_filter_results: FILTER_OK }];
const FILTER_OK_JSON = JSON.stringify(FILTER_OK);

const CHAT_ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'];
/** Dated (`2024-10-21`, `2025-04-01-preview`) or the v1 surface's `preview` / `latest`. */
const API_VERSION = /^(\d{4}-\d{2}-\d{2}(-preview)?|preview|latest|v1)$/;
const MAX_EMBEDDING_INPUTS = 2048;
const MAX_EMBEDDING_TOKENS = 8192;

type Route =
  | { kind: 'models' }
  | { kind: 'model'; id: string }
  | { kind: 'chat' | 'embeddings' | 'responses'; deployment?: string }
  | { kind: 'stored-response'; id: string };

export async function startOpenAiSimulator(options: OpenAiSimulatorOptions = {}): Promise<OpenAiSimulator> {
  const apiKey = options.apiKey ?? SIMULATOR_API_KEY;
  const deployments: Readonly<Record<string, string>> = Object.freeze({
    ...(options.deployments ?? DEFAULT_DEPLOYMENTS),
  });
  const fingerprints = new Map(
    Object.values(deployments).map((model) => [
      model,
      `fp_${createHash('sha1').update(model).digest('hex').slice(0, 10)}`,
    ]),
  );
  const stats: OpenAiSimulatorStats = {
    requests: 0,
    aborted: 0,
    faulted: 0,
    usage: { promptTokens: 0, cachedTokens: 0, completionTokens: 0, reasoningTokens: 0 },
  };
  let fault = parseFault(options.fault);
  const cache = new PromptCache();
  const store = new ResponseStore();
  const region = 'localsim';

  const server = http.createServer((req, res) => {
    stats.requests += 1;
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const failure =
        error instanceof OpenAiError
          ? error
          : new OpenAiError(
              500,
              'InternalServerError',
              error instanceof Error ? error.message : String(error),
            );
      sendJson(res, failure.status, failure.toBody(), { ...commonHeaders(), ...failure.headers });
    });
  });
  // Longer than the clients' and proxies' idle timeouts, as the service's is, so they close first.
  server.keepAliveTimeout = 65_000;

  function commonHeaders(): http.OutgoingHttpHeaders {
    return { 'apim-request-id': randomUUID(), 'x-request-id': randomUUID(), 'x-ms-region': region };
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const body = await readBody(req);

    const bearer = /^Bearer\s+\S+/i.test(req.headers.authorization ?? '');
    if (req.headers['api-key'] !== apiKey && !bearer) throw ACCESS_DENIED();

    const route = routeOf(req.method ?? 'GET', url);
    const plan = requestFault(req);

    if (route.kind === 'models' || route.kind === 'model') {
      if (!(await applyFault(plan, res, 'Models_List'))) return;
      const entries = Object.entries(deployments).map(([id, model]) => modelEntry(id, model));
      if (route.kind === 'models')
        return sendJson(res, 200, { object: 'list', data: entries }, commonHeaders());
      const entry = entries.find((e) => e.id === route.id);
      if (!entry) throw DEPLOYMENT_NOT_FOUND();
      return sendJson(res, 200, entry, commonHeaders());
    }

    if (route.kind === 'stored-response') {
      if (!(await applyFault(plan, res, 'Responses_Get'))) return;
      const stored = store.get(route.id);
      if (!stored) {
        throw new OpenAiError(404, 'not_found', `Response with id '${route.id}' not found.`, null);
      }
      if (req.method === 'DELETE') {
        store.delete(route.id);
        return sendJson(res, 200, { id: route.id, object: 'response', deleted: true }, commonHeaders());
      }
      return sendJson(res, 200, stored.response, commonHeaders());
    }

    const request = parseJsonBody(req, body);
    const deployment = route.deployment ?? request.model;
    if (route.deployment === undefined && (typeof deployment !== 'string' || !deployment)) {
      throw invalidRequest("Missing required parameter: 'model'.", 'model', 'missing_required_parameter');
    }
    const model = typeof deployment === 'string' ? deployments[deployment] : undefined;
    if (!model || typeof deployment !== 'string') throw DEPLOYMENT_NOT_FOUND();

    if (route.kind === 'embeddings') {
      if (!isEmbeddingModel(model)) throw operationNotSupported('embeddings', model);
      const embeddings = prepareEmbeddings(request, model);
      if (!(await applyFault(plan, res, 'Embeddings_Create', url))) return;
      stats.usage.promptTokens += embeddings.promptTokens;
      return sendJson(res, 200, embeddings.json(), commonHeaders(), plan.outcome === 'cut');
    }
    if (isEmbeddingModel(model)) {
      throw operationNotSupported(route.kind === 'chat' ? 'chatCompletion' : 'responses', model);
    }
    if (route.kind === 'responses') {
      const generate = prepareResponse(request, deployment, model, cache, store);
      if (!(await applyFault(plan, res, 'Responses_Create', url))) return;
      const outcome = generate();
      count(outcome.usage);
      if (request.stream === true) return stream(res, outcome.frames(), plan, false);
      return sendJson(res, 200, outcome.response, commonHeaders(), plan.outcome === 'cut');
    }
    const generate = prepareChat(request, deployment, model);
    if (!(await applyFault(plan, res, 'ChatCompletions_Create', url))) return;
    const chat = generate();
    count(chat.usage);
    if (request.stream === true) return stream(res, chat.frames(), plan, true);
    return sendJson(res, 200, chat.json(), commonHeaders(), plan.outcome === 'cut');
  }

  function requestFault(req: http.IncomingMessage): FaultPlan {
    const header = req.headers[FAULT_HEADER];
    if (header === undefined) return fault;
    try {
      return parseFault(Array.isArray(header) ? header.join(',') : header);
    } catch (error) {
      throw invalidRequest((error as Error).message, FAULT_HEADER, 'InvalidSimulatorFault');
    }
  }

  /** Applies the fault's failure or latency; false when the request is answered (or abandoned). */
  async function applyFault(
    plan: FaultPlan,
    res: http.ServerResponse,
    operation: string,
    url?: URL,
  ): Promise<boolean> {
    if (plan.outcome || plan.latencyMs !== undefined || plan.chunkDelayMs !== undefined) stats.faulted += 1;
    switch (plan.outcome) {
      case 'timeout':
        return false; // never answered; close() or the client ends it
      case 'reset':
        res.destroy();
        return false;
      case 'rate-limit': {
        const seconds = Math.max(1, Math.ceil(plan.retryAfterMs / 1000));
        const version = url?.searchParams.get('api-version') ?? 'v1';
        throw new OpenAiError(
          429,
          '429',
          `Requests to the ${operation} Operation under Azure OpenAI API version ${version} have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after ${seconds} second${seconds === 1 ? '' : 's'}. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.`,
          null,
          {
            'retry-after': String(seconds),
            'retry-after-ms': String(plan.retryAfterMs),
            'x-ratelimit-remaining-requests': '0',
            'x-ratelimit-remaining-tokens': '0',
          },
        );
      }
      case 'server-error':
        throw new OpenAiError(
          500,
          'InternalServerError',
          'The server had an error while processing your request. Sorry about that!',
        );
      case 'unavailable':
        throw new OpenAiError(
          503,
          'ServiceUnavailable',
          'The service is temporarily unable to process your request. Please try again later.',
        );
      default:
        break;
    }
    return pause(plan.latencyMs ?? options.latencyMs ?? 0, res);
  }

  async function stream(
    res: http.ServerResponse,
    frames: string[],
    plan: FaultPlan,
    chatFrames: boolean,
  ): Promise<void> {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      ...commonHeaders(),
    });
    res.flushHeaders();
    // A cut lands half-way through the content: after some text, before the end and any usage.
    const cutAfterFrames =
      plan.outcome === 'cut' ? Math.max(chatFrames ? 3 : 4, Math.floor(frames.length / 2)) : undefined;
    const outcome = await writeFrames(res, frames, {
      chunkDelayMs: plan.chunkDelayMs ?? options.chunkDelayMs ?? 0,
      cutAfterFrames,
    });
    if (outcome === 'aborted') stats.aborted += 1;
  }

  /** Counted once the service would have generated the output: after faults, before streaming. */
  function count(usage: ResponsesUsage): void {
    stats.usage.promptTokens += usage.input_tokens;
    stats.usage.cachedTokens += usage.input_tokens_details.cached_tokens;
    stats.usage.completionTokens += usage.output_tokens;
    stats.usage.reasoningTokens += usage.output_tokens_details.reasoning_tokens;
  }

  /** Validates a chat request and reads its prompt; the function returned generates the reply. */
  function prepareChat(request: Record<string, unknown>, deployment: string, model: string) {
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
    const effort = chatReasoningEffort(request.reasoning_effort, reasoning, model);

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
      const fingerprint = fingerprints.get(model) ?? 'fp_local';
      const indexes = Array.from({ length: choices }, (_, i) => i);

      return {
        usage: {
          input_tokens: prompt.tokens,
          input_tokens_details: { cached_tokens: cachedTokens },
          output_tokens: completionTokens,
          output_tokens_details: { reasoning_tokens: usage.completion_tokens_details.reasoning_tokens },
          total_tokens: usage.total_tokens,
        } satisfies ResponsesUsage,
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
        frames: () => {
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
        },
      };
    };
  }

  function prepareEmbeddings(
    request: Record<string, unknown>,
    model: string,
  ): { promptTokens: number; json(): Record<string, unknown> } {
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
    return {
      promptTokens,
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
    };
  }

  const port = await listen(server, options.port);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    apiKey,
    deployments,
    stats,
    setFault(next) {
      fault = parseFault(next);
    },
    close: () => closeServer(server),
  };
}

function routeOf(method: string, url: URL): Route {
  const path = url.pathname.replace(/\/+$/, '');
  const versioned = (): void => {
    const version = url.searchParams.get('api-version');
    if (!version) throw RESOURCE_NOT_FOUND(); // what Azure answers, rather than a 400
    if (!API_VERSION.test(version)) throw new OpenAiError(400, 'BadRequest', 'API version not supported');
  };
  const v1Version = (): void => {
    const version = url.searchParams.get('api-version');
    if (version && !API_VERSION.test(version)) {
      throw new OpenAiError(400, 'BadRequest', 'API version not supported');
    }
  };
  if (method === 'GET' && (path === '/openai/models' || path === '/openai/v1/models')) {
    if (path === '/openai/models') versioned();
    return { kind: 'models' };
  }
  const model = /^\/openai(\/v1)?\/models\/([^/]+)$/.exec(path);
  if (method === 'GET' && model) {
    if (!model[1]) versioned();
    return { kind: 'model', id: decodeURIComponent(model[2] ?? '') };
  }
  const stored = /^\/openai(\/v1)?\/responses\/([^/]+)$/.exec(path);
  if ((method === 'GET' || method === 'DELETE') && stored) {
    if (stored[1]) v1Version();
    else versioned();
    return { kind: 'stored-response', id: decodeURIComponent(stored[2] ?? '') };
  }
  if (method === 'POST') {
    const deploymentForm = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings)$/.exec(path);
    if (deploymentForm) {
      versioned();
      return {
        kind: deploymentForm[2] === 'embeddings' ? 'embeddings' : 'chat',
        deployment: decodeURIComponent(deploymentForm[1] ?? ''),
      };
    }
    const v1Form = /^\/openai\/v1\/(chat\/completions|embeddings|responses)$/.exec(path);
    if (v1Form) {
      v1Version();
      return { kind: v1Form[1] === 'chat/completions' ? 'chat' : (v1Form[1] as 'embeddings' | 'responses') };
    }
    if (path === '/openai/responses') {
      versioned();
      return { kind: 'responses' };
    }
  }
  throw RESOURCE_NOT_FOUND();
}

function parseJsonBody(req: http.IncomingMessage, body: Buffer): Record<string, unknown> {
  if (!/application\/json/i.test(req.headers['content-type'] ?? '')) {
    throw new OpenAiError(
      415,
      'UnsupportedMediaType',
      "Unsupported Content-Type; expected 'application/json'.",
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalidRequest(
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
    );
  }
  return parsed as Record<string, unknown>;
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

function chatReasoningEffort(value: unknown, reasoning: boolean, model: string): ReasoningEffort {
  if (value === undefined || value === null) return 'medium';
  if (!reasoning) throw unsupportedParameter('reasoning_effort');
  if (
    typeof value !== 'string' ||
    !REASONING_EFFORTS.includes(value) ||
    (value === 'minimal' && !model.startsWith('gpt-5'))
  ) {
    throw invalidValue('reasoning_effort', value, "Supported values are: 'low', 'medium', and 'high'.");
  }
  return value as ReasoningEffort;
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

function positiveInteger(value: unknown, param: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw invalidValue(param, value, 'Expected a positive integer.');
  }
  return value;
}

function modelEntry(id: string, model: string) {
  const embeddings = isEmbeddingModel(model);
  return {
    id,
    object: 'model',
    created: 1_700_000_000,
    owned_by: 'system',
    model,
    status: 'succeeded',
    lifecycle_status: 'generally-available',
    capabilities: {
      chat_completion: !embeddings,
      completion: false,
      embeddings,
      fine_tune: false,
      inference: true,
    },
  };
}
