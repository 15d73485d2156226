import { createServer } from 'node:net';
import type { SpeechSimulator } from '../../../local/simulators/speech';
import { startSpeechSimulator } from '../../../local/simulators/speech';
import { UndiciOpenAiUpstream } from '../../../shared/adapters/openai-upstream';
import { SdkSpeechUpstream } from '../../../shared/adapters/speech-upstream';
import { ApiError } from '../../../shared/contracts/api-errors';

/**
 * What a caller reads when an upstream fails: never an internal address or URL (those stay in the
 * error's `detail`, which the function logs), and never the service's own credential failure
 * passed off as the caller's.
 */

let simulator: SpeechSimulator;
beforeAll(async () => {
  simulator = await startSpeechSimulator();
});
afterAll(() => simulator.close());
afterEach(() => simulator.setFault(undefined));

const ADDRESS = /127\.0\.0\.1|localhost|::1|\bwss?:\/\/|\bhttps?:\/\/|:\d{2,5}\b/;

async function failure(work: Promise<unknown>): Promise<ApiError> {
  const outcome = await work.then(
    () => new Error('it answered'),
    (error: unknown) => error,
  );
  if (!(outcome instanceof ApiError)) throw outcome instanceof Error ? outcome : new Error(String(outcome));
  return outcome;
}

/** A port on loopback that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const PCM = { sampleRate: 16_000, bitsPerSample: 16, channels: 1 };

describe('upstream failures, as the caller reads them', () => {
  it('Azure OpenAI unreachable: a 502 that names no address', async () => {
    const upstream = new UndiciOpenAiUpstream({
      endpoint: `http://127.0.0.1:${await closedPort()}`,
      authHeaders: () => Promise.resolve({ 'api-key': 'k' }),
      timeoutMs: 5_000,
    });
    const error = await failure(
      upstream.post('/openai/deployments/x/chat/completions', new Uint8Array(), 'c'),
    );
    expect(error.status).toBe(502);
    expect(JSON.stringify(error.toBody())).not.toMatch(ADDRESS);
    expect(error.detail).toMatch(/ECONNREFUSED/);
  });

  it.each([
    [
      'recognition (SDK) with a key the service refuses',
      (u: SdkSpeechUpstream) => u.recognizePcm(Buffer.alloc(32_000), PCM, 'en-US', 'simple'),
    ],
    [
      'recognition (REST) with a key the service refuses',
      (u: SdkSpeechUpstream) =>
        u.recognizeCompressed(Buffer.alloc(64), 'audio/ogg; codecs=opus', 'en-US', 'simple'),
    ],
    [
      'synthesis (SDK) with a key the service refuses',
      (u: SdkSpeechUpstream) =>
        u.synthesize(
          '<speak version="1.0" xml:lang="en-US"><voice name="en-US-JennyNeural">Hi</voice></speak>',
          'riff-16khz-16bit-mono-pcm',
        ),
    ],
  ])(
    'Azure Speech %s: a 502 that names no address and does not blame the caller',
    async (_name, call) => {
      const upstream = new SdkSpeechUpstream({
        endpoint: simulator.url,
        key: 'not-the-key',
        timeoutMs: 10_000,
      });
      const error = await failure(call(upstream));
      expect(error.status).toBe(502);
      expect(JSON.stringify(error.toBody())).not.toMatch(ADDRESS);
    },
    30_000,
  );
});
