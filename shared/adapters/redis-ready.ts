import type { Cluster, Redis } from 'ioredis';

export class RedisNotReadyError extends Error {
  constructor() {
    super('Redis did not connect in time');
    this.name = 'RedisNotReadyError';
  }
}

/** Waits for the client's connection: commands fail fast while it is down (no offline queue). */
export function whenRedisReady(redis: Redis | Cluster, signal: AbortSignal): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  // An abort event never fires again for a signal that has already aborted.
  if (signal.aborted) return Promise.reject(new RedisNotReadyError());
  return new Promise((resolve, reject) => {
    const done = (error?: Error): void => {
      redis.off('ready', onReady);
      redis.off('error', onError);
      signal.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else resolve();
    };
    const onReady = (): void => done();
    const onError = (error: Error): void => done(error);
    const onAbort = (): void => done(new RedisNotReadyError());
    redis.once('ready', onReady);
    redis.once('error', onError);
    signal.addEventListener('abort', onAbort);
  });
}
