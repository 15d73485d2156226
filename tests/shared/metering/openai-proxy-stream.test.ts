import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { UndiciOpenAiUpstream } from '../../../shared/adapters/openai-upstream';
import { proxyOpenAi } from '../../../shared/metering/openai-proxy';
import type { UsageEvent } from '../../../shared/contracts/usage-event';

/**
 * The stream relay against an upstream that sends hand-written SSE (spacing, comments and field
 * orders the simulator never produces), so the bytes a caller sees can be compared exactly.
 */
describe('streamed answers, byte for byte', () => {
  let server: http.Server;
  let endpoint: string;
  let script: string[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // One write per scripted piece: events split across reads, and several in one read.
      const pieces = [...script];
      const next = (): void => {
        const piece = pieces.shift();
        if (piece === undefined) return void res.end();
        res.write(piece, () => setImmediate(next));
      };
      next();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  async function relay(body: object): Promise<{ text: string; events: UsageEvent[] }> {
    const events: UsageEvent[] = [];
    const response = await proxyOpenAi(
      {
        operation: 'chat/completions',
        form: 'deployment',
        deployment: 'gpt-4o-mini',
        apiVersion: '2024-10-21',
        contentType: 'application/json',
        body: new TextEncoder().encode(JSON.stringify(body)),
        attribution: { subscriptionId: 's', appId: 'a', department: 'd', unassigned: false },
        correlationId: 'c-1',
        startedAt: Date.now(),
      },
      {
        upstream: new UndiciOpenAiUpstream({
          endpoint,
          authHeaders: () => Promise.resolve({}),
          timeoutMs: 5_000,
        }),
        record: (event) => {
          events.push(event);
          return Promise.resolve();
        },
      },
    );
    const text = await new Response(response.body as ReadableStream<Uint8Array>).text();
    return { text, events };
  }

  const messages = [{ role: 'user', content: 'hi' }];

  it('a caller that asked for usage gets the upstream bytes untouched, comments and spacing included', async () => {
    script = [
      ': keep-alive\n\n',
      'data:{"id":"1","model":"gpt-4o-mini-2024-07-18","choices":[{"delta":{"content":"Hel"}}],"usage":null}\n\n',
      'data: {"id":"1","model":"gpt-4o-mini-2024-07-18","choices":[{"delta":{"content":"lo"}}], "usage" : null}\n\ndata: {"id":"1","choices":[],',
      '"usage":{"prompt_tokens":9,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":4}}}\n\n',
      'data: [DONE]\n\n',
    ];
    const { text, events } = await relay({ messages, stream: true, stream_options: { include_usage: true } });
    expect(text).toBe(script.join(''));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      promptTokens: 9,
      cachedTokens: 4,
      completionTokens: 2,
      model: 'gpt-4o-mini-2024-07-18',
      estimated: false,
    });
  });

  it('a caller that did not ask sees no usage field in any position, and no usage chunk', async () => {
    script = [
      'data: {"usage":null,"id":"1","model":"m","choices":[{"delta":{"content":"A \\"usage\\":null, stays"}}]}\n\n',
      'data: {"id":"1","usage" :  null , "choices":[{"delta":{"content":"B"}}]}\n\n',
      'data: {"id":"1","choices":[{"delta":{"content":"C"}}],"usage":null}\n\n',
      'data: {"id":"1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":3}}\n\ndata: [DONE]\n\n',
    ];
    const { text, events } = await relay({ messages, stream: true });
    const data = text
      .split('\n\n')
      .filter(Boolean)
      .map((line) => line.replace(/^data: /, ''));
    expect(data.slice(0, 3).map((d) => JSON.parse(d) as unknown)).toEqual([
      { id: '1', model: 'm', choices: [{ delta: { content: 'A "usage":null, stays' } }] },
      { id: '1', choices: [{ delta: { content: 'B' } }] },
      { id: '1', choices: [{ delta: { content: 'C' } }] },
    ]);
    expect(data.slice(3)).toEqual(['[DONE]']);
    expect(events[0]).toMatchObject({ promptTokens: 3, completionTokens: 3, model: 'm', estimated: false });
  });

  it('a stream that ends without usage is estimated from the streamed text and flagged', async () => {
    script = [
      'data: {"id":"1","model":"m","choices":[{"delta":{"content":"one two three four"}}],"usage":null}\n\n',
      'data: {"id":"1","model":"m","choices":[{"delta":{"content":" five"}}],"usage":null}\n\n',
    ];
    const { events } = await relay({ messages, stream: true });
    expect(events).toHaveLength(1);
    expect(events[0]?.estimated).toBe(true);
    expect(events[0]?.completionTokens).toBe(5);
    expect(events[0]?.promptTokens).toBeGreaterThan(0);
  });
});
