import { AzureOpenAI } from 'openai';
import { APIM_APIS, SPOOFABLE_REQUEST_ID_HEADERS } from '../../../shared/contracts/apim';
import { GATEWAY_HEADERS } from '../../../shared/contracts/gateway-headers';
import { recordedEvent, useTestStack } from '../../stack';

/**
 * The whole local stack behind the local gateway, called as apps call API Management: the
 * official `AzureOpenAI` client with nothing but the gateway's URL and a subscription key, Speech
 * REST with `Ocp-Apim-Subscription-Key`, finance with an Entra ID token. Usage is recorded under
 * the gateway's correlation id and attributed from the subscription and its product.
 */

const t = useTestStack();

function subscription(product: string): { id: string; name: string; key: string; product: string } {
  const found = t.stack.gatewayConfig.subscriptions.find((s) => s.product === product);
  if (!found) throw new Error(`no subscription of product ${product}`);
  return found;
}

function client(key: string): AzureOpenAI {
  return new AzureOpenAI({
    endpoint: t.stack.gateway.url,
    apiKey: key,
    apiVersion: '2024-10-21',
    maxRetries: 0,
  });
}

it('meters a chat completion made with the official client and a subscription key', async () => {
  const research = subscription('research');
  const { data, response } = await client(research.key)
    .chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello' }] },
      // A caller trying to choose its attribution and its request id.
      { headers: { [GATEWAY_HEADERS.department]: 'finance', [GATEWAY_HEADERS.requestId]: 'mine' } },
    )
    .withResponse();
  const id = response.headers.get(GATEWAY_HEADERS.requestId) ?? '';
  expect(id).not.toBe('mine');
  const event = await recordedEvent(t.redis, id);
  expect(event).toMatchObject({
    id,
    subscriptionId: research.id,
    appId: research.name,
    department: research.product,
    api: 'chat',
    deployment: 'gpt-4o-mini',
    promptTokens: data.usage?.prompt_tokens,
    completionTokens: data.usage?.completion_tokens,
  });
  expect(await recordedEvent(t.redis, 'mine')).toBeUndefined();
});

it('streams through the gateway, metered once', async () => {
  const research = subscription('research');
  const { data: stream, response } = await client(research.key)
    .chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Tell me a short story' }],
      stream: true,
    })
    .withResponse();
  let text = '';
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    text += chunk.choices[0]?.delta?.content ?? '';
  }
  expect(chunks).toBeGreaterThan(2);
  expect(text.length).toBeGreaterThan(0);
  const event = await recordedEvent(t.redis, response.headers.get(GATEWAY_HEADERS.requestId) ?? '');
  expect(event).toMatchObject({ department: research.product, api: 'chat', estimated: false });
  expect(event?.completionTokens).toBeGreaterThan(0);
});

it('bills two different requests that carry the same caller-chosen request id, both', async () => {
  const research = subscription('research');
  const headers = {
    [GATEWAY_HEADERS.requestId]: 'same',
    ...Object.fromEntries(SPOOFABLE_REQUEST_ID_HEADERS.map((name) => [name, 'same'])),
  };
  const ids: string[] = [];
  for (const content of ['First question', 'A different, longer second question']) {
    const { response } = await client(research.key)
      .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] }, { headers })
      .withResponse();
    ids.push(response.headers.get(GATEWAY_HEADERS.requestId) ?? '');
  }
  expect(new Set(ids).size).toBe(2);
  const events = await Promise.all(ids.map((id) => recordedEvent(t.redis, id)));
  expect(events.map((e) => e?.id)).toEqual(ids);
  expect(events[0]?.promptTokens).not.toBe(events[1]?.promptTokens);
});

it('meters speech synthesis called with the Speech subscription key header', async () => {
  const support = subscription('customer-support');
  const res = await fetch(`${t.stack.gateway.url}/${APIM_APIS.speech.path}/cognitiveservices/v1`, {
    method: 'POST',
    headers: {
      [APIM_APIS.speech.subscriptionKey.header]: support.key,
      'content-type': 'application/ssml+xml',
      'x-microsoft-outputformat': 'riff-24khz-16bit-mono-pcm',
    },
    body: '<speak version="1.0" xml:lang="en-US"><voice name="en-US-AvaNeural">Your order has shipped.</voice></speak>',
  });
  expect(res.status).toBe(200);
  expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(1000);
  const event = await recordedEvent(t.redis, res.headers.get(GATEWAY_HEADERS.requestId) ?? '');
  expect(event).toMatchObject({
    api: 'tts',
    department: support.product,
    appId: support.name,
    billableCharacters: 23,
  });
});

it('serves finance with an Entra ID token, and refuses a caller without one', async () => {
  const url = `${t.stack.gateway.url}/${APIM_APIS.chargeback.path}/reports?period=2026-12`;
  const refused = await fetch(url);
  expect(refused.status).toBe(401);
  const res = await fetch(url, {
    headers: { authorization: `Bearer ${t.stack.gateway.tokenFor('finance')}` },
  });
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ reports: [] });
});
