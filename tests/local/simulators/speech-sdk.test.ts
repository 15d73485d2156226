import * as sdk from 'microsoft-cognitiveservices-speech-sdk';
import { WebsocketMessageAdapter } from 'microsoft-cognitiveservices-speech-sdk/distrib/lib/src/common.browser/WebsocketMessageAdapter.js';
import { pcmTone, wavHeader } from '../../../local/simulators/audio';
import { FAULT_HEADER } from '../../../local/simulators/faults';
import type { SpeechSimulator } from '../../../local/simulators/speech';
import { startSpeechSimulator } from '../../../local/simulators/speech';
import { readWav } from '../../../shared/metering/audio';

/**
 * The official Speech SDK against the simulator's WebSocket protocol, with the SDK's Node WebSocket
 * client (`ws`), as the app uses it (shared/adapters/speech-upstream.ts). On Node 22 the SDK would
 * otherwise take Node's built-in WebSocket, on which a refused connection never cancels.
 */
WebsocketMessageAdapter.forceNpmWebSocket = true;

let sim: SpeechSimulator;
beforeAll(async () => {
  sim = await startSpeechSimulator();
});
afterAll(() => sim.close());

const format = { sampleRate: 16_000, channels: 1, bitsPerSample: 16 };
/** PCM of tone (speech) and silence: a number is seconds of tone, `{ silence }` seconds of silence. */
function pcm(...parts: Array<number | { silence: number }>): Buffer {
  return Buffer.concat(
    parts.map((part) =>
      typeof part === 'number'
        ? pcmTone(format, part)
        : Buffer.alloc(Math.round(format.sampleRate * part.silence) * 2),
    ),
  );
}
function wav(...parts: Array<number | { silence: number }>): Buffer {
  const samples = pcm(...parts);
  return Buffer.concat([wavHeader(format, samples.length), samples]);
}

const ssml = (text: string) =>
  `<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="en-US"><voice name="en-US-JennyNeural">${text}</voice></speak>`;

const recognitionEndpoint = () =>
  new URL(`ws://127.0.0.1:${sim.port}/speech/recognition/conversation/cognitiveservices/v1`);
const synthesisEndpoint = () => new URL(`ws://127.0.0.1:${sim.port}/cognitiveservices/websocket/v1`);

async function recognizeOnce(config: sdk.SpeechConfig, audio: sdk.AudioConfig) {
  const recognizer = new sdk.SpeechRecognizer(config, audio);
  try {
    return await new Promise<sdk.SpeechRecognitionResult>((resolve, reject) =>
      recognizer.recognizeOnceAsync(resolve, reject),
    );
  } finally {
    recognizer.close();
  }
}

async function speak(config: sdk.SpeechConfig, text: string, setup?: (s: sdk.SpeechSynthesizer) => void) {
  const synthesizer = new sdk.SpeechSynthesizer(config, null);
  setup?.(synthesizer);
  try {
    return await new Promise<sdk.SpeechSynthesisResult>((resolve, reject) =>
      synthesizer.speakSsmlAsync(ssml(text), resolve, reject),
    );
  } finally {
    synthesizer.close();
  }
}

describe('recognition', () => {
  it('recognizes a WAV once, with Offset and Duration from the audio received', async () => {
    const config = sdk.SpeechConfig.fromEndpoint(recognitionEndpoint(), sim.key);
    config.speechRecognitionLanguage = 'en-US';
    const result = await recognizeOnce(config, sdk.AudioConfig.fromWavFileInput(wav(2.5)));
    expect(result.reason).toBe(sdk.ResultReason.RecognizedSpeech);
    expect(result.text).toBe('Simulated transcript of 2.50 seconds of audio.');
    expect(result.offset).toBe(0);
    expect(result.duration).toBe(25_000_000);
  });

  it('skips leading silence and returns the detailed format when asked', async () => {
    const config = sdk.SpeechConfig.fromEndpoint(recognitionEndpoint(), sim.key);
    config.outputFormat = sdk.OutputFormat.Detailed;
    const result = await recognizeOnce(config, sdk.AudioConfig.fromWavFileInput(wav({ silence: 1 }, 2)));
    expect(result.offset).toBe(10_000_000);
    expect(result.duration).toBe(20_000_000);
    const json = JSON.parse(result.json) as { NBest: Array<{ Display: string; Confidence: number }> };
    expect(json.NBest[0]).toMatchObject({ Display: 'Simulated transcript of 2.00 seconds of audio.' });
  });

  it('answers NoMatch (initial silence) for audio without speech', async () => {
    const config = sdk.SpeechConfig.fromEndpoint(recognitionEndpoint(), sim.key);
    const result = await recognizeOnce(config, sdk.AudioConfig.fromWavFileInput(wav({ silence: 1.5 })));
    expect(result.reason).toBe(sdk.ResultReason.NoMatch);
    expect(sdk.NoMatchDetails.fromResult(result).reason).toBe(sdk.NoMatchReason.InitialSilenceTimeout);
  });

  it('recognizes raw PCM from a push stream', async () => {
    const stream = sdk.AudioInputStream.createPushStream(
      sdk.AudioStreamFormat.getWaveFormatPCM(16_000, 16, 1),
    );
    const audio = pcm(1.25);
    stream.write(Uint8Array.from(audio).buffer);
    stream.close();
    const config = sdk.SpeechConfig.fromEndpoint(recognitionEndpoint(), sim.key);
    const result = await recognizeOnce(config, sdk.AudioConfig.fromStreamInput(stream));
    expect(result.text).toBe('Simulated transcript of 1.25 seconds of audio.');
  });

  it('segments continuous recognition into phrases at pauses (fromHost, the universal endpoint)', async () => {
    const config = sdk.SpeechConfig.fromHost(new URL(`ws://127.0.0.1:${sim.port}`), sim.key);
    config.speechRecognitionLanguage = 'en-US';
    const recognizer = new sdk.SpeechRecognizer(
      config,
      sdk.AudioConfig.fromWavFileInput(wav(1.5, { silence: 1 }, 2, { silence: 0.2 })),
    );
    const phrases: Array<{ text: string; offset: number; duration: number }> = [];
    let hypotheses = 0;
    const stopped = new Promise<void>((resolve) => {
      recognizer.recognizing = () => (hypotheses += 1);
      recognizer.recognized = (_s, e) => {
        if (e.result.reason === sdk.ResultReason.RecognizedSpeech) {
          phrases.push({ text: e.result.text, offset: e.result.offset, duration: e.result.duration });
        }
      };
      recognizer.sessionStopped = () => resolve();
      recognizer.canceled = () => resolve();
    });
    try {
      await new Promise<void>((resolve, reject) =>
        recognizer.startContinuousRecognitionAsync(resolve, reject),
      );
      await stopped;
      await new Promise<void>((resolve, reject) =>
        recognizer.stopContinuousRecognitionAsync(resolve, reject),
      );
    } finally {
      recognizer.close();
    }
    expect(phrases).toEqual([
      { text: 'Simulated transcript of 1.50 seconds of audio.', offset: 0, duration: 15_000_000 },
      { text: 'Simulated transcript of 2.00 seconds of audio.', offset: 25_000_000, duration: 20_000_000 },
    ]);
    expect(hypotheses).toBeGreaterThan(0);
  });

  it('cancels with an error for a wrong key', async () => {
    const config = sdk.SpeechConfig.fromEndpoint(recognitionEndpoint(), 'wrong');
    const result = await recognizeOnce(config, sdk.AudioConfig.fromWavFileInput(wav(1)));
    expect(result.reason).toBe(sdk.ResultReason.Canceled);
    expect(sdk.CancellationDetails.fromResult(result).reason).toBe(sdk.CancellationReason.Error);
  });

  it('takes a fault per connection as a query parameter: 429 and a cut connection cancel', async () => {
    for (const fault of ['429', 'cut']) {
      const config = sdk.SpeechConfig.fromEndpoint(recognitionEndpoint(), sim.key);
      config.setServiceProperty(FAULT_HEADER, fault, sdk.ServicePropertyChannel.UriQueryParameter);
      const result = await recognizeOnce(config, sdk.AudioConfig.fromWavFileInput(wav(1)));
      expect(result.reason).toBe(sdk.ResultReason.Canceled);
      expect(sdk.CancellationDetails.fromResult(result).errorDetails).toMatch(fault === '429' ? /429/ : /./);
    }
  });
});

describe('synthesis', () => {
  it('synthesizes SSML to WAV whose length follows the text, with the SDK audioDuration', async () => {
    const config = sdk.SpeechConfig.fromEndpoint(synthesisEndpoint(), sim.key);
    config.speechSynthesisOutputFormat = sdk.SpeechSynthesisOutputFormat.Riff16Khz16BitMonoPcm;
    const result = await speak(config, 'Twenty-eight characters, ok.');
    expect(result.reason).toBe(sdk.ResultReason.SynthesizingAudioCompleted);
    const info = readWav(Buffer.from(result.audioData));
    expect(info?.sampleRate).toBe(16_000);
    expect(info?.durationSeconds).toBeCloseTo(28 / 14, 3);
    expect(result.audioDuration).toBe(20_000_000);
  });

  it('streams MP3 and reports word boundaries (fromHost, the tts endpoint)', async () => {
    const config = sdk.SpeechConfig.fromHost(new URL(`ws://127.0.0.1:${sim.port}`), sim.key);
    config.speechSynthesisOutputFormat = sdk.SpeechSynthesisOutputFormat.Audio24Khz48KBitRateMonoMp3;
    const words: Array<{ text: string; offset: number }> = [];
    let chunks = 0;
    const result = await speak(config, 'Budgets are <break time="1s"/> checked daily.', (synthesizer) => {
      synthesizer.wordBoundary = (_s, e) => words.push({ text: e.text, offset: e.audioOffset });
      synthesizer.synthesizing = () => (chunks += 1);
    });
    expect(result.reason).toBe(sdk.ResultReason.SynthesizingAudioCompleted);
    const audio = Buffer.from(result.audioData);
    expect(audio.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xf3]));
    expect(chunks).toBeGreaterThan(0);
    // "Budgets are" (11) and "checked daily." (14) characters, with a one-second break between.
    expect(result.audioDuration / 10_000_000).toBeCloseTo(25 / 14 + 1, 3);
    expect(words.map((w) => w.text)).toEqual(['Budgets', 'are', 'checked', 'daily']);
    expect((words[2]?.offset ?? 0) / 10_000_000).toBeCloseTo(11 / 14 + 1, 3);
  });

  it('speaks plain text through the SDK wrapper', async () => {
    const config = sdk.SpeechConfig.fromEndpoint(synthesisEndpoint(), sim.key);
    config.speechSynthesisOutputFormat = sdk.SpeechSynthesisOutputFormat.Raw24Khz16BitMonoPcm;
    config.speechSynthesisVoiceName = 'en-GB-SoniaNeural';
    const synthesizer = new sdk.SpeechSynthesizer(config, null);
    try {
      const result = await new Promise<sdk.SpeechSynthesisResult>((resolve, reject) =>
        synthesizer.speakTextAsync('Seven.', resolve, reject),
      );
      expect(result.reason).toBe(sdk.ResultReason.SynthesizingAudioCompleted);
      // 6 characters are under the half-second minimum the service returns.
      expect(result.audioData.byteLength / 48_000).toBeCloseTo(0.5, 3);
    } finally {
      synthesizer.close();
    }
  });

  it('cancels on bad SSML, an unsupported format and a cut connection', async () => {
    const config = sdk.SpeechConfig.fromEndpoint(synthesisEndpoint(), sim.key);
    const bad = new sdk.SpeechSynthesizer(config, null);
    try {
      const result = await new Promise<sdk.SpeechSynthesisResult>((resolve, reject) =>
        bad.speakSsmlAsync('<speak><voice>unclosed</speak>', resolve, reject),
      );
      expect(result.reason).toBe(sdk.ResultReason.Canceled);
      expect(sdk.CancellationDetails.fromResult(result).errorDetails).toMatch(/1007/);
    } finally {
      bad.close();
    }
    // The SDK's synthesis connection ignores service properties: the fault goes in the endpoint URL.
    const cutEndpoint = synthesisEndpoint();
    cutEndpoint.searchParams.set(FAULT_HEADER, 'cut');
    const webm = sdk.SpeechConfig.fromEndpoint(synthesisEndpoint(), sim.key);
    webm.speechSynthesisOutputFormat = sdk.SpeechSynthesisOutputFormat.Webm24Khz16BitMonoOpus;
    const unsupported = await speak(webm, 'Not in this format.');
    expect(unsupported.reason).toBe(sdk.ResultReason.Canceled);
    expect(sdk.CancellationDetails.fromResult(unsupported).errorDetails).toMatch(/Unsupported output format/);
    const cutConfig = sdk.SpeechConfig.fromEndpoint(cutEndpoint, sim.key);
    const cut = await speak(
      cutConfig,
      'This sentence is long enough to need more than one chunk of audio data.',
    );
    expect(cut.reason).toBe(sdk.ResultReason.Canceled);
  });
});

describe('stats', () => {
  it('counts the seconds recognized and synthesized over the WebSocket', async () => {
    const local = await startSpeechSimulator();
    try {
      const recognition = sdk.SpeechConfig.fromEndpoint(
        new URL(`ws://127.0.0.1:${local.port}/speech/recognition/interactive/cognitiveservices/v1`),
        local.key,
      );
      await recognizeOnce(recognition, sdk.AudioConfig.fromWavFileInput(wav(1.75)));
      const synthesis = sdk.SpeechConfig.fromEndpoint(
        new URL(`ws://127.0.0.1:${local.port}/cognitiveservices/websocket/v1`),
        local.key,
      );
      await speak(synthesis, 'Fourteen chars');
      expect(local.stats).toMatchObject({
        recognizedSeconds: 1.75,
        synthesizedSeconds: 1,
        synthesizedCharacters: 14,
      });
    } finally {
      await local.close();
    }
  });
});
