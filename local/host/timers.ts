import type { Timer } from '@azure/functions';
import { CronExpressionParser } from 'cron-parser';
import { UnknownFunctionError } from './durable/engine';
import type { BindingMetadata, RegisteredFunction } from './functions-core';
import type { FunctionRunner } from './invocation';
import { describe } from './util';

export interface TimerFunctionInfo {
  name: string;
  schedule: string;
  next?: Date;
}

interface ScheduledTimer {
  fn: RegisteredFunction;
  schedule: string;
  runOnStartup: boolean;
  handle?: NodeJS.Timeout;
  last?: Date;
  next?: Date;
  running?: Promise<void>;
  missed: boolean;
}

/**
 * Timer triggers: NCRONTAB schedules (six fields, seconds first, UTC), `runOnStartup`, one
 * invocation per timer function at a time, and runs on demand (the admin API's
 * `POST /admin/functions/{name}`).
 */
export class TimerScheduler {
  readonly #runner: FunctionRunner;
  readonly #log: (line: string) => void;
  readonly #timers = new Map<string, ScheduledTimer>();
  #stopping = false;

  constructor(runner: FunctionRunner, log: (line: string) => void) {
    this.#runner = runner;
    this.#log = log;
  }

  get functions(): TimerFunctionInfo[] {
    return [...this.#timers.values()].map((t) => ({
      name: t.fn.metadata.name,
      schedule: t.schedule,
      next: t.next,
    }));
  }

  add(fn: RegisteredFunction, trigger: BindingMetadata): void {
    const schedule = String(trigger.schedule);
    CronExpressionParser.parse(schedule, { tz: 'UTC' }); // fail at start-up on a bad schedule
    this.#timers.set(fn.metadata.name.toLowerCase(), {
      fn,
      schedule,
      runOnStartup: trigger.runOnStartup === true,
      missed: false,
    });
  }

  /** In `manual` mode timers only run on demand, so tests decide when a timer function runs. */
  start(mode: 'schedule' | 'manual'): void {
    if (mode !== 'schedule') return;
    for (const timer of this.#timers.values()) {
      if (timer.runOnStartup) void this.#fire(timer, false);
      this.#scheduleNext(timer);
    }
  }

  /** Lets the runs in progress finish: a timer function cut off mid-way is a crash, not a shutdown. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const timer of this.#timers.values()) clearTimeout(timer.handle);
    await Promise.allSettled([...this.#timers.values()].flatMap((t) => (t.running ? [t.running] : [])));
  }

  has(name: string): boolean {
    return this.#timers.has(name.toLowerCase());
  }

  /** Runs a timer function now; resolves when that run (or the one it was folded into) is over. */
  async run(name: string): Promise<void> {
    const timer = this.#timers.get(name.toLowerCase());
    if (!timer) throw new UnknownFunctionError(`No timer-triggered function named '${name}'.`);
    await this.#fire(timer, false);
  }

  #scheduleNext(timer: ScheduledTimer): void {
    if (this.#stopping) return;
    const next = CronExpressionParser.parse(timer.schedule, { tz: 'UTC', currentDate: new Date() })
      .next()
      .toDate();
    timer.next = next;
    // setTimeout is limited to ~24.8 days; re-arm in steps for rare long schedules.
    const delay = Math.min(next.getTime() - Date.now(), 2 ** 31 - 1);
    timer.handle = setTimeout(() => {
      if (Date.now() + 5 < next.getTime()) return this.#scheduleNext(timer);
      void this.#fire(timer, false).finally(() => this.#scheduleNext(timer));
    }, delay);
  }

  async #fire(timer: ScheduledTimer, isPastDue: boolean): Promise<void> {
    // Like the real host's singleton lock: one invocation of a timer function at a time; an
    // occurrence that falls during a run is delivered once afterwards, marked past due.
    if (timer.running) {
      timer.missed = true;
      return timer.running;
    }
    const now = new Date();
    const input: Timer = {
      isPastDue,
      schedule: { adjustForDST: true },
      scheduleStatus: {
        last: (timer.last ?? now).toISOString(),
        next: (timer.next ?? now).toISOString(),
        lastUpdated: now.toISOString(),
      },
    };
    timer.last = now;
    timer.running = this.#runner
      .invoke(timer.fn, input, this.#runner.context(timer.fn))
      .then(
        () => undefined,
        (error: unknown) =>
          this.#log(`Timer function '${timer.fn.metadata.name}' failed: ${describe(error)}`),
      )
      .finally(() => {
        timer.running = undefined;
        if (timer.missed && !this.#stopping) {
          timer.missed = false;
          void this.#fire(timer, true);
        }
      });
    return timer.running;
  }
}
