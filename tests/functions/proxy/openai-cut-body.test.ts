import { randomUUID } from 'node:crypto';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import type { OpenAiSimulator } from '../../../local/simulators/openai';
import type { Recording } from '../../stack';
import { gatewayHeaders, recordings, useTestStack } from '../../stack';

/**
 * The upstream answers 200, then the connection drops half-way through a non-streamed body (the
 * simulator's `cut` fault). The upstream did the work, so the call is billed, estimated from the
 * request like a cut stream; the caller gets a 502 in the Azure OpenAI error shape that says the
 * answer was cut off, and nothing of the socket error or the upstream's address.
 */

const t = useTestStack();

function simulator(): OpenAiSimulator {
  if (!t.stack.openAiSimulator) throw new Error('the test stack runs no Azure OpenAI simulator');
  return t.stack.openAiSimulator;
}

/** Anything of the failure inside: the socket error, an address, a port. */
const LEAKS = /SocketError|other side closed|socket|ECONN|127\.0\.0\.1|localhost|::1|https?:\/\/|:\d{2,5}\b/i;

/** A request to the proxy with the upstream cutting its answer off half-way. */
async function cutOff(
  id: string,
  path: string,
  body: object,
): Promise<{ status: number; text: string; contentType: string | null; generatedTokens: number }> {
  const generatedBefore = simulator().stats.usage.completionTokens;
  simulator().setFault('cut');
  try {
    const res = await fetch(`${t.stack.host.url}/api${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...gatewayHeaders(t.stack, id, { subscription: 'sub-finance-01', department: 'finance' }),
      },
      body: JSON.stringify(body),
    });
    return {
      status: res.status,
      text: await res.text(),
      contentType: res.headers.get('content-type'),
      // What the upstream generated for this request, all of which it would bill.
      generatedTokens: simulator().stats.usage.completionTokens - generatedBefore,
    };
  } finally {
    simulator().setFault(undefined);
  }
}

/** Every recording of a request id, once the one expected has had time to land. */
async function recorded(id: string): Promise<Recording[]> {
  for (let i = 0; i < 100; i++) {
    const found = await recordings(t.redis, id);
    if (found.length > 0) {
      await new Promise((r) => setTimeout(r, 50)); // a second one, if any, would show by now
      return recordings(t.redis, id);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return [];
}

function expectCleanCutOffError(answer: { status: number; text: string; contentType: string | null }): void {
  expect(answer.status).toBe(502);
  expect(answer.contentType).toMatch(/application\/json/);
  const body = JSON.parse(answer.text) as { error: Record<string, unknown> };
  expect(body).toEqual({
    error: {
      code: 'BadGateway',
      message: expect.stringMatching(/cut off/) as unknown,
      param: null,
      type: null,
    },
  });
  expect(answer.text).not.toMatch(LEAKS);
}

const messages = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'Summarise the chargeback rules for the finance team.' },
];

describe('a non-streamed answer cut off mid-body', () => {
  it('chat: a clean 502, and one usage event estimated from the request', async () => {
    const id = randomUUID();
    const answer = await cutOff(id, '/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21', {
      messages,
    });
    expectCleanCutOffError(answer);

    const found = await recorded(id);
    expect(found).toHaveLength(1);
    expect(found[0]?.store).toBe('redis');
    const event = found[0]?.event;
    expect(event).toMatchObject({
      api: 'chat',
      deployment: 'gpt-4o',
      status: 502,
      streamed: false,
      estimated: true,
      department: 'finance',
      // OpenAI's chat framing over the messages, as for a cut stream: 3 + (4 + 6) + (4 + 10).
      promptTokens: 3 + 2 * 4 + countTokens(messages[0]!.content) + countTokens(messages[1]!.content),
      reasoningTokens: 0,
    });
    expect(event?.promptTokens).toBeGreaterThan(0);
    // What arrived of the answer's text is counted (the cut lands after some of it): never more
    // than the upstream generated.
    expect(event?.completionTokens).toBeGreaterThan(0);
    expect(event?.completionTokens).toBeLessThanOrEqual(answer.generatedTokens);
  });

  it('embeddings: a clean 502, and one usage event estimated from the input', async () => {
    const id = randomUUID();
    const input = ['one ledger line', 'two ledger lines, with a comma'];
    const answer = await cutOff(
      id,
      '/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21',
      { input },
    );
    expectCleanCutOffError(answer);

    const found = await recorded(id);
    expect(found).toHaveLength(1);
    expect(found[0]?.event).toMatchObject({
      api: 'embeddings',
      deployment: 'text-embedding-3-small',
      status: 502,
      streamed: false,
      estimated: true,
      promptTokens: countTokens(input[0]!) + countTokens(input[1]!),
      completionTokens: 0,
    });
    expect(found[0]?.event.promptTokens).toBeGreaterThan(0);
  });

  it('the Responses API: a clean 502, and one usage event estimated from the request', async () => {
    const id = randomUUID();
    const answer = await cutOff(id, '/openai/v1/responses', {
      model: 'gpt-4o',
      input: 'Totals by department.',
    });
    expectCleanCutOffError(answer);

    const found = await recorded(id);
    expect(found).toHaveLength(1);
    expect(found[0]?.event).toMatchObject({
      api: 'responses',
      status: 502,
      streamed: false,
      estimated: true,
    });
    expect(found[0]?.event.promptTokens).toBeGreaterThan(0);
    expect(found[0]?.event.completionTokens).toBeLessThanOrEqual(answer.generatedTokens);
  });
});
