import type { UsageApi, UsageEvent, UsageFigures } from '../contracts/usage-event';
import { NO_USAGE } from '../contracts/usage-event';
import { windowStart } from '../contracts/window';
import type { Attribution } from './attribution';

export interface ServedRequest {
  attribution: Attribution;
  correlationId: string;
  /** When the proxy received the request (ms since the epoch). */
  startedAt: number;
}

/**
 * The usage event of a served request, stamped now: the recording time decides the window, so a
 * late event lands in a later window, never in one already closed.
 */
export function usageEventFor(
  served: ServedRequest,
  details: {
    api: UsageApi;
    deployment: string;
    model: string;
    figures: Partial<UsageFigures>;
    status: number;
    streamed: boolean;
    estimated: boolean;
  },
  now: Date = new Date(),
): UsageEvent {
  const { attribution } = served;
  return {
    id: served.correlationId,
    recordedAt: now.toISOString(),
    window: windowStart(now).toISOString(),
    subscriptionId: attribution.subscriptionId,
    appId: attribution.appId,
    department: attribution.department,
    ...(attribution.userId ? { userId: attribution.userId } : {}),
    api: details.api,
    deployment: details.deployment,
    model: details.model || details.deployment,
    ...NO_USAGE,
    ...details.figures,
    status: details.status,
    latencyMs: Math.max(0, now.getTime() - served.startedAt),
    streamed: details.streamed,
    estimated: details.estimated,
  };
}
