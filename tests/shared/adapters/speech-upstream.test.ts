import type { SimulatorFault, SpeechSimulator } from '../../../local/simulators/speech';
import { startSpeechSimulator } from '../../../local/simulators/speech';
import { SdkSpeechUpstream } from '../../../shared/adapters/speech-upstream';
import { ApiError } from '../../../shared/contracts/api-errors';

/**
 * The Speech upstream against the Speech simulator's WebSocket protocol. On Node 22 the Speech
 * SDK would otherwise pick Node's built-in WebSocket, on which a refused connection (a wrong key,
 * a 429, a 5xx) never ends the recognition: the call hangs instead of failing.
 */

let simulator: SpeechSimulator;
beforeAll(async () => {
  simulator = await startSpeechSimulator();
});
afterAll(() => simulator.close());

const PCM_FORMAT = { sampleRate: 16_000, bitsPerSample: 16, channels: 1 };

/** Settles with the outcome, or says it is still waiting after `ms`. */
function within<T>(work: Promise<T>, ms: number): Promise<T | 'still waiting'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<'still waiting'>((resolve) => {
      timer = setTimeout(() => resolve('still waiting'), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

describe('SdkSpeechUpstream', () => {
  it('recognises audio with the right key', async () => {
    const upstream = new SdkSpeechUpstream({
      endpoint: simulator.url,
      key: simulator.key,
      timeoutMs: 10_000,
    });
    const answer = await within(
      upstream.recognizePcm(Buffer.alloc(32_000), PCM_FORMAT, 'en-US', 'simple'),
      10_000,
    );
    expect(answer).toMatchObject({ RecognitionStatus: expect.any(String) });
  });

  it.each([
    ['a wrong key', { key: 'not-the-key' }],
    ['a refused connection (429)', { fault: '429' as const }],
  ])('fails, rather than hangs, on %s', async (_name, setup: { key?: string; fault?: SimulatorFault }) => {
    const upstream = new SdkSpeechUpstream({
      endpoint: simulator.url,
      key: setup.key ?? simulator.key,
      timeoutMs: 10_000,
    });
    if (setup.fault) simulator.setFault(setup.fault);
    try {
      const outcome = await within(
        upstream.recognizePcm(Buffer.alloc(32_000), PCM_FORMAT, 'en-US', 'simple').then(
          () => 'answered',
          (error: unknown) => error,
        ),
        10_000,
      );
      expect(outcome).toBeInstanceOf(ApiError);
      expect((outcome as ApiError).status).toBe(502);
    } finally {
      simulator.setFault(undefined);
    }
  });
});
