import type { Container, CosmosClient, Database } from '@azure/cosmos';
import type { UsageAggregate } from './model';
import type { WindowBatch } from './usage-batches';

/**
 * Cosmos DB layout of the chargeback.
 *
 * Container `usage`, partition key `/pk` = `<YYYY-MM>|<department>`: finance reads a month (or a
 * day of it), either for one department (one logical partition) or for all of them (one query
 * fanning out over the departments, a handful of partitions). A logical partition holds one
 * department's month, far below the 20 GB limit (its size grows with windows × apps × models ×
 * meters, never with requests), and writes of a run spread over its departments.
 * A committed batch is recorded as a `batch` document in partition `<YYYY-MM>|~batches`.
 *
 * Container `prices`, partition key `/model`: the admins' price overrides.
 */
export const USAGE_CONTAINER = 'usage';
export const PRICES_CONTAINER = 'prices';

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
}

export class ChargebackStore {
  #ready: Promise<{ usage: Container; prices: Container }> | undefined;

  constructor(
    private readonly client: CosmosClient,
    private readonly databaseName: string,
  ) {}

  containers(): Promise<{ usage: Container; prices: Container }> {
    this.#ready ??= (async () => {
      const { database } = await this.client.databases.createIfNotExists({ id: this.databaseName });
      const create = async (db: Database, id: string, path: string): Promise<Container> =>
        (await db.containers.createIfNotExists({ id, partitionKey: { paths: [path] } })).container;
      return {
        usage: await create(database, USAGE_CONTAINER, '/pk'),
        prices: await create(database, PRICES_CONTAINER, '/model'),
      };
    })().catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  /**
   * Upserts a batch's rows, then its batch record (the commit marker). Idempotent: the ids are
   * deterministic and the content a function of the frozen batch, so a rerun writes the same.
   */
  async commit(rows: UsageAggregate[], record: BatchRecord, concurrency = 16): Promise<void> {
    const { usage } = await this.containers();
    for (let i = 0; i < rows.length; i += concurrency) {
      await Promise.all(rows.slice(i, i + concurrency).map((row) => usage.items.upsert(row)));
    }
    await usage.items.upsert(record);
  }

  /** The usage rows of a month, or of one day of it; every department unless one is named. */
  async usage(period: { month: string; day?: string; department?: string }): Promise<UsageAggregate[]> {
    const { usage } = await this.containers();
    const filters = ['c.type = "usage"', 'c.month = @month'];
    const parameters = [{ name: '@month', value: period.month }];
    if (period.day) {
      filters.push('c.day = @day');
      parameters.push({ name: '@day', value: period.day });
    }
    if (period.department) {
      filters.push('c.pk = @pk');
      parameters.push({ name: '@pk', value: `${period.month}|${period.department}` });
    }
    const { resources } = await usage.items
      .query<UsageAggregate>({ query: `SELECT * FROM c WHERE ${filters.join(' AND ')}`, parameters })
      .fetchAll();
    return resources.map(strip);
  }

  /** The committed batches of a month (to know how far its data reaches). */
  async batches(month: string): Promise<BatchRecord[]> {
    const { usage } = await this.containers();
    const { resources } = await usage.items
      .query<BatchRecord>(
        { query: 'SELECT * FROM c WHERE c.type = "batch"', parameters: [] },
        { partitionKey: batchPartition(month) },
      )
      .fetchAll();
    return resources.map(strip);
  }
}

export function batchPartition(month: string): string {
  return `${month}|~batches`;
}

export function batchRecordId(window: WindowBatch): string {
  return `batch|${window.windowId}|${window.batch}`;
}

/** Cosmos system properties (_rid, _etag, _ts...) are not part of the data. */
function strip<T extends object>(doc: T): T {
  const copy = { ...doc } as Record<string, unknown>;
  for (const key of Object.keys(copy)) if (key.startsWith('_')) delete copy[key];
  return copy as T;
}
