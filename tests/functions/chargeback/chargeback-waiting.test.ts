import { randomUUID } from 'node:crypto';
import type { Container } from '@azure/cosmos';
import type { ContainerClient } from '@azure/storage-blob';
import { Redis } from 'ioredis';
import type { LocalStack } from '../../../local/stack';
import { CosmosChargebackStore } from '../../../shared/adapters/cosmos-store';
import { usageKeys } from '../../../shared/adapters/redis-usage-buffer';
import { DEFAULT_CHARGEBACK_CONFIG } from '../../../shared/chargeback/default-config';
import type { ChargebackConfig } from '../../../shared/chargeback/model';
import { etagOf } from '../../../shared/chargeback/config-admin';
import type { ChargebackRunSummary } from '../../../shared/chargeback/run';
import { CHARGEBACK_ORCHESTRATION } from '../../../shared/chargeback/run';
import { appServices, closeAppServices } from '../../../shared/config/composition';
import { COSMOS_CONTAINERS } from '../../../shared/contracts/storage';
import { windowId } from '../../../shared/contracts/window';
import { usageEvent } from '../../fixtures/usage';
import { startTestStack } from '../../stack';

/**
 * No configuration can stop metering: with an invalid CHARGEBACK_CONFIG or an invalid price
 * override, usage is still aggregated, committed and released; only roll-ups and reports wait, the
 * run says why, and the next run after the fix catches up. Real Redis, Azurite, Cosmos emulator.
 */

jest.setTimeout(120_000);

// Accepted before the full check: the fixed percentages name an unknown department and add up to 90.
const BAD_CONFIG: ChargebackConfig = {
  ...DEFAULT_CHARGEBACK_CONFIG,
  sharedCosts: [
    {
      id: 'platform',
      name: 'Platform team',
      monthlyAmount: '300',
      rule: { kind: 'fixed', percentages: { research: '60', ops: '30' } },
    },
  ],
};

let stack: LocalStack;
let redis: Redis;
let reports: ContainerClient;
let store: CosmosChargebackStore;
let prices: Container;

async function connect(): Promise<void> {
  const app = await appServices();
  reports = app.reportsContainer();
  store = new CosmosChargebackStore(app.cosmos(), app.config.cosmos.database);
  prices = app.cosmos().database(app.config.cosmos.database).container(COSMOS_CONTAINERS.prices.id);
}

beforeAll(async () => {
  process.env.CHARGEBACK_CONFIG = JSON.stringify(BAD_CONFIG);
  stack = await startTestStack();
  redis = new Redis(process.env.REDIS_URL as string);
  await connect();
});

afterAll(async () => {
  redis.disconnect();
  await stack.stop();
  delete process.env.CHARGEBACK_CONFIG;
});

async function run(): Promise<{ status: string; output: ChargebackRunSummary; customStatus: unknown }> {
  const id = `test-${randomUUID()}`;
  stack.host.durable.startNew(CHARGEBACK_ORCHESTRATION, { instanceId: id });
  const status = await stack.host.durable.waitForCompletion(id, 110_000);
  return {
    status: String(status.runtimeStatus),
    output: status.output as ChargebackRunSummary,
    customStatus: status.customStatus,
  };
}

async function record(at: string, promptTokens: number): Promise<void> {
  const e = usageEvent({ recordedAt: at, promptTokens });
  await redis.hsetnx(usageKeys.events(windowId(new Date(e.window))), e.id, JSON.stringify(e));
}

async function reportNames(): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of reports.listBlobsFlat()) names.push(blob.name);
  return names.sort();
}

describe('a run waiting for an admin', () => {
  it('an invalid CHARGEBACK_CONFIG: usage is committed and released, reports wait and say why, then catch up', async () => {
    await record('2026-04-07T09:05:00Z', 1_000_000); // 2.50

    const first = await run();
    expect(first.status).toBe('Completed');
    expect(first.output.events).toBe(1);
    expect(first.output.reports).toEqual([]);
    expect(first.output.waiting.map((w) => [w.step, w.period])).toEqual([
      ['report', '2026-04'],
      ['report', '2026-04-07'],
    ]);
    const problem = first.output.waiting[0]?.problem ?? '';
    expect(problem).toContain(
      "sharedCosts.0.rule.percentages.ops: shared cost 'platform' gives a percentage to department 'ops'",
    );
    expect(problem).toContain('fixed percentages add up to 90, not 100');
    // No configuration stored, and CHARGEBACK_CONFIG (which would seed it) unusable: the run says so.
    expect(first.output.configVersion).toBe('env-invalid');
    expect(first.customStatus).toEqual({
      phase: 'done, reports waiting',
      configVersion: 'env-invalid',
      waiting: [problem],
    });
    // Committed and released: nothing is lost, nothing piles up in Redis.
    expect(await redis.keys(usageKeys.pattern)).toEqual([]);
    expect(await store.usage({ month: '2026-04' })).toHaveLength(1);
    expect(await reportNames()).toEqual([]);

    // Still broken: the next run tries again, and still loses nothing.
    await record('2026-04-07T11:05:00Z', 2_000_000); // 5.00
    const second = await run();
    expect(second.output.events).toBe(1);
    expect(second.output.waiting).toHaveLength(2);
    expect(await redis.keys(usageKeys.pattern)).toEqual([]);

    // The admin fixes CHARGEBACK_CONFIG (the app restarts with it): nothing was stored, so it seeds
    // the stored configuration (version 1), and the next run writes everything.
    process.env.CHARGEBACK_CONFIG = JSON.stringify(DEFAULT_CHARGEBACK_CONFIG);
    await closeAppServices();
    await connect();
    const fixed = await run();
    expect(fixed.output.windows).toEqual([]);
    expect(fixed.output.waiting).toEqual([]);
    expect(fixed.output.configVersion).toBe('1');
    expect(fixed.output.reports).toEqual(
      expect.arrayContaining([
        'daily/2026-04-07/chargeback-2026-04-07.json',
        'monthly/2026-04/chargeback-2026-04.json',
      ]),
    );
    const day = JSON.parse(
      (
        await reports.getBlobClient('daily/2026-04-07/chargeback-2026-04-07.json').downloadToBuffer()
      ).toString(),
    ) as { departments: Array<{ department: string; usage: string }> };
    expect(day.departments.find((d) => d.department === 'research')?.usage).toBe('7.50');
  });

  it('an invalid price override: rows are committed unpriced and released; the roll-up waits, then prices them', async () => {
    await prices.items.upsert({ id: 'broken', model: 'gpt-4o', meter: 'input-tokens', unitPrice: 'cheap' });
    try {
      await record('2026-05-12T09:05:00Z', 4_000_000); // 10.00 at the default price
      const first = await run();
      expect(first.status).toBe('Completed');
      expect(first.output.events).toBe(1);
      expect(first.output.waiting).toEqual([
        {
          step: 'roll-up',
          period: '2026-05-12',
          problem: expect.stringContaining("Price override 'broken' is invalid: unitPrice:"),
        },
      ]);
      expect(await redis.keys(usageKeys.pattern)).toEqual([]);
      const [row] = await store.usage({ month: '2026-05' });
      expect(row).toMatchObject({ pricePending: true, cost: '0', priceId: null });
      expect(await store.daily({ month: '2026-05' })).toEqual([]);
    } finally {
      await prices.item('broken', 'gpt-4o').delete();
    }

    const fixed = await run();
    expect(fixed.output.waiting).toEqual([]);
    const [row] = await store.usage({ month: '2026-05' });
    expect(row?.pricePending).toBeUndefined();
    expect(row).toMatchObject({ priceId: 'default:gpt-4o:input-tokens:2025-01-01', cost: '10' });
    const day = JSON.parse(
      (
        await reports.getBlobClient('daily/2026-05-12/chargeback-2026-05-12.json').downloadToBuffer()
      ).toString(),
    ) as { departments: Array<{ department: string; usage: string }> };
    expect(day.departments.find((d) => d.department === 'research')?.usage).toBe('10.00');
  });

  it('a configuration change rewrites the open month and its days, and leaves closed months as written', async () => {
    // April and May have reports written with the default configuration; May is the open month.
    const shared = (report: string) => async (): Promise<string | undefined> =>
      (
        JSON.parse((await reports.getBlobClient(report).downloadToBuffer()).toString()) as {
          departments: Array<{ department: string; shared: string }>;
        }
      ).departments.find((d) => d.department === 'research')?.shared;
    const mayShared = shared('monthly/2026-05/chargeback-2026-05.json');
    const aprilShared = shared('monthly/2026-04/chargeback-2026-04.json');
    const [mayBefore, aprilBefore] = [await mayShared(), await aprilShared()];
    // CHARGEBACK_CONFIG only seeds the stored configuration: a new one is ignored from now on...
    process.env.CHARGEBACK_CONFIG = JSON.stringify({ ...DEFAULT_CHARGEBACK_CONFIG, markupPercent: '10' });
    await closeAppServices();
    await connect();
    expect((await run()).output.reports).toEqual([]);
    // ...an admin changes it (the admin API's store): API Management now costs twice as much.
    const app = await appServices();
    const apim = DEFAULT_CHARGEBACK_CONFIG.sharedCosts.find((c) => c.id === 'apim');
    if (!apim) throw new Error('the default configuration has no apim shared cost');
    const changed = await app.configStore().change(
      {
        action: 'replace',
        collection: 'shared-costs',
        id: 'apim',
        item: { ...apim, monthlyAmount: '1400.00' },
      },
      etagOf(apim),
      'test',
    );
    expect(changed.version).toBe('2');
    await closeAppServices(); // the configuration source's cache goes with it
    await connect();
    const run1 = await run();
    expect(run1.output.configVersion).toBe('2');
    expect(run1.output.windows).toEqual([]);
    expect(run1.output.reports).toEqual(
      expect.arrayContaining([
        'monthly/2026-05/chargeback-2026-05.json',
        'daily/2026-05-12/chargeback-2026-05-12.json',
      ]),
    );
    expect(run1.output.reports.filter((p) => p.includes('2026-04'))).toEqual([]);
    expect(await mayShared()).not.toBe(mayBefore);
    expect(await aprilShared()).toBe(aprilBefore);

    // Written once: the next run has nothing due.
    expect((await run()).output.reports).toEqual([]);
  });
});
