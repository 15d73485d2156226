import type { HttpExchange, LocalFunctionsHost } from '../../../local/host/host';
import { observed } from './fixtures/app';
import { keys, startFixtureHost } from './start-fixture';

/**
 * The host's request log hook: one exchange per request answered, once the response is written,
 * with what the function's code attached to it (`annotate`), in the function itself or in its
 * response stream, even when the client went away.
 */

let host: LocalFunctionsHost;
const exchanges: HttpExchange[] = [];
beforeAll(async () => {
  host = await startFixtureHost('manual', { onHttpExchange: (exchange) => exchanges.push(exchange) });
});
afterAll(async () => {
  await host.stop();
});

async function exchangeFor(path: string): Promise<HttpExchange> {
  const deadline = Date.now() + 2000;
  for (;;) {
    const found = exchanges.find((e) => e.path === path);
    if (found) return found;
    if (Date.now() > deadline)
      throw new Error(`no exchange for ${path}: ${exchanges.map((e) => e.path).join(', ')}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('the request log hook', () => {
  it('reports a function call: method, path without the query, function, params, status, duration, annotations', async () => {
    observed.onGreet = () => void host.annotate('greeted', 'ada');
    try {
      const res = await fetch(`${host.url}/api/greet/ada?lang=en&code=secret`);
      expect(res.status).toBe(200);
      await res.text();
    } finally {
      observed.onGreet = undefined;
    }
    const exchange = await exchangeFor('/api/greet/ada');
    expect(exchange).toMatchObject({
      method: 'GET',
      functionName: 'greet',
      params: { name: 'ada' },
      status: 200,
      incomplete: false,
      annotations: { greeted: 'ada' },
    });
    expect(exchange.durationMs).toBeGreaterThan(0);
  });

  it('reports refusals and the host’s own endpoints without a function', async () => {
    await (await fetch(`${host.url}/api/items/7`)).text();
    await (
      await fetch(`${host.url}/admin/host/status`, { headers: { 'x-functions-key': keys.masterKey } })
    ).text();
    const refused = await exchangeFor('/api/items/7');
    const admin = await exchangeFor('/admin/host/status');
    expect([refused.status, refused.functionName]).toEqual([401, undefined]);
    expect([admin.status, admin.functionName]).toEqual([200, undefined]);
  });

  it('reports a stream the client left, after the function’s stream has wound down', async () => {
    let cancelledInContext: boolean | undefined;
    observed.onTickerCancel = () => {
      cancelledInContext = host.annotate('cancelled', true);
    };
    try {
      const controller = new AbortController();
      const res = await fetch(`${host.url}/api/stream/ticker`, { signal: controller.signal });
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      await reader.read();
      controller.abort();
      const exchange = await exchangeFor('/api/stream/ticker');
      expect(exchange).toMatchObject({ status: 200, incomplete: true, annotations: { cancelled: true } });
      expect(cancelledInContext).toBe(true);
    } finally {
      observed.onTickerCancel = undefined;
    }
  });

  it('has no request to annotate outside one', () => {
    expect(host.annotate('anything', 1)).toBe(false);
  });
});

describe('without the hook (the default: tests stay quiet)', () => {
  it('tracks nothing, and annotate finds no request', async () => {
    // The fixture app is loaded once per test file: this host serves the same registrations.
    const quiet = await startFixtureHost('manual');
    try {
      let annotated: boolean | undefined;
      observed.onGreet = () => {
        annotated = quiet.annotate('greeted', true);
      };
      const res = await fetch(`${quiet.url}/api/greet/ada`);
      expect(res.status).toBe(200);
      expect(annotated).toBe(false);
    } finally {
      observed.onGreet = undefined;
      await quiet.stop();
    }
  });
});
