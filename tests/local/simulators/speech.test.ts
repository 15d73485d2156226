import * as sdk from 'microsoft-cognitiveservices-speech-sdk';
import { pcmTone, wavHeader } from '../../../local/simulators/audio';
import { readWav } from '../../../shared/audio';
import type { SpeechSimulator } from '../../../local/simulators/speech';
import { startSpeechSimulator } from '../../../local/simulators/speech';

let sim: SpeechSimulator;
beforeAll(async () => {
  sim = await startSpeechSimulator();
});
afterAll(() => sim.close());

const format = { sampleRate: 16_000, channels: 1, bitsPerSample: 16 };
function wav(seconds: number): Buffer {
  const pcm = pcmTone(format, seconds);
  return Buffer.concat([wavHeader(format, pcm.length), pcm]);
}

/** fetch's BodyInit wants a plain Uint8Array view. */
const bytes = (buffer: Buffer): Uint8Array<ArrayBuffer> => Uint8Array.from(buffer);

/** A minimal Ogg Opus stream: OpusHead page and a last page whose granule position sets the length. */
function oggOpus(seconds: number, preSkip = 312): Buffer {
  const page = (granule: bigint, payload: Buffer): Buffer => {
    const header = Buffer.alloc(27);
    header.write('OggS', 0, 'ascii');
    header.writeBigInt64LE(granule, 6);
    header.writeUInt8(1, 26);
    return Buffer.concat([header, Buffer.from([payload.length]), payload]);
  };
  const head = Buffer.alloc(19);
  head.write('OpusHead', 0, 'ascii');
  head.writeUInt8(1, 8);
  head.writeUInt8(1, 9);
  head.writeUInt16LE(preSkip, 10);
  return Buffer.concat([
    page(0n, head),
    page(BigInt(Math.round(seconds * 48_000) + preSkip), Buffer.alloc(10)),
  ]);
}

const ssml = (text: string) =>
  `<speak version="1.0" xml:lang="en-US"><voice name="en-US-JennyNeural">${text}</voice></speak>`;

describe('Azure Speech simulator, REST', () => {
  const sttUrl = () => `${sim.url}/speech/recognition/conversation/cognitiveservices/v1?language=en-US`;

  it('transcribes WAV and measures its duration from the audio', async () => {
    const res = await fetch(sttUrl(), {
      method: 'POST',
      headers: {
        'Ocp-Apim-Subscription-Key': sim.key,
        'content-type': 'audio/wav; codecs=audio/pcm; samplerate=16000',
      },
      body: bytes(wav(3.25)),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      RecognitionStatus: 'Success',
      DisplayText: 'Simulated transcript of 3.25 seconds of audio.',
      Offset: 0,
      Duration: 32_500_000,
    });
  });

  it('measures Ogg Opus from its granule position', async () => {
    const res = await fetch(`${sttUrl()}&format=detailed`, {
      method: 'POST',
      headers: { 'Ocp-Apim-Subscription-Key': sim.key, 'content-type': 'audio/ogg; codecs=opus' },
      body: bytes(oggOpus(1.5)),
    });
    const body = (await res.json()) as { Duration: number; NBest: Array<{ Display: string }> };
    expect(body.Duration).toBe(15_000_000);
    expect(body.NBest[0]?.Display).toContain('1.50 seconds');
  });

  it('rejects unsupported media, undecodable audio and bad keys', async () => {
    const post = (headers: Record<string, string>, body: Buffer) =>
      fetch(sttUrl(), { method: 'POST', headers, body: bytes(body) });
    expect(
      (await post({ 'Ocp-Apim-Subscription-Key': sim.key, 'content-type': 'audio/flac' }, wav(1))).status,
    ).toBe(415);
    expect(
      (await post({ 'Ocp-Apim-Subscription-Key': sim.key, 'content-type': 'audio/wav' }, Buffer.from('nope')))
        .status,
    ).toBe(400);
    expect(
      (await post({ 'Ocp-Apim-Subscription-Key': 'wrong', 'content-type': 'audio/wav' }, wav(1))).status,
    ).toBe(401);
  });

  it('synthesizes audio whose length follows the text, in the requested format', async () => {
    const text = 'The quick brown fox jumps over the lazy dog, twice.'; // 51 characters ≈ 3.64 s
    const res = await fetch(`${sim.url}/cognitiveservices/v1`, {
      method: 'POST',
      headers: {
        'Ocp-Apim-Subscription-Key': sim.key,
        'content-type': 'application/ssml+xml',
        'X-Microsoft-OutputFormat': 'riff-24khz-16bit-mono-pcm',
      },
      body: ssml(text),
    });
    expect(res.headers.get('content-type')).toBe('audio/wav');
    const info = readWav(Buffer.from(await res.arrayBuffer()));
    expect(info?.sampleRate).toBe(24_000);
    expect(info?.durationSeconds).toBeCloseTo(51 / 14, 3);

    const mp3 = await fetch(`${sim.url}/cognitiveservices/v1`, {
      method: 'POST',
      headers: {
        'Ocp-Apim-Subscription-Key': sim.key,
        'X-Microsoft-OutputFormat': 'audio-16khz-32kbitrate-mono-mp3',
      },
      body: ssml(text),
    });
    const bytes = Buffer.from(await mp3.arrayBuffer());
    expect(bytes.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xf3]));
    expect((bytes.length / 144) * 0.036).toBeCloseTo(51 / 14, 1);
  });

  it('rejects SSML without <speak> and unknown output formats', async () => {
    const post = (format: string, body: string) =>
      fetch(`${sim.url}/cognitiveservices/v1`, {
        method: 'POST',
        headers: { 'Ocp-Apim-Subscription-Key': sim.key, 'X-Microsoft-OutputFormat': format },
        body,
      });
    expect((await post('riff-16khz-16bit-mono-pcm', 'hello')).status).toBe(400);
    expect((await post('webm-16khz-16bit-mono-opus', ssml('hi'))).status).toBe(400);
  });

  it('lists voices (the health probe)', async () => {
    const res = await fetch(`${sim.url}/cognitiveservices/voices/list`, {
      headers: { 'Ocp-Apim-Subscription-Key': sim.key },
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as unknown[]).length).toBeGreaterThan(0);
  });
});

describe('Azure Speech simulator, the Speech SDK protocol', () => {
  it('recognizes a WAV through the official SDK', async () => {
    const config = sdk.SpeechConfig.fromEndpoint(
      new URL(`ws://127.0.0.1:${sim.port}/speech/recognition/conversation/cognitiveservices/v1`),
      sim.key,
    );
    config.speechRecognitionLanguage = 'en-US';
    const recognizer = new sdk.SpeechRecognizer(config, sdk.AudioConfig.fromWavFileInput(wav(2.5)));
    try {
      const result = await new Promise<sdk.SpeechRecognitionResult>((resolve, reject) =>
        recognizer.recognizeOnceAsync(resolve, reject),
      );
      expect(result.reason).toBe(sdk.ResultReason.RecognizedSpeech);
      expect(result.text).toBe('Simulated transcript of 2.50 seconds of audio.');
      expect(result.duration).toBe(25_000_000);
    } finally {
      recognizer.close();
    }
  });

  it('synthesizes through the official SDK', async () => {
    const config = sdk.SpeechConfig.fromEndpoint(
      new URL(`ws://127.0.0.1:${sim.port}/cognitiveservices/websocket/v1`),
      sim.key,
    );
    config.speechSynthesisOutputFormat = sdk.SpeechSynthesisOutputFormat.Riff16Khz16BitMonoPcm;
    const synthesizer = new sdk.SpeechSynthesizer(config, null);
    try {
      const result = await new Promise<sdk.SpeechSynthesisResult>((resolve, reject) =>
        synthesizer.speakSsmlAsync(ssml('Twenty-eight characters, ok.'), resolve, reject),
      );
      expect(result.reason).toBe(sdk.ResultReason.SynthesizingAudioCompleted);
      const info = readWav(Buffer.from(result.audioData));
      expect(info?.durationSeconds).toBeCloseTo(28 / 14, 3);
    } finally {
      synthesizer.close();
    }
  });

  it('refuses a WebSocket connection without a valid key', async () => {
    const config = sdk.SpeechConfig.fromEndpoint(
      new URL(`ws://127.0.0.1:${sim.port}/speech/recognition/conversation/cognitiveservices/v1`),
      'wrong',
    );
    const recognizer = new sdk.SpeechRecognizer(config, sdk.AudioConfig.fromWavFileInput(wav(1)));
    try {
      const result = await new Promise<sdk.SpeechRecognitionResult>((resolve, reject) =>
        recognizer.recognizeOnceAsync(resolve, reject),
      );
      expect(result.reason).toBe(sdk.ResultReason.Canceled);
    } finally {
      recognizer.close();
    }
  });
});
