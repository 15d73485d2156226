import { AzureOpenAI, OpenAI, RateLimitError } from 'openai';
import type { OpenAiSimulator } from '../../../local/simulators/openai';
import { startOpenAiSimulator } from '../../../local/simulators/openai';

let sim: OpenAiSimulator;
let azure: AzureOpenAI;
beforeAll(async () => {
  sim = await startOpenAiSimulator();
  azure = new AzureOpenAI({ endpoint: sim.url, apiKey: sim.apiKey, apiVersion: '2024-10-21', maxRetries: 0 });
});
afterAll(() => sim.close());

const messages = [
  { role: 'system' as const, content: 'You are a helpful assistant.' },
  { role: 'user' as const, content: 'How are AI costs charged back to departments?' },
];

describe('Azure OpenAI simulator', () => {
  it('answers chat completions for a deployment with the model name and full usage', async () => {
    const completion = await azure.chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(completion.model).toBe('gpt-4o-mini-2024-07-18');
    expect(completion.choices[0]?.message.content).toContain('You asked about');
    const usage = completion.usage;
    expect(usage?.prompt_tokens).toBeGreaterThan(10);
    expect(usage?.completion_tokens).toBeGreaterThan(5);
    expect(usage?.total_tokens).toBe((usage?.prompt_tokens ?? 0) + (usage?.completion_tokens ?? 0));
    expect(usage?.prompt_tokens_details?.cached_tokens).toBe(0);
    expect(usage?.completion_tokens_details?.reasoning_tokens).toBe(0);
  });

  it('serves the v1 form with the plain OpenAI client', async () => {
    const client = new OpenAI({ baseURL: `${sim.url}/openai/v1`, apiKey: sim.apiKey, maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'gpt-4o', messages });
    expect(completion.model).toBe('gpt-4o-2024-11-20');
  });

  it('streams chunk by chunk and reports usage in a final chunk only when asked', async () => {
    const plain = await azure.chat.completions.create({ model: 'gpt-4o-mini', messages });
    const collect = async (includeUsage: boolean) => {
      const stream = await azure.chat.completions.create({
        model: 'gpt-4o-mini',
        messages,
        stream: true,
        ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      return chunks;
    };
    const withUsage = await collect(true);
    const last = withUsage[withUsage.length - 1];
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toEqual(plain.usage);
    expect(withUsage.slice(1, -1).every((c) => c.usage === null)).toBe(true);
    const text = withUsage.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(plain.choices[0]?.message.content);

    const without = await collect(false);
    expect(without.some((c) => c.usage)).toBe(false);
    expect(without.filter((c) => c.choices.length === 0)).toHaveLength(1); // Azure's prompt-filter chunk
  });

  it('reports cached tokens for a repeated long prompt, in steps of 128', async () => {
    const long = Array.from({ length: 400 }, (_, i) => `Clause ${i}: costs are shared fairly.`).join(' ');
    const ask = () =>
      azure.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: long }] });
    const first = await ask();
    const second = await ask();
    expect(first.usage?.prompt_tokens).toBeGreaterThan(1024);
    expect(first.usage?.prompt_tokens_details?.cached_tokens).toBe(0);
    const cached = second.usage?.prompt_tokens_details?.cached_tokens ?? 0;
    expect(cached).toBeGreaterThanOrEqual(1024);
    expect(cached % 128).toBe(0);
    expect(cached).toBeLessThanOrEqual(second.usage?.prompt_tokens ?? 0);
  });

  it('counts reasoning tokens inside completion tokens for reasoning models, and honours the token cap', async () => {
    const completion = await azure.chat.completions.create({ model: 'o3-mini', messages });
    const reasoning = completion.usage?.completion_tokens_details?.reasoning_tokens ?? 0;
    expect(reasoning).toBeGreaterThan(0);
    expect(completion.usage?.completion_tokens).toBeGreaterThan(reasoning);
    const capped = await azure.chat.completions.create({ model: 'gpt-4o', messages, max_tokens: 5 });
    expect(capped.choices[0]?.finish_reason).toBe('length');
    expect(capped.usage?.completion_tokens).toBe(5);
  });

  it('serves the Responses API with usage in the response and in response.completed', async () => {
    const client = new OpenAI({ baseURL: `${sim.url}/openai/v1`, apiKey: sim.apiKey, maxRetries: 0 });
    const response = await client.responses.create({ model: 'o4-mini', input: 'What is a chargeback?' });
    expect(response.usage?.output_tokens_details.reasoning_tokens).toBeGreaterThan(0);
    const stream = await client.responses.create({
      model: 'o4-mini',
      input: 'What is a chargeback?',
      stream: true,
    });
    const types: string[] = [];
    let usage: unknown;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.completed') usage = event.response.usage;
    }
    expect(types[0]).toBe('response.created');
    expect(types[types.length - 1]).toBe('response.completed');
    expect(usage).toEqual(response.usage);
  });

  it('returns embeddings as floats or base64, with prompt token usage', async () => {
    const result = await azure.embeddings.create({
      model: 'text-embedding-3-small',
      input: ['alpha', 'beta gamma'],
    });
    expect(result.data).toHaveLength(2);
    expect(result.data[0]?.embedding).toHaveLength(1536);
    expect(result.usage.prompt_tokens).toBe(3);
    const norm = Math.hypot(...(result.data[0]?.embedding ?? []));
    expect(norm).toBeCloseTo(1, 5);
    const floats = await azure.embeddings.create({
      model: 'text-embedding-3-small',
      input: 'alpha',
      encoding_format: 'float',
    });
    expect(floats.data[0]?.embedding).toEqual(result.data[0]?.embedding.map((v) => Math.fround(v)));
  });

  it('rejects bad keys, unknown deployments and bad bodies in the Azure error shape', async () => {
    const badKey = new AzureOpenAI({
      endpoint: sim.url,
      apiKey: 'wrong',
      apiVersion: '2024-10-21',
      maxRetries: 0,
    });
    await expect(badKey.chat.completions.create({ model: 'gpt-4o', messages })).rejects.toMatchObject({
      status: 401,
    });
    await expect(azure.chat.completions.create({ model: 'nope', messages })).rejects.toMatchObject({
      status: 404,
      code: 'DeploymentNotFound',
    });
    const res = await fetch(`${sim.url}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21`, {
      method: 'POST',
      headers: { 'api-key': sim.apiKey, 'content-type': 'application/json' },
      body: '{not json',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 'invalid_request_error' } });
  });

  it('injects 429 with retry-after, 500, and a stream cut mid-way', async () => {
    const fault = (value: string) => ({ headers: { 'x-simulator-fault': value } });
    const limited = azure.chat.completions.create({ model: 'gpt-4o', messages }, fault('429'));
    await expect(limited).rejects.toBeInstanceOf(RateLimitError);
    await limited.catch((error: RateLimitError) => expect(error.headers?.get('retry-after')).toBe('1'));
    await expect(
      azure.chat.completions.create({ model: 'gpt-4o', messages }, fault('500')),
    ).rejects.toMatchObject({
      status: 500,
    });
    const stream = await azure.chat.completions.create(
      { model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true } },
      fault('cut'),
    );
    const seen: unknown[] = [];
    await expect(
      (async () => {
        for await (const chunk of stream) seen.push(chunk);
      })(),
    ).rejects.toThrow();
    expect(seen.length).toBeGreaterThan(1);
    expect(seen.some((c) => (c as { usage?: unknown }).usage)).toBe(false);
  });

  it('applies latency before the response', async () => {
    const slow = await startOpenAiSimulator({ latencyMs: 80 });
    try {
      const client = new AzureOpenAI({ endpoint: slow.url, apiKey: slow.apiKey, apiVersion: '2024-10-21' });
      const started = Date.now();
      await client.chat.completions.create({ model: 'gpt-4o', messages });
      expect(Date.now() - started).toBeGreaterThanOrEqual(75);
    } finally {
      await slow.close();
    }
  });
});
