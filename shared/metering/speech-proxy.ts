import { ApiError, badRequest } from '../contracts/api-errors';
import type { UsageEvent, UsageFigures } from '../contracts/usage-event';
import type { Attribution } from './attribution';
import { oggOpusDurationSeconds, readWav } from './audio';
import type { BudgetHold, RequestBudget } from './budget';
import { usageEventFor } from './served-usage';
import { billableCharacters, escapeXml, spokenText } from './speech-billing';

/**
 * Azure Speech, proxied and metered: speech-to-text for short audio and text-to-speech. Audio
 * seconds are measured from the audio itself; billable characters follow Azure's rules. The calls
 * themselves go through a SpeechUpstream (adapters/speech-upstream.ts: the Speech SDK and REST).
 */

export interface SpeechLimits {
  maxAudioBytes: number;
  maxAudioSeconds: number;
  maxCharacters: number;
}

export interface PcmAudioFormat {
  sampleRate: number;
  bitsPerSample: number;
  channels: number;
}

export type RecognitionFormat = 'simple' | 'detailed';

/** Azure Speech: recognition of short audio and synthesis, answered as the service answers. */
export interface SpeechUpstream {
  /** Recognises 16-bit PCM samples (the Speech SDK). */
  recognizePcm(
    pcm: Buffer,
    format: PcmAudioFormat,
    language: string,
    outputFormat: RecognitionFormat,
  ): Promise<Record<string, unknown>>;
  /** Recognises compressed audio (the short-audio REST API: the JavaScript SDK cannot decode it). */
  recognizeCompressed(
    audio: Buffer,
    contentType: string,
    language: string,
    outputFormat: RecognitionFormat,
  ): Promise<Record<string, unknown>>;
  /** Synthesises SSML into one of SPEECH_OUTPUT_FORMATS. */
  synthesize(ssml: string, outputFormat: SpeechOutputFormat): Promise<Buffer>;
}

export interface SpeechCallContext {
  attribution: Attribution;
  correlationId: string;
  startedAt: number;
  record: (event: UsageEvent) => Promise<void>;
  upstream: SpeechUpstream;
  limits: SpeechLimits;
  /** Monthly budgets, checked before the upstream is called (none: no budgets are checked). */
  budget?: RequestBudget;
}

export interface SpeechResult {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array<ArrayBuffer> | string;
}

const DEFAULT_VOICE = 'en-US-JennyNeural';
const DEFAULT_OUTPUT_FORMAT: SpeechOutputFormat = 'riff-24khz-16bit-mono-pcm';

/** Output formats offered, by their `X-Microsoft-OutputFormat` name, with what we need to meter them. */
export const SPEECH_OUTPUT_FORMATS = {
  'riff-16khz-16bit-mono-pcm': { contentType: 'audio/wav', riff: true, bytesPerSecond: 32_000 },
  'riff-24khz-16bit-mono-pcm': { contentType: 'audio/wav', riff: true, bytesPerSecond: 48_000 },
  'raw-16khz-16bit-mono-pcm': { contentType: 'audio/basic', bytesPerSecond: 32_000 },
  'raw-24khz-16bit-mono-pcm': { contentType: 'audio/basic', bytesPerSecond: 48_000 },
  'audio-16khz-32kbitrate-mono-mp3': { contentType: 'audio/mpeg', bytesPerSecond: 4_000 },
  'audio-24khz-48kbitrate-mono-mp3': { contentType: 'audio/mpeg', bytesPerSecond: 6_000 },
} as const satisfies Record<string, { contentType: string; bytesPerSecond?: number; riff?: boolean }>;

export type SpeechOutputFormat = keyof typeof SPEECH_OUTPUT_FORMATS;

function isOutputFormat(name: string): name is SpeechOutputFormat {
  return Object.hasOwn(SPEECH_OUTPUT_FORMATS, name);
}

const SPEECH_MODELS = { stt: 'azure-speech-stt-standard', tts: 'azure-speech-tts-neural' } as const;

function usageEvent(
  context: SpeechCallContext,
  api: 'stt' | 'tts',
  deployment: string,
  figures: Partial<UsageFigures>,
): UsageEvent {
  return usageEventFor(context, {
    api,
    deployment,
    model: SPEECH_MODELS[api],
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

/** A language tag: language, then at most three subtags (script, region, variant). */
const LANGUAGE_TAG = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$/;
/** A neural voice name: locale, then a name of at most 48 characters ending in Neural. */
const NEURAL_VOICE = /^[a-z]{2,3}-[A-Za-z]{2,4}-[A-Za-z0-9]{1,48}Neural$/;

export async function recognizeShortAudio(
  request: RecognitionRequest,
  context: SpeechCallContext,
): Promise<SpeechResult> {
  const language = request.language ?? '';
  // A BCP 47 tag as Azure Speech takes them (e.g. en-US, zh-Hans-CN, sr-Latn-RS): it becomes part
  // of the recorded deployment name, so it is bounded.
  if (!LANGUAGE_TAG.test(language)) {
    throw badRequest(
      "The 'language' query parameter is required: a language tag such as en-US (at most 3 subtags after the language).",
      'language',
    );
  }
  const format = request.format ?? 'simple';
  if (format !== 'simple' && format !== 'detailed')
    throw badRequest("'format' must be 'simple' or 'detailed'.", 'format');
  if (request.audio.byteLength === 0) throw badRequest('The request has no audio.');
  const audio = Buffer.from(request.audio.buffer, request.audio.byteOffset, request.audio.byteLength);
  const type = (request.contentType ?? '').toLowerCase();

  let seconds: number;
  let recognize: () => Promise<Record<string, unknown>>;
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
    recognize = () =>
      context.upstream.recognizePcm(
        audio.subarray(wav.dataOffset, wav.dataOffset + wav.dataBytes),
        wav,
        language,
        format,
      );
  } else if (type.startsWith('audio/ogg')) {
    const duration = oggOpusDurationSeconds(audio);
    if (duration === undefined) throw badRequest('The audio is not an Ogg Opus stream.');
    seconds = duration;
    checkDuration(seconds, context.limits);
    // The JavaScript Speech SDK cannot decode compressed audio; the short-audio REST API can.
    recognize = () =>
      context.upstream.recognizeCompressed(
        audio,
        request.contentType ?? 'audio/ogg; codecs=opus',
        language,
        format,
      );
  } else {
    throw new ApiError(
      415,
      'UnsupportedMediaType',
      "Audio must be 'audio/wav; codecs=audio/pcm' or 'audio/ogg; codecs=opus'.",
    );
  }
  // The audio's length is known before the call: it is what the budgets are checked against.
  const figures = { audioSeconds: round(seconds) };
  const deployment = `stt-${language}`;
  const { result: answer, hold } = await budgeted(context, 'stt', deployment, figures, recognize);
  const event = usageEvent(context, 'stt', deployment, figures);
  await context.record(event);
  await hold?.settle(event);
  return {
    status: 200,
    headers: { 'content-type': 'application/json; charset=utf-8', ...hold?.headers },
    body: JSON.stringify(answer),
  };
}

/**
 * Checks the request's budgets (a refusal throws, before the upstream is called), then calls the
 * upstream; a failed call releases the hold (nothing was served).
 */
async function budgeted<T>(
  context: SpeechCallContext,
  api: 'stt' | 'tts',
  deployment: string,
  figures: Partial<UsageFigures>,
  call: () => Promise<T>,
): Promise<{ result: T; hold: BudgetHold | undefined }> {
  const hold = await context.budget?.reserve({
    attribution: context.attribution,
    api,
    deployment,
    model: SPEECH_MODELS[api],
    figures,
  });
  try {
    return { result: await call(), hold };
  } catch (error) {
    await hold?.settle(undefined);
    throw error;
  }
}

function checkDuration(seconds: number, limits: SpeechLimits): void {
  if (seconds > limits.maxAudioSeconds) {
    throw badRequest(`The audio lasts ${seconds.toFixed(1)} s; the limit is ${limits.maxAudioSeconds} s.`);
  }
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
  if (!isOutputFormat(formatName)) {
    throw badRequest(
      `Unsupported X-Microsoft-OutputFormat '${formatName}'. Supported: ${Object.keys(SPEECH_OUTPUT_FORMATS).join(', ')}.`,
      'X-Microsoft-OutputFormat',
    );
  }
  const format: { contentType: string; bytesPerSecond?: number; riff?: boolean } =
    SPEECH_OUTPUT_FORMATS[formatName];
  const type = (request.contentType ?? '').toLowerCase();
  let ssml: string;
  if (type.startsWith('application/ssml+xml')) {
    ssml = request.body;
  } else if (type.startsWith('text/plain')) {
    const voice = request.voice ?? DEFAULT_VOICE;
    if (!NEURAL_VOICE.test(voice)) {
      throw badRequest("'voice' must be a neural voice name such as en-US-JennyNeural.", 'voice');
    }
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

  // The billable characters are known before the call: they are what the budgets are checked against.
  const { result: audio, hold } = await budgeted(
    context,
    'tts',
    'tts-neural',
    { billableCharacters: characters },
    () => context.upstream.synthesize(ssml, formatName),
  );
  const seconds = synthesizedSeconds(audio, format);
  const event = usageEvent(context, 'tts', 'tts-neural', {
    billableCharacters: characters,
    audioSeconds: round(seconds),
  });
  await context.record(event);
  await hold?.settle(event);
  return {
    status: 200,
    headers: { 'content-type': format.contentType, ...hold?.headers },
    body: new Uint8Array(
      audio.buffer.slice(audio.byteOffset, audio.byteOffset + audio.byteLength) as ArrayBuffer,
    ),
  };
}

/**
 * How long the synthesized audio lasts (telemetry: synthesis is billed by characters). The audio
 * is the service's, already charged for: a WAV the strict reader refuses is estimated from its
 * size rather than failing the served request.
 */
function synthesizedSeconds(audio: Buffer, format: { riff?: boolean; bytesPerSecond?: number }): number {
  const estimate = (): number => audio.length / (format.bytesPerSecond ?? 1);
  if (!format.riff) return estimate();
  try {
    return readWav(audio)?.durationSeconds ?? estimate();
  } catch {
    return estimate();
  }
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
