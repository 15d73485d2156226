import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { AzureOpenAI, OpenAI } from 'openai';
import type { OpenAiSimulator } from '../../../local/simulators/openai';
import type { LocalStack } from '../../../local/stack';
import type { UsageEvent } from '../../../shared/contracts/usage-event';
import {
  gatewayHeaders,
  recordedEvent as recordedEventOf,
  recordedEvents,
  startTestStack,
} from '../../stack';

let stack: LocalStack;
let redis: Redis;
let upstream: AzureOpenAI;

beforeAll(async () => {
  stack = await startTestStack();
  redis = new Redis(process.env.REDIS_URL as string);
  upstream = new AzureOpenAI({
    endpoint: process.env.AZURE_OPENAI_ENDPOINT,
    apiKey: process.env.AZURE_OPENAI_API_KEY,
    apiVersion: '2024-10-21',
  });
}, 60_000);
afterAll(async () => {
  redis?.disconnect();
  await stack?.stop();
});

const finance = {
  subscription: 'sub-finance-01',
  app: 'ledger-bot',
  department: 'finance',
  user: 'ada@contoso.com',
};

function apimHeaders(requestId: string): Record<string, string> {
  return gatewayHeaders(stack, requestId, finance);
}

function client(requestId: string): AzureOpenAI {
  return new AzureOpenAI({
    endpoint: `${stack.host.url}/api`,
    apiKey: 'apps-never-see-the-upstream-key',
    apiVersion: '2024-10-21',
    defaultHeaders: apimHeaders(requestId),
    maxRetries: 0,
  });
}

function simulator(): OpenAiSimulator {
  if (!stack.openAiSimulator) throw new Error('the test stack runs no Azure OpenAI simulator');
  return stack.openAiSimulator;
}

function recordedEvent(id: string): Promise<UsageEvent | undefined> {
  return recordedEventOf(redis, id);
}

async function eventually(id: string): Promise<UsageEvent> {
  for (let i = 0; i < 100; i++) {
    const event = await recordedEvent(id);
    if (event) return event;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no usage event ${id} in Redis`);
}

const messages = [
  { role: 'system' as const, content: 'You are a helpful assistant.' },
  { role: 'user' as const, content: 'Summarise the chargeback rules for the finance team.' },
];

describe('Azure OpenAI through the proxy, with the official openai client', () => {
  it('chat without streaming: the caller gets the upstream answer and Redis gets its usage, field by field', async () => {
    const id = randomUUID();
    const completion = await client(id).chat.completions.create({ model: 'gpt-4o', messages });
    const event = await eventually(id);
    expect(event).toMatchObject({
      id,
      api: 'chat',
      deployment: 'gpt-4o',
      model: completion.model,
      subscriptionId: 'sub-finance-01',
      appId: 'ledger-bot',
      department: 'finance',
      userId: 'ada@contoso.com',
      promptTokens: completion.usage?.prompt_tokens,
      cachedTokens: completion.usage?.prompt_tokens_details?.cached_tokens,
      completionTokens: completion.usage?.completion_tokens,
      reasoningTokens: completion.usage?.completion_tokens_details?.reasoning_tokens,
      status: 200,
      streamed: false,
      estimated: false,
    });
  });

  it('reasoning tokens of a reasoning model are recorded', async () => {
    const id = randomUUID();
    const completion = await client(id).chat.completions.create({ model: 'o3-mini', messages });
    const event = await eventually(id);
    expect(event.reasoningTokens).toBe(completion.usage?.completion_tokens_details?.reasoning_tokens);
    expect(event.reasoningTokens).toBeGreaterThan(0);
  });

  it('streaming with include_usage: the caller gets the usage chunk, and Redis the same figures', async () => {
    const id = randomUUID();
    const stream = await client(id).chat.completions.create({
      model: 'gpt-4o-mini',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const usage = chunks[chunks.length - 1]?.usage;
    expect(usage).toBeTruthy();
    expect(await eventually(id)).toMatchObject({
      promptTokens: usage?.prompt_tokens,
      completionTokens: usage?.completion_tokens,
      cachedTokens: usage?.prompt_tokens_details?.cached_tokens,
      streamed: true,
      estimated: false,
    });
  });

  it('streaming without include_usage: the caller sees exactly what the upstream sends, and usage is still exact', async () => {
    const id = randomUUID();
    const viaProxy = await client(id).chat.completions.create({
      model: 'gpt-4o-mini',
      messages,
      stream: true,
    });
    const proxied = [];
    for await (const chunk of viaProxy) proxied.push(chunk);
    const direct = await upstream.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    const expected = [];
    for await (const chunk of direct) expected.push(chunk);

    const comparable = (chunk: object) => ({ ...chunk, id: undefined, created: undefined });
    expect(proxied.map(comparable)).toEqual(expected.map(comparable));
    expect(proxied.some((c) => 'usage' in c)).toBe(false);

    const reference = await upstream.chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(await eventually(id)).toMatchObject({
      promptTokens: reference.usage?.prompt_tokens,
      completionTokens: reference.usage?.completion_tokens,
      estimated: false,
    });
  });

  it('embeddings are metered from the upstream usage', async () => {
    const id = randomUUID();
    const result = await client(id).embeddings.create({
      model: 'text-embedding-3-small',
      input: ['one', 'two words'],
    });
    expect(result.data).toHaveLength(2);
    expect(await eventually(id)).toMatchObject({
      api: 'embeddings',
      promptTokens: result.usage.prompt_tokens,
      completionTokens: 0,
      model: 'text-embedding-3-small',
    });
  });

  it('serves the v1 form with the plain OpenAI client', async () => {
    const id = randomUUID();
    const v1 = new OpenAI({
      baseURL: `${stack.host.url}/api/openai/v1`,
      apiKey: 'unused',
      defaultHeaders: apimHeaders(id),
      maxRetries: 0,
    });
    const completion = await v1.chat.completions.create({ model: 'gpt-4o', messages });
    expect((await eventually(id)).promptTokens).toBe(completion.usage?.prompt_tokens);
  });

  it('the Responses API is metered exactly, streaming or not', async () => {
    const v1 = (id: string) =>
      new OpenAI({
        baseURL: `${stack.host.url}/api/openai/v1`,
        apiKey: 'unused',
        defaultHeaders: apimHeaders(id),
        maxRetries: 0,
      });
    const id = randomUUID();
    const response = await v1(id).responses.create({
      model: 'o3-mini',
      input: 'Which department spent most?',
    });
    expect(response.output_text).toContain('You asked about');
    expect(await eventually(id)).toMatchObject({
      api: 'responses',
      deployment: 'o3-mini',
      model: response.model,
      promptTokens: response.usage?.input_tokens,
      cachedTokens: response.usage?.input_tokens_details.cached_tokens,
      completionTokens: response.usage?.output_tokens,
      reasoningTokens: response.usage?.output_tokens_details.reasoning_tokens,
      estimated: false,
      streamed: false,
    });

    const streamId = randomUUID();
    const stream = await v1(streamId).responses.create({
      model: 'gpt-4o',
      input: [{ role: 'user', content: 'Stream me the totals.' }],
      stream: true,
    });
    let completedUsage: unknown;
    let text = '';
    for await (const event of stream) {
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.completed') completedUsage = event.response.usage;
    }
    expect(text).toContain('You asked about');
    const usage = completedUsage as { input_tokens: number; output_tokens: number };
    expect(await eventually(streamId)).toMatchObject({
      api: 'responses',
      promptTokens: usage.input_tokens,
      completionTokens: usage.output_tokens,
      streamed: true,
      estimated: false,
    });
  });

  it('the Responses API also works through the AzureOpenAI client (/openai/responses?api-version=)', async () => {
    const id = randomUUID();
    const azure = new AzureOpenAI({
      endpoint: `${stack.host.url}/api`,
      apiKey: 'unused',
      apiVersion: '2025-03-01-preview',
      defaultHeaders: apimHeaders(id),
      maxRetries: 0,
    });
    const response = await azure.responses.create({
      model: 'gpt-4o',
      input: 'Totals by department, please.',
    });
    expect(await eventually(id)).toMatchObject({
      api: 'responses',
      deployment: 'gpt-4o',
      promptTokens: response.usage?.input_tokens,
      completionTokens: response.usage?.output_tokens,
    });
  });

  it('a retried request with the same request id counts once', async () => {
    const id = randomUUID();
    await client(id).chat.completions.create({ model: 'gpt-4o', messages });
    await client(id).chat.completions.create({ model: 'gpt-4o', messages });
    expect(await recordedEvents(redis, id)).toHaveLength(1);
  });

  it('an interrupted upstream stream is estimated and flagged', async () => {
    const id = randomUUID();
    simulator().setFault('cut');
    try {
      const stream = await client(id).chat.completions.create({ model: 'gpt-4o', messages, stream: true });
      await expect(
        (async () => {
          for await (const _ of stream) void _;
        })(),
      ).rejects.toThrow();
    } finally {
      simulator().setFault(undefined);
    }
    const event = await eventually(id);
    expect(event.estimated).toBe(true);
    expect(event.promptTokens).toBeGreaterThan(10);
    expect(event.completionTokens).toBeGreaterThan(0);
  });

  it('a client that disconnects mid-stream cancels the upstream call; its usage is estimated', async () => {
    const id = randomUUID();
    simulator().setFault('drip:50');
    const aborted = simulator().stats.aborted;
    try {
      const res = await fetch(
        `${stack.host.url}/api/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21`,
        {
          method: 'POST',
          headers: { ...apimHeaders(id), 'content-type': 'application/json' },
          body: JSON.stringify({ messages, stream: true }),
        },
      );
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      await reader.read();
      await reader.read();
      await reader.cancel();
    } finally {
      simulator().setFault(undefined);
    }
    const event = await eventually(id);
    expect(event).toMatchObject({ estimated: true, streamed: true });
    expect(event.completionTokens).toBeLessThan(20);
    for (let i = 0; i < 50 && simulator().stats.aborted === aborted; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(simulator().stats.aborted).toBe(aborted + 1);
  });

  it('upstream errors come back with their status, body and retry-after, and nothing is recorded', async () => {
    const id = randomUUID();
    simulator().setFault('429');
    const res = await fetch(
      `${stack.host.url}/api/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21`,
      {
        method: 'POST',
        headers: { ...apimHeaders(id), 'content-type': 'application/json' },
        body: JSON.stringify({ messages }),
      },
    ).finally(() => simulator().setFault(undefined));
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('429');
    await new Promise((r) => setTimeout(r, 50));
    expect(await recordedEvent(id)).toBeUndefined();
  });
});
