import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { UndiciOpenAiUpstream } from '../../../shared/adapters/openai-upstream';
import { ApiError } from '../../../shared/contracts/api-errors';
import type { OpenAiOperation } from '../../../shared/metering/openai-request';
import { proxyOpenAi } from '../../../shared/metering/openai-proxy';
import type { UsageEvent } from '../../../shared/contracts/usage-event';
import { estimateChatPromptTokens } from '../../../shared/metering/token-estimate';

/**
 * The stream relay against an upstream that sends hand-written SSE (spacing, comments and field
 * orders the simulator never produces), so the bytes a caller sees can be compared exactly.
 */

/** proxyOpenAi in front of a real upstream at `endpoint`, recording the usage into `events`. */
function proxyTo(
  endpoint: string,
  operation: OpenAiOperation,
  body: object,
  options: { correlationId: string; timeoutMs: number },
  events: UsageEvent[],
): ReturnType<typeof proxyOpenAi> {
  return proxyOpenAi(
    {
      operation,
      form: 'v1',
      apiVersion: null,
      contentType: 'application/json',
      body: new TextEncoder().encode(JSON.stringify(body)),
      attribution: { subscriptionId: 's', appId: 'a', department: 'd', unassigned: false },
      correlationId: options.correlationId,
      startedAt: Date.now(),
    },
    {
      upstream: new UndiciOpenAiUpstream({
        endpoint,
        authHeaders: () => Promise.resolve({}),
        timeoutMs: options.timeoutMs,
      }),
      record: (event) => {
        events.push(event);
        return Promise.resolve();
      },
    },
  );
}

/** A local upstream answering with `handle` for a describe block's tests, at `endpoint`. */
function useUpstream(handle: (req: http.IncomingMessage, res: http.ServerResponse) => void): {
  readonly endpoint: string;
} {
  const server = http.createServer((req, res) => {
    req.resume();
    handle(req, res);
  });
  let endpoint = '';
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    get endpoint() {
      return endpoint;
    },
  };
}

describe('streamed answers, byte for byte', () => {
  let script: string[] = [];
  const upstream = useUpstream((_req, res) => {
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
          endpoint: upstream.endpoint,
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

/** Streams whose upstream sends no usage: the completion is counted from the text as it streamed. */
describe('the estimate of a stream without usage', () => {
  let script: string[] = [];
  const upstream = useUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(script.join(''));
  });

  async function estimated(operation: OpenAiOperation, body: object): Promise<UsageEvent | undefined> {
    const events: UsageEvent[] = [];
    const response = await proxyTo(
      upstream.endpoint,
      operation,
      body,
      { correlationId: 'c-estimate', timeoutMs: 5_000 },
      events,
    );
    await new Response(response.body as ReadableStream<Uint8Array>).text();
    expect(events).toHaveLength(1);
    expect(events[0]?.estimated).toBe(true);
    return events[0];
  }

  const chat = (choices: string, extra = ''): string =>
    `data: {"id":"1","model":"gpt-4o-2024-11-20","choices":[${choices}]${extra}}\n\n`;

  it.each([
    ['caller asked for usage (bytes passed through)', { include_usage: true }],
    ['caller did not ask (usage hidden)', undefined],
  ])('counts chat delta contents in any form the upstream sends them: %s', async (_, streamOptions) => {
    const expected = [
      'Hello',
      ', "quoted" \\ back\nslash',
      ' spaced',
      ' role first',
      ' é ✓ 😀',
      ' one',
      ' two',
    ].join('');
    script = [
      chat('{"delta":{"content":"","role":"assistant"},"index":0}'),
      chat('{"content_filter_results":{},"delta":{"content":"Hello"},"index":0}'),
      chat('{"delta":{"content":", \\"quoted\\" \\\\ back\\nslash"},"index":0}'),
      chat('{"delta" : { "content" : " spaced" },"index":0}'),
      chat('{"delta":{"role":"assistant","content":" role first"},"index":0}'),
      chat('{"delta":{"content":" \\u00e9 \\u2713 \\ud83d\\ude00"},"index":0}'),
      // Not text of the answer: a citation's content, a tool call, log probabilities.
      chat('{"delta":{"context":{"citations":[{"content":"not counted","title":"t"}]}},"index":0}'),
      chat('{"delta":{"content":null,"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]},"index":0}'),
      chat('{"delta":{"content":" one"},"index":0,"logprobs":{"content":[{"token":" one","logprob":0}]}}'),
      // Two choices in one chunk.
      chat('{"delta":{"content":" two"},"index":0},{"delta":{"content":""},"index":1}'),
      chat('{"delta":{},"finish_reason":"stop","index":0}'),
      'data: [DONE]\n\n',
    ];
    const messages = [{ role: 'user', content: 'hi' }];
    const event = await estimated('chat/completions', {
      model: 'gpt-4o',
      messages,
      stream: true,
      ...(streamOptions ? { stream_options: streamOptions } : {}),
    });
    expect(event).toMatchObject({
      model: 'gpt-4o-2024-11-20',
      completionTokens: countTokens(expected),
      promptTokens: estimateChatPromptTokens(messages),
    });
  });

  it('counts the Responses API text deltas only, not the done events that repeat the text', async () => {
    const event = (type: string, fields: object): string =>
      `event: ${type}\ndata: ${JSON.stringify({ type, ...fields })}\n\n`;
    script = [
      event('response.created', {
        response: { id: 'r', model: 'gpt-4o-2024-11-20', output: [], usage: null },
      }),
      event('response.output_item.added', { item: { type: 'message', content: [] } }),
      event('response.output_text.delta', {
        item_id: 'm',
        content_index: 0,
        delta: 'Totals "by" department',
      }),
      event('response.output_text.delta', { item_id: 'm', content_index: 0, delta: ': finance\n' }),
      event('response.output_text.done', { item_id: 'm', text: 'Totals "by" department: finance\n' }),
      event('response.content_part.done', { part: { type: 'output_text', text: 'Totals' } }),
      event('response.output_item.done', { item: { content: [{ type: 'output_text', text: 'Totals' }] } }),
    ];
    expect(await estimated('responses', { model: 'gpt-4o', input: 'Totals?', stream: true })).toMatchObject({
      model: 'gpt-4o-2024-11-20',
      completionTokens: countTokens('Totals "by" department: finance\n'),
    });
  });
});

/**
 * A non-streamed answer whose body breaks off after the status and headers: the caller gets a 502
 * (a 504 when the upstream went quiet), and the call is recorded estimated, with what arrived of
 * the answer's text as its completion.
 */
describe('non-streamed answers cut off mid-body', () => {
  let answer: { status: number; partial: string; then: 'drop' | 'stall' } = {
    status: 200,
    partial: '',
    then: 'drop',
  };
  const stalled = new Set<http.ServerResponse>();

  const upstream = useUpstream((_req, res) => {
    const { status, partial, then } = answer;
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': 100_000 });
    res.write(partial, () => {
      if (then === 'drop') setTimeout(() => res.destroy(), 10);
      else stalled.add(res);
    });
  });
  afterEach(() => {
    for (const res of stalled) res.destroy();
    stalled.clear();
  });

  const ADDRESS = /127\.0\.0\.1|localhost|:\d{2,5}\b|socket|other side closed/i;
  const messages = [{ role: 'user', content: 'Summarise the ledger.' }];

  async function cutOff(
    operation: OpenAiOperation,
    body: object,
  ): Promise<{ error: ApiError; events: UsageEvent[] }> {
    const events: UsageEvent[] = [];
    const outcome = await proxyTo(
      upstream.endpoint,
      operation,
      body,
      { correlationId: 'c-cut', timeoutMs: 300 },
      events,
    ).then(
      () => new Error('the proxy answered'),
      (error: unknown) => error,
    );
    if (!(outcome instanceof ApiError)) throw outcome;
    expect(JSON.stringify(outcome.toBody())).not.toMatch(ADDRESS);
    return { error: outcome, events };
  }

  it('a dropped connection is a 502 that says the answer was cut off, billed for the text that came', async () => {
    answer = {
      status: 200,
      partial:
        '{"choices":[{"finish_reason":"stop","index":0,"message":{"content":"The ledger \\"closes\\" monthly',
      then: 'drop',
    };
    const { error, events } = await cutOff('chat/completions', { model: 'gpt-4o', messages });
    expect(error).toMatchObject({
      status: 502,
      code: 'BadGateway',
      message: expect.stringMatching(/cut off/),
    });
    expect(error.detail).toMatch(/other side closed/);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      api: 'chat',
      model: 'gpt-4o', // the answer's own model did not arrive: the deployment's name
      status: 502,
      streamed: false,
      estimated: true,
      promptTokens: estimateChatPromptTokens(messages),
      completionTokens: countTokens('The ledger "closes" monthly'),
    });
  });

  it('an upstream that goes quiet mid-body is a 504, billed the same way', async () => {
    answer = {
      status: 200,
      partial:
        '{"id":"resp_1","model":"gpt-4o-2024-11-20","output":[{"type":"message","content":[{"type":"output_text","text":"Fin\\u00e9 \\u00',
      then: 'stall',
    };
    const { error, events } = await cutOff('responses', { model: 'gpt-4o', input: 'Totals?' });
    expect(error).toMatchObject({
      status: 504,
      code: 'GatewayTimeout',
      message: expect.stringMatching(/cut off/),
    });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      api: 'responses',
      model: 'gpt-4o-2024-11-20',
      status: 504,
      estimated: true,
      // The escape cut in half is left out.
      completionTokens: countTokens('Finé '),
    });
    expect(events[0]?.promptTokens).toBeGreaterThan(0);
  });

  it('an answer cut before any of its text is billed for the prompt alone', async () => {
    answer = { status: 200, partial: '{"choices":[{"finish_rea', then: 'drop' };
    const { error, events } = await cutOff('chat/completions', { model: 'gpt-4o', messages });
    expect(error.status).toBe(502);
    expect(events[0]).toMatchObject({ estimated: true, completionTokens: 0 });
    expect(events[0]?.promptTokens).toBe(estimateChatPromptTokens(messages));
  });

  it('a failed call whose error body breaks off is a 502 and records nothing', async () => {
    answer = { status: 429, partial: '{"error":{"code":"429","mess', then: 'drop' };
    const { error, events } = await cutOff('chat/completions', { model: 'gpt-4o', messages });
    expect(error.status).toBe(502);
    expect(events).toHaveLength(0);
  });
});
