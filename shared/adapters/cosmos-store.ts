import type { Container, CosmosClient } from '@azure/cosmos';
import type {
  AggregateStore,
  BatchRecord,
  DayRecord,
  PriceSource,
  ReportReceipt,
  StoredPrice,
  WindowBatch,
} from '../chargeback/ports';
import { batchRecordKeys } from '../chargeback/aggregate';
import type { DailyUsage, UsageAggregate } from '../chargeback/model';
import {
  batchPartitionKey,
  COSMOS_CONTAINERS,
  LEDGER_PARTITION_KEY,
  usagePartitionKey,
} from '../contracts/storage';
import { monthOf } from '../contracts/report-period';
import { parseWindowId } from '../contracts/window';

/**
 * The chargeback's Cosmos DB store (layout and partitioning in contracts/storage.ts). The database
 * and containers come from the deployment (or the local stack): with data-plane RBAC the app's
 * identity may read and write items but not create containers, so nothing here creates any.
 */
export class CosmosChargebackStore implements AggregateStore, PriceSource {
  readonly #usage: Container;
  readonly #prices: Container;

  constructor(
    client: CosmosClient,
    databaseName: string,
    private readonly concurrency = 16,
  ) {
    const database = client.database(databaseName);
    this.#usage = database.container(COSMOS_CONTAINERS.usage.id);
    this.#prices = database.container(COSMOS_CONTAINERS.prices.id);
  }

  /**
   * Upserts a batch's rows, then its batch record (the commit marker). Idempotent: the ids are
   * deterministic and the content a function of the frozen batch, so a rerun writes the same.
   */
  async commit(rows: UsageAggregate[], record: BatchRecord): Promise<void> {
    await this.upsertAll(rows);
    await this.#usage.items.upsert(record);
  }

  updateUsage(rows: UsageAggregate[]): Promise<void> {
    return this.upsertAll(rows);
  }

  usage(filter: { month: string; day?: string; department?: string }): Promise<UsageAggregate[]> {
    return this.rows<UsageAggregate>('usage', filter);
  }

  daily(filter: { month: string; day?: string }): Promise<DailyUsage[]> {
    return this.rows<DailyUsage>('daily', filter);
  }

  async committed(batch: WindowBatch): Promise<boolean> {
    const { id, pk } = batchRecordKeys(batch, monthOf(parseWindowId(batch.windowId)));
    const { resource } = await this.#usage.item(id, pk).read<BatchRecord>();
    return resource !== undefined;
  }

  batches(month: string, day?: string): Promise<BatchRecord[]> {
    // The partition is named in the query too: a partition-scoped option alone is not honoured
    // by every endpoint (the local emulator ignores it), and the filter costs nothing.
    const filters = ['c.type = "batch"', 'c.pk = @pk'];
    const parameters = [{ name: '@pk', value: batchPartitionKey(month) }];
    if (day) {
      filters.push('c.day = @day');
      parameters.push({ name: '@day', value: day });
    }
    return this.query<BatchRecord>(
      `SELECT * FROM c WHERE ${filters.join(' AND ')}`,
      parameters,
      batchPartitionKey(month),
    );
  }

  async daysToRollUp(): Promise<string[]> {
    // Across the months' batch partitions: the flag is false only between a commit and its roll-up;
    // a record committed before roll-ups existed has no flag, and its day is rolled up too.
    const pending = await this.query<BatchRecord>(
      'SELECT * FROM c WHERE c.type = "batch" AND (NOT IS_DEFINED(c.rolledUp) OR c.rolledUp = false)',
      [],
    );
    return [...new Set(pending.map((b) => b.day))].sort();
  }

  async writeRollUp(rows: DailyUsage[], record: DayRecord, batches: readonly BatchRecord[]): Promise<void> {
    // The day's roll-up is replaced as a whole: a key the new one no longer has (a row priced
    // differently since) must not stay beside it.
    const previous = await this.rows<DailyUsage>('daily', { month: record.month, day: record.day });
    await this.upsertAll(rows);
    const kept = new Set(rows.map((row) => row.id));
    for (const stale of previous.filter((doc) => !kept.has(doc.id))) {
      await this.#usage.item(stale.id, stale.pk).delete();
    }
    await this.#usage.items.upsert(record);
    await this.upsertAll(batches.map((batch) => ({ ...batch, rolledUp: true })));
  }

  days(month?: string): Promise<DayRecord[]> {
    return this.ledger<DayRecord>('day', month);
  }

  receipts(): Promise<ReportReceipt[]> {
    return this.ledger<ReportReceipt>('receipt');
  }

  async putReceipt(receipt: ReportReceipt): Promise<void> {
    await this.#usage.items.upsert(receipt);
  }

  private async upsertAll(documents: ReadonlyArray<{ id: string }>): Promise<void> {
    for (let i = 0; i < documents.length; i += this.concurrency) {
      await Promise.all(
        documents.slice(i, i + this.concurrency).map((document) => this.#usage.items.upsert(document)),
      );
    }
  }

  /** Usage or roll-up rows of a month (or a day), over the month's department partitions. */
  private rows<T extends object>(
    type: 'usage' | 'daily',
    filter: { month: string; day?: string; department?: string },
  ): Promise<T[]> {
    const filters = [`c.type = "${type}"`, 'c.month = @month'];
    const parameters = [{ name: '@month', value: filter.month }];
    if (filter.day) {
      filters.push('c.day = @day');
      parameters.push({ name: '@day', value: filter.day });
    }
    if (filter.department) {
      filters.push('c.pk = @pk');
      parameters.push({ name: '@pk', value: usagePartitionKey(filter.month, filter.department) });
    }
    return this.query<T>(`SELECT * FROM c WHERE ${filters.join(' AND ')}`, parameters);
  }

  private ledger<T extends object>(type: 'day' | 'receipt', month?: string): Promise<T[]> {
    const filters = ['c.type = @type', 'c.pk = @pk'];
    const parameters = [
      { name: '@type', value: type },
      { name: '@pk', value: LEDGER_PARTITION_KEY },
    ];
    if (month) {
      filters.push('c.month = @month');
      parameters.push({ name: '@month', value: month });
    }
    return this.query<T>(`SELECT * FROM c WHERE ${filters.join(' AND ')}`, parameters, LEDGER_PARTITION_KEY);
  }

  private async query<T extends object>(
    query: string,
    parameters: Array<{ name: string; value: string }>,
    partitionKey?: string,
  ): Promise<T[]> {
    const { resources } = await this.#usage.items
      .query<T>({ query, parameters }, partitionKey === undefined ? {} : { partitionKey })
      .fetchAll();
    return resources.map(withoutSystemProperties);
  }

  async overrides(): Promise<StoredPrice[]> {
    // The container also holds the audit records of the admin API's price changes.
    const { resources } = await this.#prices.items
      .query<Record<string, unknown>>('SELECT * FROM c WHERE NOT IS_DEFINED(c.type) OR c.type != "audit"')
      .fetchAll();
    return resources.map((document) => ({
      document: withoutSystemProperties(document),
      writtenAt: typeof document._ts === 'number' ? new Date(document._ts * 1000) : new Date(),
    }));
  }
}

/** Cosmos system properties (_rid, _etag, _ts...) are not part of the data. */
function withoutSystemProperties<T extends object>(doc: T): T {
  const copy = { ...doc } as Record<string, unknown>;
  for (const key of Object.keys(copy)) if (key.startsWith('_')) delete copy[key];
  return copy as T;
}
