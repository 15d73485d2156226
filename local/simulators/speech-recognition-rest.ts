import type http from 'node:http';
import { ApiError } from '../../shared/contracts/api-errors';
import { oggOpusDurationSeconds, readWav } from '../../shared/metering/audio';
import { sendJson } from './http';
import { badRequest, SpeechError } from './speech-errors';
import { recognitionResult } from './speech-recognition';
import type { RestAnswer } from './speech-session';
import { SpeechSegmenter, TICKS_PER_SECOND } from './speech-vad';

/**
 * Speech-to-text for short audio (`POST /speech/recognition/{mode}/cognitiveservices/v1?language=…`):
 * WAV/PCM, segmented by energy, answered with its first phrase; Ogg Opus is not decoded, its whole
 * length (from the granule position) counts as one phrase. The audio received is what is billed.
 */

const LANGUAGE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;

/** Validates a short-audio request and recognizes it; the answer returned sends the result. */
export function restRecognition(req: http.IncomingMessage, url: URL, body: Buffer): RestAnswer {
  const language = url.searchParams.get('language');
  if (!language) throw badRequest("The 'language' query parameter is required.");
  if (!LANGUAGE.test(language)) throw badRequest(`Unsupported language '${language}'.`);
  const format = url.searchParams.get('format') ?? 'simple';
  if (format !== 'simple' && format !== 'detailed') {
    throw badRequest(`Unsupported format '${format}': use simple or detailed.`);
  }
  const contentType = (req.headers['content-type'] ?? '').toLowerCase();
  let seconds: number | undefined;
  let phrase: { offset: number; duration: number } | undefined;
  if (/^audio\/(x-)?wav\b/.test(contentType)) {
    const wav = parsed(() => readWav(body));
    if (!wav) throw badRequest('The audio is not WAV (RIFF/WAVE with fmt and data chunks).');
    seconds = wav.durationSeconds;
    const segmenter = new SpeechSegmenter(wav);
    const data = body.subarray(wav.dataOffset, wav.dataOffset + wav.dataBytes);
    const events = [...segmenter.push(data), ...segmenter.end()];
    const first = events.find((event) => event.type === 'phrase');
    // The short-audio API answers with the first phrase only.
    if (first?.type === 'phrase') phrase = { offset: first.offset, duration: first.duration };
  } else if (/^audio\/ogg\b/.test(contentType)) {
    seconds = parsed(() => oggOpusDurationSeconds(body));
    if (seconds === undefined) {
      throw badRequest('The audio is not Ogg Opus (no OggS pages with OpusHead).');
    }
    if (seconds > 0) phrase = { offset: 0, duration: Math.round(seconds * TICKS_PER_SECOND) };
  } else {
    throw new SpeechError(
      415,
      'UnsupportedMediaType',
      `Unsupported content type '${contentType}'. Use 'audio/wav; codecs=audio/pcm; samplerate=16000' or 'audio/ogg; codecs=opus'.`,
    );
  }
  const billed = seconds;
  const result = phrase
    ? recognitionResult(phrase.offset, phrase.duration, format === 'detailed')
    : {
        RecognitionStatus: 'InitialSilenceTimeout',
        Offset: 0,
        Duration: Math.round(seconds * TICKS_PER_SECOND),
      };

  return (res, session, headers) => {
    session.onAudioReceived(billed);
    sendJson(res, 200, result, headers, session.cut);
  };
}

/** The shared audio parsers refuse a broken file with a 400 ApiError: the service's own 400. */
function parsed<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof ApiError && error.status === 400) throw badRequest(error.message);
    throw error;
  }
}
