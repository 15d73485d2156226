import type { Container, CosmosClient } from '@azure/cosmos';
import type { AggregateStore, BatchRecord, PriceSource, StoredPrice } from '../chargeback/ports';
import type { UsageAggregate } from '../chargeback/model';
import { batchPartitionKey, COSMOS_CONTAINERS, usagePartitionKey } from '../contracts/storage';

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
    for (let i = 0; i < rows.length; i += this.concurrency) {
      await Promise.all(rows.slice(i, i + this.concurrency).map((row) => this.#usage.items.upsert(row)));
    }
    await this.#usage.items.upsert(record);
  }

  async usage(filter: { month: string; day?: string; department?: string }): Promise<UsageAggregate[]> {
    const filters = ['c.type = "usage"', 'c.month = @month'];
    const parameters = [{ name: '@month', value: filter.month }];
    if (filter.day) {
      filters.push('c.day = @day');
      parameters.push({ name: '@day', value: filter.day });
    }
    if (filter.department) {
      filters.push('c.pk = @pk');
      parameters.push({ name: '@pk', value: usagePartitionKey(filter.month, filter.department) });
    }
    const { resources } = await this.#usage.items
      .query<UsageAggregate>({ query: `SELECT * FROM c WHERE ${filters.join(' AND ')}`, parameters })
      .fetchAll();
    return resources.map(withoutSystemProperties);
  }

  async batches(month: string): Promise<BatchRecord[]> {
    const { resources } = await this.#usage.items
      .query<BatchRecord>(
        // The partition is named in the query too: a partition-scoped option alone is not honoured
        // by every endpoint (the local emulator ignores it), and the filter costs nothing.
        {
          query: 'SELECT * FROM c WHERE c.type = "batch" AND c.pk = @pk',
          parameters: [{ name: '@pk', value: batchPartitionKey(month) }],
        },
        { partitionKey: batchPartitionKey(month) },
      )
      .fetchAll();
    return resources.map(withoutSystemProperties);
  }

  async overrides(): Promise<StoredPrice[]> {
    const { resources } = await this.#prices.items
      .query<Record<string, unknown>>('SELECT * FROM c')
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
