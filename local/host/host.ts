import { randomUUID, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { Cookie, Timer } from '@azure/functions';
import { HttpRequest, HttpResponse, InvocationContext } from '@azure/functions';
import { CronExpressionParser } from 'cron-parser';
import type { BindingMetadata, RegisteredFunction } from './functions-core';
import { registry } from './functions-core';
import type { DurableFunctionInvoker } from './durable/engine';
import { DurableEngine, InstanceConflictError, UnknownFunctionError } from './durable/engine';
import type { OrchestratorState } from './durable/history';
import type { HostSettings } from './host-json';
import { readHostJson } from './host-json';
import type { CompiledRoute } from './routes';
import { compileRoute } from './routes';

export type AuthLevel = 'anonymous' | 'function' | 'admin';

export interface HostKeys {
  /** Accepted for `function` level functions (the host's default function key). */
  functionKey: string;
  /** Accepted everywhere, and the only key for `admin` level functions and the admin API. */
  masterKey: string;
}

export interface LocalHostOptions {
  /** Folder holding host.json. */
  appRoot: string;
  /** Modules that register the app's functions; loaded once, in order. */
  entryModules: string[];
  /** 0 picks a free port. */
  port: number;
  keys: HostKeys;
  /** `schedule` fires timer triggers on their NCRONTAB schedules; `manual` only on demand. */
  timers: 'schedule' | 'manual';
  log?: (line: string) => void;
}

export interface HttpFunctionInfo {
  name: string;
  route: string;
  url: string;
  methods: string[];
  authLevel: AuthLevel;
}

interface HttpRoute extends HttpFunctionInfo {
  fn: RegisteredFunction;
  compiled: CompiledRoute;
}

interface ScheduledTimer {
  fn: RegisteredFunction;
  schedule: string;
  runOnStartup: boolean;
  handle?: NodeJS.Timeout;
  last?: Date;
  next?: Date;
  running?: Promise<void>;
  missed: boolean;
}

const TRIGGER = /trigger$/i;

/**
 * A local Azure Functions host: loads the app's registrations through `@azure/functions-core`, serves
 * HTTP triggers, fires timer triggers, runs durable orchestrations, and serves the durable client API.
 */
export class LocalFunctionsHost {
  readonly durable: DurableEngine;
  readonly #options: LocalHostOptions;
  readonly #log: (line: string) => void;
  #settings!: HostSettings;
  #server?: http.Server;
  #rpcServer?: http.Server;
  #routes: HttpRoute[] = [];
  #timers = new Map<string, ScheduledTimer>();
  #functions = new Map<string, RegisteredFunction>();
  #baseUrl = '';
  #rpcBaseUrl = '';
  #stopping = false;

  constructor(options: LocalHostOptions) {
    this.#options = options;
    this.#log = options.log ?? (() => undefined);
    this.durable = new DurableEngine(this.#durableInvoker(), this.#log);
  }

  get url(): string {
    return this.#baseUrl;
  }

  get routePrefix(): string {
    return this.#settings.routePrefix;
  }

  get httpFunctions(): HttpFunctionInfo[] {
    return this.#routes.map(({ name, route, url, methods, authLevel }) => ({
      name,
      route,
      url,
      methods,
      authLevel,
    }));
  }

  get timerFunctions(): Array<{ name: string; schedule: string; next?: Date }> {
    return [...this.#timers.values()].map((t) => ({
      name: t.fn.metadata.name,
      schedule: t.schedule,
      next: t.next,
    }));
  }

  async start(): Promise<void> {
    this.#settings = readHostJson(this.#options.appRoot);
    registry.setSystemLog((level, _category, message) => {
      // The worker shows the library's system log from `information` up; debug and trace are noise here.
      if (level !== 'debug' && level !== 'trace') this.#log(`[${level}] ${message}`);
    });

    // Listen first: the app may need the host's own URL (durable client data) while loading.
    this.#rpcServer = http.createServer((req, res) => void this.#handleRpc(req, res));
    this.#rpcServer.listen(0, '127.0.0.1');
    await once(this.#rpcServer, 'listening');
    this.#rpcBaseUrl = `http://127.0.0.1:${(this.#rpcServer.address() as AddressInfo).port}/durabletask/`;

    this.#server = http.createServer((req, res) => void this.#handleHttp(req, res));
    this.#server.keepAliveTimeout = 65_000;
    this.#server.listen(this.#options.port, '127.0.0.1');
    try {
      await once(this.#server, 'listening');
    } catch (error) {
      this.#rpcServer.close();
      throw error;
    }
    const port = (this.#server.address() as AddressInfo).port;
    this.#baseUrl = `http://127.0.0.1:${port}`;
    // The durable client rewrites management URLs to localhost:7071 unless the host name is known.
    process.env.WEBSITE_HOSTNAME ??= `127.0.0.1:${port}`;

    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- loading the app is what a host does
      for (const entry of this.#options.entryModules) require(entry);
      this.#index();
      for (const hook of registry.hooks('appStart')) await hook({ hookData: {}, appHookData: {} });
    } catch (error) {
      await this.#closeServers();
      throw error;
    }
    for (const timer of this.#timers.values()) {
      if (this.#options.timers === 'schedule') {
        if (timer.runOnStartup) void this.#fireTimer(timer, false);
        this.#scheduleNext(timer);
      }
    }
  }

  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const timer of this.#timers.values()) clearTimeout(timer.handle);
    await Promise.allSettled([...this.#timers.values()].flatMap((t) => (t.running ? [t.running] : [])));
    await this.durable.stop();
    for (const hook of registry.hooks('appTerminate')) {
      try {
        await hook({ hookData: {}, appHookData: {} });
      } catch (error) {
        this.#log(`appTerminate hook failed: ${describe(error)}`);
      }
    }
    await this.#closeServers();
  }

  /** Runs a timer-triggered function now, as `POST /admin/functions/{name}` does. */
  async runTimer(name: string): Promise<void> {
    const timer = this.#timers.get(name.toLowerCase());
    if (!timer) throw new UnknownFunctionError(`No timer-triggered function named '${name}'.`);
    await this.#fireTimer(timer, false);
  }

  // ---- registration ----------------------------------------------------------------------------

  #index(): void {
    const functions = registry.functions();
    if (functions.length === 0) {
      throw new Error(`No functions were registered by ${this.#options.entryModules.join(', ')}.`);
    }
    for (const fn of functions) {
      this.#functions.set(fn.metadata.name.toLowerCase(), fn);
      const trigger = triggerOf(fn);
      const type = trigger.type.toLowerCase();
      if (type === 'httptrigger') {
        const route = (typeof trigger.route === 'string' ? trigger.route : fn.metadata.name).replace(
          /^\/+/,
          '',
        );
        const prefix = this.#settings.routePrefix ? `/${this.#settings.routePrefix}` : '';
        this.#routes.push({
          name: fn.metadata.name,
          route,
          url: `${this.#baseUrl}${prefix}/${route}`,
          methods: ((trigger.methods as string[] | undefined) ?? ['GET', 'POST']).map((m) => m.toUpperCase()),
          authLevel: ((trigger.authLevel as AuthLevel | undefined) ?? 'anonymous').toLowerCase() as AuthLevel,
          fn,
          compiled: compileRoute(route),
        });
      } else if (type === 'timertrigger') {
        const schedule = String(trigger.schedule);
        CronExpressionParser.parse(schedule, { tz: 'UTC' }); // fail at start-up on a bad schedule
        this.#timers.set(fn.metadata.name.toLowerCase(), {
          fn,
          schedule,
          runOnStartup: trigger.runOnStartup === true,
          missed: false,
        });
      } else if (type !== 'orchestrationtrigger' && type !== 'activitytrigger') {
        throw new Error(
          `Function '${fn.metadata.name}' uses trigger '${trigger.type}', which the local host does not run.`,
        );
      }
    }
    // Literal segments win over parameters, as in ASP.NET Core routing.
    this.#routes.sort((a, b) => specificity(b.route) - specificity(a.route));
  }

  // ---- invocation ------------------------------------------------------------------------------

  #context(
    fn: RegisteredFunction,
    extras: Partial<ConstructorParameters<typeof InvocationContext>[0]> = {},
  ): InvocationContext {
    const name = fn.metadata.name;
    const context = new InvocationContext({
      invocationId: randomUUID(),
      functionName: name,
      logHandler: (level, ...args) => this.#log(`[${name}] ${level}: ${args.map(describe).join(' ')}`),
      options: effectiveOptions(fn),
      ...extras,
    });
    for (const input of context.options.extraInputs) {
      if (input.type === 'durableClient' || input.type === 'orchestrationClient') {
        context.extraInputs.set(input, this.#durableClientData());
      }
    }
    return context;
  }

  async #invoke(fn: RegisteredFunction, trigger: unknown, context: InvocationContext): Promise<unknown> {
    const timeoutMs = this.#settings.functionTimeoutMs;
    const run = Promise.resolve().then(() => fn.callback(trigger, context));
    if (timeoutMs === undefined) return run;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new Error(`Timeout value of ${timeoutMs} ms exceeded by function '${fn.metadata.name}'.`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([run, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  #durableInvoker(): DurableFunctionInvoker {
    const find = (name: string, type: string): RegisteredFunction | undefined => {
      const fn = this.#functions.get(name.toLowerCase());
      return fn && triggerOf(fn).type.toLowerCase() === type ? fn : undefined;
    };
    return {
      hasOrchestrator: (name) => find(name, 'orchestrationtrigger') !== undefined,
      hasActivity: (name) => find(name, 'activitytrigger') !== undefined,
      runOrchestrator: async (name, binding) => {
        const fn = find(name, 'orchestrationtrigger') as RegisteredFunction;
        // A fresh context per replay: the library only creates `context.df` when it is missing.
        return (await fn.callback(binding, this.#context(fn))) as OrchestratorState;
      },
      runActivity: async (name, input) => {
        const fn = find(name, 'activitytrigger') as RegisteredFunction;
        return this.#invoke(fn, input, this.#context(fn));
      },
    };
  }

  #durableClientData(): Record<string, unknown> {
    const hub = this.#settings.hubName;
    const key = this.#options.keys.masterKey;
    const webhooks = `${this.#baseUrl}/runtime/webhooks/durabletask`;
    const instance = `${webhooks}/instances/INSTANCEID`;
    const query = `taskHub=${hub}&connection=Storage&code=${key}`;
    return {
      taskHubName: hub,
      creationUrls: {
        createNewInstancePostUri: `${webhooks}/orchestrators/{functionName}[/{instanceId}]?code=${key}`,
        createAndWaitOnNewInstancePostUri: `${webhooks}/orchestrators/{functionName}[/{instanceId}]?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}&code=${key}`,
      },
      managementUrls: {
        id: 'INSTANCEID',
        statusQueryGetUri: `${instance}?${query}`,
        sendEventPostUri: `${instance}/raiseEvent/{eventName}?${query}`,
        terminatePostUri: `${instance}/terminate?reason={text}&${query}`,
        rewindPostUri: `${instance}/rewind?reason={text}&${query}`,
        purgeHistoryDeleteUri: `${instance}?${query}`,
        restartPostUri: `${instance}/restart?${query}`,
        suspendPostUri: `${instance}/suspend?reason={text}&${query}`,
        resumePostUri: `${instance}/resume?reason={text}&${query}`,
      },
      baseUrl: webhooks,
      requiredQueryStringParameters: `code=${key}`,
      rpcBaseUrl: this.#rpcBaseUrl,
      httpBaseUrl: `${webhooks}/`,
      maxGrpcMessageSizeInBytes: 2147483647,
      grpcHttpClientTimeout: '00:01:40',
    };
  }

  // ---- timers ----------------------------------------------------------------------------------

  #scheduleNext(timer: ScheduledTimer): void {
    if (this.#stopping) return;
    const next = CronExpressionParser.parse(timer.schedule, { tz: 'UTC', currentDate: new Date() })
      .next()
      .toDate();
    timer.next = next;
    // setTimeout is limited to ~24.8 days; re-arm in steps for rare long schedules.
    const delay = Math.min(next.getTime() - Date.now(), 2 ** 31 - 1);
    timer.handle = setTimeout(() => {
      if (Date.now() + 5 < next.getTime()) return this.#scheduleNext(timer);
      void this.#fireTimer(timer, false).finally(() => this.#scheduleNext(timer));
    }, delay);
  }

  async #fireTimer(timer: ScheduledTimer, isPastDue: boolean): Promise<void> {
    // Like the real host's singleton lock: one invocation of a timer function at a time; an
    // occurrence that falls during a run is delivered once afterwards, marked past due.
    if (timer.running) {
      timer.missed = true;
      return timer.running;
    }
    const now = new Date();
    const input: Timer = {
      isPastDue,
      schedule: { adjustForDST: true },
      scheduleStatus: {
        last: (timer.last ?? now).toISOString(),
        next: (timer.next ?? now).toISOString(),
        lastUpdated: now.toISOString(),
      },
    };
    timer.last = now;
    timer.running = this.#invoke(timer.fn, input, this.#context(timer.fn))
      .then(
        () => undefined,
        (error: unknown) =>
          this.#log(`Timer function '${timer.fn.metadata.name}' failed: ${describe(error)}`),
      )
      .finally(() => {
        timer.running = undefined;
        if (timer.missed && !this.#stopping) {
          timer.missed = false;
          void this.#fireTimer(timer, true);
        }
      });
    return timer.running;
  }

  // ---- HTTP ------------------------------------------------------------------------------------

  async #handleHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', this.#baseUrl);
      const path = url.pathname;
      if (path.startsWith('/admin/')) return await this.#handleAdmin(req, res, url);
      if (path.startsWith('/runtime/webhooks/durabletask/')) {
        if (!this.#authorized(req, url, 'admin')) return sendJson(res, 401, undefined);
        return await this.#handleDurableApi(
          req,
          res,
          url,
          path.slice('/runtime/webhooks/durabletask/'.length),
        );
      }
      const prefix = this.#settings.routePrefix ? `/${this.#settings.routePrefix}` : '';
      if (prefix && !(path.toLowerCase() === prefix || path.toLowerCase().startsWith(`${prefix}/`))) {
        return sendJson(res, 404, undefined);
      }
      const routePath = path.slice(prefix.length) || '/';
      for (const route of this.#routes) {
        const params = route.compiled.match(routePath);
        // Like the real host, a route whose methods do not include this one does not match (404).
        if (!params || !route.methods.includes(req.method ?? 'GET')) continue;
        if (!this.#authorized(req, url, route.authLevel)) return sendJson(res, 401, undefined);
        return await this.#invokeHttp(route, params, req, res, url);
      }
      return sendJson(res, 404, undefined);
    } catch (error) {
      this.#log(`Unhandled host error for ${req.method} ${req.url}: ${describe(error)}`);
      if (!res.headersSent) sendJson(res, 500, undefined);
      else res.destroy();
    }
  }

  #authorized(req: http.IncomingMessage, url: URL, level: AuthLevel): boolean {
    if (level === 'anonymous') return true;
    const header = req.headers['x-functions-key'];
    const presented = (Array.isArray(header) ? header[0] : header) ?? url.searchParams.get('code') ?? '';
    const { masterKey, functionKey } = this.#options.keys;
    if (safeEqual(presented, masterKey)) return true;
    return level === 'function' && safeEqual(presented, functionKey);
  }

  async #invokeHttp(
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
    } as RequestInit);
    const request = new HttpRequest({ nativeRequest, params } as unknown as ConstructorParameters<
      typeof HttpRequest
    >[0]);
    const context = this.#context(route.fn, {
      triggerMetadata: { Query: Object.fromEntries(url.searchParams), Headers: Object.fromEntries(headers) },
    });

    let result: unknown;
    try {
      result = await this.#invoke(route.fn, request, context);
    } catch (error) {
      this.#log(`Function '${route.name}' failed: ${describe(error)}`);
      return sendJson(res, 500, undefined);
    }
    if (writePlainResponse(result, res)) return;
    const response = result instanceof HttpResponse ? result : new HttpResponse(result ?? {});
    await writeResponse(response, res);
  }

  // ---- admin and durable APIs ------------------------------------------------------------------

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
      const timer = this.#timers.get(name.toLowerCase());
      if (!timer) return sendJson(res, 404, { error: `No timer-triggered function named '${name}'.` });
      await readBody(req);
      void this.#fireTimer(timer, false);
      return sendJson(res, 202, undefined);
    }
    return sendJson(res, 404, undefined);
  }

  async #handleRpc(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', this.#rpcBaseUrl);
      if (!url.pathname.startsWith('/durabletask/')) return sendJson(res, 404, undefined);
      await this.#handleDurableApi(req, res, url, url.pathname.slice('/durabletask/'.length));
    } catch (error) {
      sendJson(res, 500, { message: describe(error) });
    }
  }

  async #handleDurableApi(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    path: string,
  ): Promise<void> {
    const segments = path.split('/').filter(Boolean).map(decodeURIComponent);
    const method = req.method ?? 'GET';
    const body = await readBody(req);
    const parseBody = (): unknown =>
      body.length > 0 ? (JSON.parse(body.toString('utf8')) as unknown) : undefined;

    if (segments[0] === 'orchestrators' && segments[1] && method === 'POST') {
      try {
        const id = this.durable.startNew(segments[1], { instanceId: segments[2], input: parseBody() });
        const links = this.#managementLinks(id);
        res.setHeader('location', links.statusQueryGetUri);
        return sendJson(res, 202, links);
      } catch (error) {
        if (error instanceof InstanceConflictError) return sendJson(res, 409, { message: error.message });
        if (error instanceof UnknownFunctionError) return sendJson(res, 400, { message: error.message });
        throw error;
      }
    }
    if (segments[0] === 'instances') {
      const id = segments[1];
      if (!id && method === 'GET') return sendJson(res, 200, this.durable.list());
      if (id && segments.length === 2 && method === 'GET') {
        const status = this.durable.getStatus(id, {
          showHistory: url.searchParams.get('showHistory') === 'true',
          showInput: url.searchParams.get('showInput') !== 'false',
        });
        if (!status) return sendJson(res, 404, undefined);
        const code = status.runtimeStatus === 'Pending' || status.runtimeStatus === 'Running' ? 202 : 200;
        return sendJson(res, code, status);
      }
      if (id && segments[2] === 'raiseEvent' && segments[3] && method === 'POST') {
        return sendJson(res, this.durable.raiseEvent(id, segments[3], parseBody()) ? 202 : 410, undefined);
      }
      if (id && segments[2] === 'terminate' && method === 'POST') {
        return sendJson(
          res,
          this.durable.terminate(id, url.searchParams.get('reason') ?? '') ? 202 : 410,
          undefined,
        );
      }
    }
    return sendJson(res, 404, { message: `The local durable host does not serve ${method} ${path}.` });
  }

  #managementLinks(instanceId: string): Record<string, string> & { statusQueryGetUri: string } {
    const data = this.#durableClientData() as { managementUrls: Record<string, string> };
    const links: Record<string, string> & { statusQueryGetUri: string } = { statusQueryGetUri: '' };
    for (const [key, value] of Object.entries(data.managementUrls))
      links[key] = value.replace('INSTANCEID', instanceId);
    return links;
  }

  async #closeServers(): Promise<void> {
    const close = (server?: http.Server): Promise<void> =>
      new Promise((resolve) => {
        if (!server?.listening) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      });
    await Promise.all([close(this.#server), close(this.#rpcServer)]);
  }
}

// ---- helpers -----------------------------------------------------------------------------------

function triggerOf(fn: RegisteredFunction): BindingMetadata {
  const trigger = Object.values(fn.metadata.bindings).find((b) => TRIGGER.test(b.type));
  if (!trigger) throw new Error(`Function '${fn.metadata.name}' has no trigger binding.`);
  return trigger;
}

/** The `context.options` the Node worker builds from a function's bindings (fromRpcBindings). */
function effectiveOptions(
  fn: RegisteredFunction,
): NonNullable<ConstructorParameters<typeof InvocationContext>[0]>['options'] {
  const extraInputs: Array<{ name: string; type: string }> = [];
  const extraOutputs: Array<{ name: string; type: string }> = [];
  let trigger: { name: string; type: string } | undefined;
  let ret: { name: string; type: string } | undefined;
  for (const [name, binding] of Object.entries(fn.metadata.bindings)) {
    const option = { ...binding, name, type: binding.type };
    if (TRIGGER.test(binding.type)) trigger = option;
    else if (name === '$return') ret = option;
    else if (binding.direction === 'in') extraInputs.push(option);
    else extraOutputs.push(option);
  }
  return { trigger: trigger ?? { name: 'trigger', type: 'unknown' }, return: ret, extraInputs, extraOutputs };
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

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  if (body === undefined) {
    res.writeHead(status, { 'content-length': '0' }).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
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
  const headers = new Headers(init.headers as HeadersInit | undefined);
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
  const onClose = (): void => {
    if (!res.writableFinished) {
      clientGone = true;
      void reader.cancel(new Error('client disconnected')).catch(() => undefined);
    }
  };
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

function describe(value: unknown): string {
  if (value instanceof Error) return value.stack ?? value.message;
  return typeof value === 'string' ? value : JSON.stringify(value);
}
