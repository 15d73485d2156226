import { APIConnectionError, AzureOpenAI, InternalServerError, OpenAI, RateLimitError } from 'openai';
import type { OpenAiSimulator } from '../../../local/simulators/openai';
import { FAULT_HEADER, startOpenAiSimulator } from '../../../local/simulators/openai';
import { errorBody } from '../../../shared/contracts/api-errors';

let sim: OpenAiSimulator;
let azure: AzureOpenAI;
beforeAll(async () => {
  sim = await startOpenAiSimulator();
  azure = new AzureOpenAI({ endpoint: sim.url, apiKey: sim.apiKey, apiVersion: '2024-10-21', maxRetries: 0 });
});
afterAll(() => sim.close());

const messages = [{ role: 'user' as const, content: 'How are AI costs charged back to departments?' }];
const fault = (value: string) => ({ headers: { [FAULT_HEADER]: value } });

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${sim.url}${path}`, {
    method: 'POST',
    headers: { 'api-key': sim.apiKey, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return {
    status: res.status,
    headers: res.headers,
    body: (await res.json()) as { error?: Record<string, unknown> },
  };
}

const chatPath = '/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21';

describe('errors in the Azure OpenAI shape', () => {
  it('refuses a missing or wrong key with 401', async () => {
    const badKey = new AzureOpenAI({
      endpoint: sim.url,
      apiKey: 'wrong',
      apiVersion: '2024-10-21',
      maxRetries: 0,
    });
    await expect(badKey.chat.completions.create({ model: 'gpt-4o', messages })).rejects.toMatchObject({
      status: 401,
      code: '401',
    });
    const res = await post(chatPath, { messages }, { 'api-key': '' });
    expect(res.status).toBe(401);
    expect(res.body).toEqual({
      error: {
        code: '401',
        message: expect.stringMatching(
          /^Access denied due to invalid subscription key or wrong API endpoint/,
        ),
        param: null,
        type: 'invalid_request_error',
      },
    });
  });

  it.each([
    ['a client error', chatPath, { temperature: 0 }, {}, 400],
    [
      'an unknown deployment',
      '/openai/deployments/nope/chat/completions?api-version=2024-10-21',
      { messages },
      {},
      404,
    ],
    ['a rate limit', chatPath, { messages }, { [FAULT_HEADER]: '429' }, 429],
    ['a server error', chatPath, { messages }, { [FAULT_HEADER]: '500' }, 500],
    ['an outage', chatPath, { messages }, { [FAULT_HEADER]: '503' }, 503],
  ])(
    "answers %s with the shared contract's body and type rule",
    async (_name, path, body, headers, status) => {
      const res = await post(path, body, headers);
      expect(res.status).toBe(status);
      const { code, message, param } = res.body.error as {
        code: string;
        message: string;
        param: string | null;
      };
      expect(res.body).toEqual(errorBody(status, code, message, param));
    },
  );

  it('answers 404 DeploymentNotFound for an unknown deployment, on both forms', async () => {
    await expect(azure.chat.completions.create({ model: 'nope', messages })).rejects.toMatchObject({
      status: 404,
      code: 'DeploymentNotFound',
    });
    const v1 = new OpenAI({ baseURL: `${sim.url}/openai/v1`, apiKey: sim.apiKey, maxRetries: 0 });
    await expect(v1.embeddings.create({ model: 'nope', input: 'x' })).rejects.toMatchObject({
      status: 404,
      code: 'DeploymentNotFound',
    });
  });

  it.each([
    ['invalid JSON', chatPath, '{not json', 400, 'invalid_request_error', null],
    ['a missing messages field', chatPath, { temperature: 0 }, 400, 'missing_required_parameter', 'messages'],
    ['empty messages', chatPath, { messages: [] }, 400, 'empty_array', 'messages'],
    [
      'an unknown role',
      chatPath,
      { messages: [{ role: 'robot', content: 'x' }] },
      400,
      'invalid_value',
      'messages[0].role',
    ],
    [
      'stream_options without stream',
      chatPath,
      { messages, stream_options: { include_usage: true } },
      400,
      'invalid_request_error',
      'stream_options',
    ],
    [
      'max_tokens for a reasoning model',
      '/openai/deployments/o3-mini/chat/completions?api-version=2024-12-01-preview',
      { messages, max_tokens: 10 },
      400,
      'unsupported_parameter',
      'max_tokens',
    ],
    [
      'reasoning_effort for a non-reasoning model',
      chatPath,
      { messages, reasoning_effort: 'low' },
      400,
      'unsupported_parameter',
      'reasoning_effort',
    ],
    [
      'a missing model on the v1 form',
      '/openai/v1/chat/completions',
      { messages },
      400,
      'missing_required_parameter',
      'model',
    ],
    [
      'chat on an embeddings deployment',
      '/openai/deployments/text-embedding-3-small/chat/completions?api-version=2024-10-21',
      { messages },
      400,
      'OperationNotSupported',
      null,
    ],
    [
      'embeddings on a chat deployment',
      '/openai/deployments/gpt-4o/embeddings?api-version=2024-10-21',
      { input: 'x' },
      400,
      'OperationNotSupported',
      null,
    ],
    [
      'embeddings without input',
      '/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21',
      { input: [] },
      400,
      'invalid_request_error',
      'input',
    ],
    [
      'too many dimensions',
      '/openai/v1/embeddings',
      { model: 'text-embedding-3-small', input: 'x', dimensions: 4096 },
      400,
      'invalid_value',
      'dimensions',
    ],
    [
      'a Responses request without input',
      '/openai/v1/responses',
      { model: 'gpt-4o' },
      400,
      'missing_required_parameter',
      'input',
    ],
    [
      'a too small max_output_tokens',
      '/openai/v1/responses',
      { model: 'gpt-4o', input: 'x', max_output_tokens: 3 },
      400,
      'integer_below_min_value',
      'max_output_tokens',
    ],
    [
      'a malformed api-version',
      '/openai/deployments/gpt-4o/chat/completions?api-version=yesterday',
      { messages },
      400,
      'BadRequest',
      null,
    ],
    [
      'a missing api-version (Azure answers 404)',
      '/openai/deployments/gpt-4o/chat/completions',
      { messages },
      404,
      '404',
      null,
    ],
    [
      'an unknown path',
      '/openai/deployments/gpt-4o/completions/extra?api-version=2024-10-21',
      { messages },
      404,
      '404',
      null,
    ],
    ['an unknown fault', chatPath, { messages }, 400, 'InvalidSimulatorFault', FAULT_HEADER],
  ])('rejects %s', async (_name, path, body, status, code, param) => {
    const headers: Record<string, string> =
      code === 'InvalidSimulatorFault' ? { [FAULT_HEADER]: 'explode' } : {};
    const res = await post(path, body, headers);
    expect(res.status).toBe(status);
    expect(res.body.error).toMatchObject({ code, message: expect.any(String), param });
  });
});

describe('injected faults', () => {
  it('429 carries retry-after headers and the rate-limit body; the SDK raises RateLimitError', async () => {
    const limited = azure.chat.completions.create({ model: 'gpt-4o', messages }, fault('429'));
    await expect(limited).rejects.toBeInstanceOf(RateLimitError);
    const error = (await limited.catch((e: unknown) => e)) as RateLimitError;
    expect(error.headers?.get('retry-after')).toBe('1');
    expect(error.headers?.get('retry-after-ms')).toBe('1000');
    expect(error.code).toBe('429');
    expect(error.message).toMatch(/exceeded token rate limit.*Please retry after 1 second/);

    const longer = await post(chatPath, { messages }, { [FAULT_HEADER]: '429:2500' });
    expect(longer.status).toBe(429);
    expect(longer.headers.get('retry-after')).toBe('3');
    expect(longer.headers.get('retry-after-ms')).toBe('2500');
  });

  it('a request failed by a fault generates nothing: no cache warmed, no response stored', async () => {
    const long = Array.from({ length: 300 }, (_, i) => `Rejected clause ${i}.`).join(' ');
    const ask = (options = {}) =>
      azure.chat.completions.create(
        { model: 'gpt-4o', messages: [{ role: 'user', content: long }] },
        options,
      );
    await expect(ask(fault('429'))).rejects.toBeInstanceOf(RateLimitError);
    expect((await ask()).usage?.prompt_tokens_details?.cached_tokens).toBe(0);
    expect((await ask()).usage?.prompt_tokens_details?.cached_tokens).toBeGreaterThan(0);
  });

  it('the SDK waits retry-after-ms and retries a rate-limited request', async () => {
    const local = await startOpenAiSimulator({ fault: '429:150' });
    try {
      const client = new AzureOpenAI({
        endpoint: local.url,
        apiKey: local.apiKey,
        apiVersion: '2024-10-21',
        maxRetries: 1,
      });
      const started = Date.now();
      const attempt = client.chat.completions.create({ model: 'gpt-4o', messages });
      // Lift the limit while the client waits out retry-after-ms; its retry succeeds.
      setTimeout(() => local.setFault(undefined), 50);
      await expect(attempt).resolves.toMatchObject({ object: 'chat.completion' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
      expect(local.stats.requests).toBe(2);
    } finally {
      await local.close();
    }
  });

  it('500 and 503 come back as server errors', async () => {
    const error = await azure.chat.completions
      .create({ model: 'gpt-4o', messages }, fault('500'))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InternalServerError);
    expect(error).toMatchObject({ status: 500, code: 'InternalServerError' });
    const unavailable = await post(chatPath, { messages }, { [FAULT_HEADER]: '503' });
    expect(unavailable.status).toBe(503);
    expect(unavailable.body.error).toMatchObject({ code: 'ServiceUnavailable' });
  });

  it('a cut stream ends without [DONE] or usage, and the SDK stream throws', async () => {
    const stream = await azure.chat.completions.create(
      { model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true } },
      fault('cut'),
    );
    const seen: Array<{ usage?: unknown; choices: unknown[] }> = [];
    await expect(
      (async () => {
        for await (const chunk of stream) seen.push(chunk);
      })(),
    ).rejects.toThrow();
    expect(seen.length).toBeGreaterThan(2);
    expect(seen.some((c) => c.usage)).toBe(false);

    const responses = await new OpenAI({
      baseURL: `${sim.url}/openai/v1`,
      apiKey: sim.apiKey,
      maxRetries: 0,
    }).responses.create({ model: 'gpt-4o', input: 'Cut me off.', stream: true }, fault('cut'));
    const types: string[] = [];
    await expect(
      (async () => {
        for await (const event of responses) types.push(event.type);
      })(),
    ).rejects.toThrow();
    expect(types).toContain('response.output_text.delta');
    expect(types).not.toContain('response.completed');
  });

  it('a cut JSON body fails the SDK call', async () => {
    await expect(
      azure.chat.completions.create({ model: 'gpt-4o', messages }, fault('cut')),
    ).rejects.toThrow();
  });

  it('timeout never answers (the client gives up); reset drops the connection', async () => {
    const impatient = new AzureOpenAI({
      endpoint: sim.url,
      apiKey: sim.apiKey,
      apiVersion: '2024-10-21',
      maxRetries: 0,
      timeout: 150,
    });
    const started = Date.now();
    // The SDK's own timeout (jest's realm hides that it was an abort, hence the base class).
    await expect(
      impatient.chat.completions.create({ model: 'gpt-4o', messages }, fault('timeout')),
    ).rejects.toBeInstanceOf(APIConnectionError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(145);
    await expect(
      azure.chat.completions.create({ model: 'gpt-4o', messages }, fault('reset')),
    ).rejects.toBeInstanceOf(APIConnectionError);
  });

  it('slow:<ms> delays one request; faults in a header do not touch concurrent requests', async () => {
    const started = Date.now();
    const [slow, quick, failed] = await Promise.allSettled([
      azure.chat.completions.create({ model: 'gpt-4o', messages }, fault('slow:150')).then(() => Date.now()),
      azure.chat.completions.create({ model: 'gpt-4o', messages }).then(() => Date.now()),
      azure.chat.completions.create({ model: 'gpt-4o', messages }, fault('500')),
    ]);
    expect(slow.status === 'fulfilled' && slow.value - started).toBeGreaterThanOrEqual(145);
    expect(quick.status === 'fulfilled' && quick.value - started).toBeLessThan(145);
    expect(failed.status).toBe('rejected');
  });

  it('setFault applies to every later request until cleared; a header (even empty) wins', async () => {
    sim.setFault('503');
    try {
      await expect(azure.chat.completions.create({ model: 'gpt-4o', messages })).rejects.toMatchObject({
        status: 503,
      });
      await expect(azure.models.list()).rejects.toMatchObject({ status: 503 });
      const overridden = await azure.chat.completions.create({ model: 'gpt-4o', messages }, fault(''));
      expect(overridden.object).toBe('chat.completion');
    } finally {
      sim.setFault(undefined);
    }
    await expect(azure.chat.completions.create({ model: 'gpt-4o', messages })).resolves.toBeDefined();
    expect(() => sim.setFault('boom' as never)).toThrow(/Unknown fault/);
  });
});

describe('stats', () => {
  it('counts requests, aborted streams and the usage it generated', async () => {
    const local = await startOpenAiSimulator({ chunkDelayMs: 20 });
    try {
      const client = new AzureOpenAI({
        endpoint: local.url,
        apiKey: local.apiKey,
        apiVersion: '2024-10-21',
        maxRetries: 0,
      });
      const a = await client.chat.completions.create({ model: 'o3-mini', messages });
      const b = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello world' });
      await expect(
        client.chat.completions.create({ model: 'gpt-4o', messages }, fault('429')),
      ).rejects.toBeInstanceOf(RateLimitError);
      expect(local.stats.usage).toEqual({
        promptTokens: (a.usage?.prompt_tokens ?? 0) + b.usage.prompt_tokens,
        cachedTokens: 0,
        completionTokens: a.usage?.completion_tokens,
        reasoningTokens: a.usage?.completion_tokens_details?.reasoning_tokens,
      });
      expect(local.stats.faulted).toBe(1);

      const controller = new AbortController();
      const stream = await client.chat.completions.create(
        { model: 'gpt-4o', messages, stream: true },
        { signal: controller.signal },
      );
      for await (const _chunk of stream) {
        controller.abort();
        break;
      }
      for (let i = 0; i < 50 && local.stats.aborted === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(local.stats.aborted).toBe(1);
      expect(local.stats.requests).toBe(4);
    } finally {
      await local.close();
    }
  });

  it('close() ends held requests and open connections', async () => {
    const local = await startOpenAiSimulator({ fault: 'timeout' });
    const client = new AzureOpenAI({
      endpoint: local.url,
      apiKey: local.apiKey,
      apiVersion: '2024-10-21',
      maxRetries: 0,
    });
    const held = client.chat.completions.create({ model: 'gpt-4o', messages });
    await new Promise((r) => setTimeout(r, 50));
    await local.close();
    await expect(held).rejects.toBeInstanceOf(APIConnectionError);
  });
});
