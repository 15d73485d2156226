import { randomUUID } from 'node:crypto';
import { oggOpusSilence, pcmTone, wavHeader } from '../../../local/simulators/audio';
import type { SimulatorFault, SpeechSimulator } from '../../../local/simulators/speech';
import { gatewayHeaders, recordedEvent, recordedEvents, useTestStack } from '../../stack';

/**
 * Azure Speech failing behind the proxy, on each of its three paths (WAV recognition and synthesis
 * through the Speech SDK's WebSocket, Ogg Opus recognition through the short-audio REST API): a
 * hung service is a 504 once UPSTREAM_TIMEOUT_MS has passed, not a call held until the host kills
 * it; a rate-limited one is a 429 with the service's `retry-after`; a failing one a clean 502 (503
 * stays 503). No answer names an internal address, and nothing is metered for any of them.
 */

const TIMEOUT_MS = 1500;

const t = useTestStack({ UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS) });
afterEach(() => speech().setFault(undefined));

function speech(): SpeechSimulator {
  if (!t.stack.speechSimulator) throw new Error('the test stack has no Speech simulator');
  return t.stack.speechSimulator;
}

const ADDRESS = /127\.0\.0\.1|localhost|::1|\bwss?:\/\/|\bhttps?:\/\/|:\d{2,5}\b/;
const pcm16k = { sampleRate: 16_000, channels: 1, bitsPerSample: 16 };

type Path = 'WAV recognition (SDK)' | 'Ogg recognition (REST)' | 'synthesis (SDK)';
const PATHS: Path[] = ['WAV recognition (SDK)', 'Ogg recognition (REST)', 'synthesis (SDK)'];

/** One request to the proxy on a path, with its own request id. */
function send(path: Path, id: string): Promise<Response> {
  const caller = { subscription: 'sub-support', department: 'customer-support' };
  const headers = (contentType: string, extra: Record<string, string> = {}) =>
    gatewayHeaders(t.stack, id, caller, { 'content-type': contentType, ...extra });
  const recognition = `${t.stack.host.url}/api/speech/recognition/conversation/cognitiveservices/v1?language=en-US`;
  switch (path) {
    case 'WAV recognition (SDK)': {
      const samples = pcmTone(pcm16k, 2);
      return fetch(recognition, {
        method: 'POST',
        headers: headers('audio/wav; codecs=audio/pcm; samplerate=16000'),
        body: Uint8Array.from(Buffer.concat([wavHeader(pcm16k, samples.length), samples])),
      });
    }
    case 'Ogg recognition (REST)':
      return fetch(recognition, {
        method: 'POST',
        headers: headers('audio/ogg; codecs=opus'),
        body: Uint8Array.from(oggOpusSilence(16_000, 2)),
      });
    case 'synthesis (SDK)':
      return fetch(`${t.stack.host.url}/api/cognitiveservices/v1`, {
        method: 'POST',
        headers: headers('application/ssml+xml', { 'X-Microsoft-OutputFormat': 'riff-16khz-16bit-mono-pcm' }),
        body: '<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="en-US"><voice name="en-US-JennyNeural">Your invoice is ready.</voice></speak>',
      });
  }
}

interface Failure {
  status: number;
  headers: Headers;
  body: string;
  elapsedMs: number;
}

/** Sends with the Speech service failing as `fault`; checks the answer is clean and nothing was metered. */
async function failedWith(path: Path, fault: SimulatorFault): Promise<Failure> {
  speech().setFault(fault);
  const id = randomUUID();
  const started = Date.now();
  const res = await send(path, id);
  const body = await res.text();
  const elapsedMs = Date.now() - started;
  expect(JSON.parse(body)).toMatchObject({
    error: { code: expect.any(String), message: expect.any(String) },
  });
  expect(body).not.toMatch(ADDRESS);
  expect(body).not.toMatch(/Unable to contact|StatusCode|websocket|Unexpected server response/i);
  expect(await recordedEvents(t.redis, id)).toEqual([]);
  return { status: res.status, headers: res.headers, body, elapsedMs };
}

describe('a hung Speech service', () => {
  it.each(PATHS)(
    '%s: a 504 once UPSTREAM_TIMEOUT_MS has passed, and nothing metered',
    async (path) => {
      const answer = await failedWith(path, 'timeout');
      expect(answer.status).toBe(504);
      expect(JSON.parse(answer.body)).toMatchObject({
        error: { code: 'GatewayTimeout', message: `Azure Speech did not answer within ${TIMEOUT_MS} ms.` },
      });
      expect(answer.elapsedMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
      expect(answer.elapsedMs).toBeLessThan(TIMEOUT_MS + 2_500);
    },
    20_000,
  );
});

describe('a rate-limited Speech service', () => {
  it.each(PATHS)('%s: a 429 with the service retry-after, and nothing metered', async (path) => {
    const answer = await failedWith(path, '429:5000');
    expect(answer.status).toBe(429);
    expect(answer.headers.get('retry-after')).toBe('5');
    expect(JSON.parse(answer.body)).toMatchObject({
      error: { message: expect.stringMatching(/retry after 5 seconds/) },
    });
  });
});

describe('a failing or unreachable Speech service', () => {
  it.each(
    PATHS.flatMap((path) => [
      [path, '500', 502] as const,
      [path, '503', 503] as const,
      [path, 'reset', 502] as const,
    ]),
  )('%s: %s is a clean %i, and nothing metered', async (path, fault: SimulatorFault, status) => {
    const answer = await failedWith(path, fault);
    expect(answer.status).toBe(status);
  });
});

describe('after the failures', () => {
  it.each(PATHS)('%s: serves and meters again', async (path) => {
    const id = randomUUID();
    const res = await send(path, id);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    expect(await recordedEvent(t.redis, id)).toBeDefined();
  });
});
