import type { ReportFile } from '../contracts/report-paths';
import type { ChargebackConfigState, DailyUsage, UsageAggregate } from './model';

/**
 * What the chargeback steps need from the outside world, as interfaces. The adapters implement
 * them (Redis, Blob Storage, Cosmos DB); tests can give in-memory ones. There is no clock: the
 * steps take their instant as input (`asOf`), from the orchestration's replay-safe time.
 */

/** A window's claimed batch of raw usage: frozen once claimed. */
export interface WindowBatch {
  windowId: string;
  batch: string;
}

/** The raw usage buffer (Redis plus the spool): live events, claimed into frozen batches, released after commit. */
export interface UsageBuffer {
  /** Closed windows (ended `graceMs` before `asOf`) that still hold raw usage, oldest first. */
  pendingWindows(asOf: Date, graceMs: number): Promise<string[]>;
  /** Claims the window's live and spooled events into its open batch (adopting one, else opening `proposed`). */
  claim(windowId: string, proposed: string): Promise<WindowBatch>;
  /** The batch's raw events (JSON strings), page by page; the same pages on every read. */
  read(batch: WindowBatch): AsyncIterable<string[]>;
  /** Deletes the batch's raw data: only after everything computed from it is committed. */
  release(batch: WindowBatch): Promise<void>;
  /** Does the buffer hold this event (live, spooled or in an unreleased batch)? Then a run will count it. */
  holds(event: { window: string; id: string }): Promise<boolean>;
}

/** Spooled usage events (one blob per event), as the buffer claims and releases them. */
export interface SpooledUsage {
  /** Window ids that have spooled events. */
  windows(): Promise<string[]>;
  /** Names of a window's spooled events. */
  names(windowId: string): AsyncIterable<string>;
  /** One spooled event, as stored (JSON). */
  read(name: string): Promise<string>;
  delete(name: string): Promise<void>;
  /** Is this event spooled and not yet released? */
  holds(event: { window: string; id: string }): Promise<boolean>;
}

/** A committed batch: its rows are in the store; written last, as the commit marker. */
export interface BatchRecord {
  id: string;
  pk: string;
  type: 'batch';
  windowId: string;
  batch: string;
  windowStart: string;
  windowEnd: string;
  month: string;
  day: string;
  events: number;
  invalidEvents: number;
  aggregates: number;
  /** False until the batch's day has been rolled up with it (DayRecord). */
  rolledUp: boolean;
}

/**
 * A day with committed usage, as of its last roll-up. Its version names the batches the roll-up
 * was built from, so a report knows whether it is up to date.
 */
export interface DayRecord {
  id: string;
  pk: string;
  type: 'day';
  day: string;
  month: string;
  /** A digest of the ids of the day's committed batches. */
  version: string;
  batches: number;
  /** End of the day's last committed window. */
  dataThrough: string;
}

/** A period's reports were written from this version of its data. */
export interface ReportReceipt {
  id: string;
  pk: string;
  type: 'receipt';
  period: string;
  version: string;
}

/** Aggregated, priced usage rows and batch records (Cosmos DB). */
export interface AggregateStore {
  /** Upserts a batch's rows, then its record. Idempotent: ids are deterministic. */
  commit(rows: UsageAggregate[], record: BatchRecord): Promise<void>;
  /** The usage rows of a month, or of one day of it; every department unless one is named. */
  usage(filter: { month: string; day?: string; department?: string }): Promise<UsageAggregate[]>;
  /** Is this batch committed (its record written)? */
  committed(batch: WindowBatch): Promise<boolean>;
  /** The committed batches of a month, or of one day of it. */
  batches(month: string, day?: string): Promise<BatchRecord[]>;
  /** Upserts window rows again (rows priced after their commit). */
  updateUsage(rows: UsageAggregate[]): Promise<void>;
  /** Days (YYYY-MM-DD) with a committed batch not yet rolled up, oldest first. */
  daysToRollUp(): Promise<string[]>;
  /**
   * Writes a day's roll-up: its rows, then its record, then marks the batches it was built from
   * as rolled up. Idempotent: ids are deterministic.
   */
  writeRollUp(rows: DailyUsage[], record: DayRecord, batches: readonly BatchRecord[]): Promise<void>;
  /** The roll-up rows of a month, or of one day of it. */
  daily(filter: { month: string; day?: string }): Promise<DailyUsage[]>;
  /** Every day record (of a month, if named). */
  days(month?: string): Promise<DayRecord[]>;
  receipts(): Promise<ReportReceipt[]>;
  putReceipt(receipt: ReportReceipt): Promise<void>;
}

/**
 * The chargeback configuration in force, with its version: what the admin API last wrote, else
 * CHARGEBACK_CONFIG (which only seeds it). The proxy reads it for budgets; each chargeback run
 * records the version it used.
 */
export interface ConfigSnapshot {
  /** Changes whenever the configuration does; recorded by each run. */
  version: string;
  state: ChargebackConfigState;
}

export interface ConfigSource {
  /** The configuration in force (possibly cached: the source states how stale it may be). */
  current(): Promise<ConfigSnapshot>;
}

/** An admin's price override as stored, with when it was written. */
export interface StoredPrice {
  document: Record<string, unknown>;
  /** When the override was written (Cosmos `_ts`): it never applies before that. */
  writtenAt: Date;
}

export interface PriceSource {
  overrides(): Promise<StoredPrice[]>;
}

/** One rendered report file, ready to store. */
export interface RenderedReportFile extends ReportFile {
  path: string;
  content: string;
  contentType: string;
  /** Shown as an attachment (CSV, JSON) or inline (the HTML summary). */
  attachment: boolean;
  metadata: Record<string, string>;
}

export interface ReportStore {
  /** Writes the files (unchanged ones are skipped); returns their paths. */
  write(files: readonly RenderedReportFile[]): Promise<string[]>;
}

/** Raw events that failed the usage schema: kept aside and counted, never dropped silently. */
export interface Quarantine {
  put(batch: WindowBatch, invalid: ReadonlyArray<{ raw: string; problem: string }>): Promise<void>;
}

export interface StepLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}
