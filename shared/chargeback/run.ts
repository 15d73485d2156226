import { parsePeriod, dayOf, monthOf } from '../contracts/report-period';
import type { ReportPeriod } from '../contracts/report-period';
import { parseWindowId, windowEnd, windowIdAt } from '../contracts/window';

import type { ChargebackConfig } from './model';
import type {
  AggregateStore,
  BatchRecord,
  PriceSource,
  Quarantine,
  ReportStore,
  StepLogger,
  UsageBuffer,
  WindowBatch,
} from './ports';
import { batchRecordKeys, WindowAggregator } from './aggregate';
import { priceTableWith } from './prices';
import { buildReport } from './report';
import { reportFiles } from './report-files';

/** The steps of a chargeback run; the orchestration (functions/chargeback) calls each as an activity. */

export const CHARGEBACK_ORCHESTRATION = 'chargebackRun';

export interface WindowOutcome extends WindowBatch {
  month: string;
  day: string;
  events: number;
  invalidEvents: number;
  aggregates: number;
}

export interface ChargebackRunSummary {
  asOf: string;
  windows: Array<{ windowId: string; batch: string; events: number }>;
  events: number;
  invalidEvents: number;
  aggregates: number;
  reports: string[];
}

/** The run of a quarter hour: `chargeback-<window id>` of the slot the timer fired in. */
export function runInstanceId(at: Date): string {
  return `chargeback-${windowIdAt(at)}`;
}

/** The ids of the months and days a run's windows touch, each once, months first, in order. */
export function periodsOf(outcomes: Array<Pick<WindowOutcome, 'month' | 'day'>>): string[] {
  const months = [...new Set(outcomes.map((o) => o.month))].sort();
  const days = [...new Set(outcomes.map((o) => o.day))].sort();
  return [...months, ...days];
}

export interface ChargebackDeps {
  buffer: UsageBuffer;
  store: AggregateStore;
  prices: PriceSource;
  reports: ReportStore;
  quarantine: Quarantine;
  config: ChargebackConfig;
  /** How long after a window closes its usage is aggregated: streams in flight and spool retries land first. */
  graceMs: number;
}

export class ChargebackSteps {
  constructor(private readonly deps: ChargebackDeps) {}

  findPendingWindows(asOf: Date): Promise<string[]> {
    return this.deps.buffer.pendingWindows(asOf, this.deps.graceMs);
  }

  /**
   * Claims a window's raw usage into its batch, aggregates and prices it, and commits the rows and
   * the batch record. Events that fail the usage schema are quarantined (by content hash,
   * idempotent) and counted, never silently dropped.
   */
  async aggregateWindow(windowId: string, proposedBatch: string, log: StepLogger): Promise<WindowOutcome> {
    const { buffer, store } = this.deps;
    const start = parseWindowId(windowId);
    const batch = await buffer.claim(windowId, proposedBatch);
    const table = priceTableWith(await this.deps.prices.overrides());
    const aggregator = new WindowAggregator(batch, (model, meter, at) => table.priceFor(model, meter, at));
    for await (const page of buffer.read(batch)) for (const raw of page) aggregator.add(raw);
    if (aggregator.invalid.length > 0) {
      await this.deps.quarantine.put(batch, aggregator.invalid);
      log.error(
        `CHARGEBACK_INVALID_EVENTS ${aggregator.invalid.length} in window ${windowId} batch ${batch.batch}: quarantined.`,
      );
    }
    const rows = aggregator.aggregates();
    const record: BatchRecord = {
      ...batchRecordKeys(batch, monthOf(start)),
      type: 'batch',
      windowId,
      batch: batch.batch,
      windowStart: start.toISOString(),
      windowEnd: windowEnd(start).toISOString(),
      month: monthOf(start),
      day: dayOf(start),
      events: aggregator.events,
      invalidEvents: aggregator.invalid.length,
      aggregates: rows.length,
    };
    await store.commit(rows, record);
    return {
      ...batch,
      month: record.month,
      day: record.day,
      events: record.events,
      invalidEvents: record.invalidEvents,
      aggregates: rows.length,
    };
  }

  /**
   * Recomputes one period's report from the committed rows and writes its files. A pure function
   * of the committed rows, the batches and the configuration: a rerun writes identical bytes.
   */
  async writePeriodReports(periodId: string): Promise<string[]> {
    const period: ReportPeriod = parsePeriod(periodId);
    const month = monthOf(period.start);
    const [rows, batches] = await Promise.all([
      this.deps.store.usage(period.kind === 'monthly' ? { month } : { month, day: period.id }),
      this.deps.store.batches(month),
    ]);
    // How far the period's data reaches: the end of its last committed window.
    const inPeriod = batches.filter((b) => b.windowStart >= period.start && b.windowStart < period.end);
    const dataThrough = inPeriod.reduce(
      (latest, b) => (b.windowEnd > latest ? b.windowEnd : latest),
      period.start,
    );
    const report = buildReport({ period, aggregates: rows, config: this.deps.config, dataThrough });
    return this.deps.reports.write(reportFiles(report));
  }

  /** Deletes a batch's raw data: only once everything computed from it is committed. */
  releaseBatch(batch: WindowBatch): Promise<void> {
    return this.deps.buffer.release(batch);
  }
}
