import type { Attribution } from '../metering/attribution';
import type { RecordOutcome } from '../metering/usage-recorder';
import type { UsageEvent } from '../contracts/usage-event';

/**
 * Telemetry for the metering path: one trace per served request (with its correlation id) and
 * custom metrics for calls, tokens, audio and characters with department and deployment
 * dimensions. Sent to Application Insights only when APPLICATIONINSIGHTS_CONNECTION_STRING is set.
 */

export interface MetricPoint {
  name: string;
  value: number;
  properties: Record<string, string>;
}

export interface TelemetrySink {
  trackMetric(metric: MetricPoint): void;
  trackTrace(trace: { message: string; properties: Record<string, string> }): void;
}

export const METRICS = {
  calls: 'chargeback.calls',
  tokens: 'chargeback.tokens',
  audioSeconds: 'chargeback.audio_seconds',
  characters: 'chargeback.characters',
  unassignedCalls: 'chargeback.unassigned_calls',
  spooledEvents: 'chargeback.spooled_events',
} as const;

/** The metric points one usage event produces (pure, so the mapping is tested without a backend). */
export function usageMetrics(event: UsageEvent, outcome: RecordOutcome): MetricPoint[] {
  const dimensions = { department: event.department, deployment: event.deployment, api: event.api };
  const points: MetricPoint[] = [
    {
      name: METRICS.calls,
      value: 1,
      properties: { ...dimensions, status: String(event.status), estimated: String(event.estimated) },
    },
  ];
  const tokens: Array<[string, number]> = [
    ['prompt', event.promptTokens - event.cachedTokens],
    ['cached', event.cachedTokens],
    ['completion', event.completionTokens - event.reasoningTokens],
    ['reasoning', event.reasoningTokens],
  ];
  for (const [tokenType, value] of tokens) {
    if (value > 0) points.push({ name: METRICS.tokens, value, properties: { ...dimensions, tokenType } });
  }
  if (event.audioSeconds > 0)
    points.push({ name: METRICS.audioSeconds, value: event.audioSeconds, properties: dimensions });
  if (event.billableCharacters > 0) {
    points.push({ name: METRICS.characters, value: event.billableCharacters, properties: dimensions });
  }
  if (outcome === 'spool') points.push({ name: METRICS.spooledEvents, value: 1, properties: dimensions });
  return points;
}

export class Telemetry {
  constructor(private readonly sink: TelemetrySink | undefined) {}

  get enabled(): boolean {
    return this.sink !== undefined;
  }

  usage(event: UsageEvent, outcome: RecordOutcome): void {
    if (!this.sink) return;
    for (const point of usageMetrics(event, outcome)) this.sink.trackMetric(point);
    this.sink.trackTrace({
      message: `usage ${event.api} ${event.deployment} ${event.department}`,
      properties: {
        correlationId: event.id,
        department: event.department,
        deployment: event.deployment,
        model: event.model,
        subscriptionId: event.subscriptionId,
        outcome,
      },
    });
  }

  /** A call from a subscription APIM could not map to a department: charged to `unassigned`. */
  unassigned(attribution: Attribution): void {
    this.sink?.trackMetric({
      name: METRICS.unassignedCalls,
      value: 1,
      properties: { subscriptionId: attribution.subscriptionId, appId: attribution.appId },
    });
  }
}

/** Application Insights when a connection string is configured; otherwise telemetry is off. */
export async function createTelemetry(connectionString: string | undefined): Promise<Telemetry> {
  if (!connectionString) return new Telemetry(undefined);
  const appInsights = await import('applicationinsights');
  appInsights.setup(connectionString).setAutoCollectConsole(false).start();
  const client = appInsights.defaultClient;
  return new Telemetry({
    trackMetric: (metric) => client.trackMetric(metric),
    trackTrace: (trace) => client.trackTrace(trace),
  });
}
