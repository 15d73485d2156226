import { oggOpusSilence, pcmTone } from '../../../local/simulators/audio';
import type { SimulatorFault, SpeechSimulator } from '../../../local/simulators/speech';
import { startSpeechSimulator } from '../../../local/simulators/speech';
import type { SpeechTarget } from '../../../shared/adapters/speech-upstream';
import { SdkSpeechUpstream } from '../../../shared/adapters/speech-upstream';
import { ApiError } from '../../../shared/contracts/api-errors';

/**
 * The Speech upstream against the Speech simulator, on its three paths: WAV recognition and
 * synthesis through the Speech SDK's WebSocket, Ogg Opus recognition through the short-audio REST
 * API. On Node 22 the Speech SDK would otherwise pick Node's built-in WebSocket, on which a refused
 * connection (a wrong key, a 429, a 5xx) never ends the recognition: the call hangs instead of
 * failing.
 */

let simulator: SpeechSimulator;
beforeAll(async () => {
  simulator = await startSpeechSimulator();
});
afterAll(() => simulator.close());
afterEach(() => simulator.setFault(undefined));

const PCM_FORMAT = { sampleRate: 16_000, bitsPerSample: 16, channels: 1 };
const SSML =
  '<speak version="1.0" xml:lang="en-US"><voice name="en-US-JennyNeural">Your invoice is ready.</voice></speak>';
const ADDRESS = /127\.0\.0\.1|localhost|::1|\bwss?:\/\/|\bhttps?:\/\/|:\d{2,5}\b/;
const RESOURCE_ID =
  '/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/speech/providers/Microsoft.CognitiveServices/accounts/speech-prod';

type Path = 'WAV recognition (SDK)' | 'Ogg recognition (REST)' | 'synthesis (SDK)';
const PATHS: Path[] = ['WAV recognition (SDK)', 'Ogg recognition (REST)', 'synthesis (SDK)'];

/** One call on a path: resolves with what the service answered. */
function call(upstream: SdkSpeechUpstream, path: Path): Promise<unknown> {
  switch (path) {
    case 'WAV recognition (SDK)':
      return upstream.recognizePcm(pcmTone(PCM_FORMAT, 1), PCM_FORMAT, 'en-US', 'simple');
    case 'Ogg recognition (REST)':
      return upstream.recognizeCompressed(
        oggOpusSilence(16_000, 1.5),
        'audio/ogg; codecs=opus',
        'en-US',
        'simple',
      );
    case 'synthesis (SDK)':
      return upstream.synthesize(SSML, 'riff-16khz-16bit-mono-pcm');
  }
}

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

/** The ApiError a call fails with (anything else fails the test). */
async function failure(work: Promise<unknown>, ms = 10_000): Promise<ApiError> {
  const outcome = await within(
    work.then(
      () => 'answered',
      (error: unknown) => error,
    ),
    ms,
  );
  if (!(outcome instanceof ApiError)) {
    throw new Error(
      `expected an ApiError, got ${outcome instanceof Error ? outcome.stack : String(outcome)}`,
    );
  }
  return outcome;
}

function upstreamFor(sim: SpeechSimulator, target: Partial<SpeechTarget> = {}): SdkSpeechUpstream {
  return new SdkSpeechUpstream({ endpoint: sim.url, key: sim.key, timeoutMs: 10_000, ...target });
}

describe('SdkSpeechUpstream', () => {
  it.each(PATHS)('%s: answers with the right key', async (path) => {
    const answer = await within(call(upstreamFor(simulator), path), 10_000);
    expect(answer).not.toBe('still waiting');
    if (path === 'synthesis (SDK)') expect(Buffer.isBuffer(answer)).toBe(true);
    else expect(answer).toMatchObject({ RecognitionStatus: expect.any(String) });
  });

  it.each(PATHS)('%s: a wrong key is a 502 that does not blame the caller, at once', async (path) => {
    const error = await failure(call(upstreamFor(simulator, { key: 'not-the-key' }), path));
    expect(error.status).toBe(502);
    expect(error.message).toMatch(/credential/);
    expect(JSON.stringify(error.toBody())).not.toMatch(ADDRESS);
  });
});

describe('a hung or refusing Speech service, on every path', () => {
  it.each(PATHS)('%s: a hung service is a 504 once UPSTREAM_TIMEOUT_MS has passed', async (path) => {
    simulator.setFault('timeout');
    const started = Date.now();
    const error = await failure(call(upstreamFor(simulator, { timeoutMs: 800 }), path), 5_000);
    const elapsed = Date.now() - started;
    expect(error.status).toBe(504);
    expect(error.code).toBe('GatewayTimeout');
    expect(error.message).toBe('Azure Speech did not answer within 800 ms.');
    expect(elapsed).toBeGreaterThanOrEqual(750);
    expect(elapsed).toBeLessThan(800 + 1_500);
  });

  it.each(PATHS)('%s: a 429 keeps its status and the service retry-after', async (path) => {
    simulator.setFault('429:5000');
    const error = await failure(call(upstreamFor(simulator), path));
    expect(error.status).toBe(429);
    expect(error.headers['retry-after']).toBe('5');
    expect(error.message).toMatch(/retry after 5 seconds/);
    expect(JSON.stringify(error.toBody())).not.toMatch(ADDRESS);
  });

  it.each(PATHS.flatMap((path) => [[path, '500', 502] as const, [path, '503', 503] as const]))(
    '%s: a %s is a %i with a clean body',
    async (path, fault: SimulatorFault, status) => {
      simulator.setFault(fault);
      const error = await failure(call(upstreamFor(simulator), path));
      expect(error.status).toBe(status);
      const body = JSON.stringify(error.toBody());
      expect(body).not.toMatch(ADDRESS);
      expect(body).not.toMatch(/Unable to contact|StatusCode|websocket/i);
      expect(error.detail).toBeDefined(); // what the service or the SDK said, for the log
    },
  );

  it('the SDK makes one connection attempt, not five, to a rate-limited service', async () => {
    simulator.setFault('429');
    const before = simulator.stats.requests;
    await failure(call(upstreamFor(simulator), 'WAV recognition (SDK)'));
    expect(simulator.stats.requests - before).toBe(1);
  });

  it('concurrent SDK calls each get their own service answer and retry-after', async () => {
    const [limited5, limited2] = await Promise.all([
      startSpeechSimulator({ fault: '429:5000' }),
      startSpeechSimulator({ fault: '429:2000' }),
    ]);
    try {
      const targets = [
        { sim: limited5, expected: '5' },
        { sim: limited2, expected: '2' },
        { sim: simulator, expected: 'answered' },
      ];
      const runs = Array.from({ length: 24 }, (_, i) => {
        const { sim, expected } = targets[i % targets.length] as (typeof targets)[number];
        const path = i % 2 === 0 ? 'WAV recognition (SDK)' : 'synthesis (SDK)';
        return call(upstreamFor(sim), path).then(
          () => ({ expected, got: 'answered' }),
          (error: unknown) => ({
            expected,
            got: error instanceof ApiError ? (error.headers['retry-after'] ?? `${error.status}`) : 'thrown',
          }),
        );
      });
      const outcomes = await Promise.all(runs);
      expect(outcomes.map((o) => o.got)).toEqual(outcomes.map((o) => o.expected));
    } finally {
      await Promise.all([limited5.close(), limited2.close()]);
    }
  }, 30_000);
});

describe('Entra ID, no key', () => {
  let verifying: SpeechSimulator;
  beforeAll(async () => {
    verifying = await startSpeechSimulator({ verifyTokens: true, resourceId: RESOURCE_ID });
  });
  afterAll(() => verifying.close());

  /** A token source as AppIdentity.cognitiveToken is: the managed identity's token, counted. */
  function tokenSource(token: () => string = () => verifying.issueEntraToken()) {
    const source = {
      calls: 0,
      entraToken: (): Promise<string> => {
        source.calls += 1;
        return Promise.resolve(token());
      },
    };
    return source;
  }

  it.each(PATHS)(
    '%s: on a regional endpoint, `aad#<SPEECH_RESOURCE_ID>#<token>` from the identity',
    async (path) => {
      const source = tokenSource();
      const upstream = upstreamFor(verifying, {
        key: undefined,
        resourceId: RESOURCE_ID,
        entraToken: source.entraToken,
      });
      expect(await within(call(upstream, path), 10_000)).not.toBe('still waiting');
      await call(upstream, path);
      // A token for every call: the identity caches it and renews it before it expires.
      expect(source.calls).toBe(2);
    },
  );

  it.each(PATHS)('%s: on a custom domain, the bare token, with no resource id', async (path) => {
    const source = tokenSource();
    const upstream = upstreamFor(verifying, { key: undefined, entraToken: source.entraToken });
    expect(await within(call(upstream, path), 10_000)).not.toBe('still waiting');
    expect(source.calls).toBe(1);
  });

  it.each(PATHS)(
    '%s: a token the service refuses (another resource, expired) is a 502 that does not blame the caller',
    async (path) => {
      const otherResource = upstreamFor(verifying, {
        key: undefined,
        resourceId: RESOURCE_ID.replace('speech-prod', 'speech-other'),
        entraToken: tokenSource().entraToken,
      });
      const expired = upstreamFor(verifying, {
        key: undefined,
        entraToken: tokenSource(() => verifying.issueEntraToken(-60)).entraToken,
      });
      for (const upstream of [otherResource, expired]) {
        const error = await failure(call(upstream, path));
        expect(error.status).toBe(502);
        expect(error.message).toMatch(/credential/);
        expect(JSON.stringify(error.toBody())).not.toMatch(ADDRESS);
      }
    },
  );

  it.each(PATHS)('%s: the identity failing to give a token is a 502', async (path) => {
    const upstream = upstreamFor(verifying, {
      key: undefined,
      entraToken: () =>
        Promise.reject(new Error('ManagedIdentityCredential: no identity at 169.254.169.254')),
    });
    const error = await failure(call(upstream, path));
    expect(error.status).toBe(502);
    expect(JSON.stringify(error.toBody())).not.toMatch(/169\.254|ManagedIdentity/);
    expect(error.detail).toMatch(/169\.254\.169\.254/);
  });

  it.each(
    PATHS.flatMap((path) => [
      [path, 'SPEECH_REGION alone', { region: 'westeurope' }] as const,
      [
        path,
        'a regional SPEECH_ENDPOINT',
        { endpoint: 'https://westeurope.api.cognitive.microsoft.com' },
      ] as const,
    ]),
  )(
    '%s: with %s and no SPEECH_RESOURCE_ID, a 500 that names the setting, before calling anything',
    async (path, _name, where) => {
      const source = tokenSource();
      const upstream = new SdkSpeechUpstream({
        ...where,
        entraToken: source.entraToken,
        timeoutMs: 10_000,
      });
      const error = await failure(call(upstream, path));
      expect(error.status).toBe(500);
      expect(error.code).toBe('ConfigurationError');
      expect(error.message).toMatch(/SPEECH_RESOURCE_ID/);
      expect(JSON.stringify(error.toBody())).not.toMatch(ADDRESS);
      expect(source.calls).toBe(0);
    },
  );
});
