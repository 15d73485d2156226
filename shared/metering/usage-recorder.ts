import type { UsageEvent } from '../contracts/usage-event';
import { usageEventSchema } from '../contracts/usage-event';

/** The live usage buffer (Redis in production). Writes must be idempotent by event id. */
export interface LiveUsageBuffer {
  /** Writes one event; gives up when `deadline` aborts. */
  write(event: UsageEvent, deadline: AbortSignal): Promise<void>;
}

/** Durable fallback for events that the buffer could not take. Writes must be idempotent by event id. */
export interface UsageSpool {
  write(event: UsageEvent): Promise<void>;
}

export type RecordOutcome = 'redis' | 'spool';

export interface UsageRecorderOptions {
  /** Longest wait for the buffer before the event goes to the spool instead. */
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
 * Writes one usage event per served request to the live buffer; falls back to the spool when the
 * buffer is down or slow. An event can end up in both stores (the buffer answered after the
 * timeout): both are keyed by the event id, and the aggregation merges them by id, so it counts once.
 */
export class UsageRecorder {
  constructor(
    private readonly buffer: LiveUsageBuffer,
    private readonly spool: UsageSpool,
    private readonly options: UsageRecorderOptions,
  ) {}

  async record(candidate: UsageEvent): Promise<RecordOutcome> {
    const event = usageEventSchema.parse(candidate);
    try {
      const deadline = AbortSignal.timeout(this.options.redisTimeoutMs);
      await withTimeout(
        this.buffer.write(event, deadline),
        this.options.redisTimeoutMs,
        'Redis write timed out',
      );
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
