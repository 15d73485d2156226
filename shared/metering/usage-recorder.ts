import type { UsageEvent } from '../contracts/usage-event';
import { usageEventSchema } from '../contracts/usage-event';

/** The live usage buffer (Redis in production). Writes must be idempotent by event id. */
export interface LiveUsageBuffer {
  /** Writes one event; gives up when `deadline` aborts. */
  write(event: UsageEvent, deadline: AbortSignal): Promise<void>;
}

/** Durable fallback for events that the buffer could not take. Writes must be idempotent by event id. */
export interface UsageSpool {
  /** Writes one event; gives up when `deadline` aborts. */
  write(event: UsageEvent, deadline?: AbortSignal): Promise<void>;
}

/**
 * A store's failure that proves the event was not stored (the command or upload was never sent, or
 * was refused). Any other failure, a timeout above all, may hide a write that landed after all.
 */
export class NotStoredError extends Error {
  override readonly name = 'NotStoredError';
}

/** Could the event be in the store despite this failure? Only a NotStoredError says no. */
export function possiblyStored(error: unknown): boolean {
  return !(error instanceof NotStoredError);
}

const DEADLINE_GRACE_MS = 25;

/** Where an event went: the live buffer, the spool, or (neither took it) the last-resort record. */
export type RecordOutcome = 'redis' | 'spool' | 'last-resort';

export interface UsageRecorderOptions {
  /** Longest wait for the buffer before the event goes to the spool instead. */
  redisTimeoutMs: number;
  /** Longest wait for the spool, every attempt included, before the last-resort record. */
  spoolTimeoutMs?: number;
  spoolAttempts?: number;
  onSpooled?: (event: UsageEvent, reason: unknown) => void;
  /**
   * The last resort when neither store takes the event: it must keep the whole event where it can
   * be read back and re-imported (the logs and telemetry). It must not throw. `maybeStored`: a
   * store failed in a way that may hide a write that landed after all (a timeout).
   */
  onUnrecorded?: (event: UsageEvent, error: unknown, maybeStored: boolean) => void;
}

/**
 * Writes one usage event per served request to the live buffer; falls back to the spool when the
 * buffer is down or slow. An event can end up in both stores (the buffer answered after the
 * timeout): both are keyed by the event id, and the aggregation merges them by id, so it counts once.
 * Every wait is bounded (the buffer's, then the spool's), and a store failing never fails the
 * request the upstream already served: when neither takes the event, it goes to the last-resort
 * record, from which an admin re-imports it (chargeback/run.ts importEvents).
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
      // A little past the buffer's own deadline: a buffer that knows it sent nothing says so first.
      await withTimeout(
        this.buffer.write(event, deadline),
        this.options.redisTimeoutMs + DEADLINE_GRACE_MS,
        'Redis write timed out',
      );
      return 'redis';
    } catch (redisError) {
      this.options.onSpooled?.(event, redisError);
      try {
        await this.#spool(event);
        return 'spool';
      } catch (spoolFailure) {
        const errors: unknown[] =
          spoolFailure instanceof AggregateError ? spoolFailure.errors : [spoolFailure];
        const maybeStored = possiblyStored(redisError) || errors.some(possiblyStored);
        this.options.onUnrecorded?.(event, errors[errors.length - 1], maybeStored);
        return 'last-resort';
      }
    }
  }

  /**
   * Spool attempts with a short pause between them, all within the spool's time limit. Rejects
   * with an AggregateError of every attempt's error, oldest first.
   */
  async #spool(event: UsageEvent): Promise<void> {
    const attempts = this.options.spoolAttempts ?? 3;
    const limitMs = this.options.spoolTimeoutMs ?? 2000;
    const giveUpAt = Date.now() + limitMs;
    const errors: unknown[] = [];
    for (let attempt = 1; ; attempt++) {
      const remaining = giveUpAt - Date.now();
      try {
        await withTimeout(
          this.spool.write(event, AbortSignal.timeout(Math.max(1, remaining))),
          Math.max(1, remaining),
          `Spool write timed out (${limitMs} ms for every attempt)`,
        );
        return;
      } catch (error) {
        errors.push(error);
        const pause = 50 * attempt;
        if (attempt >= attempts || Date.now() + pause >= giveUpAt) {
          throw new AggregateError(errors, 'Every spool attempt failed', { cause: error });
        }
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
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
