import type { WebSocket } from 'ws';
import type { PcmFormat } from '../../shared/metering/audio';
import { readWav } from '../../shared/metering/audio';
import { recognitionResult, transcriptFor } from './speech-recognition';
import type { SpeechSession } from './speech-session';
import type { SegmentEvent, SegmenterOptions } from './speech-vad';
import { SpeechSegmenter, TICKS_PER_SECOND } from './speech-vad';
import { parseMessage, sendText, serviceTag } from './speech-websocket';

/**
 * Recognition over the Speech SDK's WebSocket (`/speech/recognition/{mode}/cognitiveservices/v1`,
 * `/stt/speech/universal/v{n}`): the client sends `speech.config`, then per turn `speech.context` and
 * `audio` messages (the first one a RIFF header, then PCM, and an empty one at the end of the
 * stream). The simulator answers `turn.start`, `speech.startDetected`, `speech.hypothesis`,
 * `speech.phrase`, `speech.endDetected` and `turn.end`, segmenting the audio it actually receives by
 * energy (see speech-vad.ts). Interactive turns (`recognizeOnceAsync`) end after the first phrase;
 * conversation and dictation turns go on until the audio ends, closing with an `EndOfDictation`
 * phrase.
 */

export type RecognitionMode = 'Interactive' | 'Conversation' | 'Dictation';

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
  session: SpeechSession,
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
      if (session.cut) {
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
    session.onAudioReceived(pcm.length / turn.bytesPerSecond);
    if (turn.done) return; // an interactive turn already answered: later audio is ignored
    handle(turn, turn.segmenter.push(pcm));
    checkInitialSilence(turn);
  });
}
