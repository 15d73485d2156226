import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { WebSocketServer } from 'ws';
import type { FaultPlan, FaultSetting } from './faults';
import { FAULT_HEADER, isFaulted, parseFault, requestFault, retryAfterSeconds } from './faults';
import { applyFault, closeServer, createSimulatorServer, listen, readBody } from './http';
import {
  ACCESS_DENIED,
  asSpeechError,
  RESOURCE_NOT_FOUND,
  SPEECH_FAULT_ERRORS,
  SpeechError,
} from './speech-errors';
import { restRecognition } from './speech-recognition-rest';
import { modeFromPath, serveRecognition } from './speech-recognition-ws';
import type { RestAnswer, SpeechSession } from './speech-session';
import { restSynthesis, serveSynthesis } from './speech-synthesis';
import { SpeechTokens } from './speech-token';
import { voiceList } from './speech-voices';

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
 * `Authorization: Bearer <token>` (as from /sts/v1.0/issueToken or Entra ID): any token, or with
 * `verifyTokens` only the simulator's own (its token endpoint's, or `issueEntraToken()`'s standing
 * in for Entra ID, bare or as `aad#<resourceId>#<token>`), unexpired.
 *
 * This module is the server: routing, auth, faults and stats, for REST requests and WebSocket
 * upgrades alike. Each operation is a module of its own: speech-recognition-rest.ts,
 * speech-recognition-ws.ts, speech-synthesis.ts (REST and WebSocket), speech-voices.ts,
 * speech-token.ts; speech-websocket.ts is the SDK's message framing.
 */

export type { FaultSetting, SimulatorFault } from './faults';
export { transcriptFor } from './speech-recognition';
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
  /**
   * Check bearer tokens as the service does instead of taking any: only tokens this simulator
   * issued (its token endpoint, `issueEntraToken()`) that have not expired, bare or as
   * `aad#<resourceId>#<token>`. Default false.
   */
  verifyTokens?: boolean;
  /** The simulated account's ARM id, which an `aad#<id>#<token>` must name. */
  resourceId?: string;
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
  readonly resourceId: string;
  readonly stats: SpeechSimulatorStats;
  /**
   * Applies to every later request and connection; a request's `x-simulator-fault` header (or,
   * for the SDK's WebSocket, query parameter) wins. Throws if invalid.
   */
  setFault(fault: FaultSetting | undefined): void;
  /**
   * An access token as Entra ID issues one for the Cognitive Services scope (valid for
   * `lifetimeSeconds`, default an hour), which this simulator takes even with `verifyTokens`.
   */
  issueEntraToken(lifetimeSeconds?: number): string;
  close(): Promise<void>;
}

export const SPEECH_SIMULATOR_KEY = 'local-speech-simulator-key';
export const SPEECH_SIMULATOR_RESOURCE_ID =
  '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/Microsoft.CognitiveServices/accounts/local-speech-simulator';

const RECOGNITION_PATH =
  /^\/speech\/recognition\/(interactive|conversation|dictation)\/cognitiveservices\/v1$/;
const UNIVERSAL_PATH = /^\/stt\/speech\/universal\/v\d+$/;
const SYNTHESIS_PATHS = ['/cognitiveservices/websocket/v1', '/tts/cognitiveservices/websocket/v1'];

/** A REST operation: validates its request, throwing the service's errors, and returns its answer. */
type RestOperation = (req: http.IncomingMessage, url: URL, body: Buffer) => RestAnswer;
/** A WebSocket operation: serves the connection once accepted. */
type SocketOperation = (ws: WebSocket, session: SpeechSession) => void;

export async function startSpeechSimulator(options: SpeechSimulatorOptions = {}): Promise<SpeechSimulator> {
  const key = options.key ?? SPEECH_SIMULATOR_KEY;
  const region = options.region ?? 'localsim';
  const resourceId = options.resourceId ?? SPEECH_SIMULATOR_RESOURCE_ID;
  const tokens = new SpeechTokens(region, resourceId);
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
    (options.verifyTokens
      ? tokens.accepts(headers.authorization)
      : /^Bearer\s+\S+/i.test(headers.authorization ?? ''));

  /** The request's fault: the header, or the query parameter where a client cannot set headers. */
  const faultOf = (headers: http.IncomingHttpHeaders, url: URL): FaultPlan => {
    try {
      return requestFault(headers[FAULT_HEADER] ?? url.searchParams.get(FAULT_HEADER), fault);
    } catch (error) {
      throw new SpeechError(400, 'InvalidSimulatorFault', (error as Error).message);
    }
  };

  const countFault = (plan: FaultPlan): void => {
    if (isFaulted(plan)) stats.faulted += 1;
  };

  const sessionFor = (plan: FaultPlan): SpeechSession => ({
    chunkDelayMs: plan.chunkDelayMs ?? options.chunkDelayMs ?? 0,
    cut: plan.outcome === 'cut',
    onAudioReceived: (seconds) => {
      stats.recognizedSeconds = addSeconds(stats.recognizedSeconds, seconds);
    },
    onAudioSynthesized: (seconds, characters) => {
      stats.synthesizedSeconds = addSeconds(stats.synthesizedSeconds, seconds);
      stats.synthesizedCharacters += characters;
    },
  });

  const restOperation = (method: string | undefined, path: string): RestOperation | undefined => {
    if (method === 'GET' && path === '/cognitiveservices/voices/list') return () => voiceList;
    if (method !== 'POST') return undefined;
    if (path.toLowerCase() === '/sts/v1.0/issuetoken') return () => tokens.tokenAnswer();
    if (RECOGNITION_PATH.test(path)) return restRecognition;
    if (path === '/cognitiveservices/v1') return (req, _url, body) => restSynthesis(req, body);
    return undefined;
  };

  const socketOperation = (path: string, url: URL): SocketOperation | undefined => {
    if (RECOGNITION_PATH.test(path) || UNIVERSAL_PATH.test(path)) {
      const init = { mode: modeFromPath(path), detailed: url.searchParams.get('format') === 'detailed' };
      return (ws, session) => serveRecognition(ws, init, session);
    }
    if (SYNTHESIS_PATHS.includes(path)) return serveSynthesis;
    return undefined;
  };

  const server = createSimulatorServer(handleRest, {
    onRequest: () => {
      stats.requests += 1;
    },
    errorAnswer: asSpeechError,
  });

  async function handleRest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const body = await readBody(req);
    if (!authorized(req.headers, url)) throw ACCESS_DENIED();
    const operation = restOperation(req.method, url.pathname.replace(/\/+$/, ''));
    if (!operation) throw RESOURCE_NOT_FOUND();
    const plan = faultOf(req.headers, url);
    // Validate first, so that a fault stands for the failure of a request that would have succeeded.
    const answer = operation(req, url, body);
    countFault(plan);
    if (!(await applyFault(plan, res, SPEECH_FAULT_ERRORS, options.latencyMs ?? 0))) return;
    await answer(res, sessionFor(plan), { 'apim-request-id': randomUUID() });
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
    const operation = socketOperation(url.pathname.replace(/\/+$/, ''), url);
    if (!operation) return refuse(404, 'Not Found');
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
        // Held open until the client gives up (its end is read, so that the socket then closes)
        // or close().
        socket.once('end', () => socket.destroy());
        socket.resume();
        return;
      case 'reset':
        socket.destroy();
        return;
      case 'rate-limit':
        return refuse(429, 'Too Many Requests', { 'Retry-After': String(retryAfterSeconds(plan)) });
      case 'server-error':
        return refuse(500, 'Internal Server Error');
      case 'unavailable':
        return refuse(503, 'Service Unavailable');
      default:
        break;
    }
    const accept = (): void => {
      if (socket.destroyed) return;
      sockets.handleUpgrade(req, socket, head, (ws) => operation(ws, sessionFor(plan)));
    };
    const latency = plan.latencyMs ?? options.latencyMs ?? 0;
    if (latency <= 0) return accept();
    const timer = setTimeout(accept, latency);
    socket.once('close', () => clearTimeout(timer));
  });

  const port = await listen(server, options.port);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    key,
    region,
    resourceId,
    stats,
    setFault(next) {
      fault = parseFault(next);
    },
    issueEntraToken: (lifetimeSeconds) => tokens.entraToken(lifetimeSeconds),
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
