import { encode as cl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { encode as o200k } from 'gpt-tokenizer/encoding/o200k_base';
import { AzureOpenAI, OpenAI } from 'openai';
import type { OpenAiSimulator } from '../../../local/simulators/openai';
import { startOpenAiSimulator } from '../../../local/simulators/openai';

let sim: OpenAiSimulator;
let azure: AzureOpenAI;
let v1: OpenAI;
beforeAll(async () => {
  sim = await startOpenAiSimulator();
  azure = new AzureOpenAI({ endpoint: sim.url, apiKey: sim.apiKey, apiVersion: '2024-10-21', maxRetries: 0 });
  v1 = new OpenAI({ baseURL: `${sim.url}/openai/v1`, apiKey: sim.apiKey, maxRetries: 0 });
});
afterAll(() => sim.close());

const messages = [
  { role: 'system' as const, content: 'You are a helpful assistant.' },
  { role: 'user' as const, content: 'How are AI costs charged back to departments?' },
];

/** OpenAI's accounting for chat prompts: 3 framing tokens + role + content per message, 3 to prime the reply. */
const expectedPromptTokens = (list: Array<{ role: string; content: string }>): number =>
  list.reduce((sum, m) => sum + 3 + o200k(m.role).length + o200k(m.content, asText).length, 3);
const asText = { disallowedSpecial: new Set<string>() };

/** A prompt well over 1024 tokens, so that Azure's prompt caching applies. */
const longText = (tag: string): string =>
  Array.from({ length: 300 }, (_, i) => `Clause ${i} of ${tag}: costs are shared fairly.`).join(' ');

describe('chat completions', () => {
  it('answers the deployments form with the model name, filter results and exact usage', async () => {
    const completion = await azure.chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(completion).toMatchObject({
      object: 'chat.completion',
      model: 'gpt-4o-mini-2024-07-18',
      id: expect.stringMatching(/^chatcmpl-/),
      system_fingerprint: expect.stringMatching(/^fp_/),
      prompt_filter_results: [{ prompt_index: 0, content_filter_results: expect.any(Object) }],
    });
    const choice = completion.choices[0];
    expect(choice?.finish_reason).toBe('stop');
    expect(choice?.message.role).toBe('assistant');
    expect(choice?.message.content).toContain(
      'You asked about "How are AI costs charged back to departments?"',
    );
    const usage = completion.usage;
    expect(usage?.prompt_tokens).toBe(expectedPromptTokens(messages));
    expect(usage?.completion_tokens).toBe(o200k(choice?.message.content ?? '').length);
    expect(usage?.total_tokens).toBe((usage?.prompt_tokens ?? 0) + (usage?.completion_tokens ?? 0));
    expect(usage?.prompt_tokens_details?.cached_tokens).toBe(0);
    expect(usage?.completion_tokens_details?.reasoning_tokens).toBe(0);
  });

  it('gives the same deterministic answer every time', async () => {
    const a = await azure.chat.completions.create({ model: 'gpt-4o', messages });
    const b = await azure.chat.completions.create({ model: 'gpt-4o', messages });
    expect(a.choices[0]?.message.content).toBe(b.choices[0]?.message.content);
    expect(a.usage).toEqual(b.usage);
  });

  it('serves the v1 form (plain OpenAI client) and the AzureOpenAI client bound to a deployment', async () => {
    const viaV1 = await v1.chat.completions.create({ model: 'gpt-4o', messages });
    expect(viaV1.model).toBe('gpt-4o-2024-11-20');
    const bound = new AzureOpenAI({
      endpoint: sim.url,
      apiKey: sim.apiKey,
      apiVersion: '2025-04-01-preview',
      deployment: 'gpt-4.1',
      maxRetries: 0,
    });
    const viaDeployment = await bound.chat.completions.create({ model: '', messages });
    expect(viaDeployment.model).toBe('gpt-4.1-2025-04-14');
  });

  it('accepts a bearer token in place of the key, as from Entra ID', async () => {
    const entra = new AzureOpenAI({
      endpoint: sim.url,
      apiVersion: '2024-10-21',
      azureADTokenProvider: () => Promise.resolve('eyJ0eXAiOiJKV1QifQ.e30.token'),
      maxRetries: 0,
    });
    const completion = await entra.chat.completions.create({ model: 'gpt-4o', messages });
    expect(completion.usage?.prompt_tokens).toBeGreaterThan(0);
  });

  it('counts names, tools and images in the prompt', async () => {
    const plain = await azure.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Describe the picture.' }],
    });
    const named = await azure.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', name: 'finance', content: 'Describe the picture.' }],
    });
    // A name costs its tokens plus one separator.
    expect(named.usage?.prompt_tokens).toBe((plain.usage?.prompt_tokens ?? 0) + o200k('finance').length + 1);
    const withImage = await azure.chat.completions.create({
      model: 'gpt-4o',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Describe the picture.' },
            { type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: 'low' } },
          ],
        },
      ],
    });
    expect(withImage.usage?.prompt_tokens).toBe((plain.usage?.prompt_tokens ?? 0) + 85);
    const withTools = await azure.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Describe the picture.' }],
      tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }],
    });
    expect(withTools.usage?.prompt_tokens).toBeGreaterThan((plain.usage?.prompt_tokens ?? 0) + 5);
  });

  it('treats special-token text in a prompt as plain text', async () => {
    const content = 'Ignore <|endoftext|> and <|im_start|> please.';
    const completion = await azure.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content }],
    });
    expect(completion.usage?.prompt_tokens).toBe(expectedPromptTokens([{ role: 'user', content }]));
  });

  it('returns n choices, billing each', async () => {
    const one = await azure.chat.completions.create({ model: 'gpt-4o', messages });
    const three = await azure.chat.completions.create({ model: 'gpt-4o', messages, n: 3 });
    expect(three.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(three.usage?.completion_tokens).toBe(3 * (one.usage?.completion_tokens ?? 0));
  });
});

describe('streaming chat completions', () => {
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

  it('streams token by token and reports usage in a last chunk only when asked', async () => {
    const plain = await azure.chat.completions.create({ model: 'gpt-4o-mini', messages });
    const withUsage = await collect(true);
    // Azure's first chunk carries only the prompt filter results.
    expect(withUsage[0]).toMatchObject({ choices: [], id: '', prompt_filter_results: expect.any(Array) });
    const last = withUsage[withUsage.length - 1];
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toEqual(plain.usage);
    expect(withUsage.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    const text = withUsage.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(plain.choices[0]?.message.content);
    // One chunk per token: as many content chunks as completion tokens.
    const contentChunks = withUsage.filter((c) => c.choices[0]?.delta.content);
    expect(contentChunks).toHaveLength(plain.usage?.completion_tokens ?? -1);
    expect(withUsage.find((c) => c.choices[0]?.finish_reason)?.choices[0]?.finish_reason).toBe('stop');

    const without = await collect(false);
    expect(without.some((c) => 'usage' in c)).toBe(false);
    expect(without.filter((c) => c.choices.length === 0)).toHaveLength(1);
    expect(without.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(text);
  });

  it('speaks SSE on the wire: one data line per chunk and [DONE] at the end', async () => {
    const res = await fetch(`${sim.url}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21`, {
      method: 'POST',
      headers: { 'api-key': sim.apiKey, 'content-type': 'application/json' },
      body: JSON.stringify({ messages, stream: true, stream_options: { include_usage: true } }),
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const body = await res.text();
    const events = body.split('\n\n').filter(Boolean);
    expect(events.every((e) => e.startsWith('data: '))).toBe(true);
    expect(events[events.length - 1]).toBe('data: [DONE]');
    const usageChunk = JSON.parse(events[events.length - 2]?.slice(6) ?? '{}') as { usage?: unknown };
    expect(usageChunk.usage).toMatchObject({ prompt_tokens: expectedPromptTokens(messages) });
  });

  it('waits latencyMs before the first chunk and chunkDelayMs between chunks', async () => {
    const paced = await startOpenAiSimulator({ latencyMs: 60, chunkDelayMs: 5 });
    try {
      const client = new AzureOpenAI({ endpoint: paced.url, apiKey: paced.apiKey, apiVersion: '2024-10-21' });
      const started = Date.now();
      const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
      const arrivals: number[] = [];
      for await (const _chunk of stream) arrivals.push(Date.now() - started);
      expect(arrivals[0]).toBeGreaterThanOrEqual(55);
      // Chunks are separate writes, spread over time rather than one buffered body.
      expect((arrivals[arrivals.length - 1] ?? 0) - (arrivals[0] ?? 0)).toBeGreaterThanOrEqual(
        (arrivals.length - 2) * 4,
      );
    } finally {
      await paced.close();
    }
  });
});

describe('usage rules', () => {
  it('reports cached tokens for a repeated long prompt, in steps of 128 from 1024', async () => {
    const long = longText('cache');
    const ask = (extra: string[] = []) =>
      azure.chat.completions.create({
        model: 'gpt-4o',
        messages: [
          { role: 'user', content: long },
          ...extra.map((content) => ({ role: 'user' as const, content })),
        ],
      });
    const first = await ask();
    const second = await ask();
    expect(first.usage?.prompt_tokens).toBeGreaterThan(2000);
    expect(first.usage?.prompt_tokens_details?.cached_tokens).toBe(0);
    const cached = second.usage?.prompt_tokens_details?.cached_tokens ?? 0;
    expect(cached).toBeGreaterThanOrEqual(1024);
    expect(cached % 128).toBe(0);
    expect((second.usage?.prompt_tokens ?? 0) - cached).toBeLessThan(128 + 3);
    // A longer prompt with the same beginning reuses the cached prefix.
    const extended = await ask(['And one more question about budgets?']);
    expect(extended.usage?.prompt_tokens_details?.cached_tokens).toBe(cached);
    // The cache belongs to the deployment: another deployment starts cold.
    const other = await azure.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: long }],
    });
    expect(other.usage?.prompt_tokens_details?.cached_tokens).toBe(0);
  });

  it('counts reasoning tokens inside completion tokens for reasoning models, by effort', async () => {
    const medium = await azure.chat.completions.create({ model: 'o3-mini', messages });
    const reasoning = medium.usage?.completion_tokens_details?.reasoning_tokens ?? 0;
    expect(reasoning).toBeGreaterThan(0);
    expect(medium.usage?.completion_tokens).toBe(
      reasoning + o200k(medium.choices[0]?.message.content ?? '').length,
    );
    const low = await azure.chat.completions.create({ model: 'o3-mini', messages, reasoning_effort: 'low' });
    const high = await azure.chat.completions.create({
      model: 'o3-mini',
      messages,
      reasoning_effort: 'high',
    });
    const of = (c: typeof medium) => c.usage?.completion_tokens_details?.reasoning_tokens ?? 0;
    expect(of(low)).toBeLessThan(reasoning);
    expect(of(high)).toBeGreaterThan(reasoning);
  });

  it('honours the output token cap with finish_reason length', async () => {
    const capped = await azure.chat.completions.create({ model: 'gpt-4o', messages, max_tokens: 5 });
    expect(capped.choices[0]?.finish_reason).toBe('length');
    expect(capped.usage?.completion_tokens).toBe(5);
    expect(o200k(capped.choices[0]?.message.content ?? '')).toHaveLength(5);
    // Reasoning counts against max_completion_tokens: a small cap leaves no visible text.
    const starved = await azure.chat.completions.create({
      model: 'o4-mini',
      messages,
      max_completion_tokens: 20,
    });
    expect(starved.choices[0]?.finish_reason).toBe('length');
    expect(starved.choices[0]?.message.content).toBe('');
    expect(starved.usage?.completion_tokens).toBe(20);
    expect(starved.usage?.completion_tokens_details?.reasoning_tokens).toBe(20);
  });
});

describe('embeddings', () => {
  it('returns unit vectors as the SDK asks (base64 by default) or as floats, with exact token usage', async () => {
    const result = await azure.embeddings.create({
      model: 'text-embedding-3-small',
      input: ['alpha', 'beta gamma'],
    });
    expect(result.model).toBe('text-embedding-3-small');
    expect(result.data.map((d) => d.index)).toEqual([0, 1]);
    expect(result.data[0]?.embedding).toHaveLength(1536);
    expect(result.usage.prompt_tokens).toBe(cl100k('alpha').length + cl100k('beta gamma').length);
    expect(Math.hypot(...(result.data[0]?.embedding ?? []))).toBeCloseTo(1, 5);
    const floats = await azure.embeddings.create({
      model: 'text-embedding-3-small',
      input: 'alpha',
      encoding_format: 'float',
    });
    expect(floats.data[0]?.embedding).toEqual(result.data[0]?.embedding.map((v) => Math.fround(v)));
  });

  it('takes token arrays and dimensions, on the v1 form too', async () => {
    const result = await v1.embeddings.create({
      model: 'text-embedding-3-large',
      input: [
        [1, 2, 3],
        [4, 5],
      ],
      dimensions: 256,
    });
    expect(result.data[1]?.embedding).toHaveLength(256);
    expect(result.usage.prompt_tokens).toBe(5);
  });
});

describe('the Responses API', () => {
  it('answers with usage in the response and in response.completed, identical for the same input', async () => {
    const response = await v1.responses.create({ model: 'o4-mini', input: 'What is a chargeback?' });
    expect(response).toMatchObject({ object: 'response', status: 'completed', model: 'o4-mini-2025-04-16' });
    expect(response.output.map((item) => item.type)).toEqual(['reasoning', 'message']);
    expect(response.output_text).toContain('You asked about "What is a chargeback?"');
    const usage = response.usage;
    expect(usage?.output_tokens_details.reasoning_tokens).toBeGreaterThan(0);
    expect(usage?.output_tokens).toBe(
      (usage?.output_tokens_details.reasoning_tokens ?? 0) + o200k(response.output_text).length,
    );
    expect(usage?.input_tokens).toBe(
      expectedPromptTokens([{ role: 'user', content: 'What is a chargeback?' }]),
    );
    expect(usage?.total_tokens).toBe((usage?.input_tokens ?? 0) + (usage?.output_tokens ?? 0));

    const stream = await v1.responses.create({
      model: 'o4-mini',
      input: 'What is a chargeback?',
      stream: true,
    });
    const types: string[] = [];
    let text = '';
    let completedUsage: unknown;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.completed') completedUsage = event.response.usage;
    }
    expect(types.slice(0, 2)).toEqual(['response.created', 'response.in_progress']);
    expect(types[types.length - 1]).toBe('response.completed');
    expect(types).toContain('response.content_part.added');
    expect(text).toBe(response.output_text);
    expect(completedUsage).toEqual(usage);
  });

  it('works with the SDK stream helper and the AzureOpenAI client', async () => {
    const final = await v1.responses
      .stream({ model: 'gpt-4o', input: 'Stream me the totals.' })
      .finalResponse();
    expect(final.output_text).toContain('You asked about');
    const viaAzure = await new AzureOpenAI({
      endpoint: sim.url,
      apiKey: sim.apiKey,
      apiVersion: '2025-04-01-preview',
      maxRetries: 0,
    }).responses.create({ model: 'gpt-4o', input: 'Stream me the totals.' });
    expect(viaAzure.output_text).toBe(final.output_text);
    expect(viaAzure.usage).toEqual(final.usage);
  });

  it('carries the earlier turn as input tokens with previous_response_id, and stores responses', async () => {
    const first = await v1.responses.create({
      model: 'gpt-4o',
      instructions: 'Answer briefly.',
      input: 'First question?',
    });
    const follow = await v1.responses.create({
      model: 'gpt-4o',
      previous_response_id: first.id,
      input: [{ role: 'user', content: 'Second question?' }],
    });
    const alone = await v1.responses.create({ model: 'gpt-4o', input: 'Second question?' });
    expect(follow.usage?.input_tokens).toBeGreaterThan(
      (first.usage?.input_tokens ?? 0) + (first.usage?.output_tokens ?? 0),
    );
    expect(follow.usage?.input_tokens).toBeGreaterThan(alone.usage?.input_tokens ?? 0);
    expect((await v1.responses.retrieve(first.id)).output_text).toBe(first.output_text);
    await v1.responses.delete(first.id);
    await expect(v1.responses.retrieve(first.id)).rejects.toMatchObject({ status: 404 });
    await expect(
      v1.responses.create({ model: 'gpt-4o', previous_response_id: 'resp_unknown', input: 'x' }),
    ).rejects.toMatchObject({ status: 400, code: 'previous_response_not_found' });
  });

  it('caches long inputs and stops at max_output_tokens with status incomplete', async () => {
    const input = longText('responses');
    await v1.responses.create({ model: 'gpt-4.1', input });
    const again = await v1.responses.create({ model: 'gpt-4.1', input });
    expect(again.usage?.input_tokens_details.cached_tokens).toBeGreaterThanOrEqual(1024);
    const short = await v1.responses.create({ model: 'gpt-4o', input: 'Tell me.', max_output_tokens: 16 });
    expect(short.status).toBe('incomplete');
    expect(short.incomplete_details?.reason).toBe('max_output_tokens');
    expect(short.usage?.output_tokens).toBe(16);
  });
});

describe('models', () => {
  it('lists the deployments on both forms (the health probe)', async () => {
    const ids = [];
    for await (const model of v1.models.list()) ids.push(model.id);
    expect(ids).toEqual(Object.keys(sim.deployments));
    const res = await fetch(`${sim.url}/openai/models?api-version=2024-10-21`, {
      headers: { 'api-key': sim.apiKey },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      object: 'list',
      data: expect.arrayContaining([expect.objectContaining({ id: 'gpt-4o', model: 'gpt-4o-2024-11-20' })]),
    });
    expect((await v1.models.retrieve('o3-mini')).id).toBe('o3-mini');
  });
});
