import { createHash } from 'node:crypto';
import { monthOf, parsePeriod } from '../contracts/report-period';
import type { ReportPeriod } from '../contracts/report-period';
import { LEDGER_PARTITION_KEY } from '../contracts/storage';
import type { UsageEvent } from '../contracts/usage-event';
import type { LastResortRecord } from '../metering/last-resort';
import { parseWindowId, windowEnd, windowId, windowIdAt } from '../contracts/window';

import type { ChargebackConfigState, ChargebackReport, DailyUsage } from './model';
import type {
  AggregateStore,
  ConfigSnapshot,
  ConfigSource,
  DayRecord,
  PriceSource,
  Quarantine,
  ReportReceipt,
  ReportStore,
  StepLogger,
  UsageBuffer,
  WindowBatch,
} from './ports';
import type { PriceLookup } from './aggregate';
import { priceRow, WindowAggregator } from './aggregate';
import { priceTableWith } from './prices';
import { buildReport } from './report';
import { reportFiles } from './report-files';
import { rollUpDay, versionOf } from './rollup';

/**
 * The steps of a chargeback run; the orchestration (functions/chargeback) calls each as an activity:
 * 1. find the closed windows that still hold raw usage;
 * 2. aggregate each window's frozen batch into usage rows and commit them with the batch record;
 * 3. release the batch's raw usage: it is committed, whatever happens next;
 * 4. roll up every day with a batch not yet rolled up (pricing rows committed unpriced);
 * 5. write the reports of every period whose data changed since its reports were written.
 * Steps 4 and 5 may wait for an admin (an invalid price override, an invalid CHARGEBACK_CONFIG):
 * they throw a ConfigurationProblem, the run says why, and the next run tries again. Nothing
 * before them depends on configuration, so no configuration can stop metering.
 */

export const CHARGEBACK_ORCHESTRATION = 'chargebackRun';

/** A problem only an admin can fix: the step waits (the next run retries) rather than failing. */
export class ConfigurationProblem extends Error {
  override readonly name = 'ConfigurationProblem';
}

export interface WindowOutcome extends WindowBatch {
  month: string;
  day: string;
  events: number;
  invalidEvents: number;
  aggregates: number;
  /** Why the rows were committed unpriced (an invalid price override), if they were. */
  pricingProblem?: string;
  /**
   * The window had closed, grace period included, when it was claimed: its raw usage may be
   * released. A window claimed before that (an admin's run-now) stays open: committed and reported,
   * but kept, so that the first run after it closes adopts its batch, adds what arrived since (an
   * event counts once however it arrives) and releases it.
   */
  final: boolean;
}

/** A period whose reports are out of date, and the version of the data they will be written from. */
export interface ReportDue {
  period: string;
  version: string;
}

/** A period's receipt, with the version of the configuration its reports were written with. */
export interface VersionedReceipt extends ReportReceipt {
  configVersion: string;
}

/** Something that waits for an admin: which step, which day or period, and why. */
export interface Waiting {
  step: 'roll-up' | 'report';
  period: string;
  problem: string;
}

export interface ChargebackRunSummary {
  asOf: string;
  /** The version of the chargeback configuration the run's reports were checked and written with. */
  configVersion: string;
  windows: Array<{ windowId: string; batch: string; events: number }>;
  events: number;
  invalidEvents: number;
  aggregates: number;
  reports: string[];
  waiting: Waiting[];
}

/** The run of a quarter hour: `chargeback-<window id>` of the slot the timer fired in. */
export function runInstanceId(at: Date): string {
  return `chargeback-${windowIdAt(at)}`;
}

/** What a re-import did with the events it was given (each counted once, by id). */
export interface ImportOutcome {
  events: number;
  imported: number;
  alreadyImported: number;
  /** Still held by the buffer: the runs count them. */
  pending: number;
  /**
   * Ids of events a store may have taken after all (a timeout), which the buffer no longer holds:
   * they may already be counted, so they were not imported (see importEvents).
   */
  maybeCounted: string[];
}

const IMPORT_CONCURRENCY = 16;

/** The batch a re-imported event is committed as: its own, named after its id. */
export function importBatchOf(event: Pick<UsageEvent, 'id' | 'window'>): WindowBatch {
  return {
    windowId: windowId(new Date(event.window)),
    batch: `import-${createHash('sha256').update(event.id).digest('hex').slice(0, 40)}`,
  };
}

/** The configuration read once from the environment (CHARGEBACK_CONFIG or the default), versioned by its content. */
export function staticConfigSource(state: ChargebackConfigState): ConfigSource {
  const snapshot: ConfigSnapshot = {
    version: state.ok ? `env-${versionOf([JSON.stringify(state.config)]).slice(0, 16)}` : 'env-invalid',
    state,
  };
  return { current: () => Promise.resolve(snapshot) };
}

export interface ChargebackDeps {
  buffer: UsageBuffer;
  store: AggregateStore;
  prices: PriceSource;
  reports: ReportStore;
  quarantine: Quarantine;
  /**
   * The configuration in force (the admin API's, in Cosmos DB), read once per run (configSnapshot)
   * and passed to the report steps; a fixed state is taken as a source that never changes.
   */
  config: ConfigSource | ChargebackConfigState;
  /** How long after a window closes its usage is aggregated: streams in flight and spool retries land first. */
  graceMs: number;
  /** Told of each report once it is written (the monitoring workbook's cost per department). */
  onReportWritten?: (report: ChargebackReport) => void;
}

export class ChargebackSteps {
  readonly #config: ConfigSource;

  constructor(private readonly deps: ChargebackDeps) {
    this.#config = 'current' in deps.config ? deps.config : staticConfigSource(deps.config);
  }

  /**
   * The configuration a run uses, read once: the orchestration passes it to every report step, so
   * that the whole run follows one version, and records that version.
   */
  configSnapshot(): Promise<ConfigSnapshot> {
    return this.#config.current();
  }

  findPendingWindows(asOf: Date): Promise<string[]> {
    return this.deps.buffer.pendingWindows(asOf, this.deps.graceMs);
  }

  /**
   * Claims a window's raw usage into its batch, aggregates and prices it, and commits the rows and
   * the batch record. Events that fail the usage schema are quarantined (by content hash,
   * idempotent) and counted, never silently dropped. An invalid price override does not stop the
   * commit: the rows are committed unpriced and priced when their day is rolled up.
   */
  async aggregateWindow(
    windowId: string,
    proposedBatch: string,
    log: StepLogger,
    /** The run's clock (replay-safe): decides whether the window is final. */
    now: Date,
  ): Promise<WindowOutcome> {
    const { buffer } = this.deps;
    const start = parseWindowId(windowId);
    const batch = await buffer.claim(windowId, proposedBatch);
    const committed = await this.#commit(batch, buffer.read(batch), log);
    return { ...committed, final: windowEnd(start).getTime() + this.deps.graceMs <= now.getTime() };
  }

  /**
   * Aggregates and prices a batch's raw events, quarantines the invalid ones, and commits the rows
   * and the batch record (without an invalid price override's prices: committed pending).
   */
  async #commit(
    batch: WindowBatch,
    pages: AsyncIterable<string[]> | Iterable<string[]>,
    log: StepLogger,
  ): Promise<Omit<WindowOutcome, 'final'>> {
    const { store } = this.deps;
    let priceFor: PriceLookup | null = null;
    let pricingProblem: string | undefined;
    try {
      priceFor = await this.priceLookup();
    } catch (error) {
      if (!(error instanceof ConfigurationProblem)) throw error;
      pricingProblem = error.message;
      log.error(`CHARGEBACK_PRICES_INVALID window ${batch.windowId} committed unpriced: ${error.message}`);
    }
    const aggregator = new WindowAggregator(batch, priceFor);
    for await (const page of pages) for (const raw of page) aggregator.add(raw);
    if (aggregator.invalid.length > 0) {
      await this.deps.quarantine.put(batch, aggregator.invalid);
      log.error(
        `CHARGEBACK_INVALID_EVENTS ${aggregator.invalid.length} in window ${batch.windowId} batch ${batch.batch}: quarantined.`,
      );
    }
    const rows = aggregator.aggregates();
    const record = aggregator.batchRecord(rows.length);
    await store.commit(rows, record);
    return {
      ...batch,
      month: record.month,
      day: record.day,
      events: record.events,
      invalidEvents: record.invalidEvents,
      aggregates: rows.length,
      ...(pricingProblem !== undefined ? { pricingProblem } : {}),
    };
  }

  /**
   * Re-imports usage events that neither Redis nor the spool took (their last-resort records).
   * Idempotent: each event is committed as a batch of its own, named after its id, in the window
   * it was recorded in, so importing it again rewrites the same documents, and a later import
   * finds it committed. An event the buffer still holds (a write that landed after the proxy
   * stopped waiting) is left to the runs, which merge copies by id; an empty batch of its own is
   * committed all the same, so that no later import counts it once the buffer has been released.
   * An event a store may hold after all (`maybeStored`: it timed out rather than refused) but
   * which the buffer no longer holds may already have been counted and released: it is imported
   * only when `includeMaybeStored` says so, and listed otherwise.
   */
  async importEvents(
    records: readonly LastResortRecord[],
    log: StepLogger,
    options: { includeMaybeStored?: boolean } = {},
  ): Promise<ImportOutcome> {
    const unique = [...new Map(records.map((record) => [record.event.id, record])).values()];
    const outcome: ImportOutcome = {
      events: unique.length,
      imported: 0,
      alreadyImported: 0,
      pending: 0,
      maybeCounted: [],
    };
    for (let i = 0; i < unique.length; i += IMPORT_CONCURRENCY) {
      await Promise.all(
        unique.slice(i, i + IMPORT_CONCURRENCY).map(async ({ event, maybeStored }) => {
          const batch = importBatchOf(event);
          if (await this.deps.store.committed(batch)) {
            outcome.alreadyImported++;
          } else if (await this.deps.buffer.holds(event)) {
            await this.#commit(batch, [], log);
            outcome.pending++;
          } else if (maybeStored && !options.includeMaybeStored) {
            outcome.maybeCounted.push(event.id);
          } else {
            await this.#commit(batch, [[JSON.stringify(event)]], log);
            outcome.imported++;
          }
        }),
      );
    }
    outcome.maybeCounted.sort();
    log.info(
      `USAGE_IMPORT ${outcome.events} events: ${outcome.imported} imported, ${outcome.alreadyImported} already imported, ${outcome.pending} still pending in the buffer, ${outcome.maybeCounted.length} possibly counted already (not imported).`,
    );
    return outcome;
  }

  /** Deletes a batch's raw data: once its rows and record are committed. */
  releaseBatch(batch: WindowBatch): Promise<void> {
    return this.deps.buffer.release(batch);
  }

  /** Days with a committed batch that their roll-up does not include yet. */
  daysToRollUp(): Promise<string[]> {
    return this.deps.store.daysToRollUp();
  }

  /**
   * Rolls a day's committed window rows up into its daily rows and day record, pricing first any
   * row committed unpriced. Throws a ConfigurationProblem while the price table is invalid.
   */
  async rollUpDay(day: string): Promise<DayRecord> {
    const { store } = this.deps;
    const month = day.slice(0, 7);
    // The batches first, then only their rows: a batch committed in between waits for the next
    // roll-up (its record is not marked), rather than being marked without its rows.
    const batches = await store.batches(month, day);
    const included = new Set(batches.map((b) => `${b.windowId}|${b.batch}`));
    const rows = (await store.usage({ month, day })).filter((row) =>
      included.has(`${row.windowId}|${row.batch}`),
    );
    const pending = rows.filter((row) => row.pricePending);
    let priced = rows;
    if (pending.length > 0) {
      const priceFor = await this.priceLookup();
      const repriced = new Map(pending.map((row) => [row.id, priceRow(row, priceFor)]));
      await store.updateUsage([...repriced.values()]);
      priced = rows.map((row) => repriced.get(row.id) ?? row);
    }
    const record: DayRecord = {
      id: `day|${day}`,
      pk: LEDGER_PARTITION_KEY,
      type: 'day',
      day,
      month,
      // A batch that gains events (an open window adopted again) changes the version too.
      version: versionOf(batches.map((b) => `${b.id}:${b.events}:${b.aggregates}`)),
      batches: batches.length,
      dataThrough: batches.reduce(
        (latest, b) => (b.windowEnd > latest ? b.windowEnd : latest),
        `${day}T00:00:00.000Z`,
      ),
    };
    await store.writeRollUp(rollUpDay(priced), record, batches);
    return record;
  }

  /** The day roll-ups of a month: its committed usage (budgets are reconciled against it). */
  committedRows(month: string): Promise<DailyUsage[]> {
    return this.deps.store.daily({ month });
  }

  /**
   * The periods whose reports are out of date: every day whose roll-up changed since its reports
   * were written, and every month with such a day (a month's version is its days' versions). In
   * the latest month with data (the open one), a report is also out of date when the configuration
   * changed since it was written, so that a month and its days always follow one configuration;
   * earlier months are closed: they keep the figures they were written with unless their data
   * changes. Months first, then days, each in order. Reports that could not be written stay due
   * until they are.
   */
  async reportsDue(snapshot?: ConfigSnapshot): Promise<ReportDue[]> {
    const { state } = snapshot ?? (await this.configSnapshot());
    const [days, receipts] = await Promise.all([this.deps.store.days(), this.deps.store.receipts()]);
    const written = new Map(receipts.map((r) => [r.period, r.version]));
    const open = days.reduce((latest, d) => (d.month > latest ? d.month : latest), '');
    // The content, not the version number: a change that is undone does not rewrite the reports.
    const config = state.ok ? versionOf([JSON.stringify(state.config)]) : 'invalid';
    const versioned = (month: string, version: string): string =>
      month === open ? versionOf([version, `config:${config}`]) : version;
    const months = new Map<string, string[]>();
    for (const d of days) months.set(d.month, [...(months.get(d.month) ?? []), `${d.day}:${d.version}`]);
    const due = (period: string, version: string): ReportDue[] =>
      written.get(period) === version ? [] : [{ period, version }];
    return [
      ...[...months.entries()]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .flatMap(([m, v]) => due(m, versioned(m, versionOf(v)))),
      ...[...days]
        .sort((a, b) => (a.day < b.day ? -1 : 1))
        .flatMap((d) => due(d.day, versioned(d.month, d.version))),
    ];
  }

  /**
   * Recomputes one period's report from its day roll-ups and writes its files, then its receipt
   * (which records the configuration version). A pure function of the roll-ups and the
   * configuration: a rerun writes identical bytes. Throws a ConfigurationProblem while the
   * configuration is invalid.
   */
  async writePeriodReports(due: ReportDue, snapshot?: ConfigSnapshot): Promise<string[]> {
    const { store } = this.deps;
    const { version: configVersion, state: config } = snapshot ?? (await this.configSnapshot());
    if (!config.ok) {
      throw new ConfigurationProblem(
        `${configVersion.startsWith('env-') ? 'CHARGEBACK_CONFIG' : `The chargeback configuration (version ${configVersion})`} is invalid: ${config.problems.join('; ')}`,
      );
    }
    const period: ReportPeriod = parsePeriod(due.period);
    const month = monthOf(period.start);
    const [rows, days] = await Promise.all([
      store.daily(period.kind === 'monthly' ? { month } : { month, day: period.id }),
      store.days(month),
    ]);
    const [first, end] = [period.start.slice(0, 10), period.end.slice(0, 10)];
    // How far the period's data reaches: the end of its last committed window.
    const dataThrough = days
      .filter((d) => d.day >= first && d.day < end)
      .reduce((latest, d) => (d.dataThrough > latest ? d.dataThrough : latest), period.start);
    const report = buildReport({ period, aggregates: rows, config: config.config, dataThrough });
    const paths = await this.deps.reports.write(reportFiles(report));
    const receipt: VersionedReceipt = {
      id: `receipt|${period.id}`,
      pk: LEDGER_PARTITION_KEY,
      type: 'receipt',
      period: period.id,
      version: due.version,
      configVersion,
    };
    await store.putReceipt(receipt);
    this.deps.onReportWritten?.(report);
    return paths;
  }

  /** The price table: defaults and admins' overrides. An invalid override is a ConfigurationProblem. */
  private async priceLookup(): Promise<PriceLookup> {
    const overrides = await this.deps.prices.overrides();
    let table: ReturnType<typeof priceTableWith>;
    try {
      table = priceTableWith(overrides);
    } catch (error) {
      throw new ConfigurationProblem((error as Error).message);
    }
    return (model, meter, at) => table.priceFor(model, meter, at);
  }
}
