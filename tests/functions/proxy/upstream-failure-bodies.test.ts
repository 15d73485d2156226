import { randomUUID } from 'node:crypto';
import { oggOpusSilence, pcmTone, wavHeader } from '../../../local/simulators/audio';
import type { SimulatorFault } from '../../../local/simulators/faults';
import type { LocalStack } from '../../../local/stack';
import { internalError } from '../../../shared/contracts/api-errors';
import { gatewayHeaders, startTestStack } from '../../stack';

/**
 * Every way an upstream can fail, on every proxied path, in one sweep: each answer the caller gets
 * is scanned for anything internal — an address, a URL, a port, a socket error's text, a stack
 * frame, the upstream's key. The upstreams are the local simulators, failing as told (rate limits,
 * server errors, hangs, dropped connections, answers cut half-way), and at the end not there at all.
 */

jest.setTimeout(180_000);

const TIMEOUT_MS = 1000;
const FAULTS: SimulatorFault[] = ['429:3000', '500', '503', 'timeout', 'reset', 'cut'];

let stack: LocalStack;
beforeAll(async () => {
  process.env.UPSTREAM_TIMEOUT_MS = String(TIMEOUT_MS);
  stack = await startTestStack();
}, 60_000);
afterAll(() => stack?.stop());

type Call = () => Promise<Response>;

function calls(): Record<string, Call> {
  const caller = { subscription: 'sub-scan', app: 'app-scan', department: 'research' };
  const headers = (contentType: string, extra: Record<string, string> = {}): Record<string, string> =>
    gatewayHeaders(stack, randomUUID(), caller, { 'content-type': contentType, ...extra });
  const api = `${stack.host.url}/api`;
  const json =
    (path: string, body: unknown): Call =>
    () =>
      fetch(`${api}${path}`, {
        method: 'POST',
        headers: headers('application/json'),
        body: JSON.stringify(body),
      });
  const messages = [{ role: 'user', content: 'Say hello.' }];
  const recognition = `${api}/speech/recognition/conversation/cognitiveservices/v1?language=en-US`;
  const pcm16k = { sampleRate: 16_000, channels: 1, bitsPerSample: 16 };
  const samples = pcmTone(pcm16k, 1);
  return {
    'chat completion': json('/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21', {
      messages,
    }),
    'streamed chat completion': json(
      '/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21',
      {
        messages,
        stream: true,
      },
    ),
    'v1 chat completion': json('/openai/v1/chat/completions', { model: 'gpt-4o-mini', messages }),
    embeddings: json('/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21', {
      input: 'hello',
    }),
    responses: json('/openai/v1/responses', { model: 'gpt-4o-mini', input: 'Say hello.' }),
    'streamed responses': json('/openai/v1/responses', {
      model: 'gpt-4o-mini',
      input: 'Say hello.',
      stream: true,
    }),
    'WAV recognition': () =>
      fetch(recognition, {
        method: 'POST',
        headers: headers('audio/wav; codecs=audio/pcm; samplerate=16000'),
        body: Uint8Array.from(Buffer.concat([wavHeader(pcm16k, samples.length), samples])),
      }),
    'Ogg recognition': () =>
      fetch(recognition, {
        method: 'POST',
        headers: headers('audio/ogg; codecs=opus'),
        body: Uint8Array.from(oggOpusSilence(16_000, 1)),
      }),
    synthesis: () =>
      fetch(`${api}/cognitiveservices/v1`, {
        method: 'POST',
        headers: headers('text/plain', { 'X-Microsoft-OutputFormat': 'riff-16khz-16bit-mono-pcm' }),
        body: 'Your invoice is ready.',
      }),
  };
}

/** What must never reach a caller. */
function leaks(body: string): string[] {
  const secrets = [
    process.env.AZURE_OPENAI_API_KEY,
    process.env.SPEECH_KEY,
    process.env.GATEWAY_SHARED_SECRET,
  ];
  const found: string[] = [];
  const patterns: Array<[string, RegExp]> = [
    ['a loopback address', /127\.0\.0\.1|localhost|\[::1\]/i],
    // Azure's own public help link (aka.ms) is part of the service's rate-limit message.
    ['a URL', /\b(?:https?|wss?):\/\/(?!aka\.ms\/)/i],
    ['a port', /(?:^|[^\w"]):\d{2,5}\b/],
    ['a socket error', /ECONN|EPIPE|ETIMEDOUT|SocketError|other side closed|UND_ERR/i],
    ['a stack frame', /\n\s+at |\.ts:\d+|\.js:\d+/],
  ];
  for (const [what, pattern] of patterns) if (pattern.test(body)) found.push(what);
  for (const secret of secrets) if (secret && body.includes(secret)) found.push('a key');
  return found;
}

interface Answer {
  call: string;
  fault: string;
  status: number;
  body: string;
}

async function sweep(fault: string): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (const [name, call] of Object.entries(calls())) {
    let status: number;
    let body: string;
    try {
      const response = await call();
      status = response.status;
      body = await response.text().catch((error: unknown) => `(answer cut: ${String(error)})`);
    } catch (error) {
      // The connection to the proxy itself failed: nothing to scan, but it must not happen.
      status = 0;
      body = String(error);
    }
    answers.push({ call: name, fault, status, body });
  }
  return answers;
}

it('no failing upstream, on any path, puts an internal address, URL, error text or key in an answer', async () => {
  const openAi = stack.openAiSimulator;
  const speech = stack.speechSimulator;
  if (!openAi || !speech) throw new Error('the test stack runs no simulators');
  const answers: Answer[] = [];
  for (const fault of FAULTS) {
    openAi.setFault(fault);
    speech.setFault(fault);
    try {
      answers.push(...(await sweep(fault)));
    } finally {
      openAi.setFault(undefined);
      speech.setFault(undefined);
    }
  }
  // And the upstreams gone: nothing listens where they were.
  await Promise.all([openAi.close(), speech.close()]);
  answers.push(...(await sweep('unreachable')));

  const failures = answers.filter((a) => a.status >= 400);
  // Every case failed as a failure should (a cut stream is a 200 that ends early; a cut Ogg
  // recognition REST answer is still a failure).
  expect(failures.length).toBeGreaterThanOrEqual(answers.length - 2 * FAULTS.length);
  // None is the proxy's own unexpected failure (an upstream's 500 passes through as the upstream
  // answered it; the proxy's own says only that the server had an error).
  const ownFailure = internalError().toBody().error.message;
  expect(answers.filter((a) => a.status === 0 || a.body.includes(`"${ownFailure}"`))).toEqual([]);
  const leaking = answers
    .map((a) => ({ ...a, leaks: leaks(a.body) }))
    .filter((a) => a.leaks.length > 0)
    .map((a) => `${a.call} / ${a.fault} → ${a.status}: ${a.leaks.join(', ')} in ${a.body.slice(0, 300)}`);
  expect(leaking).toEqual([]);
  // Each failure answers in the error shape, with a message the caller can act on.
  for (const failure of failures) {
    const error = (JSON.parse(failure.body) as { error?: { message?: unknown } }).error;
    expect(typeof error?.message).toBe('string');
  }
});
