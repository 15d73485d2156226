import type { LocalFunctionsHost } from '../../../local/host/host';
import { keys, startFixtureHost } from './start-fixture';

let host: LocalFunctionsHost;
beforeAll(async () => {
  host = await startFixtureHost();
});
afterAll(async () => {
  await host.stop();
});

describe('HTTP triggers', () => {
  it('serves a function at its route under the host.json route prefix, with route params and query', async () => {
    const res = await fetch(`${host.url}/api/greet/ada?lang=en`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(await res.json()).toEqual({ hello: 'ada', lang: 'en' });
  });

  it('does not serve routes outside the prefix', async () => {
    expect((await fetch(`${host.url}/greet/ada`)).status).toBe(404);
  });

  it('matches literal route segments case-insensitively and before parameters', async () => {
    const res = await fetch(`${host.url}/API/Items/latest`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ latest: true });
  });

  it('applies route constraints', async () => {
    const res = await fetch(`${host.url}/api/items/abc`, {
      headers: { 'x-functions-key': keys.functionKey },
    });
    expect(res.status).toBe(404);
  });

  it('answers 404 for a method the function does not accept, as the real host does', async () => {
    const res = await fetch(`${host.url}/api/greet/ada`, { method: 'POST' });
    expect(res.status).toBe(404);
  });

  it('requires a function key for authLevel function, from the header or the code query', async () => {
    expect((await fetch(`${host.url}/api/items/7`)).status).toBe(401);
    expect((await fetch(`${host.url}/api/items/7?code=wrong`)).status).toBe(401);
    const viaHeader = await fetch(`${host.url}/api/items/7`, {
      headers: { 'x-functions-key': keys.functionKey },
    });
    expect(viaHeader.status).toBe(200);
    expect(await viaHeader.json()).toEqual({ id: 7, method: 'GET' });
    const viaQuery = await fetch(`${host.url}/api/items/7?code=${keys.masterKey}`, { method: 'DELETE' });
    expect(await viaQuery.json()).toEqual({ id: 7, method: 'DELETE' });
  });

  it('accepts only the master key for authLevel admin', async () => {
    const withFunctionKey = await fetch(`${host.url}/api/admin-area`, {
      headers: { 'x-functions-key': keys.functionKey },
    });
    expect(withFunctionKey.status).toBe(401);
    const withMaster = await fetch(`${host.url}/api/admin-area`, {
      headers: { 'x-functions-key': keys.masterKey },
    });
    expect(withMaster.status).toBe(204);
  });

  it('passes request bodies and response headers through', async () => {
    const res = await fetch(`${host.url}/api/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ a: 1 }),
    });
    expect(res.headers.get('x-echo')).toBe('yes');
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.text()).toBe('{"a":1}');
  });

  it('streams a response body chunk by chunk as the function produces it', async () => {
    const res = await fetch(`${host.url}/api/stream/countdown`);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const arrivals: Array<{ text: string; at: number }> = [];
    const decoder = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      arrivals.push({ text: decoder.decode(value), at: Date.now() });
    }
    expect(arrivals.map((a) => a.text).join('')).toBe('data: 3\n\ndata: 2\n\ndata: 1\n\n');
    // Three separate chunks arriving ~20 ms apart: nothing was buffered until the end.
    expect(arrivals.length).toBe(3);
  });

  it('turns a function error into a 500', async () => {
    expect((await fetch(`${host.url}/api/crash`)).status).toBe(500);
  });

  it('lists the HTTP functions with their URLs', () => {
    const greet = host.httpFunctions.find((f) => f.name === 'greet');
    expect(greet).toEqual({
      name: 'greet',
      route: 'greet/{name}',
      url: `${host.url}/api/greet/{name}`,
      methods: ['GET'],
      authLevel: 'anonymous',
    });
  });
});
