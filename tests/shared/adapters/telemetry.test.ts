import type { MetricPoint, TelemetrySink } from '../../../shared/adapters/telemetry';
import { METRICS, Telemetry, createTelemetry, usageMetrics } from '../../../shared/adapters/telemetry';
import { parsePeriod } from '../../../shared/contracts/report-period';
import type { UsageEvent } from '../../../shared/contracts/usage-event';
import { LAST_RESORT_EVENT, parseLastResortRecords } from '../../../shared/metering/last-resort';

const event: UsageEvent = {
  id: 'req-1',
  recordedAt: '2026-11-22T12:31:00.000Z',
  window: '2026-11-22T12:30:00.000Z',
  subscriptionId: 'sub-1',
  appId: 'app-1',
  department: 'finance',
  api: 'chat',
  deployment: 'o3-mini',
  model: 'o3-mini-2025-01-31',
  promptTokens: 1200,
  cachedTokens: 1024,
  completionTokens: 300,
  reasoningTokens: 100,
  audioSeconds: 0,
  billableCharacters: 0,
  status: 200,
  latencyMs: 120,
  streamed: true,
  estimated: false,
};

describe('telemetry', () => {
  it('turns a usage event into call and token metrics with department and deployment dimensions', () => {
    const points = usageMetrics(event, 'redis');
    const tokens = (type: string) =>
      points.find((p) => p.name === METRICS.tokens && p.properties.tokenType === type)?.value;
    expect(points[0]).toEqual({
      name: METRICS.calls,
      value: 1,
      properties: {
        department: 'finance',
        deployment: 'o3-mini',
        api: 'chat',
        status: '200',
        estimated: 'false',
      },
    });
    // Cached input and reasoning output are reported apart, so nothing is counted in two series.
    expect([tokens('prompt'), tokens('cached'), tokens('completion'), tokens('reasoning')]).toEqual([
      176, 1024, 200, 100,
    ]);
    expect(points.some((p) => p.name === METRICS.spooledEvents)).toBe(false);
    expect(usageMetrics(event, 'spool').some((p) => p.name === METRICS.spooledEvents)).toBe(true);
  });

  it('reports audio seconds and characters for speech, and unassigned calls', () => {
    const metrics: MetricPoint[] = [];
    const traces: Array<Record<string, string>> = [];
    const sink: TelemetrySink = {
      trackMetric: (m) => metrics.push(m),
      trackTrace: (t) => traces.push(t.properties),
      trackEvent: () => undefined,
    };
    const telemetry = new Telemetry(sink);
    telemetry.usage(
      {
        ...event,
        api: 'tts',
        deployment: 'tts-neural',
        promptTokens: 0,
        cachedTokens: 0,
        completionTokens: 0,
        reasoningTokens: 0,
        billableCharacters: 42,
        audioSeconds: 3.5,
      },
      'redis',
    );
    telemetry.unassigned({
      subscriptionId: 'sub-x',
      appId: 'app-x',
      department: 'unassigned',
      unassigned: true,
    });
    expect(metrics.map((m) => [m.name, m.value])).toEqual([
      [METRICS.calls, 1],
      [METRICS.audioSeconds, 3.5],
      [METRICS.characters, 42],
      [METRICS.unassignedCalls, 1],
    ]);
    expect(traces[0]).toMatchObject({ correlationId: 'req-1', department: 'finance', outcome: 'redis' });
  });

  it('sends the last-resort record as a custom event carrying the whole event, which parses back', () => {
    const events: Array<{ name: string; properties: Record<string, string> }> = [];
    const telemetry = new Telemetry({
      trackMetric: () => undefined,
      trackTrace: () => undefined,
      trackEvent: (e) => events.push(e),
    });
    telemetry.lastResort(event, 'spool write timed out', true);
    expect(events).toHaveLength(1);
    expect(events[0]?.name).toBe(LAST_RESORT_EVENT);
    // As exported from Application Insights: one JSON row per event, customDimensions as properties.
    const exported = JSON.stringify({ name: events[0]?.name, customDimensions: events[0]?.properties });
    expect(parseLastResortRecords(exported)).toEqual({
      records: [{ event, maybeStored: true }],
      problems: [],
    });
    expect(usageMetrics(event, 'last-resort').some((p) => p.name === METRICS.lastResortEvents)).toBe(true);
  });

  it('is off without a connection string', async () => {
    expect((await createTelemetry(undefined)).enabled).toBe(false);
  });
});

describe('report telemetry', () => {
  it("puts each department's billed total of a written report, with its period, as a metric", () => {
    const points: MetricPoint[] = [];
    const telemetry = new Telemetry({
      trackMetric: (p) => points.push(p),
      trackTrace: () => undefined,
      trackEvent: () => undefined,
    });
    const department = (id: string, total: string) => ({
      department: id,
      name: id,
      usage: total,
      shared: '0.00',
      markup: '0.00',
      total,
    });
    telemetry.reportWritten({
      period: parsePeriod('2026-12'),
      currency: 'USD',
      departments: [department('research', '1234.56'), department('marketing', '0.07')],
    });
    expect(points).toEqual([
      {
        name: METRICS.reportDepartmentTotal,
        value: 1234.56,
        properties: { period: '2026-12', kind: 'monthly', department: 'research', currency: 'USD' },
      },
      {
        name: METRICS.reportDepartmentTotal,
        value: 0.07,
        properties: { period: '2026-12', kind: 'monthly', department: 'marketing', currency: 'USD' },
      },
    ]);
  });
});
