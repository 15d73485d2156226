import type { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FaultPlan } from './faults';

/**
 * Plumbing shared by the simulators: the server and its error answers, injected faults, bodies,
 * JSON, waits that end with the connection, streaming.
 */

/** What Azure's API gateway answers a wrong key with, in front of either service. */
export const ACCESS_DENIED_MESSAGE =
  'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.';

/** An error a simulator answers with, in its service's JSON shape. */
export interface ErrorAnswer {
  readonly status: number;
  readonly headers: http.OutgoingHttpHeaders;
  toBody(): unknown;
}

export interface SimulatorServerOptions {
  /** Called for every request, before it is handled. */
  onRequest(): void;
  /** The answer to an error thrown by the handler: the service's own error, or an internal error. */
  errorAnswer(error: unknown): ErrorAnswer;
  /** Headers every error answer carries (the error's own headers win). */
  errorHeaders?(): http.OutgoingHttpHeaders;
}

/**
 * An HTTP server whose handler answers by throwing: an error thrown before the response started is
 * answered as JSON, one thrown after drops the connection (the client sees the stream break).
 */
export function createSimulatorServer(
  handle: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>,
  options: SimulatorServerOptions,
): http.Server {
  const server = http.createServer((req, res) => {
    options.onRequest();
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const failure = options.errorAnswer(error);
      sendJson(res, failure.status, failure.toBody(), { ...options.errorHeaders?.(), ...failure.headers });
    });
  });
  // Longer than the clients' and proxies' idle timeouts, as the services' are, so they close first.
  server.keepAliveTimeout = 65_000;
  return server;
}

/** The errors a service answers an injected failure with. */
export interface FaultErrors {
  rateLimited(plan: FaultPlan): Error;
  serverError(): Error;
  unavailable(): Error;
}

/**
 * Applies a fault's failure (thrown as the service's error, for the server to answer) or its
 * latency to a request; false when the request is answered (or abandoned) already. A `cut` is the
 * caller's to apply, to the response it writes.
 */
export async function applyFault(
  plan: FaultPlan,
  res: http.ServerResponse,
  errors: FaultErrors,
  defaultLatencyMs: number,
): Promise<boolean> {
  switch (plan.outcome) {
    case 'timeout':
      return false; // never answered; close() or the client ends it
    case 'reset':
      res.destroy();
      return false;
    case 'rate-limit':
      throw errors.rateLimited(plan);
    case 'server-error':
      throw errors.serverError();
    case 'unavailable':
      throw errors.unavailable();
    default:
      return pause(plan.latencyMs ?? defaultLatencyMs, res);
  }
}

export async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

export function sendJson(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: http.OutgoingHttpHeaders = {},
  cut = false,
): void {
  const text = Buffer.from(JSON.stringify(body), 'utf8');
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': text.length,
    ...headers,
  });
  if (cut) {
    cutAfter(res, text.subarray(0, Math.floor(text.length / 2)));
    return;
  }
  res.end(text);
}

/** Writes a partial body, then drops the connection once those bytes had a chance to leave. */
export function cutAfter(res: http.ServerResponse, partial: Buffer | string): void {
  res.write(partial, () => setTimeout(() => res.destroy(), 10));
}

/**
 * Waits `ms`; resolves false early (and drops its timer) when the response closes first, so a
 * client that gives up or a close() never leaves timers behind.
 */
export function pause(ms: number, res: http.ServerResponse): Promise<boolean> {
  return pauseWhileOpen(ms, res, () => !res.destroyed);
}

/**
 * Waits `ms` while a connection (a response, a WebSocket) stays open: resolves whether it still is,
 * early (dropping its timer) when it closes first.
 */
export function pauseWhileOpen(
  ms: number,
  connection: Pick<EventEmitter, 'once' | 'off'>,
  isOpen: () => boolean,
): Promise<boolean> {
  if (ms <= 0 || !isOpen()) return Promise.resolve(isOpen());
  return new Promise((resolve) => {
    const onClose = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      connection.off('close', onClose);
      resolve(isOpen());
    }, ms);
    connection.once('close', onClose);
  });
}

export interface StreamPlan {
  chunkDelayMs: number;
  /** Drop the connection after this many frames instead of finishing. */
  cutAfterFrames?: number;
}

/**
 * Writes pre-serialised frames (SSE events, audio chunks) one write each, headers already sent,
 * honouring back-pressure. Resolves `completed`, `cut`, or `aborted` when the client went away first.
 */
export async function writeFrames(
  res: http.ServerResponse,
  frames: ReadonlyArray<string | Buffer>,
  plan: StreamPlan,
): Promise<'completed' | 'cut' | 'aborted'> {
  for (let i = 0; i < frames.length; i++) {
    if (res.destroyed) return 'aborted';
    if (i === plan.cutAfterFrames) {
      // Give the bytes already written a moment to reach the client before the connection drops.
      await pause(10, res);
      res.destroy();
      return 'cut';
    }
    const frame = frames[i] ?? '';
    if (i === frames.length - 1) {
      res.end(frame);
      return 'completed';
    }
    if (!res.write(frame)) {
      const drained = await new Promise<boolean>((resolve) => {
        const onDrain = (): void => {
          res.off('close', onClose);
          resolve(true);
        };
        const onClose = (): void => {
          res.off('drain', onDrain);
          resolve(false);
        };
        res.once('drain', onDrain);
        res.once('close', onClose);
      });
      if (!drained) return 'aborted';
    }
    if (plan.chunkDelayMs > 0 && !(await pause(plan.chunkDelayMs, res))) return 'aborted';
  }
  res.end();
  return 'completed';
}

export async function listen(server: http.Server, port: number | undefined): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/**
 * Closes the server and every connection it has, including idle keep-alive sockets, requests
 * held open by a `timeout` fault and sockets taken over by WebSocket upgrades (`extra`).
 */
export function closeServer(server: http.Server, extra: Iterable<{ destroy(): void }> = []): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
    for (const socket of extra) socket.destroy();
  });
}
