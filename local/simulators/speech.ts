import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RawData, WebSocket } from 'ws';
import { WebSocketServer } from 'ws';
import { oggOpusDurationSeconds, readWav } from '../../shared/audio';
import { contentTypeOf, SUPPORTED_OUTPUT_FORMATS, synthesizeAudio } from './audio';

/**
 * A local Azure Speech service on one port:
 * - REST: speech-to-text for short audio, text-to-speech, and the voice list;
 * - the WebSocket protocol of `microsoft-cognitiveservices-speech-sdk` for recognition and synthesis,
 *   so the official SDK works against it through `SpeechConfig.fromEndpoint`.
 * It cannot understand speech: transcripts are deterministic text that states the duration it
 * measured, and synthesized audio is a tone whose length follows the text (~14 characters/s).
 */

export interface SpeechSimulatorOptions {
  port?: number;
  key?: string;
  region?: string;
  latencyMs?: number;
}

export type SpeechFault = '429' | '500' | undefined;

export interface SpeechSimulator {
  readonly url: string;
  readonly port: number;
  readonly key: string;
  readonly region: string;
  readonly stats: { requests: number };
  setFault(fault: SpeechFault): void;
  close(): Promise<void>;
}

export const SPEECH_SIMULATOR_KEY = 'local-speech-simulator-key';
const CHARACTERS_PER_SECOND = 14;
const TICKS_PER_SECOND = 10_000_000;

const VOICES = [
  {
    Name: 'Microsoft Server Speech Text to Speech Voice (en-US, JennyNeural)',
    ShortName: 'en-US-JennyNeural',
    Gender: 'Female',
    Locale: 'en-US',
    VoiceType: 'Neural',
  },
  {
    Name: 'Microsoft Server Speech Text to Speech Voice (en-US, GuyNeural)',
    ShortName: 'en-US-GuyNeural',
    Gender: 'Male',
    Locale: 'en-US',
    VoiceType: 'Neural',
  },
  {
    Name: 'Microsoft Server Speech Text to Speech Voice (de-DE, KatjaNeural)',
    ShortName: 'de-DE-KatjaNeural',
    Gender: 'Female',
    Locale: 'de-DE',
    VoiceType: 'Neural',
  },
  {
    Name: 'Microsoft Server Speech Text to Speech Voice (ja-JP, NanamiNeural)',
    ShortName: 'ja-JP-NanamiNeural',
    Gender: 'Female',
    Locale: 'ja-JP',
    VoiceType: 'Neural',
  },
];

export function transcriptFor(seconds: number): string {
  return `Simulated transcript of ${seconds.toFixed(2)} seconds of audio.`;
}

/** The spoken text of an SSML document (markup removed, entities decoded). */
export function ssmlText(ssml: string): string {
  return ssml
    .replace(/<[^>]*>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&')
    .trim();
}

export function speechSecondsFor(text: string): number {
  return Math.max(0.5, [...text].length / CHARACTERS_PER_SECOND);
}

export async function startSpeechSimulator(options: SpeechSimulatorOptions = {}): Promise<SpeechSimulator> {
  const key = options.key ?? SPEECH_SIMULATOR_KEY;
  const region = options.region ?? 'localsim';
  const stats = { requests: 0 };
  let fault: SpeechFault;

  const authorized = (headers: http.IncomingHttpHeaders, url: URL): boolean =>
    headers['ocp-apim-subscription-key'] === key ||
    url.searchParams.get('Ocp-Apim-Subscription-Key') === key ||
    /^Bearer\s+\S+/i.test(headers.authorization ?? '');

  const server = http.createServer((req, res) => {
    stats.requests += 1;
    handleRest(req, res).catch((error: unknown) => {
      if (!res.headersSent)
        sendJson(res, 500, { error: { code: 'InternalServerError', message: String(error) } });
    });
  });

  async function handleRest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const body = await readBody(req);
    if (!authorized(req.headers, url)) {
      return sendJson(res, 401, {
        error: { code: '401', message: 'Access denied due to invalid subscription key.' },
      });
    }
    if (fault === '429') {
      res.writeHead(429, { 'retry-after': '1' }).end();
      return;
    }
    if (fault === '500') {
      res.writeHead(500).end();
      return;
    }
    if (options.latencyMs) await new Promise((r) => setTimeout(r, options.latencyMs));

    if (req.method === 'GET' && url.pathname === '/cognitiveservices/voices/list')
      return sendJson(res, 200, VOICES);

    if (req.method === 'POST' && url.pathname === '/speech/recognition/conversation/cognitiveservices/v1') {
      if (!url.searchParams.get('language')) {
        return sendJson(res, 400, {
          error: { code: 'BadRequest', message: "The 'language' query parameter is required." },
        });
      }
      const contentType = (req.headers['content-type'] ?? '').toLowerCase();
      let seconds: number | undefined;
      if (contentType.startsWith('audio/wav') || contentType.startsWith('audio/x-wav'))
        seconds = readWav(body)?.durationSeconds;
      else if (contentType.startsWith('audio/ogg')) seconds = oggOpusDurationSeconds(body);
      else
        return sendJson(res, 415, {
          error: { code: 'UnsupportedMediaType', message: `Unsupported content type '${contentType}'.` },
        });
      if (seconds === undefined) {
        return sendJson(res, 400, {
          error: { code: 'BadRequest', message: 'The audio could not be decoded.' },
        });
      }
      const text = transcriptFor(seconds);
      const duration = Math.round(seconds * TICKS_PER_SECOND);
      if (url.searchParams.get('format') === 'detailed') {
        return sendJson(res, 200, {
          RecognitionStatus: 'Success',
          Offset: 0,
          Duration: duration,
          NBest: [
            { Confidence: 0.97, Lexical: text.toLowerCase(), ITN: text, MaskedITN: text, Display: text },
          ],
        });
      }
      return sendJson(res, 200, {
        RecognitionStatus: 'Success',
        DisplayText: text,
        Offset: 0,
        Duration: duration,
      });
    }

    if (req.method === 'POST' && url.pathname === '/cognitiveservices/v1') {
      const outputFormat = String(req.headers['x-microsoft-outputformat'] ?? '');
      const ssml = body.toString('utf8');
      if (!/<speak[\s>]/.test(ssml)) {
        return sendJson(res, 400, {
          error: { code: 'BadRequest', message: 'The request body must be an SSML <speak> document.' },
        });
      }
      const audio = synthesizeAudio(outputFormat, speechSecondsFor(ssmlText(ssml)));
      if (!audio) {
        return sendJson(res, 400, {
          error: {
            code: 'BadRequest',
            message: `Unsupported X-Microsoft-OutputFormat '${outputFormat}'. Supported: ${SUPPORTED_OUTPUT_FORMATS.join(', ')}.`,
          },
        });
      }
      res.writeHead(200, { 'content-type': contentTypeOf(outputFormat), 'content-length': audio.length });
      res.end(audio);
      return;
    }
    sendJson(res, 404, { error: { code: 'NotFound', message: 'Resource not found' } });
  }

  const sockets = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const recognition = url.pathname.startsWith('/speech/recognition/');
    const synthesis = url.pathname === '/cognitiveservices/websocket/v1';
    if (!recognition && !synthesis) {
      socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
      return;
    }
    if (!authorized(req.headers, url)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
      return;
    }
    sockets.handleUpgrade(req, socket, head, (ws) => {
      stats.requests += 1;
      if (recognition) serveRecognition(ws, url.searchParams.get('format') === 'detailed');
      else serveSynthesis(ws);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    key,
    region,
    stats,
    setFault(next) {
      fault = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of sockets.clients) client.terminate();
        sockets.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// ---- the SDK's WebSocket protocol ----------------------------------------------------------------

interface SpeechMessage {
  headers: Record<string, string>;
  body: Buffer;
  binary: boolean;
}

function parseMessage(data: RawData, isBinary: boolean): SpeechMessage {
  const buffer = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
  let headerText: string;
  let body: Buffer;
  if (isBinary) {
    const length = buffer.readUInt16BE(0);
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
  return { headers, body, binary: isBinary };
}

function headerBlock(
  path: string,
  requestId: string,
  contentType: string,
  extra: Record<string, string> = {},
): string {
  const headers = {
    'X-RequestId': requestId,
    'X-Timestamp': new Date().toISOString(),
    Path: path,
    'Content-Type': contentType,
    ...extra,
  };
  return Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
}

function sendText(ws: WebSocket, path: string, requestId: string, body: unknown): void {
  ws.send(`${headerBlock(path, requestId, 'application/json; charset=utf-8')}\r\n${JSON.stringify(body)}`);
}

function sendBinary(
  ws: WebSocket,
  path: string,
  requestId: string,
  contentType: string,
  body: Buffer,
  extra: Record<string, string>,
): void {
  const header = Buffer.from(headerBlock(path, requestId, contentType, extra), 'latin1');
  const prefix = Buffer.alloc(2);
  prefix.writeUInt16BE(header.length);
  ws.send(Buffer.concat([prefix, header, body]));
}

function serveRecognition(ws: WebSocket, detailed: boolean): void {
  const turns = new Map<string, Buffer[]>();
  ws.on('message', (data, isBinary) => {
    const message = parseMessage(data, isBinary);
    const requestId = message.headers['x-requestid'] ?? '';
    if (message.headers.path !== 'audio') return; // speech.config / speech.context: nothing to answer
    const chunks = turns.get(requestId) ?? [];
    if (chunks.length === 0) turns.set(requestId, chunks);
    if (message.body.length > 0) {
      chunks.push(message.body);
      return;
    }
    // An empty audio message ends the stream: answer the whole turn.
    turns.delete(requestId);
    const audio = Buffer.concat(chunks);
    const wav = readWav(audio);
    const seconds = wav ? wav.durationSeconds : audio.length / 32_000; // headerless: 16 kHz, 16-bit, mono
    const duration = Math.round(seconds * TICKS_PER_SECOND);
    const text = transcriptFor(seconds);
    sendText(ws, 'turn.start', requestId, { context: { serviceTag: randomUUID().replace(/-/g, '') } });
    sendText(ws, 'speech.startDetected', requestId, { Offset: 0 });
    sendText(ws, 'speech.hypothesis', requestId, { Text: text.toLowerCase(), Offset: 0, Duration: duration });
    sendText(
      ws,
      'speech.phrase',
      requestId,
      detailed
        ? {
            RecognitionStatus: 'Success',
            Offset: 0,
            Duration: duration,
            NBest: [
              { Confidence: 0.97, Lexical: text.toLowerCase(), ITN: text, MaskedITN: text, Display: text },
            ],
          }
        : { RecognitionStatus: 'Success', DisplayText: text, Offset: 0, Duration: duration },
    );
    sendText(ws, 'speech.endDetected', requestId, { Offset: duration });
    sendText(ws, 'turn.end', requestId, {});
  });
}

function serveSynthesis(ws: WebSocket): void {
  let outputFormat = 'audio-24khz-48kbitrate-mono-mp3';
  ws.on('message', (data, isBinary) => {
    const message = parseMessage(data, isBinary);
    const requestId = message.headers['x-requestid'] ?? '';
    if (message.headers.path === 'synthesis.context') {
      const context = JSON.parse(message.body.toString('utf8') || '{}') as {
        synthesis?: { audio?: { outputFormat?: string } };
      };
      outputFormat = context.synthesis?.audio?.outputFormat ?? outputFormat;
      return;
    }
    if (message.headers.path !== 'ssml') return;
    const audio = synthesizeAudio(outputFormat, speechSecondsFor(ssmlText(message.body.toString('utf8'))));
    const streamId = randomUUID().replace(/-/g, '').toUpperCase();
    sendText(ws, 'turn.start', requestId, { context: { serviceTag: streamId.toLowerCase() } });
    if (!audio) {
      ws.close(1007, `Unsupported output format '${outputFormat}'`);
      return;
    }
    sendText(ws, 'response', requestId, {
      context: { serviceTag: streamId.toLowerCase() },
      audio: { type: 'inline', streamId },
    });
    for (let at = 0; at < audio.length; at += 8192) {
      sendBinary(ws, 'audio', requestId, contentTypeOf(outputFormat), audio.subarray(at, at + 8192), {
        'X-StreamId': streamId,
      });
    }
    sendText(ws, 'turn.end', requestId, {});
  });
}

// ---- helpers ------------------------------------------------------------------------------------

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}
