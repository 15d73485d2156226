import { randomUUID } from 'node:crypto';
import type { Container, CosmosClient, JSONObject, OperationInput, OperationResponse } from '@azure/cosmos';
import type {
  AuditRecord,
  ConfigChange,
  ConfigCollection,
  ConfigItem,
  PriceResource,
} from '../chargeback/config-admin';
import {
  applyChange,
  CONFIG_COLLECTIONS,
  checkIfMatch,
  checkPriceTable,
  EMPTY_CONFIG,
  etagOf,
  findItem,
} from '../chargeback/config-admin';
import type { ChargebackConfig, ChargebackConfigState, PriceEntry } from '../chargeback/model';
import { checkChargebackConfig } from '../chargeback/model';
import type { ConfigSnapshot, ConfigSource, StoredPrice } from '../chargeback/ports';
import { staticConfigSource } from '../chargeback/run';
import { ApiError, ensureError, notFound } from '../contracts/api-errors';
import { COSMOS_CONTAINERS, CONFIG_PARTITION_KEY } from '../contracts/storage';

/**
 * The chargeback configuration in Cosmos DB (container `configuration`, see contracts/storage.ts):
 * one document holding the whole configuration and its version, an integer that every change
 * increments, and one audit record per change, written in the same transactional batch as the
 * change (same logical partition), so that neither exists without the other. CHARGEBACK_CONFIG
 * only seeds the document, once, when there is none.
 *
 * Concurrency: a change reads the document, checks the request's If-Match against the ETag of the
 * one resource it changes (a hash of that resource's content), applies the change and replaces
 * the document on condition that its Cosmos `_etag` is still the one read. When another writer got
 * there first the change is tried again from a fresh read, and that read checks If-Match again: a
 * change to another resource is merged, a change to this one answers 412. No update is ever lost.
 *
 * Price overrides keep their own storage (container `prices`, one document per override, partition
 * key the model) and their effective dating (an override never applies before it was written); a
 * change to one and its audit record are one transactional batch in the model's partition.
 */

export const CONFIG_DOCUMENT_ID = 'current';
/** The actor of the seed: the setting it came from. */
const SEED_ACTOR = 'CHARGEBACK_CONFIG';
/** How many times a change is tried again when other writers keep getting there first. */
const MAX_ATTEMPTS = 8;

export interface ConfigDocument {
  id: typeof CONFIG_DOCUMENT_ID;
  pk: typeof CONFIG_PARTITION_KEY;
  type: 'config';
  /** Incremented by every change; recorded by the chargeback runs (as a string). */
  version: number;
  config: ChargebackConfig;
  updatedAt: string;
  updatedBy: string;
  /** Cosmos DB's own version of the document: the condition of the next replace. */
  _etag?: string;
}

/** The configuration as stored, or why there is none. */
export type StoredConfig =
  | { stored: true; document: ConfigDocument; state: ChargebackConfigState }
  | { stored: false; state: ChargebackConfigState };

/** The audit trail's filters; newest first. */
export interface AuditQuery {
  resourceType?: string;
  resourceId?: string;
  limit: number;
}

/** What an admin change produced. */
export interface ChangeOutcome<T> {
  resource: T | null;
  version: string;
}

interface PriceDocument extends PriceEntry {
  _etag?: string;
  _ts?: number;
}

/** A batch's outcome: every operation's status; the first failure's status, if any. */
function batchFailure(results: readonly OperationResponse[]): number | undefined {
  const failed = results.find((r) => r.statusCode >= 400 && r.statusCode !== 424);
  return failed?.statusCode ?? results.find((r) => r.statusCode >= 400)?.statusCode;
}

/** A document as the SDK's batch operations type it (they serialize it as JSON). */
function json(document: object): JSONObject {
  return document as JSONObject;
}

/** Cosmos system properties (_rid, _etag, _ts...) are not part of the data. */
function withoutSystemProperties<T extends object>(doc: T): T {
  const copy = { ...doc } as Record<string, unknown>;
  for (const key of Object.keys(copy)) if (key.startsWith('_')) delete copy[key];
  return copy as T;
}

function tooBusy(): ApiError {
  return new ApiError(
    503,
    'ServiceUnavailable',
    'The configuration is being changed by others too often to apply this change; retry shortly.',
    null,
    { 'retry-after': '1' },
  );
}

/** The admin API's store: the configuration document, its audit trail and the price overrides. */
export class CosmosConfigStore {
  readonly #config: Container;
  readonly #prices: Container;

  constructor(
    client: CosmosClient,
    databaseName: string,
    /** CHARGEBACK_CONFIG as read at start: seeds the document when there is none (if usable). */
    private readonly seed: ChargebackConfigState,
    private readonly clock: () => Date = () => new Date(),
  ) {
    const database = client.database(databaseName);
    this.#config = database.container(COSMOS_CONTAINERS.configuration.id);
    this.#prices = database.container(COSMOS_CONTAINERS.prices.id);
  }

  /**
   * The stored configuration; seeded from CHARGEBACK_CONFIG (version 1, with its audit record)
   * when there is none and that setting is usable. Without either, `stored: false` with the
   * setting's problems.
   */
  async read(): Promise<StoredConfig> {
    const existing = await this.#document();
    if (existing) return { stored: true, document: existing, state: checkChargebackConfig(existing.config) };
    if (!this.seed.ok) return { stored: false, state: this.seed };
    const document = this.#newDocument(1, this.seed.config, SEED_ACTOR);
    const audit = this.#audit(document, 'configuration', 'configuration', 'seed', null, this.seed.config);
    const results = await this.#batch(this.#config, CONFIG_PARTITION_KEY, [
      { operationType: 'Create', resourceBody: json(document) },
      { operationType: 'Create', resourceBody: json(audit) },
    ]);
    // 409: another instance seeded it first; theirs is the configuration.
    const failure = batchFailure(results);
    if (failure !== undefined && failure !== 409)
      throw new Error(`seeding the configuration failed: ${failure}`);
    const seeded = await this.#document();
    if (!seeded) throw new Error('the seeded configuration document cannot be read back');
    return { stored: true, document: seeded, state: checkChargebackConfig(seeded.config) };
  }

  async #document(): Promise<ConfigDocument | undefined> {
    const { resource } = await this.#config
      .item(CONFIG_DOCUMENT_ID, CONFIG_PARTITION_KEY)
      .read<ConfigDocument>();
    return resource;
  }

  #newDocument(version: number, config: ChargebackConfig, actor: string): ConfigDocument {
    return {
      id: CONFIG_DOCUMENT_ID,
      pk: CONFIG_PARTITION_KEY,
      type: 'config',
      version,
      config,
      updatedAt: this.clock().toISOString(),
      updatedBy: actor,
    };
  }

  #audit(
    document: Pick<ConfigDocument, 'version' | 'updatedAt' | 'updatedBy'>,
    resourceType: AuditRecord['resourceType'],
    resourceId: string,
    action: AuditRecord['action'],
    before: unknown,
    after: unknown,
  ): AuditRecord {
    return {
      // Derived from the version the change produces: one record per version, never two.
      id: `audit|${String(document.version).padStart(12, '0')}`,
      pk: CONFIG_PARTITION_KEY,
      type: 'audit',
      at: document.updatedAt,
      actor: document.updatedBy,
      resourceType,
      resourceId,
      action,
      before,
      after,
      configVersion: String(document.version),
    };
  }

  async #batch(
    container: Container,
    partitionKey: string,
    operations: OperationInput[],
  ): Promise<OperationResponse[]> {
    // Each operation names the partition too: the local emulator reads it from the operation only.
    const response = await container.items.batch(
      operations.map((operation) => ({ ...operation, partitionKey })),
      partitionKey,
    );
    return response.result ?? [];
  }

  /**
   * Applies one change to a configuration collection (see chargeback/config-admin.ts for what is
   * refused) and writes it with its audit record, conditionally on the document not having
   * changed since it was read; retried from a fresh read (If-Match checked again) when it has.
   */
  async change<C extends ConfigCollection>(
    change: ConfigChange<C>,
    ifMatch: string | null,
    actor: string,
  ): Promise<ChangeOutcome<ConfigItem<C>>> {
    const spec = CONFIG_COLLECTIONS[change.collection];
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.read();
      const base = current.stored ? current.document.config : EMPTY_CONFIG;
      if (change.action !== 'create') {
        const item = findItem(base, change.collection, change.id);
        if (item === undefined) throw notFound(`No ${spec.singular} '${change.id}'.`);
        checkIfMatch(ifMatch, item, `${spec.singular} '${change.id}'`);
      }
      const applied = applyChange(base, change);
      const document = this.#newDocument(
        current.stored ? current.document.version + 1 : 1,
        applied.config,
        actor,
      );
      const audit = this.#audit(
        document,
        spec.resourceType,
        applied.resourceId,
        change.action,
        applied.before,
        applied.after,
      );
      const results = await this.#batch(this.#config, CONFIG_PARTITION_KEY, [
        // The conditional write first: where batches are not atomic (the local emulator runs them
        // in order and stops at the first failure) a lost race then writes nothing either.
        current.stored
          ? {
              operationType: 'Replace',
              id: CONFIG_DOCUMENT_ID,
              resourceBody: json(document),
              ...(current.document._etag ? { ifMatch: current.document._etag } : {}),
            }
          : { operationType: 'Create', resourceBody: json(document) },
        { operationType: 'Create', resourceBody: json(audit) },
      ]);
      const failure = batchFailure(results);
      if (failure === undefined) {
        return { resource: applied.after as ConfigItem<C> | null, version: String(document.version) };
      }
      // Someone else changed (or first created) the document since it was read: try again.
      if (failure === 412 || failure === 409) continue;
      throw new Error(`writing the configuration failed with status ${failure}`);
    }
    throw tooBusy();
  }

  /** The audit trail, newest first: configuration changes and price override changes. */
  async audit(query: AuditQuery): Promise<AuditRecord[]> {
    const filters = ['c.type = "audit"'];
    const parameters: Array<{ name: string; value: string }> = [];
    if (query.resourceType) {
      filters.push('c.resourceType = @resourceType');
      parameters.push({ name: '@resourceType', value: query.resourceType });
    }
    if (query.resourceId) {
      filters.push('c.resourceId = @resourceId');
      parameters.push({ name: '@resourceId', value: query.resourceId });
    }
    const sql = { query: `SELECT * FROM c WHERE ${filters.join(' AND ')}`, parameters };
    const [configAudit, priceAudit] = await Promise.all([
      query.resourceType === 'price'
        ? Promise.resolve([])
        : this.#config.items
            .query<AuditRecord>(
              {
                query: `${sql.query} AND c.pk = @pk`,
                parameters: [...parameters, { name: '@pk', value: CONFIG_PARTITION_KEY }],
              },
              { partitionKey: CONFIG_PARTITION_KEY },
            )
            .fetchAll()
            .then((r) => r.resources),
      query.resourceType && query.resourceType !== 'price'
        ? Promise.resolve([])
        : this.#prices.items
            .query<AuditRecord>(sql)
            .fetchAll()
            .then((r) => r.resources),
    ]);
    return [...configAudit, ...priceAudit]
      .map(withoutSystemProperties)
      .sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : a.id < b.id ? 1 : -1))
      .slice(0, query.limit);
  }

  // ---- price overrides -------------------------------------------------------------------------

  /** Every price override (not their audit records), by id. */
  async prices(): Promise<PriceResource[]> {
    return (await this.#priceDocuments()).map(priceResource).sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  async price(id: string): Promise<PriceResource | undefined> {
    const [found] = await this.#priceDocuments(id);
    return found ? priceResource(found) : undefined;
  }

  async #priceDocuments(id?: string): Promise<PriceDocument[]> {
    const filters = ['(NOT IS_DEFINED(c.type) OR c.type != "audit")'];
    const parameters: Array<{ name: string; value: string }> = [];
    if (id !== undefined) {
      filters.push('c.id = @id');
      parameters.push({ name: '@id', value: id });
    }
    const { resources } = await this.#prices.items
      .query<PriceDocument>({ query: `SELECT * FROM c WHERE ${filters.join(' AND ')}`, parameters })
      .fetchAll();
    return resources;
  }

  /** The overrides as the price table reads them, with `replace` applied (null: removed). */
  async #overridesWith(id: string, replacement: PriceEntry | null): Promise<StoredPrice[]> {
    const now = this.clock();
    const others = (await this.#priceDocuments())
      .filter((doc) => doc.id !== id)
      .map((doc) => ({ document: { ...withoutSystemProperties(doc) }, writtenAt: writtenAt(doc) }));
    return replacement === null ? others : [...others, { document: { ...replacement }, writtenAt: now }];
  }

  async createPrice(entry: PriceEntry, actor: string): Promise<PriceResource> {
    if ((await this.#priceDocuments(entry.id)).length > 0) {
      throw new ApiError(409, 'Conflict', `Price '${entry.id}' already exists.`, 'id');
    }
    checkPriceTable(await this.#overridesWith(entry.id, entry));
    const audit = this.#priceAudit(entry.model, entry.id, 'create', null, entry, actor);
    const results = await this.#batch(this.#prices, entry.model, [
      { operationType: 'Create', resourceBody: json(entry) },
      { operationType: 'Create', resourceBody: json(audit) },
    ]);
    const failure = batchFailure(results);
    if (failure === 409) throw new ApiError(409, 'Conflict', `Price '${entry.id}' already exists.`, 'id');
    if (failure !== undefined) throw new Error(`writing the price failed with status ${failure}`);
    return this.#written(entry.id, results[0]);
  }

  /** Replaces (entry) or deletes (null) a price override, on the If-Match of the one read. */
  async changePrice(
    id: string,
    entry: PriceEntry | null,
    ifMatch: string | null,
    actor: string,
  ): Promise<PriceResource | null> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const [current] = await this.#priceDocuments(id);
      if (!current) throw notFound(`No price '${id}'.`);
      const before = priceResource(current);
      checkIfMatch(ifMatch, before, `price '${id}'`);
      if (entry !== null && entry.model !== current.model) {
        throw new ApiError(
          400,
          'BadRequest',
          `'model' cannot change (it is the price's partition): delete price '${id}' and create a new one.`,
          'model',
        );
      }
      if (entry !== null) checkPriceTable(await this.#overridesWith(id, entry));
      const audit = this.#priceAudit(
        current.model,
        id,
        entry === null ? 'delete' : 'replace',
        withoutSystemProperties(current),
        entry,
        actor,
      );
      const condition = current._etag ? { ifMatch: current._etag } : {};
      const results = await this.#batch(this.#prices, current.model, [
        entry === null
          ? { operationType: 'Delete', id, ...condition }
          : { operationType: 'Replace', id, resourceBody: json(entry), ...condition },
        { operationType: 'Create', resourceBody: json(audit) },
      ]);
      const failure = batchFailure(results);
      if (failure === undefined) return entry === null ? null : this.#written(id, results[0]);
      // Changed or deleted since it was read: read again (If-Match is checked against that).
      if (failure === 412 || failure === 404) continue;
      throw new Error(`writing the price failed with status ${failure}`);
    }
    throw tooBusy();
  }

  /** The price as written (its `_ts` from the batch's answer, else read back). */
  async #written(id: string, result: OperationResponse | undefined): Promise<PriceResource> {
    const body = result?.resourceBody as PriceDocument | undefined;
    if (body && typeof body._ts === 'number') return priceResource(body);
    const found = await this.price(id);
    if (!found) throw new Error(`price '${id}' cannot be read back`);
    return found;
  }

  #priceAudit(
    model: string,
    id: string,
    action: AuditRecord['action'],
    before: unknown,
    after: unknown,
    actor: string,
  ): AuditRecord & { model: string } {
    return {
      id: `audit|price|${id}|${randomUUID()}`,
      pk: model,
      // The prices container's partition key path is /model: the record is in the override's partition.
      model,
      type: 'audit',
      at: this.clock().toISOString(),
      actor,
      resourceType: 'price',
      resourceId: id,
      action,
      before,
      after,
      configVersion: null,
    };
  }
}

function writtenAt(doc: PriceDocument): Date {
  return typeof doc._ts === 'number' ? new Date(doc._ts * 1000) : new Date();
}

function priceResource(doc: PriceDocument): PriceResource {
  const entry = withoutSystemProperties(doc) as PriceEntry & { model: string };
  return { ...entry, writtenAt: writtenAt(doc).toISOString() };
}

/** The ETag of a configuration resource or price as the admin API shows it. */
export { etagOf };

export interface ConfigSourceOptions {
  /** How long a snapshot is served before it is read again (CONFIG_REFRESH_SECONDS). */
  ttlMs: number;
  /** The longest a caller waits for a refresh while an older snapshot can be served instead. */
  readTimeoutMs?: number;
  log?: (line: string) => void;
  now?: () => number;
}

/**
 * What the source serves before Cosmos DB was ever read: no configuration. CHARGEBACK_CONFIG only
 * seeds the stored one (an admin may have changed it since), so it is not served in its place:
 * budgets are not enforced (fail-open, reported) and reports wait, until the first read.
 */
export const UNREAD_CONFIG: ConfigSnapshot = {
  version: 'unread',
  state: { ok: false, problems: ['the configuration stored in Cosmos DB could not be read yet'] },
};

/**
 * The configuration in force, from Cosmos DB, cached for `ttlMs`: a change written at time t is
 * served to every caller of current() from t + ttlMs plus one read on (a snapshot is served for
 * ttlMs after the read that produced it began, then until the refresh it starts completes). Never
 * throws and never stops metering: while Cosmos DB cannot be read, the last snapshot read is served
 * (and tried again every ttlMs); before any was read, UNREAD_CONFIG. Only the caller that starts a
 * refresh waits for it, at most `readTimeoutMs`; callers arriving while it is in flight get the
 * cached snapshot at once, so a slow Cosmos DB never holds up requests.
 */
export class CosmosConfigSource implements ConfigSource {
  /** What is served when nothing is stored and CHARGEBACK_CONFIG is unusable (it waits too). */
  readonly #unusableSeed: Promise<ConfigSnapshot>;
  #cached: { snapshot: ConfigSnapshot; readAt: number } | undefined;
  #attemptedAt = -Infinity;
  #refreshing: Promise<ConfigSnapshot> | undefined;
  #outage = false;
  readonly #now: () => number;

  constructor(
    private readonly store: Pick<CosmosConfigStore, 'read'>,
    seed: ChargebackConfigState,
    private readonly options: ConfigSourceOptions,
  ) {
    this.#unusableSeed = staticConfigSource(seed).current();
    this.#now = options.now ?? Date.now;
  }

  async current(): Promise<ConfigSnapshot> {
    const now = this.#now();
    const last = this.#cached?.snapshot;
    if (now - this.#attemptedAt < this.options.ttlMs) return last ?? UNREAD_CONFIG;
    if (this.#refreshing) {
      return last ?? this.#within(this.#refreshing, this.options.readTimeoutMs ?? 2000, UNREAD_CONFIG);
    }
    this.#refreshing = this.#refresh().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#within(this.#refreshing, this.options.readTimeoutMs ?? 2000, last ?? UNREAD_CONFIG);
  }

  async #refresh(): Promise<ConfigSnapshot> {
    const started = this.#now();
    try {
      const stored = await this.store.read();
      const snapshot: ConfigSnapshot = stored.stored
        ? { version: String(stored.document.version), state: stored.state }
        : await this.#unusableSeed;
      this.#cached = { snapshot, readAt: started };
      this.#attemptedAt = started;
      if (this.#outage)
        this.options.log?.('CONFIG_SOURCE_RECOVERED the configuration is read from Cosmos DB again.');
      this.#outage = false;
      return snapshot;
    } catch (error) {
      this.#attemptedAt = started;
      if (!this.#outage) {
        this.options.log?.(
          `CONFIG_SOURCE_UNAVAILABLE serving configuration version ${(this.#cached?.snapshot ?? UNREAD_CONFIG).version} until Cosmos DB can be read: ${ensureError(error).message}`,
        );
      }
      this.#outage = true;
      return this.#cached?.snapshot ?? UNREAD_CONFIG;
    }
  }

  async #within(
    refresh: Promise<ConfigSnapshot>,
    ms: number,
    fallback: ConfigSnapshot,
  ): Promise<ConfigSnapshot> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<ConfigSnapshot>((resolve) => {
      timer = setTimeout(() => resolve(fallback), ms);
      timer.unref();
    });
    try {
      return await Promise.race([refresh, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
