import { randomUUID } from 'node:crypto';
import { proxyHeaders } from '../../local/credentials';
import { pcmTone, wavHeader } from '../../local/simulators/audio';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../stack';
import { GATEWAY_HEADERS } from '../../shared/contracts/gateway-headers';

/**
 * The local stack's request log (on for `npm start`): one line per request, and for a metering
 * proxy's request the figures it recorded, who they were billed to, the status and the duration.
 */

let stack: LocalStack;
const lines: string[] = [];
beforeAll(async () => {
  stack = await startTestStack({ requestLog: (line) => lines.push(line) });
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

const research = { subscription: 'sub-research', department: 'research', app: 'chat-app' };
const support = { subscription: 'sub-support', department: 'customer-support', app: 'support-voicebot' };

function headers(caller: typeof research, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...proxyHeaders(stack.credentials, caller),
    [GATEWAY_HEADERS.requestId]: randomUUID(),
    ...extra,
  };
}

/** The line of the request to `path` (the log is written once the response is). */
async function lineFor(path: string): Promise<string> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const found = lines.filter((line) => line.startsWith(`POST ${path} `) || line.startsWith(`GET ${path} `));
    if (found.length > 0) {
      lines.splice(lines.indexOf(found[0] as string), 1);
      return found[0] as string;
    }
    if (Date.now() > deadline) throw new Error(`no log line for ${path}:\n${lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const chatPath = '/api/openai/deployments/gpt-4o-mini/chat/completions';
const n = (count: number): string => count.toLocaleString('en-US');

describe('the request log', () => {
  it('logs a chat completion with its status, department/app, deployment, tokens and duration', async () => {
    const res = await fetch(`${stack.host.url}${chatPath}?api-version=2024-10-21`, {
      method: 'POST',
      headers: headers(research, { 'content-type': 'application/json' }),
      body: JSON.stringify({ messages: [{ role: 'user', content: 'Summarise the quarterly report.' }] }),
    });
    expect(res.status).toBe(200);
    const { usage } = (await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
    const total = usage.prompt_tokens + usage.completion_tokens;
    expect(await lineFor(chatPath)).toMatch(
      new RegExp(
        `^POST ${chatPath} 200 research/chat-app gpt-4o-mini ${n(total)} tokens \\(${n(usage.prompt_tokens)} in, ${n(usage.completion_tokens)} out\\) [\\d,]+ ms$`,
      ),
    );
  });

  it('logs a streamed one with the usage recorded at the end of the stream, and reasoning tokens', async () => {
    const path = '/api/openai/deployments/o3-mini/chat/completions';
    const res = await fetch(`${stack.host.url}${path}?api-version=2024-10-21`, {
      method: 'POST',
      headers: headers(research, { 'content-type': 'application/json' }),
      body: JSON.stringify({
        messages: [{ role: 'user', content: 'Plan a research agenda.' }],
        stream: true,
      }),
    });
    expect(res.status).toBe(200);
    await res.text();
    expect(await lineFor(path)).toMatch(
      /^POST \S+ 200 research\/chat-app o3-mini [\d,]+ tokens \(\d+ in, [\d,]+ out incl\. [\d,]+ reasoning\) streamed [\d,]+ ms$/,
    );
  });

  it('logs a stream the client left with the usage estimated when it went away', async () => {
    const path = '/api/openai/deployments/gpt-4o/chat/completions';
    stack.openAiSimulator?.setFault('drip:50');
    try {
      const controller = new AbortController();
      const res = await fetch(`${stack.host.url}${path}?api-version=2024-10-21`, {
        method: 'POST',
        headers: headers(research, { 'content-type': 'application/json' }),
        body: JSON.stringify({ messages: [{ role: 'user', content: 'Write a long story.' }], stream: true }),
        signal: controller.signal,
      });
      await (res.body as ReadableStream<Uint8Array>).getReader().read();
      controller.abort();
      expect(await lineFor(path)).toMatch(
        /^POST \S+ 200 research\/chat-app gpt-4o ~[\d,]+ tokens \(\d+ in, \d+ out, estimated\) streamed [\d,]+ ms \(response cut short\)$/,
      );
    } finally {
      stack.openAiSimulator?.setFault(undefined);
    }
  });

  it('logs speech to text with the seconds of audio metered', async () => {
    const path = '/api/speech/recognition/conversation/cognitiveservices/v1';
    const format = { sampleRate: 16_000, channels: 1, bitsPerSample: 16 };
    const samples = pcmTone(format, 3.2);
    const res = await fetch(`${stack.host.url}${path}?language=en-US`, {
      method: 'POST',
      headers: headers(support, { 'content-type': 'audio/wav; codecs=audio/pcm; samplerate=16000' }),
      body: Uint8Array.from(Buffer.concat([wavHeader(format, samples.length), samples])),
    });
    expect(res.status).toBe(200);
    await res.text();
    expect(await lineFor(path)).toMatch(
      new RegExp(`^POST ${path} 200 customer-support/support-voicebot stt 3\\.2 s audio [\\d,]+ ms$`),
    );
  });

  it('logs text to speech with the billable characters', async () => {
    const path = '/api/cognitiveservices/v1';
    const res = await fetch(`${stack.host.url}${path}`, {
      method: 'POST',
      headers: headers(support, { 'content-type': 'text/plain' }),
      body: 'Your parcel arrives tomorrow.',
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    expect(await lineFor(path)).toMatch(
      /^POST \S+ 200 customer-support\/support-voicebot tts 29 characters \(\d+\.\d s audio\) [\d,]+ ms$/,
    );
  });

  it('says so when a proxy request recorded nothing (refused at the gateway)', async () => {
    const res = await fetch(`${stack.host.url}${chatPath}?api-version=2024-10-21`, {
      method: 'POST',
      headers: headers(research, {
        'content-type': 'application/json',
        [GATEWAY_HEADERS.gatewayKey]: 'not-the-gateway-secret',
      }),
      body: JSON.stringify({ messages: [{ role: 'user', content: 'Hello' }] }),
    });
    expect(res.status).toBe(401);
    await res.text();
    expect(await lineFor(chatPath)).toMatch(
      new RegExp(`^POST ${chatPath} 401 research/chat-app gpt-4o-mini no usage recorded [\\d,]+ ms$`),
    );
  });

  it('gives other requests a shorter line', async () => {
    await (await fetch(`${stack.host.url}/api/live`)).text();
    expect(await lineFor('/api/live')).toMatch(/^GET \/api\/live 200 [\d,]+ ms$/);
  });
});
