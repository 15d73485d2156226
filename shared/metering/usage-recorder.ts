import type { Redis } from 'ioredis';
import { whenRedisReady } from './redis-ready';
import type { UsageEvent } from './usage';
import { usageEventSchema, windowId } from './usage';

/**
 * Redis layout of the usage buffer: one hash per window, keyed by correlation id, so a write is a
 * single HSETNX (one round trip, one Cluster slot thanks to the `{w:<window>}` hash tag) and a
 * retried write is a no-op. There is deliberately no cross-window index (it would live in another
 * slot): windows are found by time, from the last processed window up to the last closed one.
 */
export const usageKeys = {
  events: (window: Date): string => `usage:{w:${windowId(window)}}:events`,
};

/** Durable fallback for events that Redis could not take. Writes must be idempotent by event id. */
export interface UsageSpool {
  write(event: UsageEvent): Promise<void>;
}

export type RecordOutcome = 'redis' | 'spool';

export interface UsageRecorderOptions {
  /** Longest wait for Redis before the event goes to the spool instead. */
  redisTimeoutMs: number;
  spoolAttempts?: number;
  onSpooled?: (event: UsageEvent, reason: unknown) => void;
  /** Last resort when neither store takes the event: the full event must reach the logs. */
  onUnrecorded?: (event: UsageEvent, error: unknown) => void;
}

export class UsageRecordError extends Error {
  constructor(
    message: string,
    readonly event: UsageEvent,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UsageRecordError';
  }
}

/**
 * Writes one usage event per served request, in one Redis round trip; falls back to the spool when
 * Redis is down or slow. An event can end up in both stores (Redis answered after the timeout):
 * both are keyed by the event id, and the aggregation merges them by id, so it counts once.
 */
export class UsageRecorder {
  constructor(
    private readonly redis: () => Redis,
    private readonly spool: UsageSpool,
    private readonly options: UsageRecorderOptions,
  ) {}

  async record(candidate: UsageEvent): Promise<RecordOutcome> {
    const event = usageEventSchema.parse(candidate);
    try {
      await withTimeout(this.#writeToRedis(event), this.options.redisTimeoutMs, 'Redis write timed out');
      return 'redis';
    } catch (redisError) {
      this.options.onSpooled?.(event, redisError);
      const attempts = this.options.spoolAttempts ?? 3;
      let lastError: unknown;
      for (let attempt = 1; attempt <= attempts; attempt++) {
        try {
          await this.spool.write(event);
          return 'spool';
        } catch (error) {
          lastError = error;
          await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
        }
      }
      this.options.onUnrecorded?.(event, lastError);
      throw new UsageRecordError(
        `Usage event ${event.id} could not be recorded in Redis or the spool.`,
        event,
        {
          cause: lastError,
        },
      );
    }
  }

  async #writeToRedis(event: UsageEvent): Promise<void> {
    const redis = this.redis();
    // Right after start-up or a reconnect the client may still be connecting; it does not queue.
    if (redis.status !== 'ready')
      await whenRedisReady(redis, AbortSignal.timeout(this.options.redisTimeoutMs));
    await redis.hsetnx(usageKeys.events(new Date(event.window)), event.id, JSON.stringify(event));
  }
}

function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  // A write that settles after the timeout must not surface as an unhandled rejection.
  work.catch(() => undefined);
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
