/**
 * Failures the simulators inject on request, either for every later request (`setFault`) or for one
 * request (the `x-simulator-fault` header, or the query parameter of the same name where a client
 * cannot set headers, such as the Speech SDK's WebSocket). One request's fault wins over the
 * simulator-wide one, so that concurrent tests do not see each other's failures.
 *
 * - `429` / `429:<ms>`  rate limited, with `retry-after` (seconds) and `retry-after-ms` (default 1000 ms)
 * - `500`, `503`        a server error in the service's error shape
 * - `timeout`           the request is accepted and never answered (until the client gives up or close())
 * - `reset`             the connection is dropped before any response
 * - `cut`               a response (a stream, or a JSON body) stops half-way and the connection drops
 * - `slow:<ms>`         latency before the response (or first chunk) instead of the configured one
 * - `drip:<ms>`         delay between streamed chunks instead of the configured one
 * Several can be combined with commas, e.g. `slow:200,cut`; at most one of them may be an outcome.
 * An empty header value means "no fault" for that request, whatever the simulator-wide setting.
 */
export type SimulatorFault =
  '429' | `429:${number}` | '500' | '503' | 'timeout' | 'reset' | 'cut' | `slow:${number}` | `drip:${number}`;

export type FaultSetting = SimulatorFault | readonly SimulatorFault[];

export const FAULT_HEADER = 'x-simulator-fault';

export type FaultOutcome = 'rate-limit' | 'server-error' | 'unavailable' | 'timeout' | 'reset' | 'cut';

export interface FaultPlan {
  outcome?: FaultOutcome;
  /** For `rate-limit`. */
  retryAfterMs: number;
  latencyMs?: number;
  chunkDelayMs?: number;
}

export const NO_FAULT: FaultPlan = Object.freeze({ retryAfterMs: 1000 });

export class FaultSyntaxError extends Error {}

const OUTCOMES: Record<string, FaultOutcome> = {
  '429': 'rate-limit',
  '500': 'server-error',
  '503': 'unavailable',
  timeout: 'timeout',
  reset: 'reset',
  cut: 'cut',
};

/** Parses a fault setting (or a comma-separated header value); throws FaultSyntaxError when invalid. */
export function parseFault(setting: FaultSetting | (string & {}) | undefined): FaultPlan {
  if (setting === undefined) return NO_FAULT;
  const parts = (typeof setting === 'string' ? setting.split(',') : setting)
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
  if (parts.length === 0) return NO_FAULT;
  const plan: FaultPlan = { retryAfterMs: NO_FAULT.retryAfterMs };
  for (const part of parts) {
    const [name = '', argument] = part.split(':', 2);
    const outcome = OUTCOMES[name];
    if (outcome) {
      if (plan.outcome) throw new FaultSyntaxError(`Only one failure per request: '${parts.join(',')}'.`);
      if (argument !== undefined && outcome !== 'rate-limit') {
        throw new FaultSyntaxError(`Fault '${name}' takes no argument.`);
      }
      plan.outcome = outcome;
      if (argument !== undefined) plan.retryAfterMs = milliseconds(part, argument);
    } else if (name === 'slow') {
      plan.latencyMs = milliseconds(part, argument);
    } else if (name === 'drip') {
      plan.chunkDelayMs = milliseconds(part, argument);
    } else {
      throw new FaultSyntaxError(
        `Unknown fault '${part}'. Use 429, 429:<ms>, 500, 503, timeout, reset, cut, slow:<ms> or drip:<ms>.`,
      );
    }
  }
  return plan;
}

function milliseconds(part: string, argument: string | undefined): number {
  const value = Number(argument);
  if (argument === undefined || argument === '' || !Number.isInteger(value) || value < 0) {
    throw new FaultSyntaxError(`Fault '${part}' needs a whole number of milliseconds.`);
  }
  return value;
}

/** Whether a plan changes anything about its request: what the simulators count as `faulted`. */
export function isFaulted(plan: FaultPlan): boolean {
  return plan.outcome !== undefined || plan.latencyMs !== undefined || plan.chunkDelayMs !== undefined;
}

/** The `retry-after` of a rate-limit fault: whole seconds, at least one. */
export function retryAfterSeconds(plan: FaultPlan): number {
  return Math.max(1, Math.ceil(plan.retryAfterMs / 1000));
}

/**
 * The fault of one request: the value it carries (header or query parameter, repeated headers
 * joined) when it carries one, else the simulator-wide plan. Throws FaultSyntaxError when invalid.
 */
export function requestFault(
  value: string | readonly string[] | null | undefined,
  fallback: FaultPlan,
): FaultPlan {
  if (value === undefined || value === null) return fallback;
  return parseFault(typeof value === 'string' ? value : value.join(','));
}
