import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { FaultPlan, FaultSetting } from './faults';
import { FAULT_HEADER, isFaulted, parseFault, requestFault } from './faults';
import {
  applyFault,
  closeServer,
  createSimulatorServer,
  listen,
  readBody,
  sendJson,
  writeFrames,
} from './http';
import { chatCompletions } from './openai-chat';
import { embeddings } from './openai-embeddings';
import {
  ACCESS_DENIED,
  API_VERSION_NOT_SUPPORTED,
  asOpenAiError,
  DEPLOYMENT_NOT_FOUND,
  faultErrors,
  invalidRequest,
  RESOURCE_NOT_FOUND,
  UNSUPPORTED_MEDIA_TYPE,
} from './openai-errors';
import { models } from './openai-models';
import type { Generated, Operation, ResponsesUsage } from './openai-operation';
import { responses, ResponseStore, storedResponse } from './openai-responses';
import { PromptCache } from './openai-text';

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
 *
 * This module is the server: routing, auth, faults, streaming and stats. Each operation is a module
 * of its own: openai-chat.ts, openai-embeddings.ts, openai-responses.ts, openai-models.ts.
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

/** Dated (`2024-10-21`, `2025-04-01-preview`) or the v1 surface's `preview` / `latest`. */
const API_VERSION = /^(\d{4}-\d{2}-\d{2}(-preview)?|preview|latest|v1)$/;

const OPERATIONS: Readonly<Record<'chat' | 'embeddings' | 'responses', Operation>> = {
  chat: chatCompletions,
  embeddings,
  responses,
};

type Route =
  | { kind: 'models' }
  | { kind: 'model'; id: string }
  | { kind: keyof typeof OPERATIONS; deployment?: string }
  | { kind: 'stored-response'; id: string };

export async function startOpenAiSimulator(options: OpenAiSimulatorOptions = {}): Promise<OpenAiSimulator> {
  const apiKey = options.apiKey ?? SIMULATOR_API_KEY;
  const deployments: Readonly<Record<string, string>> = Object.freeze({
    ...(options.deployments ?? DEFAULT_DEPLOYMENTS),
  });
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

  const server = createSimulatorServer(handle, {
    onRequest: () => {
      stats.requests += 1;
    },
    errorAnswer: asOpenAiError,
    errorHeaders: commonHeaders,
  });

  function commonHeaders(): http.OutgoingHttpHeaders {
    return { 'apim-request-id': randomUUID(), 'x-request-id': randomUUID(), 'x-ms-region': region };
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const body = await readBody(req);

    const bearer = /^Bearer\s+\S+/i.test(req.headers.authorization ?? '');
    if (req.headers['api-key'] !== apiKey && !bearer) throw ACCESS_DENIED();

    const route = routeOf(req.method ?? 'GET', url);
    const plan = faultOf(req);

    if (route.kind === 'models' || route.kind === 'model') {
      if (!(await injectFault(plan, res, 'Models_List'))) return;
      return sendJson(
        res,
        200,
        models(deployments, route.kind === 'model' ? route.id : undefined),
        commonHeaders(),
      );
    }
    if (route.kind === 'stored-response') {
      if (!(await injectFault(plan, res, 'Responses_Get'))) return;
      return sendJson(res, 200, storedResponse(store, route.id, req.method === 'DELETE'), commonHeaders());
    }

    const request = parseJsonBody(req, body);
    const deployment = route.deployment ?? request.model;
    if (route.deployment === undefined && (typeof deployment !== 'string' || !deployment)) {
      throw invalidRequest("Missing required parameter: 'model'.", 'model', 'missing_required_parameter');
    }
    const model = typeof deployment === 'string' ? deployments[deployment] : undefined;
    if (!model || typeof deployment !== 'string') throw DEPLOYMENT_NOT_FOUND();

    // Validate first, so that a fault stands for the failure of a request that would have succeeded.
    const operation = OPERATIONS[route.kind];
    const generate = operation.prepare({ request, deployment, model, cache, store });
    if (!(await injectFault(plan, res, operation.name, url))) return;
    const output = generate();
    count(output.usage);
    if (output.stream) return stream(res, output.stream, plan);
    return sendJson(res, 200, output.json(), commonHeaders(), plan.outcome === 'cut');
  }

  function faultOf(req: http.IncomingMessage): FaultPlan {
    try {
      return requestFault(req.headers[FAULT_HEADER], fault);
    } catch (error) {
      throw invalidRequest((error as Error).message, FAULT_HEADER, 'InvalidSimulatorFault');
    }
  }

  /**
   * Applies the fault's failure or latency; false when the request is answered (or abandoned).
   * `url`'s api-version is the one a rate limit message names (`v1` without one).
   */
  function injectFault(
    plan: FaultPlan,
    res: http.ServerResponse,
    operation: string,
    url?: URL,
  ): Promise<boolean> {
    if (isFaulted(plan)) stats.faulted += 1;
    const errors = faultErrors(operation, url?.searchParams.get('api-version') ?? 'v1');
    return applyFault(plan, res, errors, options.latencyMs ?? 0);
  }

  async function stream(
    res: http.ServerResponse,
    sse: NonNullable<Generated['stream']>,
    plan: FaultPlan,
  ): Promise<void> {
    const frames = sse.frames();
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      ...commonHeaders(),
    });
    res.flushHeaders();
    // A cut lands half-way through the content: after some text, before the end and any usage.
    const cutAfterFrames =
      plan.outcome === 'cut' ? Math.max(sse.cutAfterAtLeast, Math.floor(frames.length / 2)) : undefined;
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
    if (!API_VERSION.test(version)) throw API_VERSION_NOT_SUPPORTED();
  };
  const v1Version = (): void => {
    const version = url.searchParams.get('api-version');
    if (version && !API_VERSION.test(version)) throw API_VERSION_NOT_SUPPORTED();
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
    throw UNSUPPORTED_MEDIA_TYPE();
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
