import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { Redis } from 'ioredis';
import type { LocalStack } from '../../../local/stack';
import { startLocalStack } from '../../../local/stack';
import type { UsageEvent } from '../../../shared/contracts/usage-event';
import { gatewayHeaders, recordedEvent } from '../../stack';

/**
 * A long streamed answer goes through the whole local stack (Functions host, proxy, Redis) from an
 * upstream that generates it as it is read, never holding it, and sends no usage: the proxy's
 * memory must not grow with the answer, and the answer is still billed, estimated from its text.
 */

/** The answer: this paragraph again and again, cut into deltas that do not line up with it. */
const PARAGRAPH =
  ' The ledger bot "summarises" spend per department: 1234 tokens, café costs, naïve\\totals —\n\n' +
  'Then it lists\tapps, users and windows; nothing is lost.';
const DELTA_CHARS = 1_000;
/** Deltas, so that the answer is a whole number of paragraphs and at least 50 MB. */
const DELTAS = deltasFor(50 * 1024 * 1024);
const ANSWER_CHARS = DELTAS * DELTA_CHARS;
const MB = 1024 * 1024;
const MODEL = 'gpt-4o-2024-11-20';
/** A prompt the upstream answers briefly. */
const WARM_UP = 'Just warm up.';

function deltasFor(atLeast: number): number {
  let deltas = Math.ceil(atLeast / DELTA_CHARS);
  while ((deltas * DELTA_CHARS) % PARAGRAPH.length !== 0) deltas += 1;
  return deltas;
}

let upstream: http.Server;
let stack: LocalStack;
let redis: Redis;

/**
 * An Azure-OpenAI-like upstream that streams the answer lazily, with back-pressure, and no usage:
 * chat completion chunks, or Responses API events (on `/openai/v1/responses`).
 */
function startLazyUpstream(): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    let request = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (request += chunk));
    req.on('end', () => answer(request, req, res));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Streams the answer to one request: a short one for a warm-up. */
function answer(request: string, req: http.IncomingMessage, res: http.ServerResponse): void {
  // A warm-up request (the first of its kind loads and compiles the code on its path) gets a
  // short answer, so that what the long one measures is the long answer's own cost.
  const deltas = request.includes(WARM_UP) ? 10 : DELTAS;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
  const repeated = PARAGRAPH.repeat(Math.ceil(DELTA_CHARS / PARAGRAPH.length) + 2);
  const responses = (req.url ?? '').includes('/responses');
  const chatChunk = (delta: object): string =>
    `data: {"choices":[{"content_filter_results":{},"delta":${JSON.stringify(delta)},"finish_reason":null,"index":0,"logprobs":null}],"created":1,"id":"chatcmpl-memory","model":"${MODEL}","object":"chat.completion.chunk","system_fingerprint":"fp_1","usage":null}\n\n`;
  let sequence = 0;
  const responsesEvent = (type: string, fields: object): string =>
    `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...fields })}\n\n`;
  const frame = (text: string): string =>
    responses
      ? responsesEvent('response.output_text.delta', {
          item_id: 'msg_memory',
          output_index: 0,
          content_index: 0,
          delta: text,
          logprobs: [],
        })
      : chatChunk({ content: text });
  let sent = 0;
  const write = (): void => {
    while (sent < deltas) {
      const offset = (sent * DELTA_CHARS) % PARAGRAPH.length;
      sent += 1;
      if (!res.write(frame(repeated.slice(offset, offset + DELTA_CHARS)))) {
        res.once('drain', write);
        return;
      }
    }
    res.end(responses ? '' : 'data: [DONE]\n\n');
  };
  res.write(
    responses
      ? responsesEvent('response.created', {
          response: {
            id: 'resp_memory',
            object: 'response',
            model: MODEL,
            status: 'in_progress',
            output: [],
            usage: null,
          },
        })
      : chatChunk({ content: '', role: 'assistant' }),
  );
  write();
}

/** A full garbage collection: `--expose-gc`'s gc, or the same function enabled at run time. */
function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/** What the process holds for JavaScript: its heap, and the buffers outside it. */
function heldBytes(gc: () => void): number {
  gc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

beforeAll(async () => {
  upstream = await startLazyUpstream();
  for (const name of [
    'REDIS_URL',
    'STORAGE_CONNECTION_STRING',
    'STORAGE_BLOB_URL',
    'COSMOS_ENDPOINT',
    'SPEECH_ENDPOINT',
    'SPEECH_REGION',
  ]) {
    delete process.env[name];
  }
  // Everything as startTestStack (tests/stack.ts) starts it, but Azure OpenAI is the lazy upstream.
  process.env.AZURE_OPENAI_ENDPOINT = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  process.env.AZURE_OPENAI_API_KEY = 'lazy-upstream-key';
  // The full collections this test runs hold up the event loop: a usage write that waits on one
  // must not be taken for a slow Redis (and go to the spool as well).
  process.env.REDIS_WRITE_TIMEOUT_MS = '10000';
  stack = await startLocalStack({
    port: 0,
    persist: false,
    mode: 'source',
    timers: 'manual',
    readSettingsFile: false,
  });
  redis = new Redis(process.env.REDIS_URL as string);
}, 60_000);
afterAll(async () => {
  redis?.disconnect();
  await stack?.stop();
  await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
  delete process.env.AZURE_OPENAI_ENDPOINT;
  delete process.env.AZURE_OPENAI_API_KEY;
  delete process.env.REDIS_WRITE_TIMEOUT_MS;
});

async function eventually(id: string): Promise<UsageEvent> {
  for (let i = 0; i < 250; i++) {
    const event = await recordedEvent(redis, id);
    if (event) return event;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no usage event ${id} in Redis`);
}

const requests = {
  'a chat completion': {
    path: '/api/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21',
    body: (prompt: string) => ({ messages: [{ role: 'user', content: prompt }], stream: true }),
  },
  'a Responses API answer': {
    path: '/api/openai/v1/responses',
    body: (prompt: string) => ({ model: 'gpt-4o', input: prompt, stream: true }),
  },
};

function post(kind: keyof typeof requests, id: string, prompt: string): Promise<Response> {
  return fetch(`${stack.host.url}${requests[kind].path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...gatewayHeaders(stack, id, { subscription: 'sub-memory', department: 'research' }),
    },
    body: JSON.stringify(requests[kind].body(prompt)),
  });
}

it.each(Object.keys(requests) as Array<keyof typeof requests>)(
  'streams %s of more than 50 MB without holding it, and bills it estimated from its text',
  async (kind) => {
    // The expected count is the tokenizer's over the whole answer: the paragraph's count times the
    // number of paragraphs, since a paragraph starts at a word boundary (checked here).
    const paragraphTokens = countTokens(PARAGRAPH);
    expect(countTokens(PARAGRAPH.repeat(3))).toBe(3 * paragraphTokens);
    const expectedTokens = (ANSWER_CHARS / PARAGRAPH.length) * paragraphTokens;

    const warmUp = await post(kind, randomUUID(), WARM_UP);
    expect(warmUp.status).toBe(200);
    await warmUp.text();

    const gc = collector();
    const id = randomUUID();
    const baseline = heldBytes(gc);
    const res = await post(kind, id, 'Write it all down.');
    expect(res.status).toBe(200);

    let received = 0;
    let nextSample = 0;
    let peakGrowth = 0;
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.byteLength;
      if (received >= nextSample) {
        peakGrowth = Math.max(peakGrowth, heldBytes(gc) - baseline);
        nextSample += 5 * MB;
      }
    }
    peakGrowth = Math.max(peakGrowth, heldBytes(gc) - baseline);
    const event = await eventually(id);

    console.log(
      `${kind}: streamed ${(received / MB).toFixed(1)} MB (an answer of ${(ANSWER_CHARS / MB).toFixed(1)} MB of text) through the proxy; ` +
        `its memory (heap + array buffers, after GC) grew by at most ${(peakGrowth / MB).toFixed(1)} MB`,
    );
    expect(received).toBeGreaterThan(ANSWER_CHARS);
    expect(peakGrowth).toBeLessThan(20 * MB);
    expect(event).toMatchObject({
      estimated: true,
      streamed: true,
      status: 200,
      model: MODEL,
      completionTokens: expectedTokens,
    });
    expect(event.promptTokens).toBeGreaterThan(0);
  },
  60_000,
);
