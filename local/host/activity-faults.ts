import type { ActivityInterceptor } from './durable/engine';

export type FaultPhase = 'before' | 'after';

export class InjectedFault extends Error {
  readonly activity: string;
  readonly phase: FaultPhase;

  constructor(activity: string, phase: FaultPhase) {
    super(`injected fault ${phase} activity '${activity}'`);
    this.name = 'InjectedFault';
    this.activity = activity;
    this.phase = phase;
  }
}

/**
 * Fails chosen attempts of chosen activities, for resilience tests: an outage before an activity
 * does its work (`before`), or a crash after its side effects are committed but before the
 * orchestration hears of it (`after`). Install it with `host.durable.interceptActivities(faults)`.
 * Activity names are matched case-insensitively, as the host finds functions.
 */
export class ActivityFaults implements ActivityInterceptor {
  readonly #armed = new Map<string, number>();
  readonly #passes = new Map<string, number>();

  /** Fails the next `times` attempts of `activity` at `phase`; arming a phase again replaces the count. */
  arm(activity: string, phase: FaultPhase = 'before', times = 1): void {
    this.#armed.set(key(activity, phase), times);
  }

  /** How many attempts of this activity passed the given phase (failed or not) since reset. */
  passes(activity: string, phase: FaultPhase = 'before'): number {
    return this.#passes.get(key(activity, phase)) ?? 0;
  }

  /** Disarms every fault and forgets the passes. */
  reset(): void {
    this.#armed.clear();
    this.#passes.clear();
  }

  before(activity: string): void {
    this.#pass(activity, 'before');
  }

  after(activity: string): void {
    this.#pass(activity, 'after');
  }

  #pass(activity: string, phase: FaultPhase): void {
    const k = key(activity, phase);
    this.#passes.set(k, (this.#passes.get(k) ?? 0) + 1);
    const left = this.#armed.get(k) ?? 0;
    if (left <= 0) return;
    this.#armed.set(k, left - 1);
    throw new InjectedFault(activity, phase);
  }
}

function key(activity: string, phase: FaultPhase): string {
  return `${phase}:${activity.toLowerCase()}`;
}
