import type { Attribution } from '../metering/attribution';
import type { RecordOutcome } from '../metering/usage-recorder';
import type { UsageEvent } from '../contracts/usage-event';
import type { ChargebackReport } from '../chargeback/model';
import { LAST_RESORT_EVENT } from '../metering/last-resort';

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
  trackEvent(event: { name: string; properties: Record<string, string> }): void;
}

export const METRICS = {
  calls: 'chargeback.calls',
  tokens: 'chargeback.tokens',
  audioSeconds: 'chargeback.audio_seconds',
  characters: 'chargeback.characters',
  unassignedCalls: 'chargeback.unassigned_calls',
  spooledEvents: 'chargeback.spooled_events',
  /** Usage events neither Redis nor the spool took: kept only as last-resort records until re-imported. */
  lastResortEvents: 'chargeback.last_resort_events',
  /** Usage events whose id was already stored with a different bill (a reused request id). */
  replayedEvents: 'chargeback.replayed_events',
  /** Requests whose department header from the gateway was unusable (billed to unassigned). */
  badDepartmentHeaders: 'chargeback.bad_department_headers',
  /** Requests answered with a budget warning (a soft threshold of a monthly budget crossed). */
  budgetWarnings: 'chargeback.budget_warnings',
  /** Requests a hard monthly budget refused before the provider was called. */
  budgetRefusals: 'chargeback.budget_refusals',
  /** Budget checks or spend updates that failed (the request was served: fail-open). */
  budgetUnavailable: 'chargeback.budget_unavailable',
  /**
   * Each department's billed total in a report just written (property `period`: a month or a
   * day): what the monitoring workbook shows as cost per department. The report stays the
   * authoritative figure (exact decimals; a metric is a double).
   */
  reportDepartmentTotal: 'chargeback.report_department_total',
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
  if (outcome === 'last-resort') {
    points.push({ name: METRICS.lastResortEvents, value: 1, properties: dimensions });
  }
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

  /**
   * The last-resort record of an event neither store took, as a custom event carrying the whole
   * event: it can be exported from Application Insights and re-imported (metering/last-resort.ts).
   */
  lastResort(event: UsageEvent, reason: string, maybeStored: boolean): void {
    this.sink?.trackEvent({
      name: LAST_RESORT_EVENT,
      properties: {
        event: JSON.stringify(event),
        reason,
        maybeStored: String(maybeStored),
        correlationId: event.id,
      },
    });
  }

  /** A usage event's id was already stored with a different bill: the second is not counted. */
  replayed(event: UsageEvent): void {
    this.sink?.trackMetric({
      name: METRICS.replayedEvents,
      value: 1,
      properties: { department: event.department, deployment: event.deployment, api: event.api },
    });
  }

  /** The gateway sent a department header that cannot be used (a misconfigured policy). */
  badDepartmentHeader(attribution: Attribution): void {
    this.sink?.trackMetric({
      name: METRICS.badDepartmentHeaders,
      value: 1,
      properties: { subscriptionId: attribution.subscriptionId, appId: attribution.appId },
    });
  }

  /** A report was written: one point per department with its billed total. */
  reportWritten(report: Pick<ChargebackReport, 'period' | 'currency' | 'departments'>): void {
    for (const department of report.departments) {
      this.sink?.trackMetric({
        name: METRICS.reportDepartmentTotal,
        value: Number(department.total),
        properties: {
          period: report.period.id,
          kind: report.period.kind,
          department: department.department,
          currency: report.currency,
        },
      });
    }
  }

  /** A request answered with a budget warning header: one point per warned budget. */
  budgetWarning(warning: { budgetId: string; department: string; appId?: string; threshold: number }): void {
    this.sink?.trackMetric({
      name: METRICS.budgetWarnings,
      value: 1,
      properties: {
        budget: warning.budgetId,
        department: warning.department,
        ...(warning.appId === undefined ? {} : { appId: warning.appId }),
        threshold: String(warning.threshold),
      },
    });
  }

  /** A request a hard budget refused before the provider was called. */
  budgetRefused(refusal: { budgetId: string; department: string; appId?: string }): void {
    this.sink?.trackMetric({
      name: METRICS.budgetRefusals,
      value: 1,
      properties: {
        budget: refusal.budgetId,
        department: refusal.department,
        ...(refusal.appId === undefined ? {} : { appId: refusal.appId }),
      },
    });
  }

  /** A budget check or spend update failed; the request was served regardless. */
  budgetUnavailable(stage: string): void {
    this.sink?.trackMetric({ name: METRICS.budgetUnavailable, value: 1, properties: { stage } });
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
    trackEvent: (event) => client.trackEvent(event),
  });
}
