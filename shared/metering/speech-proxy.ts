import * as sdk from 'microsoft-cognitiveservices-speech-sdk';
import { request as undiciRequest } from 'undici';
import type { Attribution } from './attribution';
import { oggOpusDurationSeconds, readWav } from './audio';
import { ApiError, badRequest } from './errors';
import { billableCharacters, escapeXml, spokenText } from './speech-billing';
import type { UsageEvent, UsageFigures } from './usage';
import { usageEventFor } from './usage-event';

/**
 * Azure Speech, proxied and metered: speech-to-text for short audio and text-to-speech. Audio
 * seconds are measured from the audio itself; billable characters follow Azure's rules.
 */

export interface SpeechTarget {
  /** Regional host (`https://<region>.api.cognitive.microsoft.com`-style) or the local simulator. */
  endpoint?: string;
  region?: string;
  key?: string;
}

export interface SpeechLimits {
  maxAudioBytes: number;
  maxAudioSeconds: number;
  maxCharacters: number;
}

export interface SpeechCallContext {
  attribution: Attribution;
  correlationId: string;
  startedAt: number;
  record: (event: UsageEvent) => Promise<void>;
  target: SpeechTarget;
  limits: SpeechLimits;
}

export interface SpeechResult {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array<ArrayBuffer> | string;
}

const DEFAULT_VOICE = 'en-US-JennyNeural';
const DEFAULT_OUTPUT_FORMAT = 'riff-24khz-16bit-mono-pcm';

/** Output formats offered, by their `X-Microsoft-OutputFormat` name, with what we need to meter them. */
const OUTPUT_FORMATS: Record<
  string,
  { sdk: sdk.SpeechSynthesisOutputFormat; contentType: string; bytesPerSecond?: number; riff?: boolean }
> = {
  'riff-16khz-16bit-mono-pcm': {
    sdk: sdk.SpeechSynthesisOutputFormat.Riff16Khz16BitMonoPcm,
    contentType: 'audio/wav',
    riff: true,
  },
  'riff-24khz-16bit-mono-pcm': {
    sdk: sdk.SpeechSynthesisOutputFormat.Riff24Khz16BitMonoPcm,
    contentType: 'audio/wav',
    riff: true,
  },
  'raw-16khz-16bit-mono-pcm': {
    sdk: sdk.SpeechSynthesisOutputFormat.Raw16Khz16BitMonoPcm,
    contentType: 'audio/basic',
    bytesPerSecond: 32_000,
  },
  'raw-24khz-16bit-mono-pcm': {
    sdk: sdk.SpeechSynthesisOutputFormat.Raw24Khz16BitMonoPcm,
    contentType: 'audio/basic',
    bytesPerSecond: 48_000,
  },
  'audio-16khz-32kbitrate-mono-mp3': {
    sdk: sdk.SpeechSynthesisOutputFormat.Audio16Khz32KBitRateMonoMp3,
    contentType: 'audio/mpeg',
    bytesPerSecond: 4_000,
  },
  'audio-24khz-48kbitrate-mono-mp3': {
    sdk: sdk.SpeechSynthesisOutputFormat.Audio24Khz48KBitRateMonoMp3,
    contentType: 'audio/mpeg',
    bytesPerSecond: 6_000,
  },
};

function websocketUrl(target: SpeechTarget, service: 'stt' | 'tts'): URL {
  const path =
    service === 'stt'
      ? '/speech/recognition/conversation/cognitiveservices/v1'
      : '/cognitiveservices/websocket/v1';
  if (target.endpoint) return new URL(path, target.endpoint.replace(/^http/, 'ws'));
  return new URL(`wss://${target.region}.${service}.speech.microsoft.com${path}`);
}

function restBase(target: SpeechTarget): string {
  return target.endpoint ?? `https://${target.region}.stt.speech.microsoft.com`;
}

function speechConfig(target: SpeechTarget, service: 'stt' | 'tts'): sdk.SpeechConfig {
  if (!target.key) {
    throw new ApiError(500, 'ConfigurationError', 'SPEECH_KEY is required for Azure Speech calls.');
  }
  return sdk.SpeechConfig.fromEndpoint(websocketUrl(target, service), target.key);
}

function usageEvent(
  context: SpeechCallContext,
  api: 'stt' | 'tts',
  deployment: string,
  figures: Partial<UsageFigures>,
): UsageEvent {
  const model = api === 'stt' ? 'azure-speech-stt-standard' : 'azure-speech-tts-neural';
  return usageEventFor(context, {
    api,
    deployment,
    model,
    figures,
    status: 200,
    streamed: false,
    estimated: false,
  });
}

// ---- speech-to-text ---------------------------------------------------------------------------------

export interface RecognitionRequest {
  contentType: string | null;
  audio: Uint8Array<ArrayBuffer>;
  language: string | null;
  format: string | null;
}

export async function recognizeShortAudio(
  request: RecognitionRequest,
  context: SpeechCallContext,
): Promise<SpeechResult> {
  const language = request.language ?? '';
  if (!/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/.test(language)) {
    throw badRequest("The 'language' query parameter is required, e.g. language=en-US.", 'language');
  }
  const format = request.format ?? 'simple';
  if (format !== 'simple' && format !== 'detailed')
    throw badRequest("'format' must be 'simple' or 'detailed'.", 'format');
  if (request.audio.byteLength === 0) throw badRequest('The request has no audio.');
  const audio = Buffer.from(request.audio.buffer, request.audio.byteOffset, request.audio.byteLength);
  const type = (request.contentType ?? '').toLowerCase();

  let seconds: number | undefined;
  let answer: Record<string, unknown>;
  if (type.startsWith('audio/wav') || type.startsWith('audio/x-wav')) {
    const wav = readWav(audio);
    if (!wav) throw badRequest('The audio is not a RIFF/WAVE file.');
    if (
      wav.bitsPerSample !== 16 ||
      wav.channels !== 1 ||
      ![8000, 16000, 24000, 48000].includes(wav.sampleRate)
    ) {
      throw new ApiError(
        415,
        'UnsupportedMediaType',
        'WAV audio must be 16-bit mono PCM at 8, 16, 24 or 48 kHz.',
      );
    }
    seconds = wav.durationSeconds;
    checkDuration(seconds, context.limits);
    answer = await recognizeWithSdk(
      audio.subarray(wav.dataOffset, wav.dataOffset + wav.dataBytes),
      wav,
      language,
      format,
      context.target,
    );
  } else if (type.startsWith('audio/ogg')) {
    seconds = oggOpusDurationSeconds(audio);
    if (seconds === undefined) throw badRequest('The audio is not an Ogg Opus stream.');
    checkDuration(seconds, context.limits);
    // The JavaScript Speech SDK cannot decode compressed audio; the short-audio REST API can.
    answer = await recognizeWithRest(
      audio,
      request.contentType ?? 'audio/ogg; codecs=opus',
      language,
      format,
      context.target,
    );
  } else {
    throw new ApiError(
      415,
      'UnsupportedMediaType',
      "Audio must be 'audio/wav; codecs=audio/pcm' or 'audio/ogg; codecs=opus'.",
    );
  }
  await context.record(usageEvent(context, 'stt', `stt-${language}`, { audioSeconds: round(seconds) }));
  return {
    status: 200,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify(answer),
  };
}

function checkDuration(seconds: number, limits: SpeechLimits): void {
  if (seconds > limits.maxAudioSeconds) {
    throw badRequest(`The audio lasts ${seconds.toFixed(1)} s; the limit is ${limits.maxAudioSeconds} s.`);
  }
}

async function recognizeWithSdk(
  pcm: Buffer,
  wav: { sampleRate: number; bitsPerSample: number; channels: number },
  language: string,
  format: string,
  target: SpeechTarget,
): Promise<Record<string, unknown>> {
  const config = speechConfig(target, 'stt');
  config.speechRecognitionLanguage = language;
  config.outputFormat = format === 'detailed' ? sdk.OutputFormat.Detailed : sdk.OutputFormat.Simple;
  const stream = sdk.AudioInputStream.createPushStream(
    sdk.AudioStreamFormat.getWaveFormatPCM(wav.sampleRate, wav.bitsPerSample, wav.channels),
  );
  stream.write(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.byteLength) as ArrayBuffer);
  stream.close();
  const recognizer = new sdk.SpeechRecognizer(config, sdk.AudioConfig.fromStreamInput(stream));
  try {
    const result = await new Promise<sdk.SpeechRecognitionResult>((resolve, reject) =>
      recognizer.recognizeOnceAsync(resolve, reject),
    );
    if (result.reason === sdk.ResultReason.Canceled) {
      const details = sdk.CancellationDetails.fromResult(result);
      throw new ApiError(
        502,
        'UpstreamError',
        `Azure Speech cancelled the recognition: ${details.errorDetails}`,
      );
    }
    const json = result.properties.getProperty(sdk.PropertyId.SpeechServiceResponse_JsonResult);
    return json ? (JSON.parse(json) as Record<string, unknown>) : { RecognitionStatus: 'NoMatch' };
  } finally {
    recognizer.close();
  }
}

async function recognizeWithRest(
  audio: Buffer,
  contentType: string,
  language: string,
  format: string,
  target: SpeechTarget,
): Promise<Record<string, unknown>> {
  const url = `${restBase(target)}/speech/recognition/conversation/cognitiveservices/v1?language=${encodeURIComponent(language)}&format=${format}`;
  const response = await undiciRequest(url, {
    method: 'POST',
    headers: { 'content-type': contentType, 'Ocp-Apim-Subscription-Key': target.key ?? '' },
    body: audio,
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  });
  const text = await response.body.text();
  if (response.statusCode !== 200) {
    throw new ApiError(
      response.statusCode >= 500 ? 502 : response.statusCode,
      'UpstreamError',
      `Azure Speech answered ${response.statusCode}: ${text}`,
    );
  }
  return JSON.parse(text) as Record<string, unknown>;
}

// ---- text-to-speech ---------------------------------------------------------------------------------

export interface SynthesisRequest {
  contentType: string | null;
  body: string;
  outputFormat: string | null;
  voice: string | null;
}

export async function synthesizeSpeech(
  request: SynthesisRequest,
  context: SpeechCallContext,
): Promise<SpeechResult> {
  const formatName = request.outputFormat ?? DEFAULT_OUTPUT_FORMAT;
  const format = OUTPUT_FORMATS[formatName];
  if (!format) {
    throw badRequest(
      `Unsupported X-Microsoft-OutputFormat '${formatName}'. Supported: ${Object.keys(OUTPUT_FORMATS).join(', ')}.`,
      'X-Microsoft-OutputFormat',
    );
  }
  const type = (request.contentType ?? '').toLowerCase();
  let ssml: string;
  if (type.startsWith('application/ssml+xml')) {
    ssml = request.body;
  } else if (type.startsWith('text/plain')) {
    const voice = request.voice ?? DEFAULT_VOICE;
    if (!/^[a-z]{2,3}-[A-Za-z]{2,4}-[A-Za-z0-9]+Neural$/.test(voice))
      throw badRequest(`'${voice}' is not a neural voice name.`, 'voice');
    const locale = voice.split('-').slice(0, 2).join('-');
    ssml = `<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="${locale}"><voice name="${voice}">${escapeXml(request.body)}</voice></speak>`;
  } else {
    throw new ApiError(
      415,
      'UnsupportedMediaType',
      "Send SSML as 'application/ssml+xml' or text as 'text/plain'.",
    );
  }
  const text = spokenText(ssml);
  if (text.length === 0) throw badRequest('There is no text to speak.');
  const characters = billableCharacters(text);
  if (characters > context.limits.maxCharacters) {
    throw badRequest(
      `The text has ${characters} billable characters; the limit is ${context.limits.maxCharacters}.`,
    );
  }

  const config = speechConfig(context.target, 'tts');
  config.speechSynthesisOutputFormat = format.sdk;
  const synthesizer = new sdk.SpeechSynthesizer(config, null);
  let audio: Buffer;
  try {
    const result = await new Promise<sdk.SpeechSynthesisResult>((resolve, reject) =>
      synthesizer.speakSsmlAsync(ssml, resolve, reject),
    );
    if (result.reason !== sdk.ResultReason.SynthesizingAudioCompleted) {
      throw new ApiError(
        502,
        'UpstreamError',
        `Azure Speech did not synthesize the text: ${result.errorDetails}`,
      );
    }
    audio = Buffer.from(result.audioData);
  } finally {
    synthesizer.close();
  }
  const seconds = format.riff
    ? (readWav(audio)?.durationSeconds ?? 0)
    : audio.length / (format.bytesPerSecond ?? 1);
  await context.record(
    usageEvent(context, 'tts', 'tts-neural', {
      billableCharacters: characters,
      audioSeconds: round(seconds),
    }),
  );
  return {
    status: 200,
    headers: { 'content-type': format.contentType },
    body: new Uint8Array(
      audio.buffer.slice(audio.byteOffset, audio.byteOffset + audio.byteLength) as ArrayBuffer,
    ),
  };
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
