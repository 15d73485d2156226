import type { DailyUsage, UsageAggregate } from '../shared/chargeback/model';
import { batchRecordKeys } from '../shared/chargeback/aggregate';
import type {
  AggregateStore,
  BatchRecord,
  DayRecord,
  ReportReceipt,
  WindowBatch,
} from '../shared/chargeback/ports';
import { monthOf } from '../shared/contracts/report-period';
import { parseWindowId } from '../shared/contracts/window';

/**
 * The AggregateStore port in memory, with Cosmos DB's access paths: every read is a filtered read
 * of one month (or one day of it), or of the ledger, answered from an index, so its cost grows with
 * what it returns, as an indexed Cosmos DB query's does. Documents are copied in and out, as a
 * round trip through JSON would. It counts the documents it returns (the reads a run pays for).
 *
 * Why it exists: the local Cosmos DB emulator (@vercel/cosmosdb-server) answers a query by
 * scanning the whole container, at a cost that grows with documents × results (one query returning
 * 1,500 of 30,000 documents took 39 s), so a month of windows cannot be measured through it.
 */
export class MemoryAggregateStore implements AggregateStore {
  readonly #usage = new Map<string, Map<string, string>>();
  readonly #daily = new Map<string, Map<string, string>>();
  readonly #batches = new Map<string, Map<string, string>>();
  readonly #days = new Map<string, DayRecord>();
  readonly #pendingDays = new Set<string>();
  readonly #receipts = new Map<string, ReportReceipt>();
  /** Documents returned by reads since the last reset. */
  documentsRead = 0;

  commit(rows: UsageAggregate[], record: BatchRecord): Promise<void> {
    for (const row of rows) this.#put(this.#usage, row.day, row);
    this.#put(this.#batches, record.month, record);
    if (!record.rolledUp) this.#pendingDays.add(record.day);
    return Promise.resolve();
  }

  updateUsage(rows: UsageAggregate[]): Promise<void> {
    for (const row of rows) this.#put(this.#usage, row.day, row);
    return Promise.resolve();
  }

  usage(filter: { month: string; day?: string; department?: string }): Promise<UsageAggregate[]> {
    const rows = this.#read<UsageAggregate>(this.#usage, filter);
    return Promise.resolve(
      filter.department === undefined ? rows : rows.filter((r) => r.department === filter.department),
    );
  }

  committed(batch: WindowBatch): Promise<boolean> {
    const month = monthOf(parseWindowId(batch.windowId));
    return Promise.resolve(this.#batches.get(month)?.has(batchRecordKeys(batch, month).id) ?? false);
  }

  batches(month: string, day?: string): Promise<BatchRecord[]> {
    const all = this.#parse<BatchRecord>([...(this.#batches.get(month)?.values() ?? [])]);
    return Promise.resolve(day === undefined ? all : all.filter((b) => b.day === day));
  }

  daysToRollUp(): Promise<string[]> {
    // An index on the flag, as the Cosmos DB query's filter would use.
    return Promise.resolve([...this.#pendingDays].sort());
  }

  writeRollUp(rows: DailyUsage[], record: DayRecord, batches: readonly BatchRecord[]): Promise<void> {
    this.#daily.delete(record.day);
    for (const row of rows) this.#put(this.#daily, row.day, row);
    this.#days.set(record.id, structuredClone(record));
    for (const batch of batches) this.#put(this.#batches, batch.month, { ...batch, rolledUp: true });
    if (batches.length > 0) this.#pendingDays.delete(record.day);
    return Promise.resolve();
  }

  daily(filter: { month: string; day?: string }): Promise<DailyUsage[]> {
    return Promise.resolve(this.#read<DailyUsage>(this.#daily, filter));
  }

  days(month?: string): Promise<DayRecord[]> {
    return Promise.resolve(
      this.#copy([...this.#days.values()].filter((d) => month === undefined || d.month === month)),
    );
  }

  receipts(): Promise<ReportReceipt[]> {
    return Promise.resolve(this.#copy([...this.#receipts.values()]));
  }

  putReceipt(receipt: ReportReceipt): Promise<void> {
    this.#receipts.set(receipt.id, structuredClone(receipt));
    return Promise.resolve();
  }

  /** Stored as JSON, as Cosmos DB keeps them (and out of the garbage collector's way). */
  #put<T extends { id: string }>(index: Map<string, Map<string, string>>, key: string, doc: T): void {
    const bucket = index.get(key) ?? new Map<string, string>();
    bucket.set(doc.id, JSON.stringify(doc));
    index.set(key, bucket);
  }

  /** A month's documents (the days whose key starts with it), or one day's. */
  #read<T>(index: Map<string, Map<string, string>>, filter: { month: string; day?: string }): T[] {
    const keys =
      filter.day !== undefined ? [filter.day] : [...index.keys()].filter((k) => k.startsWith(filter.month));
    return this.#parse<T>(keys.flatMap((k) => [...(index.get(k)?.values() ?? [])]));
  }

  #parse<T>(docs: string[]): T[] {
    this.documentsRead += docs.length;
    return docs.map((d) => JSON.parse(d) as T);
  }

  #copy<T>(docs: T[]): T[] {
    this.documentsRead += docs.length;
    return docs.map((d) => structuredClone(d));
  }
}
