import { oggOpusSilence, pcmTone, wavHeader } from '../../../local/simulators/audio';
import { FAULT_HEADER } from '../../../local/simulators/faults';
import type { SpeechSimulator } from '../../../local/simulators/speech';
import { startSpeechSimulator } from '../../../local/simulators/speech';
import { oggOpusDurationSeconds, readWav } from '../../../shared/metering/audio';

let sim: SpeechSimulator;
beforeAll(async () => {
  sim = await startSpeechSimulator();
});
afterAll(() => sim.close());

const format = { sampleRate: 16_000, channels: 1, bitsPerSample: 16 };
const silence = (seconds: number): Buffer => Buffer.alloc(Math.round(format.sampleRate * seconds) * 2);
/** WAV of tone (speech) and silence: a number is seconds of tone, `{ silence }` seconds of silence. */
function wav(...parts: Array<number | { silence: number }>): Buffer {
  const pcm = Buffer.concat(
    parts.map((part) => (typeof part === 'number' ? pcmTone(format, part) : silence(part.silence))),
  );
  return Buffer.concat([wavHeader(format, pcm.length), pcm]);
}

/** fetch's BodyInit wants a plain Uint8Array view. */
const bytes = (buffer: Buffer): Uint8Array<ArrayBuffer> => Uint8Array.from(buffer);

const ssml = (text: string) =>
  `<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="en-US"><voice name="en-US-JennyNeural">${text}</voice></speak>`;

const sttUrl = (query = '') =>
  `${sim.url}/speech/recognition/conversation/cognitiveservices/v1?language=en-US${query}`;

function recognize(body: Buffer, contentType: string, extra: Record<string, string> = {}, query = '') {
  return fetch(sttUrl(query), {
    method: 'POST',
    headers: { 'Ocp-Apim-Subscription-Key': sim.key, 'content-type': contentType, ...extra },
    body: bytes(body),
  });
}

function synthesize(body: string, outputFormat: string, extra: Record<string, string> = {}) {
  return fetch(`${sim.url}/cognitiveservices/v1`, {
    method: 'POST',
    headers: {
      'Ocp-Apim-Subscription-Key': sim.key,
      'content-type': 'application/ssml+xml',
      'X-Microsoft-OutputFormat': outputFormat,
      ...extra,
    },
    body,
  });
}

const WAV_TYPE = 'audio/wav; codecs=audio/pcm; samplerate=16000';

describe('speech-to-text for short audio', () => {
  it('transcribes WAV, with Duration in 100 ns ticks measured from the audio', async () => {
    const res = await recognize(wav(3.25), WAV_TYPE);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      RecognitionStatus: 'Success',
      DisplayText: 'Simulated transcript of 3.25 seconds of audio.',
      Offset: 0,
      Duration: 32_500_000,
    });
  });

  it('finds where the speech is: Offset after leading silence, Duration of the first phrase', async () => {
    const res = await recognize(
      wav({ silence: 0.5 }, 2, { silence: 1 }, 1),
      WAV_TYPE,
      {},
      '&format=detailed',
    );
    const body = (await res.json()) as {
      Offset: number;
      Duration: number;
      NBest: Array<{ Display: string }>;
    };
    expect(body).toMatchObject({ RecognitionStatus: 'Success', Offset: 5_000_000, Duration: 20_000_000 });
    expect(body.NBest[0]).toMatchObject({
      Display: 'Simulated transcript of 2.00 seconds of audio.',
      Lexical: 'simulated transcript of 200 seconds of audio',
      Confidence: expect.any(Number),
    });
  });

  it('reports InitialSilenceTimeout for audio without speech', async () => {
    const res = await recognize(wav({ silence: 2 }), WAV_TYPE);
    expect(await res.json()).toEqual({
      RecognitionStatus: 'InitialSilenceTimeout',
      Offset: 0,
      Duration: 20_000_000,
    });
  });

  it('measures Ogg Opus from its granule position', async () => {
    const res = await recognize(oggOpusSilence(16_000, 1.5), 'audio/ogg; codecs=opus');
    expect(await res.json()).toMatchObject({ RecognitionStatus: 'Success', Duration: 15_000_000 });
  });

  it.each([
    ['an unsupported media type', 'audio/flac', wav(1), {}, 415],
    ['audio that is not WAV', WAV_TYPE, Buffer.from('nope'), {}, 400],
    ['Ogg that is not Opus', 'audio/ogg; codecs=opus', Buffer.from('OggS but not really'), {}, 400],
    ['a wrong key', WAV_TYPE, wav(1), { 'Ocp-Apim-Subscription-Key': 'wrong' }, 401],
  ])('rejects %s', async (_name, type, body, extra, status) => {
    const res = await recognize(body, type, extra);
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({
      error: { code: expect.any(String), message: expect.any(String) },
    });
  });

  it('requires the language', async () => {
    const res = await fetch(`${sim.url}/speech/recognition/conversation/cognitiveservices/v1`, {
      method: 'POST',
      headers: { 'Ocp-Apim-Subscription-Key': sim.key, 'content-type': WAV_TYPE },
      body: bytes(wav(1)),
    });
    expect(res.status).toBe(400);
  });
});

describe('text-to-speech', () => {
  const text = 'The quick brown fox jumps over the lazy dog, twice.'; // 51 characters ≈ 3.64 s

  it('returns WAV whose length follows the text (~14 characters a second)', async () => {
    for (const [outputFormat, rate] of [
      ['riff-24khz-16bit-mono-pcm', 24_000],
      ['riff-16khz-16bit-mono-pcm', 16_000],
    ] as const) {
      const res = await synthesize(ssml(text), outputFormat);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('audio/wav');
      const info = readWav(Buffer.from(await res.arrayBuffer()));
      expect(info?.sampleRate).toBe(rate);
      expect(info?.durationSeconds).toBeCloseTo(51 / 14, 3);
    }
  });

  it('returns raw PCM, µ-law, MP3 and Ogg Opus of the same length', async () => {
    const raw = Buffer.from(await (await synthesize(ssml(text), 'raw-16khz-16bit-mono-pcm')).arrayBuffer());
    expect(raw.length / 32_000).toBeCloseTo(51 / 14, 3);

    const mulaw = Buffer.from(
      await (await synthesize(ssml(text), 'riff-8khz-8bit-mono-mulaw')).arrayBuffer(),
    );
    expect(mulaw.readUInt16LE(20)).toBe(7); // WAVE_FORMAT_MULAW
    expect(readWav(mulaw)?.durationSeconds).toBeCloseTo(51 / 14, 3);

    const mp3Res = await synthesize(ssml(text), 'audio-16khz-32kbitrate-mono-mp3');
    expect(mp3Res.headers.get('content-type')).toBe('audio/mpeg');
    const mp3 = Buffer.from(await mp3Res.arrayBuffer());
    expect(mp3.subarray(0, 4)).toEqual(Buffer.from([0xff, 0xf3, 0x48, 0xc0]));
    // 144-byte frames of 576 samples at 16 kHz (36 ms each).
    expect(mp3.length % 144).toBe(0);
    expect((mp3.length / 144) * 0.036).toBeCloseTo(51 / 14, 1);

    const ogg = await synthesize(ssml(text), 'ogg-24khz-16bit-mono-opus');
    expect(ogg.headers.get('content-type')).toBe('audio/ogg');
    expect(oggOpusDurationSeconds(Buffer.from(await ogg.arrayBuffer()))).toBeCloseTo(51 / 14, 4);
  });

  it('adds SSML breaks as silence, which recognition then skips', async () => {
    const res = await synthesize(
      ssml('Hello<break time="1500ms"/>world, and <break strength="strong"/>goodbye.'),
      'riff-16khz-16bit-mono-pcm',
    );
    const audio = Buffer.from(await res.arrayBuffer());
    // "Hello" (5) + "world, and" (10) + "goodbye." (8) characters, and 1.5 s + 1 s of silence.
    expect(readWav(audio)?.durationSeconds).toBeCloseTo(23 / 14 + 2.5, 3);
    const recognized = (await (await recognize(audio, WAV_TYPE)).json()) as {
      Offset: number;
      Duration: number;
    };
    expect(recognized.Offset).toBe(0);
    expect(recognized.Duration / 10_000_000).toBeCloseTo(5 / 14, 1);
  });

  it.each([
    ['malformed SSML', '<speak><voice>unclosed</speak>', 'riff-16khz-16bit-mono-pcm', /not well-formed/],
    ['SSML without <speak>', '<voice>hi</voice>', 'riff-16khz-16bit-mono-pcm', /<speak> root/],
    ['a bad break', ssml('a<break time="soon"/>b'), 'riff-16khz-16bit-mono-pcm', /break time/],
    [
      'an unknown output format',
      ssml('hi'),
      'webm-16khz-16bit-mono-opus',
      /Unsupported X-Microsoft-OutputFormat/,
    ],
    ['no output format', ssml('hi'), '', /X-Microsoft-OutputFormat header is required/],
  ])('rejects %s with 400', async (_name, body, outputFormat, message) => {
    const res = await synthesize(body, outputFormat);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(message);
  });
});

describe('voices, tokens and auth', () => {
  it('lists voices (the health probe)', async () => {
    const res = await fetch(`${sim.url}/cognitiveservices/voices/list`, {
      headers: { 'Ocp-Apim-Subscription-Key': sim.key },
    });
    expect(res.status).toBe(200);
    const voices = (await res.json()) as Array<{ ShortName: string; Locale: string }>;
    expect(voices).toContainEqual(
      expect.objectContaining({ ShortName: 'en-US-JennyNeural', Locale: 'en-US' }),
    );
  });

  it('issues a token for the key, and accepts bearer tokens', async () => {
    const issued = await fetch(`${sim.url}/sts/v1.0/issueToken`, {
      method: 'POST',
      headers: { 'Ocp-Apim-Subscription-Key': sim.key },
    });
    const token = await issued.text();
    expect(token.split('.')).toHaveLength(3);
    const res = await synthesize(ssml('hi'), 'riff-16khz-16bit-mono-pcm', {
      'Ocp-Apim-Subscription-Key': '',
      Authorization: `Bearer ${token}`,
    });
    expect(res.status).toBe(200);
    const refused = await fetch(`${sim.url}/cognitiveservices/voices/list`);
    expect(refused.status).toBe(401);
  });

  it('with verifyTokens, takes only its own unexpired tokens: bare, or aad#<its resource id>#<token>', async () => {
    const strict = await startSpeechSimulator({ verifyTokens: true });
    try {
      const voices = (authorization: string) =>
        fetch(`${strict.url}/cognitiveservices/voices/list`, { headers: { authorization } }).then(
          (res) => res.status,
        );
      const issued = await fetch(`${strict.url}/sts/v1.0/issueToken`, {
        method: 'POST',
        headers: { 'Ocp-Apim-Subscription-Key': strict.key },
      });
      const entra = strict.issueEntraToken();
      expect(await voices(`Bearer ${await issued.text()}`)).toBe(200);
      expect(await voices(`Bearer ${entra}`)).toBe(200);
      expect(await voices(`Bearer aad#${strict.resourceId}#${entra}`)).toBe(200);
      expect(await voices(`Bearer aad#${strict.resourceId.replace(/[^/]+$/, 'other')}#${entra}`)).toBe(401);
      expect(await voices(`Bearer ${strict.issueEntraToken(-60)}`)).toBe(401);
      expect(await voices(`Bearer ${sim.issueEntraToken()}`)).toBe(401); // another simulator's
      expect(await voices('Bearer any-token')).toBe(401);
    } finally {
      await strict.close();
    }
  });
});

describe('injected faults', () => {
  it('429 with retry-after, 500 and 503', async () => {
    const limited = await recognize(wav(1), WAV_TYPE, { [FAULT_HEADER]: '429:1500' });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('2');
    expect(limited.headers.get('retry-after-ms')).toBe('1500');
    expect(
      (await synthesize(ssml('hi'), 'riff-16khz-16bit-mono-pcm', { [FAULT_HEADER]: '500' })).status,
    ).toBe(500);
    expect((await recognize(wav(1), WAV_TYPE, { [FAULT_HEADER]: '503' })).status).toBe(503);
  });

  it('cut drops synthesized audio half-way; timeout never answers; reset drops the connection', async () => {
    const long = ssml('A sentence long enough to produce several chunks of audio. '.repeat(4));
    const cut = await synthesize(long, 'riff-24khz-16bit-mono-pcm', { [FAULT_HEADER]: 'cut' });
    expect(cut.status).toBe(200);
    await expect(cut.arrayBuffer()).rejects.toThrow();
    await expect(
      fetch(`${sim.url}/cognitiveservices/voices/list`, {
        headers: { 'Ocp-Apim-Subscription-Key': sim.key, [FAULT_HEADER]: 'timeout' },
        signal: AbortSignal.timeout(150),
      }),
    ).rejects.toThrow();
    await expect(recognize(wav(1), WAV_TYPE, { [FAULT_HEADER]: 'reset' })).rejects.toThrow();
  });

  it('setFault applies to later requests; slow:<ms> delays', async () => {
    sim.setFault('slow:120');
    try {
      const started = Date.now();
      expect((await recognize(wav(1), WAV_TYPE)).status).toBe(200);
      expect(Date.now() - started).toBeGreaterThanOrEqual(115);
    } finally {
      sim.setFault(undefined);
    }
  });
});

describe('stats', () => {
  it('counts the audio recognized and synthesized', async () => {
    const local = await startSpeechSimulator();
    try {
      const headers = { 'Ocp-Apim-Subscription-Key': local.key, 'content-type': WAV_TYPE };
      await fetch(`${local.url}/speech/recognition/interactive/cognitiveservices/v1?language=de-DE`, {
        method: 'POST',
        headers,
        body: bytes(wav(2.5)),
      });
      await fetch(`${local.url}/cognitiveservices/v1`, {
        method: 'POST',
        headers: {
          'Ocp-Apim-Subscription-Key': local.key,
          'X-Microsoft-OutputFormat': 'raw-16khz-16bit-mono-pcm',
        },
        body: ssml('Fourteen chars'),
      });
      expect(local.stats).toMatchObject({
        requests: 2,
        recognizedSeconds: 2.5,
        synthesizedSeconds: 1,
        synthesizedCharacters: 14,
      });
    } finally {
      await local.close();
    }
  });
});
