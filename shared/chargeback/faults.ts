/**
 * Fault points of the chargeback activities, for resilience tests: a test arms a point to fail
 * its next N passes (as a crash or an outage at that step would), and the run must still converge.
 * Unarmed, a fault point costs one map lookup; nothing arms them outside tests.
 */
export type FaultPoint = 'find' | 'aggregate' | 'aggregate:committed' | 'report' | 'release';

const armed = new Map<FaultPoint, number>();
const passes = new Map<FaultPoint, number>();

export class InjectedFault extends Error {
  constructor(point: FaultPoint) {
    super(`injected fault at '${point}'`);
    this.name = 'InjectedFault';
  }
}

export function armFault(point: FaultPoint, times = 1): void {
  armed.set(point, times);
}

export function resetFaults(): void {
  armed.clear();
  passes.clear();
}

/** How many times each point was passed (failed or not) since the last reset. */
export function faultPasses(point: FaultPoint): number {
  return passes.get(point) ?? 0;
}

export function faultPoint(point: FaultPoint): Promise<void> {
  passes.set(point, (passes.get(point) ?? 0) + 1);
  const left = armed.get(point) ?? 0;
  if (left <= 0) return Promise.resolve();
  armed.set(point, left - 1);
  return Promise.reject(new InjectedFault(point));
}
