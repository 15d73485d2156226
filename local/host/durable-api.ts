import http from 'node:http';
import type { DurableEngine, InstanceQuery, QueryRuntimeStatus } from './durable/engine';
import { InstanceConflictError, UnknownFunctionError } from './durable/engine';
import { closeServer, describe, listenLocal, readBody, sendJson } from './util';

export interface DurableApiOptions {
  hubName: string;
  masterKey: string;
  /** The HTTP server's URL, known only once it listens; the management URLs are built on it. */
  baseUrl: () => string;
}

/** The extension's OrchestrationRuntimeStatus, each name at its enum value (Unknown is -1). */
const RUNTIME_STATUS_BY_VALUE: readonly QueryRuntimeStatus[] = [
  'Running',
  'Completed',
  'ContinuedAsNew',
  'Failed',
  'Canceled',
  'Terminated',
  'Pending',
  'Suspended',
];
const RUNTIME_STATUS_NAMES: ReadonlySet<string> = new Set<string>([...RUNTIME_STATUS_BY_VALUE, 'Unknown']);

/**
 * The Durable extension's HTTP API, which the durable-functions client calls: on a loopback port
 * of its own (`rpcBaseUrl`, what the v3 client uses) and as the `/runtime/webhooks/durabletask`
 * management URLs that `createCheckStatusResponse` hands out.
 */
export class DurableClientApi {
  readonly #engine: DurableEngine;
  readonly #options: DurableApiOptions;
  readonly #rpcServer: http.Server;
  #rpcBaseUrl = '';

  constructor(engine: DurableEngine, options: DurableApiOptions) {
    this.#engine = engine;
    this.#options = options;
    this.#rpcServer = http.createServer((req, res) => void this.#handleRpc(req, res));
  }

  get rpcBaseUrl(): string {
    return this.#rpcBaseUrl;
  }

  async listen(): Promise<void> {
    this.#rpcBaseUrl = `http://127.0.0.1:${await listenLocal(this.#rpcServer, 0)}/durabletask/`;
  }

  close(): Promise<void> {
    return closeServer(this.#rpcServer);
  }

  /** What the host gives a `durableClient` input binding. */
  clientData(): Record<string, unknown> {
    const hub = this.#options.hubName;
    const key = this.#options.masterKey;
    const webhooks = `${this.#options.baseUrl()}/runtime/webhooks/durabletask`;
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

  async #handleRpc(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', this.#rpcBaseUrl);
      if (!url.pathname.startsWith('/durabletask/')) return sendJson(res, 404, undefined);
      await this.handle(req, res, url, url.pathname.slice('/durabletask/'.length));
    } catch (error) {
      sendJson(res, 500, { message: describe(error) });
    }
  }

  /**
   * A request for `path` below the API's root. Errors propagate: the webhooks answer them as the
   * HTTP server answers its own, the RPC port with the message.
   */
  async handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL, path: string): Promise<void> {
    const engine = this.#engine;
    const segments = path.split('/').filter(Boolean).map(decodeURIComponent);
    const method = req.method ?? 'GET';
    const body = await readBody(req);
    const parseBody = (): unknown =>
      body.length > 0 ? (JSON.parse(body.toString('utf8')) as unknown) : undefined;

    if (segments[0] === 'orchestrators' && segments[1] && method === 'POST') {
      try {
        const id = engine.startNew(segments[1], { instanceId: segments[2], input: parseBody() });
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
      if (!id && method === 'GET') return sendJson(res, 200, engine.list(instanceQuery(url.searchParams)));
      if (id && segments.length === 2 && method === 'GET') {
        const status = engine.getStatus(id, {
          showHistory: url.searchParams.get('showHistory') === 'true',
          showInput: url.searchParams.get('showInput') !== 'false',
        });
        if (!status) return sendJson(res, 404, undefined);
        const code = status.runtimeStatus === 'Pending' || status.runtimeStatus === 'Running' ? 202 : 200;
        return sendJson(res, code, status);
      }
      if (id && segments[2] === 'raiseEvent' && segments[3] && method === 'POST') {
        return sendJson(res, engine.raiseEvent(id, segments[3], parseBody()) ? 202 : 410, undefined);
      }
      if (id && segments[2] === 'terminate' && method === 'POST') {
        return sendJson(
          res,
          engine.terminate(id, url.searchParams.get('reason') ?? '') ? 202 : 410,
          undefined,
        );
      }
    }
    return sendJson(res, 404, { message: `The local durable host does not serve ${method} ${path}.` });
  }

  #managementLinks(instanceId: string): Record<string, string> & { statusQueryGetUri: string } {
    const data = this.clientData() as { managementUrls: Record<string, string> };
    const links: Record<string, string> & { statusQueryGetUri: string } = { statusQueryGetUri: '' };
    for (const [key, value] of Object.entries(data.managementUrls))
      links[key] = value.replace('INSTANCEID', instanceId);
    return links;
  }
}

/**
 * The filters of `GET instances/` as the extension reads them (HttpApiHandler): `runtimeStatus`
 * is a comma-separated list, possibly repeated, of enum names (case-sensitive) or values, where
 * values that do not parse are skipped and a list with none that parse filters nothing;
 * `createdTimeFrom` and `createdTimeTo` are inclusive bounds, ignored when they are not dates.
 */
function instanceQuery(params: URLSearchParams): InstanceQuery {
  const query: InstanceQuery = {};
  const statuses = params
    .getAll('runtimeStatus')
    .flatMap((value) => value.split(','))
    .map(parseRuntimeStatus)
    .filter((status): status is QueryRuntimeStatus => status !== undefined);
  if (statuses.length > 0) query.runtimeStatus = statuses;
  const from = parseDate(params.get('createdTimeFrom'));
  if (from) query.createdTimeFrom = from;
  const to = parseDate(params.get('createdTimeTo'));
  if (to) query.createdTimeTo = to;
  return query;
}

function parseRuntimeStatus(value: string): QueryRuntimeStatus | undefined {
  const text = value.trim();
  if (RUNTIME_STATUS_NAMES.has(text)) return text as QueryRuntimeStatus;
  // Enum parsing also takes any integer, even one no status has; such a filter matches nothing.
  if (/^[+-]?\d+$/.test(text)) return RUNTIME_STATUS_BY_VALUE[Number(text)] ?? 'Unknown';
  return undefined;
}

function parseDate(value: string | null): Date | undefined {
  if (!value) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
