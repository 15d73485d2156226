import type http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Plumbing shared by the simulators: bodies, JSON, waits that end with the connection, streaming. */

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
  if (ms <= 0) return Promise.resolve(!res.destroyed);
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onClose = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      res.off('close', onClose);
      resolve(true);
    }, ms);
    res.once('close', onClose);
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
