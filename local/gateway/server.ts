import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import type { ApimApi, ApimApiName } from '../../shared/contracts/apim';
import {
  APIM_APIS,
  APIM_NAMED_VALUES,
  APIM_POLICY_FOLDER,
  GLOBAL_POLICY_FILE,
} from '../../shared/contracts/apim';
import type { GatewayContext } from './context';
import { HeaderMap } from './context';
import type { CompiledPolicy, PolicyNode, Run, Section, Step, TokenUsage } from './engine';
import { compilePolicy, PolicyError, resolveSection, ReturnResponse, SECTIONS } from './engine';
import { LocalEntra } from './entra';
import type { GatewayConfig } from './local-config';
import type { EmittedMetric } from './policies';
import { PeriodCounters, policyElements } from './policies';
import type { PolicyElement } from './policy-xml';
import { parsePolicyXml } from './policy-xml';
import { countPromptTokens, UsageTap } from './token-usage';

/**
 * The local gateway: API Management's request pipeline, run from the policy files themselves.
 * It routes a request to its API and operation, checks the subscription key as APIM does (the
 * API's key header or query parameter; the subscription's product must include the API), then
 * runs the API's policies with `<base />` resolved to the global policy: inbound, backend (the
 * call to the local Functions host, streamed), outbound, and on-error when a step fails.
 */

export interface LocalGatewayOptions {
  /** 0 picks a free port. */
  port: number;
  config: GatewayConfig;
  /** The named values the stack supplies: the Function App's URL, the function key, the gateway secret. */
  supplied: { functionsBaseUrl: string; functionKey: string; gatewaySecret: string };
  /** The repository root (the policies are read from its APIM_POLICY_FOLDER). */
  root: string;
  /** Where the policies are read from, if not the repository's (tests of broken policies). */
  policyFolder?: string;
  /** The largest request body taken (default 64 MiB); larger is a 413. */
  maxRequestBytes?: number;
  now?: () => number;
}

export interface LocalGateway {
  url: string;
  port: number;
  /** The token metrics llm-emit-token-metric emitted, oldest first (APIM sends them to Application Insights). */
  metrics: EmittedMetric[];
  /**
   * An Entra ID access token for a configured user (by name), valid for this gateway; issued to the
   * configured client app unless another is named (tests of refused clients).
   */
  tokenFor(userName: string, lifetimeSeconds?: number, clientAppId?: string): string;
  stop(): Promise<void>;
}

/**
 * Where the local gateway hands out Entra ID tokens for its configured users (`…/<user name>`):
 * the local stand-in for signing in. Not an API Management path; local only.
 */
export const LOCAL_TOKEN_PATH = '/.local-entra/token';

/** The largest request body the gateway takes (Speech audio included); larger is a 413. */
const MAX_REQUEST_BYTES = 64 * 1024 * 1024;

/** How many emitted metric values the gateway keeps (the newest). */
const MAX_KEPT_METRICS = 30_000;

/** Lifetime of the tokens LOCAL_TOKEN_PATH hands out. */
const LOCAL_TOKEN_SECONDS = 3600;

/** Hop-by-hop headers: never forwarded in either direction. */
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'te',
  'trailer',
];

function toNode(element: PolicyElement, file: string): PolicyNode {
  return {
    name: element.name,
    attributes: new Map(element.attributeList.map((a) => [a.name, { value: a.value, line: a.line }])),
    children: element.children.map((c) => toNode(c, file)),
    text: element.text.trim(),
    file,
    line: element.line,
  };
}

interface LoadedPolicies {
  global: CompiledPolicy;
  apis: Record<ApimApiName, Record<Section, Step[]>>;
}

/** Reads, parses and compiles every policy file; anything the gateway cannot run throws, naming file and line. */
export function loadPolicies(
  folder: string,
  namedValues: ReadonlyMap<string, string>,
  elements: ReturnType<typeof policyElements>,
): LoadedPolicies {
  const compile = (file: string, isGlobal: boolean): CompiledPolicy => {
    const path = join(folder, file);
    const shown = join(APIM_POLICY_FOLDER, file);
    const document = parsePolicyXml(readFileSync(path, 'utf8'), shown);
    return compilePolicy(toNode(document.root, shown), { elements, namedValues }, isGlobal);
  };
  const global = compile(GLOBAL_POLICY_FILE, true);
  const apis = {} as LoadedPolicies['apis'];
  for (const [name, api] of Object.entries(APIM_APIS) as Array<[ApimApiName, ApimApi]>) {
    const policy = compile(api.policyFile, false);
    apis[name] = Object.fromEntries(SECTIONS.map((s) => [s, resolveSection(policy, global, s)])) as Record<
      Section,
      Step[]
    >;
  }
  return { global, apis };
}

/** A path segment decoded, or undefined when its percent escapes are malformed. */
function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/**
 * Matches a path below the API's own against an operation's URL template, segment by segment:
 * an empty segment (`//`, a trailing `/`) or a malformed escape matches nothing.
 */
function matchTemplate(template: string, path: string): Map<string, string> | undefined {
  const want = template.split('/').slice(1);
  const have = path.split('/').slice(1);
  if (have.some((segment) => segment === '' || decodeSegment(segment) === undefined)) return undefined;
  const params = new Map<string, string>();
  for (let i = 0; i < want.length; i++) {
    const part = want[i] as string;
    const rest = /^\{\*(.+)\}$/.exec(part);
    if (rest) {
      if (have.length <= i) return undefined;
      params.set(
        rest[1] as string,
        have
          .slice(i)
          .map((v) => decodeSegment(v) ?? '')
          .join('/'),
      );
      return params;
    }
    const value = have[i];
    if (value === undefined) return undefined;
    const param = /^\{(.+)\}$/.exec(part);
    if (param) params.set(param[1] as string, decodeSegment(value) ?? '');
    else if (part !== value) return undefined;
  }
  return have.length === want.length ? params : undefined;
}

function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        reject(
          new PolicyError(
            413,
            'Payload Too Large',
            'configuration',
            'RequestEntityTooLarge',
            'Request is too large',
          ),
        );
        // Stop reading; the 413 is answered, then the connection closed.
        request.pause();
        request.removeAllListeners('data');
      } else {
        chunks.push(chunk);
      }
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

export async function startLocalGateway(options: LocalGatewayOptions): Promise<LocalGateway> {
  const { config } = options;
  const now = options.now ?? Date.now;
  const tenant = config.namedValues[APIM_NAMED_VALUES.tenantId.name] ?? '';
  const audience = config.namedValues[APIM_NAMED_VALUES.audience.name] ?? '';
  const entra = new LocalEntra(tenant, config.namedValues[APIM_NAMED_VALUES.clientAppId.name] ?? '');
  const metrics: EmittedMetric[] = [];
  const namedValues = namedValuesOf(config, options.supplied);
  const elements = policyElements({
    counters: new PeriodCounters(now),
    emitMetric: (metric) => {
      // A long-running local stack keeps the latest ones only.
      if (metrics.push(metric) > MAX_KEPT_METRICS) metrics.splice(0, metrics.length - MAX_KEPT_METRICS);
    },
    validateToken: (token, tenantId, audiences) => entra.validate(token, tenantId, audiences),
    now,
  });
  const policies = loadPolicies(
    options.policyFolder ?? join(options.root, APIM_POLICY_FOLDER),
    namedValues,
    elements,
  );
  const keys = new Map(config.subscriptions.map((s) => [s.key, s]));
  const products = new Map(config.products.map((p) => [p.id, p]));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

  const tokenFor = (userName: string, lifetimeSeconds?: number, clientAppId?: string): string => {
    const user = config.users.find((u) => u.name === userName);
    if (!user) throw new Error(`no user '${userName}' in the gateway configuration`);
    return entra.issue(user, audience, lifetimeSeconds, clientAppId);
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://gateway.local');
    if (url.pathname.startsWith(`${LOCAL_TOKEN_PATH}/`) && request.method === 'GET') {
      // Loopback callers only, by name too: a web page that rebinds a DNS name to 127.0.0.1 gets nothing.
      const host = (request.headers.host ?? '').replace(/:\d+$/, '');
      if (host !== '127.0.0.1' && host !== 'localhost') {
        response.writeHead(403, { 'content-type': 'text/plain; charset=utf-8' }).end('Loopback only.\n');
        return;
      }
      const name = decodeURIComponent(url.pathname.slice(LOCAL_TOKEN_PATH.length + 1));
      const known = config.users.some((u) => u.name === name);
      response.writeHead(known ? 200 : 404, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(
        known
          ? tokenFor(name, LOCAL_TOKEN_SECONDS)
          : `No user '${name}'. Users: ${config.users.map((u) => u.name).join(', ')}\n`,
      );
      return;
    }
    const context: GatewayContext = {
      requestId: randomUUID(),
      request: {
        method: request.method ?? 'GET',
        headers: new HeaderMap(Object.entries(request.headersDistinct)),
        query: new URLSearchParams(url.search),
        matchedParameters: new Map(),
      },
      response: { statusCode: 200, statusReason: 'OK', headers: new HeaderMap() },
      variables: new Map(),
    };
    const [, apiPath = '', ...rest] = url.pathname.split('/');
    const entry = (Object.entries(APIM_APIS) as Array<[ApimApiName, ApimApi]>).find(
      ([, api]) => api.path === apiPath,
    );
    const sections: Record<Section, Step[]> = entry
      ? policies.apis[entry[0]]
      : (Object.fromEntries(
          SECTIONS.map((s) => [
            s,
            policies.global.sections[s].filter((step): step is Step => step !== 'base'),
          ]),
        ) as Record<Section, Step[]>);
    const operationPath = `/${rest.join('/')}`;
    const observers: Array<(usage: TokenUsage) => void> = [];
    // Read once; a refusal (too large) is the same refusal for every reader.
    let body: Promise<Buffer> | undefined;
    const bodyOf = (): Promise<Buffer> =>
      (body ??= readBody(request, options.maxRequestBytes ?? MAX_REQUEST_BYTES));
    const run: Run = {
      context,
      onUsage: (observer) => observers.push(observer),
      async jsonBody() {
        const text = (await bodyOf()).toString('utf8');
        try {
          return JSON.parse(text) as unknown;
        } catch {
          return undefined; // not JSON: nothing to estimate
        }
      },
      forward: (forwardOptions) => forward(run, forwardOptions.timeoutSeconds),
    };
    let upstream: IncomingMessage | undefined;
    // The caller going away ends the backend call too, whatever stage it is at.
    const abort = new AbortController();
    response.on('close', () => {
      if (!response.writableFinished) abort.abort();
    });

    const forward = async (current: Run, timeoutSeconds: number): Promise<void> => {
      if (!current.backendUrl || !entry) {
        throw new PolicyError(500, 'Internal Server Error', 'forward-request', 'BackendNotSet', 'No backend');
      }
      const target = new URL(current.backendUrl.replace(/\/$/, '') + operationPath);
      target.search = context.request.query.toString();
      const payload = await bodyOf();
      const headers = context.request.headers;
      for (const name of [...HOP_BY_HOP, 'host', 'content-length']) headers.delete(name);
      headers.set('content-length', [String(payload.length)]);
      upstream = await new Promise<IncomingMessage>((resolve, reject) => {
        const outgoing = http.request(target, {
          method: context.request.method,
          headers: headers.toOutgoing(),
          agent,
          timeout: timeoutSeconds * 1000,
          signal: abort.signal,
        });
        outgoing.on('response', resolve);
        outgoing.on('timeout', () => {
          outgoing.destroy();
          reject(
            new PolicyError(
              504,
              'Gateway Timeout',
              'forward-request',
              'Timeout',
              'Request to the backend timed out',
            ),
          );
        });
        outgoing.on('error', () =>
          reject(
            new PolicyError(
              500,
              'Internal Server Error',
              'forward-request',
              'BackendConnectionFailure',
              'Backend unreachable',
            ),
          ),
        );
        outgoing.end(payload);
      });
      const fromBackend = new HeaderMap(Object.entries(upstream.headersDistinct));
      // Headers the inbound policies set on the response (remaining calls, remaining tokens) stay.
      for (const [name, values] of Object.entries(context.response.headers.toOutgoing()))
        fromBackend.set(name, values);
      context.response = {
        statusCode: upstream.statusCode ?? 502,
        statusReason: upstream.statusMessage ?? '',
        headers: fromBackend,
      };
    };

    const send = (status: number, reason: string, headers: HeaderMap, content?: string | Buffer): void => {
      // A body left unread (too large) is not drained: the connection closes after the answer.
      if (!request.readableEnded) {
        response.shouldKeepAlive = false;
        response.on('finish', () => request.destroy());
      }
      for (const name of HOP_BY_HOP) headers.delete(name);
      if (content !== undefined) headers.set('content-length', [String(Buffer.byteLength(content))]);
      response.writeHead(status, reason || undefined, headers.toOutgoing());
      response.end(content);
    };

    const onError = async (error: PolicyError): Promise<void> => {
      context.lastError = { source: error.source, reason: error.reason, message: error.message };
      context.response.statusCode = error.status;
      context.response.statusReason = error.statusReason;
      try {
        for (const step of sections['on-error']) await step(run);
      } catch (answer) {
        if (answer instanceof ReturnResponse)
          return send(answer.status, answer.statusReason, answer.headers, answer.body);
        throw answer;
      }
      send(context.response.statusCode, context.response.statusReason, context.response.headers, '');
    };

    try {
      if (!entry)
        throw new PolicyError(404, 'Not Found', 'configuration', 'ApiNotFound', 'Resource not found');
      const [, api] = entry;
      const operation = api.operations.find(
        (o) =>
          o.method === context.request.method && matchTemplate(o.urlTemplate, operationPath) !== undefined,
      );
      if (!operation)
        throw new PolicyError(404, 'Not Found', 'configuration', 'OperationNotFound', 'Resource not found');
      context.request.matchedParameters =
        matchTemplate(operation.urlTemplate, operationPath) ?? new Map<string, string>();
      if (api.subscriptionKey) {
        const presented =
          context.request.headers.get(api.subscriptionKey.header) ??
          url.searchParams.get(api.subscriptionKey.query);
        if (!presented) {
          throw new PolicyError(
            401,
            'Unauthorized',
            'authorization',
            'SubscriptionKeyNotFound',
            'Subscription key not found',
          );
        }
        const subscription = keys.get(presented);
        const product = subscription && products.get(subscription.product);
        if (!subscription || !product || !product.apis.includes(entry[0])) {
          throw new PolicyError(
            401,
            'Unauthorized',
            'authorization',
            'SubscriptionKeyInvalid',
            'Subscription key is invalid',
          );
        }
        context.subscription = { id: subscription.id, name: subscription.name };
        context.product = { id: product.id, name: product.name };
      }
      for (const section of ['inbound', 'backend', 'outbound'] as const) {
        for (const step of sections[section]) await step(run);
      }
      if (!upstream)
        throw new PolicyError(500, 'Internal Server Error', 'backend', 'NoResponse', 'No response');
      const answer = upstream;
      const tap =
        observers.length > 0
          ? new UsageTap(answer.headers['content-type'], countPromptTokens(await run.jsonBody()))
          : undefined;
      for (const name of HOP_BY_HOP) context.response.headers.delete(name);
      response.writeHead(
        context.response.statusCode,
        context.response.statusReason,
        context.response.headers.toOutgoing(),
      );
      // The answer's tokens count once it ends, or once the caller leaves (what was sent so far).
      let counted = false;
      const count = (): void => {
        if (counted || !tap || answer.statusCode === undefined || answer.statusCode >= 400) return;
        counted = true;
        const usage = tap.usage();
        for (const observer of observers) observer(usage);
      };
      answer.on('data', (chunk: Buffer) => tap?.write(chunk));
      pipeline(answer, response).then(count, () => {
        count();
        answer.destroy();
      });
    } catch (error) {
      if (error instanceof ReturnResponse)
        return send(error.status, error.statusReason, error.headers, error.body);
      if (error instanceof PolicyError) return onError(error);
      // An expression or policy failing at run time: APIM's on-error with a 500, no details leaked.
      return onError(
        new PolicyError(
          500,
          'Internal Server Error',
          'policy',
          'ExpressionValueEvaluationFailure',
          String(error),
        ),
      );
    }
  };

  const server = http.createServer((request, response) => {
    handle(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({ error: { code: '500', message: 'The gateway could not complete the request.' } }),
      );
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    metrics,
    tokenFor,
    stop: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Every named value the policies may reference: the configuration file's and the stack's. */
function namedValuesOf(
  config: GatewayConfig,
  supplied: LocalGatewayOptions['supplied'],
): Map<string, string> {
  return new Map<string, string>([
    ...Object.entries(config.namedValues),
    [APIM_NAMED_VALUES.functionsBaseUrl.name, supplied.functionsBaseUrl.replace(/\/$/, '')],
    [APIM_NAMED_VALUES.functionKey.name, supplied.functionKey],
    [APIM_NAMED_VALUES.gatewaySecret.name, supplied.gatewaySecret],
  ]);
}

/** The gateway's loading step alone: throws naming file and line when a policy cannot be run. */
export function checkPoliciesRun(root: string, config: GatewayConfig, policyFolder?: string): void {
  const namedValues = namedValuesOf(config, {
    functionsBaseUrl: 'http://127.0.0.1:7071/api',
    functionKey: 'function-key',
    gatewaySecret: 'gateway-secret',
  });
  const elements = policyElements({
    counters: new PeriodCounters(),
    emitMetric: () => undefined,
    validateToken: () => Promise.reject(new Error('not running')),
    now: Date.now,
  });
  loadPolicies(policyFolder ?? join(root, APIM_POLICY_FOLDER), namedValues, elements);
}
