import type { CosmosClient } from '@azure/cosmos';
import type { CosmosServer } from '../../../local/services/cosmos';
import { createLocalCosmosClient, startCosmos } from '../../../local/services/cosmos';
import { provisionCosmos } from '../../../local/services/provision';
import {
  CONFIG_DOCUMENT_ID,
  CosmosConfigSource,
  CosmosConfigStore,
} from '../../../shared/adapters/cosmos-config-store';
import { etagOf } from '../../../shared/chargeback/config-admin';
import { DEFAULT_CHARGEBACK_CONFIG } from '../../../shared/chargeback/default-config';
import type { ChargebackConfigState } from '../../../shared/chargeback/model';
import { staticConfigSource } from '../../../shared/chargeback/run';
import { COSMOS_CONTAINERS, COSMOS_DATABASE, CONFIG_PARTITION_KEY } from '../../../shared/contracts/storage';

/**
 * The Cosmos DB-backed configuration against the emulator, provisioned as the local stack does:
 * seeding from CHARGEBACK_CONFIG, versions and audit records, and the source's cache: how stale it
 * may be, and what it serves while Cosmos DB cannot be read.
 */

const ENV: ChargebackConfigState = { ok: true, config: DEFAULT_CHARGEBACK_CONFIG };
const INVALID: ChargebackConfigState = { ok: false, problems: ['(root): must be JSON'] };

let cosmos: CosmosServer;
let client: CosmosClient;
let databases = 0;

beforeAll(async () => {
  cosmos = await startCosmos();
  client = createLocalCosmosClient(cosmos.endpoint, cosmos.key);
}, 30_000);
afterAll(async () => {
  client?.dispose();
  await cosmos?.stop();
});

/** A database of its own for every test: each starts with nothing stored. */
async function freshDatabase(): Promise<string> {
  const name = `config-test-${databases++}`;
  await provisionCosmos(client, name);
  return name;
}

const renameResearch = (name: string) =>
  ({
    action: 'replace',
    collection: 'departments',
    id: 'research',
    item: { id: 'research', name, costCenter: 'CC-1100' },
  }) as const;

describe('CosmosConfigStore', () => {
  it('seeds version 1 from CHARGEBACK_CONFIG once, even when instances race to do it', async () => {
    const database = await freshDatabase();
    const stores = Array.from({ length: 5 }, () => new CosmosConfigStore(client, database, ENV));
    const reads = await Promise.all(stores.map((store) => store.read()));
    for (const read of reads) {
      expect(read).toMatchObject({ stored: true, document: { version: 1, updatedBy: 'CHARGEBACK_CONFIG' } });
    }
    const trail = await stores[0]?.audit({ limit: 100 });
    expect(trail?.map((r) => [r.action, r.configVersion])).toEqual([['seed', '1']]);
  });

  it('stores nothing while CHARGEBACK_CONFIG is unusable; the first valid change is version 1', async () => {
    const store = new CosmosConfigStore(client, await freshDatabase(), INVALID);
    expect(await store.read()).toEqual({ stored: false, state: INVALID });
    await expect(
      store.change(
        { action: 'create', collection: 'apps', item: { appId: 'a', department: 'd' } },
        null,
        'x',
      ),
    ).rejects.toMatchObject({ status: 409 });
    const created = await store.change(
      { action: 'create', collection: 'departments', item: { id: 'ops', name: 'Operations' } },
      null,
      'admin@contoso.example',
    );
    expect(created).toEqual({ resource: { id: 'ops', name: 'Operations' }, version: '1' });
    const read = await store.read();
    expect(read.stored && read.document.config.departments).toEqual([{ id: 'ops', name: 'Operations' }]);
  });

  it('keeps every one of many concurrent changes to different entries, each with its audit record', async () => {
    const database = await freshDatabase();
    const store = new CosmosConfigStore(client, database, ENV);
    await store.read();
    const ids = Array.from({ length: 12 }, (_, i) => `team-${i}`);
    const outcomes = await Promise.all(
      ids.map((id) =>
        // A store per writer, as many function instances would have.
        new CosmosConfigStore(client, database, ENV).change(
          { action: 'create', collection: 'departments', item: { id, name: id } },
          null,
          id,
        ),
      ),
    );
    expect(outcomes.map((o) => Number(o.version)).sort((a, b) => a - b)).toEqual(ids.map((_, i) => i + 2));
    const read = await store.read();
    expect(read.stored && read.document.version).toBe(13);
    expect(read.stored && read.document.config.departments.map((d) => d.id)).toEqual(
      expect.arrayContaining(ids),
    );
    const trail = await store.audit({ resourceType: 'department', limit: 100 });
    expect(trail.map((r) => [r.actor, r.resourceId, r.configVersion]).sort()).toEqual(
      outcomes.map((o, i) => [ids[i], ids[i], o.version]).sort(),
    );
  });

  it('refuses a change whose If-Match is stale, even after retrying a race', async () => {
    const store = new CosmosConfigStore(client, await freshDatabase(), ENV);
    const research = DEFAULT_CHARGEBACK_CONFIG.departments.find((d) => d.id === 'research');
    await store.change(renameResearch('R&D'), etagOf(research), 'first');
    await expect(store.change(renameResearch('Lab'), etagOf(research), 'second')).rejects.toMatchObject({
      status: 412,
    });
  });
});

describe('CosmosConfigSource', () => {
  const TTL = 10_000;

  it(`serves a snapshot for the TTL after the read began, then the change`, async () => {
    const store = new CosmosConfigStore(client, await freshDatabase(), ENV);
    let now = 1_000_000;
    const source = new CosmosConfigSource(store, ENV, { ttlMs: TTL, now: () => now });
    expect((await source.current()).version).toBe('1');

    const research = DEFAULT_CHARGEBACK_CONFIG.departments.find((d) => d.id === 'research');
    const { version } = await store.change(renameResearch('R&D'), etagOf(research), 'admin');
    expect(version).toBe('2');
    now += TTL - 1;
    expect((await source.current()).version).toBe('1');
    now += 1;
    const snapshot = await source.current();
    expect(snapshot.version).toBe('2');
    expect(
      snapshot.state.ok && snapshot.state.config.departments.find((d) => d.id === 'research')?.name,
    ).toBe('R&D');
  });

  it('falls back to CHARGEBACK_CONFIG when nothing is stored and it is unusable, and picks up the first change', async () => {
    const store = new CosmosConfigStore(client, await freshDatabase(), INVALID);
    let now = 0;
    const source = new CosmosConfigSource(store, INVALID, { ttlMs: TTL, now: () => now });
    expect(await source.current()).toEqual(await staticConfigSource(INVALID).current());
    await store.change(
      { action: 'create', collection: 'departments', item: { id: 'ops', name: 'Ops' } },
      null,
      'admin',
    );
    now += TTL;
    expect((await source.current()).version).toBe('1');
  });

  it('keeps serving the last snapshot while Cosmos DB cannot be read, and says so once', async () => {
    const own = await startCosmos();
    const ownClient = createLocalCosmosClient(own.endpoint, own.key);
    try {
      await provisionCosmos(ownClient);
      const store = new CosmosConfigStore(ownClient, COSMOS_DATABASE, ENV);
      const lines: string[] = [];
      let now = 0;
      const source = new CosmosConfigSource(store, ENV, {
        ttlMs: TTL,
        readTimeoutMs: 300,
        now: () => now,
        log: (line) => lines.push(line),
      });
      expect((await source.current()).version).toBe('1');
      await own.stop();
      const waitForLines = async (count: number): Promise<void> => {
        for (let waited = 0; waited < 10_000; waited += 50) {
          if (lines.length >= count) return;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        throw new Error(`expected ${count} log lines, got ${JSON.stringify(lines)}`);
      };
      // Each caller is answered within the read timeout, the failing read going on in the background.
      for (let i = 1; i <= 3; i++) {
        now += TTL;
        const started = Date.now();
        expect((await source.current()).version).toBe('1');
        expect(Date.now() - started).toBeLessThan(1_000);
        await waitForLines(1);
        await new Promise((resolve) => setTimeout(resolve, 1_500)); // the read has failed by now
      }
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^CONFIG_SOURCE_UNAVAILABLE serving configuration version 1 until Cosmos DB can be read/,
      );
    } finally {
      ownClient.dispose();
      await own.stop();
    }
  }, 30_000);

  it('serves no configuration (budgets open, reports waiting) while Cosmos DB was never read, not CHARGEBACK_CONFIG', async () => {
    const own = await startCosmos();
    await own.stop(); // a port nobody listens on any more
    const deadClient = createLocalCosmosClient(own.endpoint, own.key);
    try {
      const source = new CosmosConfigSource(new CosmosConfigStore(deadClient, COSMOS_DATABASE, ENV), ENV, {
        ttlMs: TTL,
        readTimeoutMs: 300,
      });
      // CHARGEBACK_CONFIG only seeds: an admin may have changed the stored one since.
      const snapshot = await source.current();
      expect(snapshot.version).toBe('unread');
      expect(snapshot.state).toEqual({
        ok: false,
        problems: [
          expect.stringMatching(/configuration stored in Cosmos DB could not be read yet/) as unknown,
        ],
      });
    } finally {
      deadClient.dispose();
    }
  });

  it('does not hold callers up while a refresh hangs: they get the cached snapshot at once', async () => {
    const store = new CosmosConfigStore(client, await freshDatabase(), ENV);
    const first = await store.read();
    let reads = 0;
    const hanging = {
      read: () => (reads++ === 0 ? Promise.resolve(first) : new Promise<typeof first>(() => undefined)),
    };
    let now = 0;
    const source = new CosmosConfigSource(hanging, ENV, { ttlMs: TTL, readTimeoutMs: 300, now: () => now });
    expect((await source.current()).version).toBe('1');
    now += TTL;
    // The caller that starts the refresh waits for it at most readTimeoutMs, then gets the cache...
    expect((await source.current()).version).toBe('1');
    // ...and every caller after it, while that refresh is still in flight, gets the cache at once.
    const started = Date.now();
    for (let i = 0; i < 5; i++) expect((await source.current()).version).toBe('1');
    expect(Date.now() - started).toBeLessThan(100);
  });
});

it("keeps a price override and its audit record in the override's partition (the prices container is partitioned by /model)", async () => {
  const database = await freshDatabase();
  const store = new CosmosConfigStore(client, database, ENV);
  await store.createPrice(
    {
      id: 'gpt-4o-mini-2026-12',
      model: 'gpt-4o-mini',
      meter: 'input-tokens',
      unitPrice: '0.10',
      currency: 'USD',
      effectiveFrom: '2026-12-01T00:00:00Z',
      source: 'test',
    },
    'admin',
  );
  const { resources } = await client
    .database(database)
    .container(COSMOS_CONTAINERS.prices.id)
    .items.query<{ id: string; model?: unknown }>('SELECT c.id, c.model FROM c')
    .fetchAll();
  expect(resources.length).toBeGreaterThanOrEqual(2); // the override and its audit record
  // Real Cosmos DB refuses a batch whose documents are not all in the batch's partition.
  for (const doc of resources)
    expect({ id: doc.id, model: doc.model }).toEqual({ id: doc.id, model: 'gpt-4o-mini' });
});

it('stores the configuration as one document in its partition', async () => {
  const database = await freshDatabase();
  await new CosmosConfigStore(client, database, ENV).read();
  const { resource } = await client
    .database(database)
    .container(COSMOS_CONTAINERS.configuration.id)
    .item(CONFIG_DOCUMENT_ID, CONFIG_PARTITION_KEY)
    .read<{ version: number; type: string }>();
  expect(resource).toMatchObject({ version: 1, type: 'config' });
});
