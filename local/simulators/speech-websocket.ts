import { randomUUID } from 'node:crypto';
import type { RawData, WebSocket } from 'ws';
import type { PcmFormat } from '../../shared/audio';
import { readWav } from '../../shared/audio';
import { contentTypeOf, synthesizeAudio } from './audio';
import type { SegmentEvent, SegmenterOptions } from './speech-vad';
import { SpeechSegmenter, TICKS_PER_SECOND } from './speech-vad';
import type { SsmlDocument } from './ssml';
import { parseSsml, SsmlError } from './ssml';

/**
 * The WebSocket protocol of `microsoft-cognitiveservices-speech-sdk`, server side.
 *
 * Framing (WebsocketMessageFormatter in the SDK): a text message is `Name: value\r\n` header lines,
 * an empty line, then the body; a binary message is a 2-byte big-endian header length, the same
 * header block (ASCII), then the payload. Every message carries `Path` and `X-RequestId`; replies
 * reuse the turn's request id, or the SDK drops them.
 *
 * Recognition: the client sends `speech.config`, then per turn `speech.context` and `audio`
 * messages (the first one a RIFF header, then PCM, and an empty one at the end of the stream).
 * The simulator answers `turn.start`, `speech.startDetected`, `speech.hypothesis`, `speech.phrase`,
 * `speech.endDetected` and `turn.end`, segmenting the audio it actually receives by energy (see
 * speech-vad.ts). Interactive turns (`recognizeOnceAsync`) end after the first phrase; conversation
 * and dictation turns go on until the audio ends, closing with an `EndOfDictation` phrase.
 *
 * Synthesis: `speech.config`, `synthesis.context` (output format, metadata options), `ssml`; the
 * simulator answers `turn.start`, `response`, binary `audio` chunks tagged with `X-StreamId`,
 * `audio.metadata` (word boundaries when asked, and `SessionEnd`, which gives the SDK the audio
 * duration) and `turn.end`. Bad SSML or an unsupported format closes the socket with 1007, as the
 * service does.
 *
 * The simulator cannot understand speech: a transcript reads "Simulated transcript of N seconds of
 * audio." where N is the length of the phrase it detected.
 */

export function transcriptFor(seconds: number): string {
  return `Simulated transcript of ${seconds.toFixed(2)} seconds of audio.`;
}

/** A recognized phrase as the service reports it: simple, or detailed with an N-best list. */
export function recognitionResult(
  offset: number,
  duration: number,
  detailed: boolean,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const text = transcriptFor(duration / TICKS_PER_SECOND);
  const base = { RecognitionStatus: 'Success', Offset: offset, Duration: duration, ...extra };
  if (!detailed) return { ...base, DisplayText: text };
  const normalized = text.toLowerCase().replace(/[^\w\s.]/g, '');
  return {
    ...base,
    NBest: [
      {
        Confidence: 0.97,
        Lexical: text.toLowerCase().replace(/[^\w\s]/g, ''),
        ITN: normalized,
        MaskedITN: normalized,
        Display: text,
      },
    ],
  };
}

export type RecognitionMode = 'Interactive' | 'Conversation' | 'Dictation';

export interface SessionOptions {
  /** Delay between synthesized audio chunks. */
  chunkDelayMs: number;
  /** Drop the connection half-way through the first turn. */
  cut: boolean;
  onAudioReceived(seconds: number): void;
  onAudioSynthesized(seconds: number, characters: number): void;
}

interface SpeechMessage {
  path: string;
  requestId: string;
  headers: Record<string, string>;
  body: Buffer;
}

function parseMessage(data: RawData, isBinary: boolean): SpeechMessage {
  const buffer = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
  let headerText: string;
  let body: Buffer;
  if (isBinary) {
    const length = buffer.length >= 2 ? buffer.readUInt16BE(0) : 0;
    headerText = buffer.toString('latin1', 2, 2 + length);
    body = buffer.subarray(2 + length);
  } else {
    const text = buffer.toString('utf8');
    const split = text.indexOf('\r\n\r\n');
    headerText = split < 0 ? text : text.slice(0, split);
    body = Buffer.from(split < 0 ? '' : text.slice(split + 4), 'utf8');
  }
  const headers: Record<string, string> = {};
  for (const line of headerText.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return {
    path: (headers.path ?? '').toLowerCase(),
    requestId: headers['x-requestid'] ?? '',
    headers,
    body,
  };
}

function headerBlock(path: string, requestId: string, contentType: string, extra: Record<string, string>) {
  let block = `X-RequestId: ${requestId}\r\nX-Timestamp: ${new Date().toISOString()}\r\nPath: ${path}\r\nContent-Type: ${contentType}\r\n`;
  for (const [name, value] of Object.entries(extra)) block += `${name}: ${value}\r\n`;
  return block;
}

function sendText(ws: WebSocket, path: string, requestId: string, body: unknown): void {
  if (ws.readyState !== ws.OPEN) return;
  ws.send(
    `${headerBlock(path, requestId, 'application/json; charset=utf-8', {})}\r\n${JSON.stringify(body)}`,
  );
}

function sendBinary(
  ws: WebSocket,
  path: string,
  requestId: string,
  contentType: string,
  body: Buffer,
  extra: Record<string, string>,
): void {
  if (ws.readyState !== ws.OPEN) return;
  const header = Buffer.from(headerBlock(path, requestId, contentType, extra), 'latin1');
  const prefix = Buffer.alloc(2);
  prefix.writeUInt16BE(header.length);
  ws.send(Buffer.concat([prefix, header, body]));
}

function serviceTag(): string {
  return randomUUID().replace(/-/g, '');
}

// ---- recognition --------------------------------------------------------------------------------

/** Headerless audio is what the SDK's default stream format is: 16 kHz, 16-bit, mono PCM. */
const DEFAULT_FORMAT: PcmFormat = { sampleRate: 16_000, channels: 1, bitsPerSample: 16 };
/** The service gives up on an interactive turn that hears nothing for 5 s. */
const INTERACTIVE_INITIAL_SILENCE_MS = 5000;

interface TurnContext {
  mode: RecognitionMode;
  initialSilenceMs?: number;
  segmenter: SegmenterOptions;
}

interface Turn {
  id: string;
  context: TurnContext;
  segmenter?: SpeechSegmenter;
  bytesPerSecond: number;
  done: boolean;
}

export function modeFromPath(path: string): RecognitionMode {
  if (path.includes('/interactive/')) return 'Interactive';
  if (path.includes('/dictation/')) return 'Dictation';
  return 'Conversation';
}

/** The turn's settings from `speech.context` (SDK endpoint version 2 puts the mode there too). */
function turnContext(body: Buffer, fallback: RecognitionMode): TurnContext {
  let context: Record<string, unknown>;
  try {
    context = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
  } catch {
    context = {};
  }
  const detection = (context.phraseDetection ?? {}) as Record<string, unknown>;
  const declared = typeof detection.mode === 'string' ? detection.mode.toLowerCase() : '';
  const mode: RecognitionMode =
    declared === 'interactive'
      ? 'Interactive'
      : declared === 'dictation'
        ? 'Dictation'
        : declared === 'conversation'
          ? 'Conversation'
          : fallback;
  const section = (detection[mode.toLowerCase()] ?? {}) as { segmentation?: Record<string, unknown> };
  const number = (value: unknown): number | undefined =>
    typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
  return {
    mode,
    initialSilenceMs:
      number(detection.initialSilenceTimeout) ??
      (mode === 'Interactive' ? INTERACTIVE_INITIAL_SILENCE_MS : undefined),
    segmenter: {
      silenceTimeoutMs:
        (mode === 'Interactive' ? number(detection.trailingSilenceTimeout) : undefined) ??
        number(section.segmentation?.segmentationSilenceTimeoutMs),
      maxPhraseMs: number(section.segmentation?.segmentationForcedTimeoutMs),
    },
  };
}

export function serveRecognition(
  ws: WebSocket,
  init: { mode: RecognitionMode; detailed: boolean },
  options: SessionOptions,
): void {
  const contexts = new Map<string, Buffer>();
  const turns = new Map<string, Turn>();
  let dropping = false;

  // The SDK's messages carry the audio channel as well.
  const phraseBody = (offset: number, duration: number): Record<string, unknown> =>
    recognitionResult(offset, duration, init.detailed, { Channel: 0 });

  const endTurn = (turn: Turn, offset: number): void => {
    sendText(ws, 'speech.endDetected', turn.id, { Offset: offset });
    turn.done = true;
  };

  const handle = (turn: Turn, events: SegmentEvent[]): void => {
    for (const event of events) {
      if (turn.done) return;
      if (event.type === 'start') {
        sendText(ws, 'speech.startDetected', turn.id, { Offset: event.offset });
      } else if (event.type === 'hypothesis') {
        const words = transcriptFor(event.duration / TICKS_PER_SECOND)
          .toLowerCase()
          .replace(/[^\w\s]/g, '');
        sendText(ws, 'speech.hypothesis', turn.id, {
          Text: words,
          Offset: event.offset,
          Duration: event.duration,
          Channel: 0,
        });
      } else if (turn.context.mode === 'Interactive') {
        endTurn(turn, event.offset + event.duration);
        sendText(ws, 'speech.phrase', turn.id, phraseBody(event.offset, event.duration));
        sendText(ws, 'turn.end', turn.id, {});
      } else {
        sendText(ws, 'speech.phrase', turn.id, phraseBody(event.offset, event.duration));
      }
    }
  };

  const checkInitialSilence = (turn: Turn): void => {
    const segmenter = turn.segmenter;
    const limit = turn.context.initialSilenceMs;
    if (turn.done || !segmenter || segmenter.heardSpeech || limit === undefined) return;
    if (segmenter.seconds * 1000 < limit) return;
    endTurn(turn, segmenter.ticks);
    sendText(ws, 'speech.phrase', turn.id, {
      RecognitionStatus: 'InitialSilenceTimeout',
      Offset: 0,
      Duration: segmenter.ticks,
      Channel: 0,
    });
    sendText(ws, 'turn.end', turn.id, {});
  };

  const finish = (turn: Turn): void => {
    const segmenter = turn.segmenter ?? new SpeechSegmenter(DEFAULT_FORMAT, turn.context.segmenter);
    handle(turn, segmenter.end());
    if (turn.done) return;
    const end = segmenter.ticks;
    endTurn(turn, end);
    if (turn.context.mode === 'Interactive') {
      // Any speech heard was answered by handle(): an open interactive turn heard only silence.
      sendText(ws, 'speech.phrase', turn.id, {
        RecognitionStatus: 'InitialSilenceTimeout',
        Offset: 0,
        Duration: end,
        Channel: 0,
      });
    } else {
      sendText(ws, 'speech.phrase', turn.id, {
        RecognitionStatus: 'EndOfDictation',
        Offset: end,
        Duration: 0,
        Channel: 0,
      });
    }
    sendText(ws, 'turn.end', turn.id, {});
  };

  ws.on('message', (data, isBinary) => {
    if (dropping) return;
    const message = parseMessage(data, isBinary);
    if (message.path === 'speech.context') {
      contexts.set(message.requestId, message.body);
      return;
    }
    if (message.path !== 'audio') return; // speech.config, telemetry: nothing to answer
    let turn = turns.get(message.requestId);
    if (!turn) {
      turn = {
        id: message.requestId,
        context: turnContext(contexts.get(message.requestId) ?? Buffer.alloc(0), init.mode),
        bytesPerSecond: 32_000,
        done: false,
      };
      contexts.delete(message.requestId);
      turns.set(turn.id, turn);
      sendText(ws, 'turn.start', turn.id, { context: { serviceTag: serviceTag() } });
      if (options.cut) {
        // Let turn.start leave, then drop the connection mid-turn, answering nothing more.
        dropping = true;
        setTimeout(() => ws.terminate(), 10);
        return;
      }
    }
    if (message.body.length === 0) {
      if (!turn.done) finish(turn);
      turns.delete(turn.id);
      return;
    }
    let pcm = message.body;
    if (!turn.segmenter) {
      const wav = readWav(pcm);
      const format: PcmFormat = wav ?? DEFAULT_FORMAT;
      if (wav) pcm = pcm.subarray(wav.dataOffset);
      turn.segmenter = new SpeechSegmenter(format, turn.context.segmenter);
      turn.bytesPerSecond = format.sampleRate * format.channels * Math.max(1, format.bitsPerSample / 8);
    }
    options.onAudioReceived(pcm.length / turn.bytesPerSecond);
    if (turn.done) return; // an interactive turn already answered: later audio is ignored
    handle(turn, turn.segmenter.push(pcm));
    checkInitialSilence(turn);
  });
}

// ---- synthesis ----------------------------------------------------------------------------------

const AUDIO_CHUNK_BYTES = 8192;

interface MetadataOptions {
  wordBoundaryEnabled?: unknown;
  sentenceBoundaryEnabled?: unknown;
  sessionEndEnabled?: unknown;
}

/** The SDK sends some options as booleans and some as the strings "true" / "false". */
function enabled(value: unknown): boolean {
  return value === true || value === 'true';
}

export function serveSynthesis(ws: WebSocket, options: SessionOptions): void {
  let outputFormat = 'audio-24khz-48kbitrate-mono-mp3';
  let metadata: MetadataOptions = { sessionEndEnabled: true };
  let queue = Promise.resolve();

  ws.on('message', (data, isBinary) => {
    const message = parseMessage(data, isBinary);
    if (message.path === 'synthesis.context') {
      try {
        const context = JSON.parse(message.body.toString('utf8') || '{}') as {
          synthesis?: { audio?: { outputFormat?: string; metadataOptions?: MetadataOptions } };
        };
        outputFormat = context.synthesis?.audio?.outputFormat ?? outputFormat;
        metadata = context.synthesis?.audio?.metadataOptions ?? metadata;
      } catch {
        ws.close(1007, 'synthesis.context is not valid JSON');
      }
      return;
    }
    if (message.path !== 'ssml') return;
    const ssml = message.body.toString('utf8');
    const format = outputFormat;
    const asked = metadata;
    // Turns on one connection are answered in order, each after the previous one finished.
    queue = queue.then(() => synthesize(ws, message.requestId, ssml, format, asked, options));
  });
}

async function synthesize(
  ws: WebSocket,
  requestId: string,
  ssml: string,
  outputFormat: string,
  metadata: MetadataOptions,
  options: SessionOptions,
): Promise<void> {
  let document: SsmlDocument;
  try {
    document = parseSsml(ssml);
  } catch (error) {
    ws.close(1007, error instanceof SsmlError ? error.message.slice(0, 120) : 'Invalid SSML');
    return;
  }
  const audio = synthesizeAudio(outputFormat, document.timeline);
  if (!audio) {
    ws.close(1007, `Unsupported output format '${outputFormat}'`);
    return;
  }
  const streamId = serviceTag().toUpperCase();
  const tag = serviceTag();
  sendText(ws, 'turn.start', requestId, { context: { serviceTag: tag } });
  sendText(ws, 'response', requestId, { context: { serviceTag: tag }, audio: { type: 'inline', streamId } });
  if (enabled(metadata.wordBoundaryEnabled)) {
    sendText(ws, 'audio.metadata', requestId, { Metadata: wordBoundaries(document) });
  }
  const contentType = contentTypeOf(outputFormat);
  const chunks = Math.ceil(audio.length / AUDIO_CHUNK_BYTES);
  for (let i = 0; i < chunks; i++) {
    if (ws.readyState !== ws.OPEN) return;
    if (options.cut && i >= Math.max(1, Math.floor(chunks / 2))) {
      ws.terminate();
      return;
    }
    const chunk = audio.subarray(i * AUDIO_CHUNK_BYTES, (i + 1) * AUDIO_CHUNK_BYTES);
    sendBinary(ws, 'audio', requestId, contentType, chunk, { 'X-StreamId': streamId });
    if (options.chunkDelayMs > 0 && !(await wsPause(ws, options.chunkDelayMs))) return;
  }
  if (options.cut) {
    ws.terminate();
    return;
  }
  options.onAudioSynthesized(document.seconds, [...document.text].length);
  if (metadata.sessionEndEnabled === undefined || enabled(metadata.sessionEndEnabled)) {
    sendText(ws, 'audio.metadata', requestId, {
      Metadata: [{ Type: 'SessionEnd', Data: { Offset: Math.round(document.seconds * TICKS_PER_SECOND) } }],
    });
  }
  sendText(ws, 'turn.end', requestId, {});
}

/** Word boundaries at the fixed speaking rate, silences (breaks) included in the offsets. */
function wordBoundaries(document: SsmlDocument): Array<Record<string, unknown>> {
  const boundaries: Array<Record<string, unknown>> = [];
  let start = 0;
  for (const segment of document.timeline) {
    if (!segment.silent) {
      const characters = [...segment.text].length || 1;
      const perCharacter = segment.seconds / characters;
      for (const match of segment.text.matchAll(/[\p{L}\p{N}'’-]+/gu)) {
        const word = match[0];
        const at = [...segment.text.slice(0, match.index)].length;
        boundaries.push({
          Type: 'WordBoundary',
          Data: {
            Offset: Math.round((start + at * perCharacter) * TICKS_PER_SECOND),
            Duration: Math.round([...word].length * perCharacter * TICKS_PER_SECOND),
            text: { Text: word, Length: word.length, BoundaryType: 'WordBoundary' },
          },
        });
      }
    }
    start += segment.seconds;
  }
  return boundaries;
}

function wsPause(ws: WebSocket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const onClose = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      ws.off('close', onClose);
      resolve(ws.readyState === ws.OPEN);
    }, ms);
    ws.once('close', onClose);
  });
}
