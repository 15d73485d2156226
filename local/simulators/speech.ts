import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { oggOpusDurationSeconds, readWav } from '../../shared/audio';
import { contentTypeOf, SUPPORTED_OUTPUT_FORMATS, synthesizeAudio } from './audio';
import type { FaultPlan, FaultSetting } from './faults';
import { FAULT_HEADER, parseFault } from './faults';
import { closeServer, listen, pause, readBody, sendJson, writeFrames } from './http';
import type { RecognitionMode } from './speech-websocket';
import { modeFromPath, recognitionResult, serveRecognition, serveSynthesis } from './speech-websocket';
import { SpeechSegmenter, TICKS_PER_SECOND } from './speech-vad';
import { parseSsml, SsmlError } from './ssml';

/**
 * A local Azure Speech service on one port, plain node:http plus `ws`:
 * - REST: speech-to-text for short audio (WAV/PCM and Ogg Opus), text-to-speech (SSML in, audio of a
 *   length that follows the text out), the voice list (the health probe) and the token endpoint;
 * - the WebSocket protocol of `microsoft-cognitiveservices-speech-sdk` for recognition and synthesis
 *   (see speech-websocket.ts), so the official SDK works against it with
 *   `SpeechConfig.fromEndpoint(new URL('ws://127.0.0.1:PORT/speech/recognition/conversation/cognitiveservices/v1'), key)`
 *   or `.../cognitiveservices/websocket/v1` for synthesis, or `SpeechConfig.fromHost(new URL('ws://127.0.0.1:PORT'), key)`.
 *   (`fromEndpoint` with an empty path makes the SDK look for a redirect on port 443 first: give a path.)
 *
 * It cannot understand speech. A transcript is "Simulated transcript of N seconds of audio.", N the
 * length of the phrase found by an energy detector in the audio received (Ogg Opus is not decoded:
 * the whole stream counts as one phrase). Synthesized audio is a tone at ~14 characters a second,
 * with SSML `<break>`s as silence.
 *
 * Auth: `Ocp-Apim-Subscription-Key: <key>` (header or query parameter), or
 * `Authorization: Bearer <any token>` (as from /sts/v1.0/issueToken or Entra ID).
 */

export type { FaultSetting, SimulatorFault } from './faults';
export { transcriptFor } from './speech-websocket';
export { parseSsml, speechSecondsFor, CHARACTERS_PER_SECOND } from './ssml';
/** Kept for callers of the earlier API. */
export type SpeechFault = FaultSetting | undefined;

export interface SpeechSimulatorOptions {
  /** Default 0: a free port. */
  port?: number;
  key?: string;
  region?: string;
  /** Delay before each REST response and before a WebSocket connection is accepted. Default 0. */
  latencyMs?: number;
  /** Delay between chunks of synthesized audio (REST and WebSocket). Default 0. */
  chunkDelayMs?: number;
  fault?: FaultSetting;
}

export interface SpeechSimulatorStats {
  /** REST requests and WebSocket connections. */
  requests: number;
  faulted: number;
  /** Audio received for recognition (REST and WebSocket), in seconds: what the service bills. */
  recognizedSeconds: number;
  /** Audio synthesized and the characters spoken (markup excluded), for completed syntheses. */
  synthesizedSeconds: number;
  synthesizedCharacters: number;
}

export interface SpeechSimulator {
  /** `http://127.0.0.1:PORT`; the same port serves `ws://`. */
  readonly url: string;
  readonly port: number;
  readonly key: string;
  readonly region: string;
  readonly stats: SpeechSimulatorStats;
  /**
   * Applies to every later request and connection; a request's `x-simulator-fault` header (or,
   * for the SDK's WebSocket, query parameter) wins. Throws if invalid.
   */
  setFault(fault: FaultSetting | undefined): void;
  close(): Promise<void>;
}

export const SPEECH_SIMULATOR_KEY = 'local-speech-simulator-key';

const VOICES = [
  ['en-US', 'JennyNeural', 'Jenny', 'Female', 'English (United States)'],
  ['en-US', 'GuyNeural', 'Guy', 'Male', 'English (United States)'],
  ['en-GB', 'SoniaNeural', 'Sonia', 'Female', 'English (United Kingdom)'],
  ['de-DE', 'KatjaNeural', 'Katja', 'Female', 'German (Germany)'],
  ['fr-FR', 'DeniseNeural', 'Denise', 'Female', 'French (France)'],
  ['ja-JP', 'NanamiNeural', 'Nanami', 'Female', 'Japanese (Japan)'],
].map(([locale, name, display, gender, localeName]) => ({
  Name: `Microsoft Server Speech Text to Speech Voice (${locale}, ${name})`,
  DisplayName: display,
  LocalName: display,
  ShortName: `${locale}-${name}`,
  Gender: gender,
  Locale: locale,
  LocaleName: localeName,
  SampleRateHertz: '24000',
  VoiceType: 'Neural',
  Status: 'GA',
  WordsPerMinute: '150',
}));

const RECOGNITION_PATH =
  /^\/speech\/recognition\/(interactive|conversation|dictation)\/cognitiveservices\/v1$/;
const UNIVERSAL_PATH = /^\/stt\/speech\/universal\/v\d+$/;
const SYNTHESIS_PATHS = ['/cognitiveservices/websocket/v1', '/tts/cognitiveservices/websocket/v1'];
const LANGUAGE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;
const AUDIO_CHUNK_BYTES = 8192;

class SpeechError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: http.OutgoingHttpHeaders = {},
  ) {
    super(message);
  }
}

const ACCESS_DENIED =
  'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.';

export async function startSpeechSimulator(options: SpeechSimulatorOptions = {}): Promise<SpeechSimulator> {
  const key = options.key ?? SPEECH_SIMULATOR_KEY;
  const region = options.region ?? 'localsim';
  const stats: SpeechSimulatorStats = {
    requests: 0,
    faulted: 0,
    recognizedSeconds: 0,
    synthesizedSeconds: 0,
    synthesizedCharacters: 0,
  };
  let fault = parseFault(options.fault);
  const upgrading = new Set<Duplex>();

  const authorized = (headers: http.IncomingHttpHeaders, url: URL): boolean =>
    headers['ocp-apim-subscription-key'] === key ||
    url.searchParams.get('Ocp-Apim-Subscription-Key') === key ||
    /^Bearer\s+\S+/i.test(headers.authorization ?? '');

  const faultOf = (headers: http.IncomingHttpHeaders, url: URL): FaultPlan => {
    const value = headers[FAULT_HEADER] ?? url.searchParams.get(FAULT_HEADER) ?? undefined;
    if (value === undefined) return fault;
    try {
      return parseFault(Array.isArray(value) ? value.join(',') : value);
    } catch (error) {
      throw new SpeechError(400, 'InvalidSimulatorFault', (error as Error).message);
    }
  };

  const countFault = (plan: FaultPlan): void => {
    if (plan.outcome || plan.latencyMs !== undefined || plan.chunkDelayMs !== undefined) stats.faulted += 1;
  };

  const server = http.createServer((req, res) => {
    stats.requests += 1;
    handleRest(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const failure =
        error instanceof SpeechError
          ? error
          : new SpeechError(
              500,
              'InternalServerError',
              error instanceof Error ? error.message : String(error),
            );
      sendJson(
        res,
        failure.status,
        { error: { code: failure.code, message: failure.message } },
        failure.headers,
      );
    });
  });
  server.keepAliveTimeout = 65_000;

  async function handleRest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const body = await readBody(req);
    if (!authorized(req.headers, url)) throw new SpeechError(401, '401', ACCESS_DENIED);
    const path = url.pathname.replace(/\/+$/, '');
    const recognition = RECOGNITION_PATH.exec(path);
    const route =
      req.method === 'GET' && path === '/cognitiveservices/voices/list'
        ? 'voices'
        : req.method === 'POST' && path.toLowerCase() === '/sts/v1.0/issuetoken'
          ? 'token'
          : req.method === 'POST' && recognition
            ? 'stt'
            : req.method === 'POST' && path === '/cognitiveservices/v1'
              ? 'tts'
              : undefined;
    if (!route) throw new SpeechError(404, '404', 'Resource not found');
    const plan = faultOf(req.headers, url);

    // Validate first, so that a fault stands for the failure of a request that would have succeeded.
    const prepared =
      route === 'stt'
        ? prepareRecognition(req, url, body)
        : route === 'tts'
          ? prepareSynthesis(req, body)
          : undefined;

    countFault(plan);
    switch (plan.outcome) {
      case 'timeout':
        return;
      case 'reset':
        res.destroy();
        return;
      case 'rate-limit': {
        const seconds = Math.max(1, Math.ceil(plan.retryAfterMs / 1000));
        throw new SpeechError(
          429,
          '429',
          `Too many requests. The rate limit of your Speech resource was exceeded. Please retry after ${seconds} second${seconds === 1 ? '' : 's'}.`,
          { 'retry-after': String(seconds), 'retry-after-ms': String(plan.retryAfterMs) },
        );
      }
      case 'server-error':
        throw new SpeechError(500, 'InternalServerError', 'An internal server error occurred.');
      case 'unavailable':
        throw new SpeechError(503, 'ServiceUnavailable', 'The service is temporarily unavailable.');
      default:
        break;
    }
    if (!(await pause(plan.latencyMs ?? options.latencyMs ?? 0, res))) return;
    const headers = { 'apim-request-id': randomUUID() };
    const cut = plan.outcome === 'cut';

    if (route === 'voices') return sendJson(res, 200, VOICES, headers, cut);
    if (route === 'token') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', ...headers });
      res.end(issueToken(region));
      return;
    }
    if (prepared?.kind === 'stt') {
      stats.recognizedSeconds = addSeconds(stats.recognizedSeconds, prepared.seconds);
      return sendJson(res, 200, prepared.result, headers, cut);
    }
    if (prepared?.kind === 'tts') {
      res.writeHead(200, { 'content-type': contentTypeOf(prepared.outputFormat), ...headers });
      // A cut needs at least two chunks to stop between; short audio is halved instead.
      const size = cut
        ? Math.min(AUDIO_CHUNK_BYTES, Math.ceil(prepared.audio.length / 2))
        : AUDIO_CHUNK_BYTES;
      const chunks: Buffer[] = [];
      for (let at = 0; at < prepared.audio.length; at += size) {
        chunks.push(prepared.audio.subarray(at, at + size));
      }
      const outcome = await writeFrames(res, chunks, {
        chunkDelayMs: plan.chunkDelayMs ?? options.chunkDelayMs ?? 0,
        cutAfterFrames: cut ? Math.max(1, Math.floor(chunks.length / 2)) : undefined,
      });
      if (outcome === 'completed') {
        stats.synthesizedSeconds = addSeconds(stats.synthesizedSeconds, prepared.seconds);
        stats.synthesizedCharacters += prepared.characters;
      }
    }
  }

  const sockets = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    stats.requests += 1;
    upgrading.add(socket);
    socket.once('close', () => upgrading.delete(socket));
    const refuse = (status: number, reason: string, headers: Record<string, string> = {}): void => {
      const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
      socket.end(
        `HTTP/1.1 ${status} ${reason}\r\n${lines.join('')}Content-Length: 0\r\nConnection: close\r\n\r\n`,
      );
    };
    const url = new URL(req.url ?? '/', 'http://simulator');
    const path = url.pathname.replace(/\/+$/, '');
    const recognition = RECOGNITION_PATH.test(path) || UNIVERSAL_PATH.test(path);
    const synthesis = SYNTHESIS_PATHS.includes(path);
    if (!recognition && !synthesis) return refuse(404, 'Not Found');
    if (!authorized(req.headers, url)) return refuse(401, 'Unauthorized');
    let plan: FaultPlan;
    try {
      plan = faultOf(req.headers, url);
    } catch {
      return refuse(400, 'Bad Request');
    }
    countFault(plan);
    switch (plan.outcome) {
      case 'timeout':
        return; // held open until the client gives up or close()
      case 'reset':
        socket.destroy();
        return;
      case 'rate-limit':
        return refuse(429, 'Too Many Requests', {
          'Retry-After': String(Math.max(1, Math.ceil(plan.retryAfterMs / 1000))),
        });
      case 'server-error':
        return refuse(500, 'Internal Server Error');
      case 'unavailable':
        return refuse(503, 'Service Unavailable');
      default:
        break;
    }
    const accept = (): void => {
      if (socket.destroyed) return;
      sockets.handleUpgrade(req, socket, head, (ws) => {
        const session = {
          chunkDelayMs: plan.chunkDelayMs ?? options.chunkDelayMs ?? 0,
          cut: plan.outcome === 'cut',
          onAudioReceived: (seconds: number) => {
            stats.recognizedSeconds = addSeconds(stats.recognizedSeconds, seconds);
          },
          onAudioSynthesized: (seconds: number, characters: number) => {
            stats.synthesizedSeconds = addSeconds(stats.synthesizedSeconds, seconds);
            stats.synthesizedCharacters += characters;
          },
        };
        if (recognition) {
          const mode: RecognitionMode = modeFromPath(path);
          serveRecognition(ws, { mode, detailed: url.searchParams.get('format') === 'detailed' }, session);
        } else {
          serveSynthesis(ws, session);
        }
      });
    };
    const latency = plan.latencyMs ?? options.latencyMs ?? 0;
    if (latency <= 0) return accept();
    const timer = setTimeout(accept, latency);
    socket.once('close', () => clearTimeout(timer));
  });

  function prepareRecognition(req: http.IncomingMessage, url: URL, body: Buffer) {
    const language = url.searchParams.get('language');
    if (!language) {
      throw new SpeechError(400, 'BadRequest', "The 'language' query parameter is required.");
    }
    if (!LANGUAGE.test(language)) {
      throw new SpeechError(400, 'BadRequest', `Unsupported language '${language}'.`);
    }
    const format = url.searchParams.get('format') ?? 'simple';
    if (format !== 'simple' && format !== 'detailed') {
      throw new SpeechError(400, 'BadRequest', `Unsupported format '${format}': use simple or detailed.`);
    }
    const contentType = (req.headers['content-type'] ?? '').toLowerCase();
    let seconds: number | undefined;
    let phrase: { offset: number; duration: number } | undefined;
    if (/^audio\/(x-)?wav\b/.test(contentType)) {
      const wav = readWav(body);
      if (!wav) {
        throw new SpeechError(
          400,
          'BadRequest',
          'The audio is not WAV (RIFF/WAVE with fmt and data chunks).',
        );
      }
      seconds = wav.durationSeconds;
      const segmenter = new SpeechSegmenter(wav);
      const data = body.subarray(wav.dataOffset, wav.dataOffset + wav.dataBytes);
      const events = [...segmenter.push(data), ...segmenter.end()];
      const first = events.find((event) => event.type === 'phrase');
      // The short-audio API answers with the first phrase only.
      if (first?.type === 'phrase') phrase = { offset: first.offset, duration: first.duration };
    } else if (/^audio\/ogg\b/.test(contentType)) {
      seconds = oggOpusDurationSeconds(body);
      if (seconds === undefined) {
        throw new SpeechError(400, 'BadRequest', 'The audio is not Ogg Opus (no OggS pages with OpusHead).');
      }
      if (seconds > 0) phrase = { offset: 0, duration: Math.round(seconds * TICKS_PER_SECOND) };
    } else {
      throw new SpeechError(
        415,
        'UnsupportedMediaType',
        `Unsupported content type '${contentType}'. Use 'audio/wav; codecs=audio/pcm; samplerate=16000' or 'audio/ogg; codecs=opus'.`,
      );
    }
    const result = phrase
      ? recognitionResult(phrase.offset, phrase.duration, format === 'detailed')
      : {
          RecognitionStatus: 'InitialSilenceTimeout',
          Offset: 0,
          Duration: Math.round(seconds * TICKS_PER_SECOND),
        };
    return { kind: 'stt' as const, seconds, result };
  }

  function prepareSynthesis(req: http.IncomingMessage, body: Buffer) {
    const outputFormat = String(req.headers['x-microsoft-outputformat'] ?? '');
    if (!outputFormat) {
      throw new SpeechError(400, 'BadRequest', 'The X-Microsoft-OutputFormat header is required.');
    }
    let document;
    try {
      document = parseSsml(body.toString('utf8'));
    } catch (error) {
      if (error instanceof SsmlError) throw new SpeechError(400, 'BadRequest', error.message);
      throw error;
    }
    const audio = synthesizeAudio(outputFormat, document.timeline);
    if (!audio) {
      throw new SpeechError(
        400,
        'BadRequest',
        `Unsupported X-Microsoft-OutputFormat '${outputFormat}'. Supported: ${SUPPORTED_OUTPUT_FORMATS.join(', ')}.`,
      );
    }
    return {
      kind: 'tts' as const,
      outputFormat,
      audio,
      seconds: document.seconds,
      characters: [...document.text].length,
    };
  }

  const port = await listen(server, options.port);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    key,
    region,
    stats,
    setFault(next) {
      fault = parseFault(next);
    },
    close: async () => {
      for (const client of sockets.clients) client.terminate();
      await closeServer(server, upgrading);
      await new Promise<void>((resolve) => sockets.close(() => resolve()));
    },
  };
}

/** Sums to the microsecond, so that totals of many small chunks compare exactly. */
function addSeconds(total: number, seconds: number): number {
  return Math.round((total + seconds) * 1e6) / 1e6;
}

/** A short-lived access token in the shape the service issues (a JWT); any bearer token is accepted. */
function issueToken(region: string): string {
  const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return [
    encode({ alg: 'HS256', typ: 'JWT' }),
    encode({
      region,
      'subscription-id': randomUUID(),
      iss: 'urn:ms.cognitiveservices',
      aud: `urn:ms.speechservices.${region}`,
      exp: now + 600,
    }),
    Buffer.from(randomUUID()).toString('base64url'),
  ].join('.');
}
