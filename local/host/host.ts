import { DurableEngine } from './durable/engine';
import { DurableClientApi } from './durable-api';
import type { RegisteredFunction } from './functions-core';
import type { HostSettings } from './host-json';
import { readHostJson } from './host-json';
import type { HostKeys, HttpExchange, HttpFunctionInfo } from './http-server';
import { HttpTriggerServer } from './http-server';
import { durableInvoker, FunctionRunner } from './invocation';
import { loadFunctions, routeSystemLog, runAppStartHooks, runAppTerminateHooks } from './loading';
import type { TimerFunctionInfo } from './timers';
import { TimerScheduler } from './timers';

export type { AuthLevel, HostKeys, HttpExchange, HttpFunctionInfo } from './http-server';

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
  /**
   * Called once per HTTP request answered on the host's port (functions, admin API, durable
   * webhooks, refusals), as Core Tools logs executions. Off by default: tests stay quiet.
   */
  onHttpExchange?: (exchange: HttpExchange) => void;
}

/**
 * A local Azure Functions host: loads the app's registrations through `@azure/functions-core`, serves
 * HTTP triggers, fires timer triggers, runs durable orchestrations, and serves the durable client API.
 */
export class LocalFunctionsHost {
  readonly durable: DurableEngine;
  readonly #options: LocalHostOptions;
  readonly #log: (line: string) => void;
  readonly #runner: FunctionRunner;
  readonly #timers: TimerScheduler;
  #settings!: HostSettings;
  #http?: HttpTriggerServer;
  #durableApi?: DurableClientApi;
  #functions = new Map<string, RegisteredFunction>();
  #stopping = false;

  constructor(options: LocalHostOptions) {
    this.#options = options;
    this.#log = options.log ?? (() => undefined);
    this.#runner = new FunctionRunner({
      log: this.#log,
      functionTimeoutMs: () => this.#settings.functionTimeoutMs,
      // Functions only run once the host has started, and by then the API exists.
      durableClientData: () => (this.#durableApi as DurableClientApi).clientData(),
    });
    this.#timers = new TimerScheduler(this.#runner, this.#log);
    this.durable = new DurableEngine(
      durableInvoker(() => this.#functions, this.#runner),
      this.#log,
    );
  }

  get url(): string {
    return this.#http?.url ?? '';
  }

  get routePrefix(): string {
    return this.#settings.routePrefix;
  }

  get httpFunctions(): HttpFunctionInfo[] {
    return this.#http?.functions ?? [];
  }

  get timerFunctions(): TimerFunctionInfo[] {
    return this.#timers.functions;
  }

  async start(): Promise<void> {
    this.#settings = readHostJson(this.#options.appRoot);
    routeSystemLog(this.#log);

    // Listen first: the app may need the host's own URL (durable client data) while loading.
    const durableApi = new DurableClientApi(this.durable, {
      hubName: this.#settings.hubName,
      masterKey: this.#options.keys.masterKey,
      baseUrl: () => this.url,
    });
    this.#durableApi = durableApi;
    await durableApi.listen();

    const http = new HttpTriggerServer({
      keys: this.#options.keys,
      routePrefix: this.#settings.routePrefix,
      runner: this.#runner,
      log: this.#log,
      onExchange: this.#options.onHttpExchange,
      system: {
        durableWebhook: (req, res, url, path) => durableApi.handle(req, res, url, path),
        hasTimer: (name) => this.#timers.has(name),
        startTimer: (name) => void this.#timers.run(name),
      },
    });
    this.#http = http;
    try {
      await http.listen(this.#options.port);
    } catch (error) {
      await this.#closeServers();
      throw error;
    }
    // The durable client rewrites management URLs to localhost:7071 unless the host name is known.
    process.env.WEBSITE_HOSTNAME ??= http.url.slice('http://'.length);

    try {
      this.#functions = loadFunctions(this.#options.entryModules, {
        http: (fn, trigger) => http.addRoute(fn, trigger),
        timer: (fn, trigger) => this.#timers.add(fn, trigger),
      });
      await runAppStartHooks();
    } catch (error) {
      await this.#closeServers();
      throw error;
    }
    this.#timers.start(this.#options.timers);
  }

  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    await this.#timers.stop();
    await this.durable.stop();
    await runAppTerminateHooks(this.#log);
    await this.#closeServers();
  }

  /**
   * Attaches a value to the HTTP request being served in the calling async context, for
   * `onHttpExchange`; false when there is none (a timer, an activity) or requests are not tracked.
   */
  annotate(key: string, value: unknown): boolean {
    return this.#http?.annotate(key, value) ?? false;
  }

  /** Runs a timer-triggered function now, as `POST /admin/functions/{name}` does. */
  async runTimer(name: string): Promise<void> {
    await this.#timers.run(name);
  }

  async #closeServers(): Promise<void> {
    await Promise.all([this.#http?.close(), this.#durableApi?.close()]);
  }
}
