import { randomUUID } from 'node:crypto';
import { GATEWAY_HEADERS } from '../../../shared/contracts/gateway-headers';
import { gatewayHeaders, recordedEvent, recordedEvents, useTestStack } from '../../stack';

const t = useTestStack({ MAX_REQUEST_BYTES: '2048' });

const chatPath = '/api/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21';
const messages = [{ role: 'user', content: 'hello' }];

const operations = { subscription: 'sub-ops-02', app: 'runbook-bot', department: 'operations' };

function headers(id: string, extra: Record<string, string | undefined> = {}): Record<string, string> {
  return gatewayHeaders(t.stack, id, operations, { 'content-type': 'application/json', ...extra });
}

async function call(path: string, init: { headers: Record<string, string>; body: string }) {
  const res = await fetch(`${t.stack.host.url}${path}`, { method: 'POST', ...init });
  const text = await res.text();
  return {
    status: res.status,
    body: text ? (JSON.parse(text) as { error?: { code: string; message: string } }) : {},
  };
}

async function recorded(id: string): Promise<boolean> {
  return (await recordedEvents(t.redis, id)).length > 0;
}

describe('bad input gets a 4xx in the Azure OpenAI error shape and records nothing', () => {
  const cases: Array<
    [string, string, (id: string) => { headers: Record<string, string>; body: string }, number, RegExp]
  > = [
    [
      'malformed JSON',
      chatPath,
      (id) => ({ headers: headers(id), body: '{"messages": [' }),
      400,
      /not valid JSON/,
    ],
    [
      'a wrong content type',
      chatPath,
      (id) => ({
        headers: headers(id, { 'content-type': 'text/plain' }),
        body: JSON.stringify({ messages }),
      }),
      415,
      /application\/json/,
    ],
    [
      'a body over the configured limit',
      chatPath,
      (id) => ({
        headers: headers(id),
        body: JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(5000) }] }),
      }),
      413,
      /larger than the limit of 2048 bytes/,
    ],
    [
      'an unknown deployment',
      '/api/openai/deployments/no-such-model/chat/completions?api-version=2024-10-21',
      (id) => ({ headers: headers(id), body: JSON.stringify({ messages }) }),
      404,
      /deployment for this resource does not exist/,
    ],
    [
      'a missing api-version',
      '/api/openai/deployments/gpt-4o/chat/completions',
      (id) => ({ headers: headers(id), body: JSON.stringify({ messages }) }),
      400,
      /api-version/,
    ],
    [
      'a missing messages field',
      chatPath,
      (id) => ({ headers: headers(id), body: JSON.stringify({ temperature: 0 }) }),
      400,
      /messages/,
    ],
    [
      'empty messages',
      chatPath,
      (id) => ({ headers: headers(id), body: JSON.stringify({ messages: [] }) }),
      400,
      /must not be empty/,
    ],
    [
      'a missing model on the v1 form',
      '/api/openai/v1/chat/completions',
      (id) => ({ headers: headers(id), body: JSON.stringify({ messages }) }),
      400,
      /model/,
    ],
    [
      'a Responses request without input',
      '/api/openai/v1/responses',
      (id) => ({ headers: headers(id), body: JSON.stringify({ model: 'gpt-4o' }) }),
      400,
      /input/,
    ],
    [
      'embeddings without input',
      '/api/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21',
      (id) => ({ headers: headers(id), body: JSON.stringify({ input: [] }) }),
      400,
      /input/,
    ],
  ];

  it.each(cases)('%s', async (_name, path, request, status, message) => {
    const id = randomUUID();
    const { status: got, body } = await call(path, request(id));
    expect(got).toBe(status);
    expect(body.error?.code).toEqual(expect.any(String));
    expect(body.error?.message).toMatch(message);
    expect(await recorded(id)).toBe(false);
  });
});

describe('attribution', () => {
  it('rejects a request without the gateway secret with 401: no anonymous billable traffic', async () => {
    const id = randomUUID();
    const { status, body } = await call(chatPath, {
      headers: headers(id, { [GATEWAY_HEADERS.gatewayKey]: undefined }),
      body: JSON.stringify({ messages }),
    });
    expect(status).toBe(401);
    expect(body.error?.message).toMatch(/only accepts requests from the API gateway/);
    expect(await recorded(id)).toBe(false);
  });

  it('rejects forged attribution headers with a wrong gateway secret', async () => {
    const id = randomUUID();
    const { status } = await call(chatPath, {
      headers: headers(id, { [GATEWAY_HEADERS.gatewayKey]: 'x'.repeat(27) }),
      body: JSON.stringify({ messages }),
    });
    expect(status).toBe(401);
  });

  it('rejects a request the gateway sent without a subscription', async () => {
    const id = randomUUID();
    const { status } = await call(chatPath, {
      headers: headers(id, { [GATEWAY_HEADERS.subscription]: undefined }),
      body: JSON.stringify({ messages }),
    });
    expect(status).toBe(401);
  });

  it('requires the function key, as APIM presents it', async () => {
    const id = randomUUID();
    const { status } = await call(chatPath, {
      headers: headers(id, { 'x-functions-key': undefined }),
      body: JSON.stringify({ messages }),
    });
    expect(status).toBe(401);
  });

  it('charges a subscription without a department to "unassigned" instead of dropping it', async () => {
    const id = randomUUID();
    const { status } = await call(chatPath, {
      headers: headers(id, { [GATEWAY_HEADERS.department]: undefined }),
      body: JSON.stringify({ messages }),
    });
    expect(status).toBe(200);
    expect(await recordedEvent(t.redis, id)).toMatchObject({
      department: 'unassigned',
      subscriptionId: 'sub-ops-02',
    });
  });
});
