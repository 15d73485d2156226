import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';
import { timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import { Readable } from 'node:stream';
import type { Cookie } from '@azure/functions';
import { HttpRequest, HttpResponse } from '@azure/functions';
import type { BindingMetadata, RegisteredFunction } from './functions-core';
import type { FunctionRunner } from './invocation';
import type { CompiledRoute } from './routes';
import { compileRoute } from './routes';
import { closeServer, describe, listenLocal, readBody, sendJson } from './util';
import { FUNCTION_KEY_HEADER } from '../../shared/contracts/gateway-headers';

export type AuthLevel = 'anonymous' | 'function' | 'admin';

export interface HostKeys {
  /** Accepted for `function` level functions (the host's default function key). */
  functionKey: string;
  /** Accepted everywhere, and the only key for `admin` level functions and the admin API. */
  masterKey: string;
}

export interface HttpFunctionInfo {
  name: string;
  route: string;
  url: string;
  methods: string[];
  authLevel: AuthLevel;
}

/**
 * One request the server answered, as the host's request log sees it: handed to `onExchange` once
 * the response has been written (or the client went away).
 */
export interface HttpExchange {
  method: string;
  /** The path without the query string (which may hold a key). */
  path: string;
  requestHeaders: http.IncomingHttpHeaders;
  /** The function that served it; undefined for the host's own endpoints and for refusals (401, 404). */
  functionName?: string;
  /** The function's route parameters. */
  params: Record<string, string>;
  /** The status sent; 0 when the connection ended before one was. */
  status: number;
  /** From the request's arrival to the response's last byte. */
  durationMs: number;
  /** The response was not written to the end: the client went away, or the function's stream failed. */
  incomplete: boolean;
  /** What was attached with `annotate` while the request was served. */
  annotations: Record<string, unknown>;
}

interface HttpRoute extends HttpFunctionInfo {
  fn: RegisteredFunction;
  compiled: CompiledRoute;
}

/** The host's own endpoints next to the app's routes, served by the other parts of the host. */
export interface SystemEndpoints {
  /** `/runtime/webhooks/durabletask/{path}`, after the master key was checked. */
  durableWebhook(req: http.IncomingMessage, res: http.ServerResponse, url: URL, path: string): Promise<void>;
  hasTimer(name: string): boolean;
  /** Starts a timer function's run without waiting for it, as the admin API answers 202 at once. */
  startTimer(name: string): void;
}

export interface HttpServerOptions {
  keys: HostKeys;
  routePrefix: string;
  runner: FunctionRunner;
  system: SystemEndpoints;
  log: (line: string) => void;
  /** Called once per request answered; without it requests are not tracked at all. */
  onExchange?: (exchange: HttpExchange) => void;
}

const DURABLE_WEBHOOKS = '/runtime/webhooks/durabletask/';

/**
 * HTTP triggers as the Functions host serves them: ASP.NET Core route templates under the
 * host.json route prefix, function and master keys, streamed request and response bodies; plus
 * the admin API and the durable management webhooks on the same port.
 */
export class HttpTriggerServer {
  readonly #options: HttpServerOptions;
  readonly #server: http.Server;
  #routes: HttpRoute[] = [];
  #baseUrl = '';
  readonly #current = new AsyncLocalStorage<HttpExchange>();

  constructor(options: HttpServerOptions) {
    this.#options = options;
    this.#server = http.createServer((req, res) => void this.#handle(req, res));
    this.#server.keepAliveTimeout = 65_000;
  }

  get url(): string {
    return this.#baseUrl;
  }

  get functions(): HttpFunctionInfo[] {
    return this.#routes.map(({ name, route, url, methods, authLevel }) => ({
      name,
      route,
      url,
      methods,
      authLevel,
    }));
  }

  async listen(port: number): Promise<void> {
    this.#baseUrl = `http://127.0.0.1:${await listenLocal(this.#server, port)}`;
  }

  close(): Promise<void> {
    return closeServer(this.#server);
  }

  /** Call after `listen`: each function's URL includes the port. */
  addRoute(fn: RegisteredFunction, trigger: BindingMetadata): void {
    const route = (typeof trigger.route === 'string' ? trigger.route : fn.metadata.name).replace(/^\/+/, '');
    this.#routes.push({
      name: fn.metadata.name,
      route,
      url: `${this.#baseUrl}${this.#prefix}/${route}`,
      methods: ((trigger.methods as string[] | undefined) ?? ['GET', 'POST']).map((m) => m.toUpperCase()),
      authLevel: ((trigger.authLevel as AuthLevel | undefined) ?? 'anonymous').toLowerCase() as AuthLevel,
      fn,
      compiled: compileRoute(route),
    });
    // Literal segments win over parameters, as in ASP.NET Core routing (a stable sort keeps
    // registration order among equals).
    this.#routes.sort((a, b) => specificity(b.route) - specificity(a.route));
  }

  get #prefix(): string {
    return this.#options.routePrefix ? `/${this.#options.routePrefix}` : '';
  }

  /**
   * Attaches a value to the request being served in the current async context (code the function
   * runs, including its response stream); false outside one, or when requests are not tracked.
   */
  annotate(key: string, value: unknown): boolean {
    const exchange = this.#current.getStore();
    if (!exchange) return false;
    exchange.annotations[key] = value;
    return true;
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const onExchange = this.#options.onExchange;
    if (!onExchange) return this.#serve(req, res);
    const started = performance.now();
    const exchange: HttpExchange = {
      method: req.method ?? 'GET',
      path: (req.url ?? '/').split('?')[0] ?? '/',
      requestHeaders: req.headers,
      params: {},
      status: 0,
      durationMs: 0,
      incomplete: false,
      annotations: {},
    };
    await this.#current.run(exchange, () => this.#serve(req, res, exchange));
    if (!res.writableFinished && !res.destroyed) {
      // Ended, but still flushing to the socket.
      await new Promise<void>((resolve) => {
        res.once('finish', resolve);
        res.once('close', resolve);
      });
    }
    exchange.status = res.headersSent ? res.statusCode : 0;
    exchange.durationMs = performance.now() - started;
    exchange.incomplete = !res.writableFinished;
    try {
      onExchange(exchange);
    } catch (error) {
      this.#options.log(`Request log failed: ${describe(error)}`);
    }
  }

  async #serve(req: http.IncomingMessage, res: http.ServerResponse, exchange?: HttpExchange): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', this.#baseUrl);
      const path = url.pathname;
      if (path.startsWith('/admin/')) return await this.#handleAdmin(req, res, url);
      if (path.startsWith(DURABLE_WEBHOOKS)) {
        if (!this.#authorized(req, url, 'admin')) return sendJson(res, 401, undefined);
        return await this.#options.system.durableWebhook(req, res, url, path.slice(DURABLE_WEBHOOKS.length));
      }
      const prefix = this.#prefix;
      if (prefix && !(path.toLowerCase() === prefix || path.toLowerCase().startsWith(`${prefix}/`))) {
        return sendJson(res, 404, undefined);
      }
      const routePath = path.slice(prefix.length) || '/';
      for (const route of this.#routes) {
        const params = route.compiled.match(routePath);
        // Like the real host, a route whose methods do not include this one does not match (404).
        if (!params || !route.methods.includes(req.method ?? 'GET')) continue;
        if (!this.#authorized(req, url, route.authLevel)) return sendJson(res, 401, undefined);
        if (exchange) {
          exchange.functionName = route.name;
          exchange.params = params;
        }
        return await this.#invoke(route, params, req, res, url);
      }
      return sendJson(res, 404, undefined);
    } catch (error) {
      this.#options.log(`Unhandled host error for ${req.method} ${req.url}: ${describe(error)}`);
      if (!res.headersSent) sendJson(res, 500, undefined);
      else res.destroy();
    }
  }

  #authorized(req: http.IncomingMessage, url: URL, level: AuthLevel): boolean {
    if (level === 'anonymous') return true;
    const header = req.headers[FUNCTION_KEY_HEADER];
    const presented = (Array.isArray(header) ? header[0] : header) ?? url.searchParams.get('code') ?? '';
    const { masterKey, functionKey } = this.#options.keys;
    if (safeEqual(presented, masterKey)) return true;
    return level === 'function' && safeEqual(presented, functionKey);
  }

  async #handleAdmin(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    if (!this.#authorized(req, url, 'admin')) return sendJson(res, 401, undefined);
    const path = url.pathname;
    if (path === '/admin/host/status' && req.method === 'GET') {
      return sendJson(res, 200, {
        state: 'Running',
        version: '4-local',
        processUptime: Math.round(process.uptime() * 1000),
      });
    }
    const match = /^\/admin\/functions\/([^/]+)$/.exec(path);
    if (match && req.method === 'POST') {
      const name = decodeURIComponent(match[1] ?? '');
      if (!this.#options.system.hasTimer(name)) {
        return sendJson(res, 404, { error: `No timer-triggered function named '${name}'.` });
      }
      await readBody(req);
      this.#options.system.startTimer(name);
      return sendJson(res, 202, undefined);
    }
    return sendJson(res, 404, undefined);
  }

  async #invoke(
    route: HttpRoute,
    params: Record<string, string>,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    const hasBody = method !== 'GET' && method !== 'HEAD';
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
    }
    const nativeRequest = new Request(url.href, {
      method,
      headers,
      body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : undefined,
      duplex: 'half',
    });
    const request = new HttpRequest({ nativeRequest, params } as unknown as ConstructorParameters<
      typeof HttpRequest
    >[0]);
    const { runner } = this.#options;
    const context = runner.context(route.fn, {
      triggerMetadata: { Query: Object.fromEntries(url.searchParams), Headers: Object.fromEntries(headers) },
    });

    let result: unknown;
    try {
      result = await runner.invoke(route.fn, request, context);
    } catch (error) {
      this.#options.log(`Function '${route.name}' failed: ${describe(error)}`);
      return sendJson(res, 500, undefined);
    }
    if (writePlainResponse(result, res)) return;
    const response = result instanceof HttpResponse ? result : new HttpResponse(result ?? {});
    await writeResponse(response, res);
  }
}

function specificity(route: string): number {
  return route
    .split('/')
    .filter(Boolean)
    .reduce(
      (score, segment) => score + (segment.startsWith('{') ? (segment.startsWith('{*') ? 0 : 1) : 3),
      0,
    );
}

function safeEqual(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && b.length > 0 && timingSafeEqual(a, b);
}

/**
 * The common results (`jsonBody`, a byte body, or none) written straight away, exactly as
 * `HttpResponse` would render them but without wrapping them in a web `Response` and reading it
 * back; anything else (streams, strings, cookies, HttpResponse objects) takes the general path.
 */
function writePlainResponse(result: unknown, res: http.ServerResponse): boolean {
  if (
    result instanceof HttpResponse ||
    (result !== undefined && (typeof result !== 'object' || result === null))
  ) {
    return false;
  }
  const init = (result ?? {}) as {
    status?: number;
    headers?: unknown;
    jsonBody?: unknown;
    body?: unknown;
    cookies?: unknown[];
  };
  if (init.cookies?.length) return false;
  const hasJson = init.jsonBody !== undefined;
  if (!hasJson && init.body !== undefined && init.body !== null && !(init.body instanceof Uint8Array))
    return false;
  const status = init.status ?? 200;
  const headers = new Headers(init.headers as ConstructorParameters<typeof Headers>[0]);
  const nullBody = status === 204 || status === 205 || status === 304;
  let body: Uint8Array | undefined;
  if (!nullBody && hasJson) {
    body = Buffer.from(JSON.stringify(init.jsonBody));
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
  } else if (!nullBody && init.body instanceof Uint8Array) {
    body = init.body;
  }
  const out: Record<string, string> = {};
  headers.forEach((value, name) => {
    out[name] = value;
  });
  if (body) out['content-length'] = String(body.byteLength);
  res.writeHead(status, out);
  res.end(body);
  return true;
}

/** Streams the body chunk by chunk; a client that goes away cancels the function's stream. */
async function writeResponse(response: HttpResponse, res: http.ServerResponse): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  if (response.cookies.length > 0) headers['set-cookie'] = response.cookies.map(serializeCookie);
  res.writeHead(response.status, headers);
  res.flushHeaders();
  const body = response.body;
  if (!body) {
    res.end();
    return;
  }
  const reader = (body as ReadableStream<Uint8Array>).getReader();
  let clientGone = false;
  let cancelled: Promise<void> | undefined;
  // Bound to the request's async context: the function's cancel handler runs as part of it.
  const onClose = AsyncResource.bind((): void => {
    if (!res.writableFinished) {
      clientGone = true;
      cancelled = reader.cancel(new Error('client disconnected')).catch(() => undefined);
    }
  });
  res.on('close', onClose);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || clientGone) break;
      if (!res.write(value)) {
        // Wait for drain or close, and drop the loser's listener (long streams to slow clients).
        const settled = new AbortController();
        await Promise.race([
          once(res, 'drain', { signal: settled.signal }),
          once(res, 'close', { signal: settled.signal }),
        ]).finally(() => settled.abort());
      }
    }
    if (!clientGone) res.end();
  } catch (error) {
    // The function's stream failed mid-way: cut the connection so the client sees a broken body.
    res.destroy(error instanceof Error ? error : new Error(String(error)));
  } finally {
    res.off('close', onClose);
  }
  // The client is gone, so this delays no one: the request is over once the function's stream has
  // wound down (a metering proxy records what was served then).
  await cancelled;
}

function serializeCookie(cookie: Cookie): string {
  const parts = [`${cookie.name}=${encodeURIComponent(cookie.value)}`];
  if (cookie.domain) parts.push(`Domain=${cookie.domain}`);
  if (cookie.path) parts.push(`Path=${cookie.path}`);
  if (cookie.expires) parts.push(`Expires=${new Date(cookie.expires).toUTCString()}`);
  if (cookie.maxAge !== undefined) parts.push(`Max-Age=${cookie.maxAge}`);
  if (cookie.secure) parts.push('Secure');
  if (cookie.httpOnly) parts.push('HttpOnly');
  if (cookie.sameSite) parts.push(`SameSite=${cookie.sameSite}`);
  return parts.join('; ');
}
