import type { Cluster, Redis } from 'ioredis';

type RedisClient = Redis | Cluster;

export class RedisNotReadyError extends Error {
  constructor() {
    super('Redis did not connect in time');
    this.name = 'RedisNotReadyError';
  }
}

/** One waiter per client for its next connection (or error), however many callers wait on it. */
const waiters = new WeakMap<RedisClient, Promise<void>>();

function nextConnection(redis: RedisClient): Promise<void> {
  let waiter = waiters.get(redis);
  if (!waiter) {
    waiter = new Promise<void>((resolve, reject) => {
      const settle = (error?: Error): void => {
        redis.off('ready', onReady);
        redis.off('error', onError);
        waiters.delete(redis);
        if (error) reject(error);
        else resolve();
      };
      const onReady = (): void => settle();
      const onError = (error: Error): void => settle(error);
      redis.once('ready', onReady);
      redis.once('error', onError);
    });
    // Each caller handles the outcome; the shared promise itself must not count as unhandled.
    waiter.catch(() => undefined);
    waiters.set(redis, waiter);
  }
  return waiter;
}

/**
 * Waits for the client's connection: commands fail fast while it is down (no offline queue). Every
 * caller shares one pair of listeners on the client, so a crowd of requests during an outage adds
 * no listeners; each gives up on its own signal.
 */
export function whenRedisReady(redis: RedisClient, signal: AbortSignal): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  // An abort event never fires again for a signal that has already aborted.
  if (signal.aborted) return Promise.reject(new RedisNotReadyError());
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(new RedisNotReadyError());
    signal.addEventListener('abort', onAbort, { once: true });
    nextConnection(redis).then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (error: Error) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Handles the client's errors (without a listener, ioredis reports every failed reconnect as an
 * "Unhandled error event") and logs an outage once when it starts and once when it ends.
 */
export function watchRedisConnection(redis: RedisClient, log: (line: string) => void): void {
  let downSince: number | undefined;
  const down = (reason: string): void => {
    if (downSince !== undefined) return;
    downSince = Date.now();
    log(`Redis down since ${new Date(downSince).toISOString()}: ${reason}`);
  };
  redis.on('error', (error: Error) => down(error.message));
  // A connection lost (not closed on purpose: disconnect() does not reconnect).
  redis.on('reconnecting', () => down('connection lost'));
  redis.on('ready', () => {
    if (downSince === undefined) return;
    log(`Redis back after ${((Date.now() - downSince) / 1000).toFixed(1)} s`);
    downSince = undefined;
  });
}
