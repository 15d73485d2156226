import type http from 'node:http';
import type { WebSocket } from 'ws';
import { contentTypeOf, SUPPORTED_OUTPUT_FORMATS, synthesizeAudio } from './audio';
import { writeFrames } from './http';
import { badRequest } from './speech-errors';
import type { RestAnswer, SpeechSession } from './speech-session';
import { TICKS_PER_SECOND } from './speech-vad';
import { parseMessage, sendBinary, sendText, serviceTag, wsPause } from './speech-websocket';
import type { SsmlDocument } from './ssml';
import { parseSsml, SsmlError } from './ssml';

/**
 * Text-to-speech: SSML in, audio of a length that follows the text out (a tone at ~14 characters a
 * second, `<break>`s as silence; see audio.ts and ssml.ts).
 *
 * REST (`POST /cognitiveservices/v1`, the format in `X-Microsoft-OutputFormat`): the audio, chunked.
 *
 * The Speech SDK's WebSocket (`/cognitiveservices/websocket/v1`): `speech.config`,
 * `synthesis.context` (output format, metadata options), `ssml`; the simulator answers
 * `turn.start`, `response`, binary `audio` chunks tagged with `X-StreamId`, `audio.metadata` (word
 * boundaries when asked, and `SessionEnd`, which gives the SDK the audio duration) and `turn.end`.
 * Bad SSML or an unsupported format closes the socket with 1007, as the service does.
 */

const AUDIO_CHUNK_BYTES = 8192;

/** Validates a REST synthesis request and synthesizes its audio, streamed by the answer returned. */
export function restSynthesis(req: http.IncomingMessage, body: Buffer): RestAnswer {
  const outputFormat = String(req.headers['x-microsoft-outputformat'] ?? '');
  if (!outputFormat) throw badRequest('The X-Microsoft-OutputFormat header is required.');
  let document: SsmlDocument;
  try {
    document = parseSsml(body.toString('utf8'));
  } catch (error) {
    if (error instanceof SsmlError) throw badRequest(error.message);
    throw error;
  }
  const audio = synthesizeAudio(outputFormat, document.timeline);
  if (!audio) {
    throw badRequest(
      `Unsupported X-Microsoft-OutputFormat '${outputFormat}'. Supported: ${SUPPORTED_OUTPUT_FORMATS.join(', ')}.`,
    );
  }
  const characters = [...document.text].length;

  return async (res, session, headers) => {
    res.writeHead(200, { 'content-type': contentTypeOf(outputFormat), ...headers });
    // A cut needs at least two chunks to stop between; short audio is halved instead.
    const size = session.cut ? Math.min(AUDIO_CHUNK_BYTES, Math.ceil(audio.length / 2)) : AUDIO_CHUNK_BYTES;
    const chunks = chunksOf(audio, size);
    const outcome = await writeFrames(res, chunks, {
      chunkDelayMs: session.chunkDelayMs,
      cutAfterFrames: session.cut ? cutPoint(chunks.length) : undefined,
    });
    if (outcome === 'completed') session.onAudioSynthesized(document.seconds, characters);
  };
}

interface MetadataOptions {
  wordBoundaryEnabled?: unknown;
  sentenceBoundaryEnabled?: unknown;
  sessionEndEnabled?: unknown;
}

/** The SDK sends some options as booleans and some as the strings "true" / "false". */
function enabled(value: unknown): boolean {
  return value === true || value === 'true';
}

export function serveSynthesis(ws: WebSocket, session: SpeechSession): void {
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
    queue = queue.then(() => synthesize(ws, message.requestId, ssml, format, asked, session));
  });
}

async function synthesize(
  ws: WebSocket,
  requestId: string,
  ssml: string,
  outputFormat: string,
  metadata: MetadataOptions,
  session: SpeechSession,
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
  const chunks = chunksOf(audio, AUDIO_CHUNK_BYTES);
  for (const [i, chunk] of chunks.entries()) {
    if (ws.readyState !== ws.OPEN) return;
    if (session.cut && i >= cutPoint(chunks.length)) {
      ws.terminate();
      return;
    }
    sendBinary(ws, 'audio', requestId, contentType, chunk, { 'X-StreamId': streamId });
    if (session.chunkDelayMs > 0 && !(await wsPause(ws, session.chunkDelayMs))) return;
  }
  if (session.cut) {
    ws.terminate();
    return;
  }
  session.onAudioSynthesized(document.seconds, [...document.text].length);
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

function chunksOf(audio: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < audio.length; at += size) chunks.push(audio.subarray(at, at + size));
  return chunks;
}

/** A `cut` drops the connection half-way through the audio, after one chunk at least. */
function cutPoint(chunks: number): number {
  return Math.max(1, Math.floor(chunks / 2));
}
