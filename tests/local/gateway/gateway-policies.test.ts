import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { AzureOpenAI } from 'openai';
import type { GatewayConfig } from '../../../local/gateway/local-config';
import { readGatewayConfig } from '../../../local/gateway/local-config';
import type { LocalGateway } from '../../../local/gateway/server';
import { startLocalGateway } from '../../../local/gateway/server';
import {
  APIM_APIS,
  APIM_NAMED_VALUES,
  REMAINING_REQUESTS_HEADER,
  REMAINING_TOKENS_HEADER,
  SPOOFABLE_REQUEST_ID_HEADERS,
  TOKEN_METRIC,
} from '../../../shared/contracts/apim';
import {
  FUNCTION_KEY_HEADER,
  GATEWAY_HEADER_NAMES,
  GATEWAY_HEADERS,
} from '../../../shared/contracts/gateway-headers';
import { APP_ROLES } from '../../../shared/contracts/roles';

/**
 * The policy files, executed by the local gateway in front of a backend that records what reaches
 * it (where the Function App would be): what a caller can and cannot make a function see, the
 * error shape, the limits and the token metrics.
 */

const root = join(__dirname, '..', '..', '..');
const base = readGatewayConfig(root);
const [research] = base.subscriptions;
if (!research) throw new Error('the gateway configuration has no subscription');
const SECRET = 'backend-gateway-secret-for-tests';
const FUNCTION_KEY = 'function-key-for-tests';
/** The usage the recording backend reports for every chat completion. */
const USAGE = { prompt_tokens: 30, completion_tokens: 10, total_tokens: 40 };

interface Received {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  /** Resolves when the backend's answer to it closed (finished, or cut by the gateway). */
  closed: Promise<void>;
}

let backend: http.Server;
let backendUrl: string;
const received: Received[] = [];

beforeAll(async () => {
  backend = http.createServer((req, res) => {
    const closed = new Promise<void>((resolve) => res.on('close', () => resolve()));
    received.push({
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      closed,
    });
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (body.includes('"stream":true')) {
        // A long stream with no usage chunk: one word every 20 ms until the gateway hangs up.
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        let i = 0;
        const timer = setInterval(() => {
          const chunk = {
            id: 'c',
            object: 'chat.completion.chunk',
            created: 1,
            model: 'gpt-4o-mini',
            choices: [{ index: 0, delta: { content: `word${i++} ` }, finish_reason: null }],
          };
          res.write(`data: ${JSON.stringify(chunk)}\n\n`);
          if (i > 500) {
            clearInterval(timer);
            res.end('data: [DONE]\n\n');
          }
        }, 20);
        res.on('close', () => clearInterval(timer));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'chatcmpl-1',
          object: 'chat.completion',
          created: 1,
          model: 'gpt-4o-mini',
          choices: [{ index: 0, message: { role: 'assistant', content: 'Hi' }, finish_reason: 'stop' }],
          usage: USAGE,
        }),
      );
    });
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  backendUrl = `http://127.0.0.1:${(backend.address() as AddressInfo).port}/api`;
});
afterAll(() => new Promise<void>((resolve) => backend.close(() => resolve())));

async function gatewayWith(namedValues: Record<string, string> = {}): Promise<LocalGateway> {
  const config: GatewayConfig = { ...base, namedValues: { ...base.namedValues, ...namedValues } };
  return startLocalGateway({
    port: 0,
    config,
    supplied: { functionsBaseUrl: backendUrl, functionKey: FUNCTION_KEY, gatewaySecret: SECRET },
    root,
  });
}

function client(gateway: LocalGateway, apiKey = research?.key ?? ''): AzureOpenAI {
  return new AzureOpenAI({ endpoint: gateway.url, apiKey, apiVersion: '2024-10-21', maxRetries: 0 });
}

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Hello there' }] };

const CHAT_PATH = '/openai/deployments/gpt-4o-mini/chat/completions';

/**
 * A chat completion posted by hand (what the official client would send, when the test needs the
 * raw answer): with the research app's key unless `key` is null, to CHAT_PATH unless `path` is given.
 */
function postChat(
  gateway: LocalGateway,
  options: { key?: string | null; path?: string; query?: string; body?: unknown } = {},
): Promise<Response> {
  const key = options.key === undefined ? (research?.key ?? '') : options.key;
  return fetch(`${gateway.url}${options.path ?? CHAT_PATH}?api-version=2024-10-21${options.query ?? ''}`, {
    method: 'POST',
    headers: {
      ...(key === null ? {} : { [APIM_APIS.openai.subscriptionKey.header]: key }),
      'content-type': 'application/json',
    },
    body: JSON.stringify(options.body ?? chat),
  });
}

describe('what reaches the functions', () => {
  let gateway: LocalGateway;
  beforeAll(async () => {
    gateway = await gatewayWith();
  });
  afterAll(() => gateway.stop());
  beforeEach(() => {
    received.length = 0;
  });

  it('carries the attribution of the subscription and product, whatever the caller sent', async () => {
    const spoofed = {
      [GATEWAY_HEADERS.department]: 'finance',
      [GATEWAY_HEADERS.subscription]: 'sub-someone-else',
      [GATEWAY_HEADERS.app]: 'not-me',
      [GATEWAY_HEADERS.user]: 'the-ceo',
      [GATEWAY_HEADERS.roles]: APP_ROLES.admin,
      [GATEWAY_HEADERS.gatewayKey]: 'guessed',
      [GATEWAY_HEADERS.requestId]: 'caller-chosen-id',
      ...Object.fromEntries(SPOOFABLE_REQUEST_ID_HEADERS.map((name) => [name, 'caller-chosen-id'])),
      [FUNCTION_KEY_HEADER]: 'guessed',
    };
    const { response } = await client(gateway)
      .chat.completions.create(chat, { headers: spoofed })
      .withResponse();
    expect(response.status).toBe(200);
    const [seen] = received;
    expect(seen?.path).toBe('/api/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21');
    expect(seen?.headers[GATEWAY_HEADERS.department]).toBe(research?.product);
    expect(seen?.headers[GATEWAY_HEADERS.subscription]).toBe(research?.id);
    expect(seen?.headers[GATEWAY_HEADERS.app]).toBe(research?.name);
    expect(seen?.headers[GATEWAY_HEADERS.gatewayKey]).toBe(SECRET);
    expect(seen?.headers[FUNCTION_KEY_HEADER]).toBe(FUNCTION_KEY);
    // No token, so no user and no roles; no caller-chosen request id of any name.
    expect(seen?.headers[GATEWAY_HEADERS.user]).toBeUndefined();
    expect(seen?.headers[GATEWAY_HEADERS.roles]).toBeUndefined();
    for (const name of SPOOFABLE_REQUEST_ID_HEADERS) expect(seen?.headers[name]).toBeUndefined();
    const requestId = seen?.headers[GATEWAY_HEADERS.requestId];
    expect(requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // The caller's key never reaches the functions; the caller learns the request's id.
    expect(seen?.headers[APIM_APIS.openai.subscriptionKey.header]).toBeUndefined();
    expect(response.headers.get(GATEWAY_HEADERS.requestId)).toBe(requestId);
  });

  it.each([
    ['duplicated', [GATEWAY_HEADERS.department, 'finance', GATEWAY_HEADERS.department, 'marketing']],
    ['comma-joined', [GATEWAY_HEADERS.department, 'finance, marketing']],
    ['mixed case', ['X-Chargeback-Department', 'finance', 'X-CHARGEBACK-REQUEST-ID', 'mine']],
  ])('deletes %s x-chargeback-* headers before setting its own', async (_how, raw) => {
    // Raw header lines, so that a header can be sent twice.
    const gatewayUrl = new URL(
      `${gateway.url}/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21`,
    );
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(gatewayUrl, { method: 'POST' });
      for (let i = 0; i < raw.length; i += 2) req.appendHeader(raw[i] as string, raw[i + 1] as string);
      req.setHeader(APIM_APIS.openai.subscriptionKey.header, research?.key ?? '');
      req.setHeader('content-type', 'application/json');
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(JSON.stringify(chat));
    });
    expect(status).toBe(200);
    const [seen] = received;
    for (const name of GATEWAY_HEADER_NAMES) {
      const lines = (seen?.rawHeaders ?? []).filter(
        (_v, i, all) => i % 2 === 0 && all[i]?.toLowerCase() === name,
      );
      expect(lines.length).toBeLessThanOrEqual(1);
    }
    expect(seen?.headers[GATEWAY_HEADERS.department]).toBe(research?.product);
    expect(seen?.headers[GATEWAY_HEADERS.requestId]).not.toBe('mine');
  });

  it('gives two requests with the same caller-chosen request id two different correlation ids', async () => {
    const headers = {
      [GATEWAY_HEADERS.requestId]: 'same',
      ...Object.fromEntries(SPOOFABLE_REQUEST_ID_HEADERS.map((name) => [name, 'same'])),
    };
    await client(gateway).chat.completions.create(chat, { headers });
    await client(gateway).chat.completions.create(chat, { headers });
    const ids = received.map((r) => r.headers[GATEWAY_HEADERS.requestId]);
    expect(ids).toHaveLength(2);
    expect(new Set(ids).size).toBe(2);
  });

  it('refuses a missing or unknown key with 401 in the Azure OpenAI error shape, before the backend', async () => {
    const refused = await client(gateway, 'not-a-key-of-any-subscription')
      .chat.completions.create(chat)
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 401, code: '401' });
    expect(String((refused as Error).message)).toMatch(/invalid subscription key/);
    const missing = await postChat(gateway, { key: null });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('content-type')).toBe('application/json');
    expect(await missing.json()).toEqual({
      error: { code: '401', message: expect.stringMatching(/missing subscription key/) as unknown },
    });
    expect(received).toEqual([]);
  });

  it('takes an Entra ID token alongside the key: a valid one names the user, an invalid one is a 401', async () => {
    const admin = base.users.find((u) => u.name === 'admin');
    const withToken = await client(gateway)
      .chat.completions.create(chat, { headers: { authorization: `Bearer ${gateway.tokenFor('admin')}` } })
      .withResponse();
    expect(withToken.response.status).toBe(200);
    expect(received[0]?.headers[GATEWAY_HEADERS.user]).toBe(admin?.oid);
    // The token is not passed on: the functions trust the gateway's headers only.
    expect(received[0]?.headers.authorization).toBeUndefined();
    const expired = await client(gateway)
      .chat.completions.create(chat, {
        headers: { authorization: `Bearer ${gateway.tokenFor('admin', -60)}` },
      })
      .catch((e: unknown) => e);
    expect(expired).toMatchObject({ status: 401, code: '401' });
    expect(String((expired as Error).message)).toMatch(/An Entra ID token valid for this API/);
    // A token issued to another client application is refused too.
    const otherClient = await client(gateway)
      .chat.completions.create(chat, {
        headers: {
          authorization: `Bearer ${gateway.tokenFor('admin', 600, '00000000-0000-4000-8000-000000000bad')}`,
        },
      })
      .catch((e: unknown) => e);
    expect(otherClient).toMatchObject({ status: 401 });
    expect(received).toHaveLength(1);
  });

  it('removes the key from the query string too, and forwards the rest of the query', async () => {
    const res = await postChat(gateway, {
      key: null,
      query: `&${APIM_APIS.openai.subscriptionKey.query}=${research?.key ?? ''}`,
    });
    expect(res.status).toBe(200);
    expect(received[0]?.path).toBe(
      '/api/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21',
    );
  });

  it('answers a malformed or doubled path with 404, without calling the backend', async () => {
    for (const path of [
      '/openai/deployments/%E0%A4%A/chat/completions',
      '/openai//deployments/x/chat/completions',
    ]) {
      const res = await postChat(gateway, { path });
      expect({ path, status: res.status }).toEqual({ path, status: 404 });
    }
    expect(received).toEqual([]);
  });

  it('refuses a key of a product that does not include the API (the finance analyst has no Speech)', async () => {
    const analyst = base.subscriptions.find((s) => s.product === 'finance');
    const res = await fetch(`${gateway.url}/speech/cognitiveservices/v1`, {
      method: 'POST',
      headers: {
        [APIM_APIS.speech.subscriptionKey.header]: analyst?.key ?? '',
        'content-type': 'application/ssml+xml',
      },
      body: '<speak version="1.0" xml:lang="en-US"><voice name="en-US-AvaNeural">Hi</voice></speak>',
    });
    expect(res.status).toBe(401);
    expect(received).toEqual([]);
  });

  it('answers an unknown operation with 404 in the same shape', async () => {
    const res = await postChat(gateway, { path: '/openai/deployments/x/images/generations' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: '404', message: 'Resource not found.' } });
  });

  it('lets the finance API through only with a valid token carrying a chargeback role', async () => {
    const reports = `${gateway.url}/chargeback/reports?period=2026-12`;
    const noToken = await fetch(reports, { headers: { [GATEWAY_HEADERS.roles]: APP_ROLES.finance } });
    expect(noToken.status).toBe(401);
    expect(((await noToken.json()) as { error: { message: string } }).error.message).toMatch(
      /Entra ID token/,
    );
    const forged = await fetch(reports, {
      headers: { authorization: `Bearer ${gateway.tokenFor('finance').slice(0, -4)}AAAA` },
    });
    expect(forged.status).toBe(401);
    const expired = await fetch(reports, {
      headers: { authorization: `Bearer ${gateway.tokenFor('finance', -60)}` },
    });
    expect(expired.status).toBe(401);
    expect(received).toEqual([]);
    const ok = await fetch(reports, { headers: { authorization: `Bearer ${gateway.tokenFor('finance')}` } });
    expect(ok.status).toBe(200);
    const finance = base.users.find((u) => u.name === 'finance');
    expect(received[0]?.path).toBe('/api/reports?period=2026-12');
    expect(received[0]?.headers[GATEWAY_HEADERS.roles]).toBe(finance?.roles.join(','));
    expect(received[0]?.headers[GATEWAY_HEADERS.user]).toBe(finance?.oid);
    expect(received[0]?.headers.authorization).toBeUndefined();
  });
});

describe('errors', () => {
  it('answers an unreachable backend with a 500 in the Azure OpenAI shape that names no address', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const gateway = await startLocalGateway({
      port: 0,
      config: base,
      supplied: {
        functionsBaseUrl: `http://127.0.0.1:${port}/api`,
        functionKey: FUNCTION_KEY,
        gatewaySecret: SECRET,
      },
      root,
    });
    try {
      const res = await postChat(gateway);
      expect(res.status).toBe(500);
      const text = await res.text();
      const body = JSON.parse(text) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('500');
      expect(body.error.message).toMatch(
        /^The gateway could not complete the request\. Quote request id [0-9a-f-]{36}/,
      );
      expect(text).not.toMatch(/127\.0\.0\.1|localhost|ECONNREFUSED|\bat\s/);
      expect(text).not.toContain(String(port));
    } finally {
      await gateway.stop();
    }
  });
});

describe('cut short', () => {
  beforeEach(() => {
    received.length = 0;
  });

  it('ends the backend call when the caller leaves mid-stream, and still counts the tokens sent', async () => {
    const gateway = await gatewayWith();
    try {
      const stream = await client(gateway).chat.completions.create({ ...chat, stream: true });
      let chunks = 0;
      for await (const _chunk of stream) {
        chunks += 1;
        if (chunks === 5) break; // the caller hangs up
      }
      await received[0]?.closed; // the backend's answer was cut, not left running
      for (let i = 0; i < 50 && gateway.metrics.length === 0; i++)
        await new Promise((r) => setTimeout(r, 20));
      const completion = gateway.metrics.find((m) => m.name === 'Completion Tokens');
      expect(completion?.value).toBeGreaterThanOrEqual(5);
    } finally {
      await gateway.stop();
    }
  });

  it('answers a request body over the limit with 413 before the backend', async () => {
    const gateway = await startLocalGateway({
      port: 0,
      config: base,
      supplied: { functionsBaseUrl: backendUrl, functionKey: FUNCTION_KEY, gatewaySecret: SECRET },
      root,
      maxRequestBytes: 1024,
    });
    try {
      const res = await postChat(gateway, {
        body: { ...chat, messages: [{ role: 'user', content: 'x'.repeat(4096) }] },
      });
      expect(res.status).toBe(413);
      expect(received).toEqual([]);
    } finally {
      await gateway.stop();
    }
  });
});

describe('limits', () => {
  it('answers the request over rate-limit-by-key with 429 and retry-after, per subscription', async () => {
    const gateway = await gatewayWith({ [APIM_NAMED_VALUES.requestsPerMinute.name]: '3' });
    try {
      const statuses: number[] = [];
      let last: Response | undefined;
      for (let i = 0; i < 4; i++) {
        last = await postChat(gateway);
        statuses.push(last.status);
        if (i < 3) expect(last.headers.get(REMAINING_REQUESTS_HEADER)).toBe(String(2 - i));
      }
      expect(statuses).toEqual([200, 200, 200, 429]);
      const retryAfter = Number(last?.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(await last?.json()).toEqual({
        error: { code: '429', message: `Rate limit is exceeded. Try again in ${retryAfter} seconds.` },
      });
      // The count is the subscription's, across APIs (APIM keeps one counter per key): Speech is refused too.
      const speech = await fetch(`${gateway.url}/speech/cognitiveservices/v1`, {
        method: 'POST',
        headers: {
          [APIM_APIS.speech.subscriptionKey.header]: research?.key ?? '',
          'content-type': 'text/plain',
        },
        body: 'Hello',
      });
      expect(speech.status).toBe(429);
      // Another subscription has its own count.
      const other = base.subscriptions.find((s) => s.id !== research?.id && s.product !== 'finance');
      const theirs = await client(gateway, other?.key).chat.completions.create(chat).withResponse();
      expect(theirs.response.status).toBe(200);
    } finally {
      await gateway.stop();
    }
  });

  it('answers the request over llm-token-limit with 429 and retry-after, counting the tokens answers report', async () => {
    // 100 tokens a minute; each answer reports 40. The prompt estimate is counted before the call
    // and replaced by the reported total after it: 40, 80, then 80 + estimate <= 100 passes (120),
    // and the fourth finds 120 >= 100.
    const gateway = await gatewayWith({ [APIM_NAMED_VALUES.tokensPerMinute.name]: '100' });
    try {
      const results: Array<{ status: number; remaining: string | null; retryAfter: string | null }> = [];
      for (let i = 0; i < 4; i++) {
        const res = await postChat(gateway);
        await res.arrayBuffer();
        results.push({
          status: res.status,
          remaining: res.headers.get(REMAINING_TOKENS_HEADER),
          retryAfter: res.headers.get('retry-after'),
        });
      }
      expect(results.map((r) => r.status)).toEqual([200, 200, 200, 429]);
      expect(Number(results[3]?.retryAfter)).toBeGreaterThanOrEqual(1);
      // The remaining tokens go down by what the previous answers reported.
      const remaining = results.slice(0, 3).map((r) => Number(r.remaining));
      expect(remaining[0]! - remaining[1]!).toBe(USAGE.total_tokens);
      expect(remaining[1]! - remaining[2]!).toBe(USAGE.total_tokens);
    } finally {
      await gateway.stop();
    }
  });

  it('answers the request over the monthly token quota with 403', async () => {
    // The first passes (its prompt estimate, 9, is under 45) and counts the 40 tokens it reports;
    // the second's 40 + 9 is over 45.
    const gateway = await gatewayWith({ [APIM_NAMED_VALUES.tokensPerMonth.name]: '45' });
    try {
      const first = await client(gateway).chat.completions.create(chat).withResponse();
      expect(first.response.status).toBe(200);
      const second = await client(gateway)
        .chat.completions.create(chat)
        .catch((e: unknown) => e);
      expect(second).toMatchObject({ status: 403, code: '403' });
      expect(String((second as Error).message)).toMatch(/token quota/);
    } finally {
      await gateway.stop();
    }
  });
});

describe('token metrics', () => {
  it('emits prompt, completion and total tokens with the department, app, subscription and deployment', async () => {
    const gateway = await gatewayWith();
    try {
      await client(gateway).chat.completions.create({ ...chat, model: 'gpt-4o' });
      const dimensions = {
        Department: research?.product,
        App: research?.name,
        'Subscription ID': research?.id,
        Deployment: 'gpt-4o',
      };
      expect(Object.keys(dimensions)).toEqual([...TOKEN_METRIC.dimensions]);
      expect(gateway.metrics).toEqual([
        { namespace: TOKEN_METRIC.namespace, name: 'Prompt Tokens', value: USAGE.prompt_tokens, dimensions },
        {
          namespace: TOKEN_METRIC.namespace,
          name: 'Completion Tokens',
          value: USAGE.completion_tokens,
          dimensions,
        },
        { namespace: TOKEN_METRIC.namespace, name: 'Total Tokens', value: USAGE.total_tokens, dimensions },
      ]);
    } finally {
      await gateway.stop();
    }
  });
});
