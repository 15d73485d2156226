import { Redis } from 'ioredis';
import type { RedisServer } from '../../../local/services/redis';
import { startRedis } from '../../../local/services/redis';
import { budgetKeys, expiryOf, RedisBudgetLedger } from '../../../shared/adapters/redis-budget';
import type { MetricPoint } from '../../../shared/adapters/telemetry';
import { METRICS, Telemetry } from '../../../shared/adapters/telemetry';
import { checkChargebackConfig } from '../../../shared/chargeback/model';
import type { ConfigSource } from '../../../shared/chargeback/ports';
import { BUDGET_HEADERS, parseBudgetWarnings } from '../../../shared/contracts/budget';
import type { Attribution } from '../../../shared/metering/attribution';
import type { BudgetObserver, ReserveRequest } from '../../../shared/metering/budget';
import { BudgetGate } from '../../../shared/metering/budget';
import { usageEvent } from '../../fixtures/usage';

/** The budget ledger's Lua scripts against a real redis-server, and the gate on top of them. */

let server: RedisServer;
let redis: Redis;
let ledger: RedisBudgetLedger;
let n = 0;

/** A department of its own per test: the tests share one Redis. */
function department(): string {
  n += 1;
  return `dept-${n}`;
}

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url, { enableOfflineQueue: false });
  await new Promise((resolve) => redis.once('ready', resolve));
  ledger = new RedisBudgetLedger(() => redis, { readyTimeoutMs: 1000 });
}, 30_000);
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

const MONTH = '2026-12';

function reserveRequest(dept: string, fields: Partial<ReserveRequest> = {}): ReserveRequest {
  return {
    department: dept,
    month: MONTH,
    reservationId: `r-${Math.random()}`,
    estimateMicros: 100,
    holdMs: 60_000,
    limits: [{ amountMicros: 1000, hard: true }],
    ...fields,
  };
}

describe('RedisBudgetLedger', () => {
  it('holds an estimate, and settle replaces the hold by the actual cost', async () => {
    const dept = department();
    const granted = await ledger.reserve(reserveRequest(dept, { reservationId: 'a', estimateMicros: 300 }));
    expect(granted).toEqual({ granted: true, spend: [{ settledMicros: 0, reservedMicros: 0 }] });
    expect(await ledger.spend({ department: dept }, MONTH)).toEqual({
      settledMicros: 0,
      reservedMicros: 300,
    });

    await ledger.settle({
      department: dept,
      appId: 'app-1',
      month: MONTH,
      costMicros: 120,
      reservation: { id: 'a', month: MONTH },
    });
    expect(await ledger.spend({ department: dept }, MONTH)).toEqual({
      settledMicros: 120,
      reservedMicros: 0,
    });
    // The app's counter counts too, budget or not.
    expect(await ledger.spend({ department: dept, appId: 'app-1' }, MONTH)).toEqual({
      settledMicros: 120,
      reservedMicros: 0,
    });
    expect(await redis.zcard(budgetKeys.holds({ department: dept }, MONTH))).toBe(0);
  });

  it('raises a counter to the committed spend when it holds less, and never lowers it', async () => {
    const dept = department();
    await ledger.settle({ department: dept, appId: 'app-1', month: MONTH, costMicros: 50 });
    expect(await ledger.raiseSettled({ department: dept }, MONTH, 80)).toBe(50);
    expect(await ledger.spend({ department: dept }, MONTH)).toEqual({ settledMicros: 80, reservedMicros: 0 });
    expect(await ledger.raiseSettled({ department: dept }, MONTH, 60)).toBe(80);
    expect(await ledger.spend({ department: dept }, MONTH)).toEqual({ settledMicros: 80, reservedMicros: 0 });
    // A lost counter is rebuilt, with its expiry.
    expect(await ledger.raiseSettled({ department: dept, appId: 'gone' }, MONTH, 7)).toBe(0);
    expect(await redis.pttl(budgetKeys.scope({ department: dept, appId: 'gone' }, MONTH))).toBeGreaterThan(0);
  });

  it('refuses when settled + reserved + estimate exceeds the amount, writing nothing', async () => {
    const dept = department();
    await ledger.settle({ department: dept, appId: 'x', month: MONTH, costMicros: 600 });
    expect(
      (await ledger.reserve(reserveRequest(dept, { reservationId: 'h', estimateMicros: 300 }))).granted,
    ).toBe(true);
    const before = await redis.hgetall(budgetKeys.scope({ department: dept }, MONTH));
    const refused = await ledger.reserve(reserveRequest(dept, { estimateMicros: 101 }));
    expect(refused).toEqual({
      granted: false,
      refusedBy: 0,
      spend: { settledMicros: 600, reservedMicros: 300 },
    });
    expect(await redis.hgetall(budgetKeys.scope({ department: dept }, MONTH))).toEqual(before);
    // Exactly what is left fits.
    expect((await ledger.reserve(reserveRequest(dept, { estimateMicros: 100 }))).granted).toBe(true);
  });

  it('refuses a spent budget even a request estimated at nothing', async () => {
    const dept = department();
    await ledger.settle({ department: dept, appId: 'x', month: MONTH, costMicros: 1000 });
    expect(await ledger.reserve(reserveRequest(dept, { estimateMicros: 0 }))).toMatchObject({
      granted: false,
    });
  });

  it("checks a department's and its app's budgets atomically: one refusing holds nothing on the other", async () => {
    const dept = department();
    await ledger.settle({ department: dept, appId: 'chat', month: MONTH, costMicros: 450 });
    const limits = [
      { amountMicros: 10_000, hard: true },
      { appId: 'chat', amountMicros: 500, hard: true },
    ];
    const refused = await ledger.reserve(reserveRequest(dept, { limits, estimateMicros: 100 }));
    expect(refused).toEqual({
      granted: false,
      refusedBy: 1,
      spend: { settledMicros: 450, reservedMicros: 0 },
    });
    expect(await ledger.spend({ department: dept }, MONTH)).toEqual({
      settledMicros: 450,
      reservedMicros: 0,
    });

    const granted = await ledger.reserve(reserveRequest(dept, { limits, estimateMicros: 50 }));
    expect(granted).toEqual({
      granted: true,
      spend: [
        { settledMicros: 450, reservedMicros: 0 },
        { settledMicros: 450, reservedMicros: 0 },
      ],
    });
    expect((await ledger.spend({ department: dept }, MONTH)).reservedMicros).toBe(50);
    expect((await ledger.spend({ department: dept, appId: 'chat' }, MONTH)).reservedMicros).toBe(50);
  });

  it('a soft budget neither refuses nor holds, but reports its spend', async () => {
    const dept = department();
    await ledger.settle({ department: dept, appId: 'x', month: MONTH, costMicros: 5000 });
    const outcome = await ledger.reserve(
      reserveRequest(dept, { limits: [{ amountMicros: 1000, hard: false }], estimateMicros: 100 }),
    );
    expect(outcome).toEqual({ granted: true, spend: [{ settledMicros: 5000, reservedMicros: 0 }] });
    expect((await ledger.spend({ department: dept }, MONTH)).reservedMicros).toBe(0);
  });

  it("a crashed request's hold expires (Redis time) and frees the budget", async () => {
    const dept = department();
    await ledger.reserve(reserveRequest(dept, { estimateMicros: 1000, holdMs: 100 }));
    expect((await ledger.reserve(reserveRequest(dept, { estimateMicros: 1 }))).granted).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(await ledger.spend({ department: dept }, MONTH)).toEqual({ settledMicros: 0, reservedMicros: 0 });
    expect((await ledger.reserve(reserveRequest(dept, { estimateMicros: 1000 }))).granted).toBe(true);
  });

  it('a settle after the hold expired still counts the cost, once', async () => {
    const dept = department();
    await ledger.reserve(reserveRequest(dept, { reservationId: 'late', estimateMicros: 500, holdMs: 50 }));
    await new Promise((resolve) => setTimeout(resolve, 100));
    await ledger.spend({ department: dept }, MONTH); // purges the expired hold
    await ledger.settle({
      department: dept,
      appId: 'x',
      month: MONTH,
      costMicros: 400,
      reservation: { id: 'late', month: MONTH },
    });
    expect(await ledger.spend({ department: dept }, MONTH)).toEqual({
      settledMicros: 400,
      reservedMicros: 0,
    });
  });

  it('counts a request reserved in one month and recorded in the next in the next month', async () => {
    const dept = department();
    await ledger.reserve(
      reserveRequest(dept, { reservationId: 'eom', month: '2026-11', estimateMicros: 500 }),
    );
    await ledger.settle({
      department: dept,
      appId: 'x',
      month: '2026-12',
      costMicros: 300,
      reservation: { id: 'eom', month: '2026-11' },
    });
    expect(await ledger.spend({ department: dept }, '2026-11')).toEqual({
      settledMicros: 0,
      reservedMicros: 0,
    });
    expect(await ledger.spend({ department: dept }, '2026-12')).toEqual({
      settledMicros: 300,
      reservedMicros: 0,
    });
  });

  it('never grants more than the amount, however many reserve at once', async () => {
    const dept = department();
    const outcomes = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        ledger.reserve(
          reserveRequest(dept, {
            reservationId: `c${i}`,
            estimateMicros: 70,
            limits: [{ amountMicros: 1000, hard: true }],
          }),
        ),
      ),
    );
    expect(outcomes.filter((o) => o.granted)).toHaveLength(14); // 14 × 70 = 980; 15 × 70 = 1050
    expect((await ledger.spend({ department: dept }, MONTH)).reservedMicros).toBe(980);
  });

  it('keeps every key of a department in one cluster slot and lets them expire after the month', async () => {
    const dept = department();
    await ledger.reserve(
      reserveRequest(dept, {
        limits: [
          { amountMicros: 10, hard: true },
          { appId: 'a:b/c', amountMicros: 10, hard: true },
        ],
        estimateMicros: 1,
      }),
    );
    const keys = (await redis.keys(`budget:{d:${dept}}:*`)).sort();
    expect(keys).toEqual(
      [
        budgetKeys.scope({ department: dept }, MONTH),
        budgetKeys.holds({ department: dept }, MONTH),
        budgetKeys.scope({ department: dept, appId: 'a:b/c' }, MONTH),
        budgetKeys.holds({ department: dept, appId: 'a:b/c' }, MONTH),
      ].sort(),
    );
    // Redis Cluster hashes only the hash tag (between the first { and the next }) when a key has one.
    const tags = new Set(keys.map((key) => /\{([^}]+)\}/.exec(key)?.[1]));
    expect([...tags]).toEqual([`d:${dept}`]);
    for (const key of keys) expect(await redis.pexpiretime(key)).toBe(expiryOf(MONTH));
    expect(new Date(expiryOf(MONTH)).toISOString()).toBe('2027-02-10T00:00:00.000Z');
  });
});

describe('BudgetGate on the Redis ledger', () => {
  const attribution = (dept: string): Attribution => ({
    subscriptionId: 'sub',
    appId: 'chat-app',
    department: dept,
    unassigned: false,
  });
  const configFor = (dept: string, amount: string, hard: boolean): ConfigSource => {
    const state = checkChargebackConfig({
      departments: [{ id: dept, name: dept }],
      budgets: [{ id: `${dept}-budget`, department: dept, monthlyAmount: amount, warnAtPercent: [50], hard }],
    });
    return { current: () => Promise.resolve({ version: 'v', state }) };
  };
  const observer = (seen: string[]): BudgetObserver => ({
    warned: (w) => seen.push(`warned ${w.budgetId} ${w.percentUsed} ${w.threshold} ${w.first}`),
    refused: (r) => seen.push(`refused ${r.budget.id} ${r.spent}`),
    unavailable: (stage, problem) => seen.push(`unavailable ${stage} ${problem}`),
  });
  const gate = (config: ConfigSource, now: Date) =>
    new BudgetGate({
      ledger,
      config,
      prices: { overrides: () => Promise.resolve([]) },
      ledgerTimeoutMs: 1000,
      configTimeoutMs: 1000,
      now: () => now,
      newId: () => `id-${Math.random()}`,
    });

  it('counts what was served, warns past a threshold, and refuses once the hard budget is spent', async () => {
    const dept = department();
    const now = new Date('2026-12-02T10:15:00.000Z');
    const g = gate(configFor(dept, '0.001', true), now);
    const seen: string[] = [];
    // gpt-4o: 100 prompt tokens at 2.50 and 30 output at 10.00 per 1M: 250 + 300 micro-dollars.
    const check = {
      attribution: attribution(dept),
      api: 'chat' as const,
      deployment: 'gpt-4o',
      figures: { promptTokens: 100, completionTokens: 30 },
    };
    const served = usageEvent({
      department: dept,
      appId: 'chat-app',
      recordedAt: now.toISOString(),
      promptTokens: 100,
      completionTokens: 30,
    });

    const first = await g.reserve(check, observer(seen));
    expect(first.headers).toEqual({});
    expect(await ledger.spend({ department: dept }, '2026-12')).toEqual({
      settledMicros: 0,
      reservedMicros: 550,
    });
    await first.settle(served);
    expect(await ledger.spend({ department: dept }, '2026-12')).toEqual({
      settledMicros: 550,
      reservedMicros: 0,
    });

    // 55% used: the 50% threshold warns; 550 + 550 > 1000: refused before the call.
    await expect(g.reserve(check, observer(seen))).rejects.toMatchObject({
      status: 429,
      message: expect.stringMatching(/budget '.*-budget' of department '.*' has too little left/),
    });
    const small = await g.reserve(
      { ...check, figures: { promptTokens: 100, completionTokens: 10 } },
      observer(seen),
    );
    expect(parseBudgetWarnings(small.headers[BUDGET_HEADERS.warning])).toEqual([
      { budgetId: `${dept}-budget`, percentUsed: 55, amount: '0.001' },
    ]);
    await small.settle(
      usageEvent({
        department: dept,
        appId: 'chat-app',
        recordedAt: now.toISOString(),
        promptTokens: 100,
        completionTokens: 50,
      }),
    );
    expect((await ledger.spend({ department: dept }, '2026-12')).settledMicros).toBe(1300);
    await expect(g.reserve({ ...check, figures: { promptTokens: 1 } }, observer(seen))).rejects.toMatchObject(
      {
        status: 429,
        message: expect.stringMatching(/is spent: 0\.0013 USD of 0\.001 USD used in 2026-12/),
      },
    );
    expect(seen).toEqual([
      `refused ${dept}-budget false`,
      `warned ${dept}-budget 55 50 true`,
      `refused ${dept}-budget true`,
    ]);
  });

  it('releases the hold in full when nothing was served', async () => {
    const dept = department();
    const g = gate(configFor(dept, '1', true), new Date('2026-12-02T10:15:00.000Z'));
    const hold = await g.reserve(
      {
        attribution: attribution(dept),
        api: 'stt',
        deployment: 'stt-en-US',
        model: 'azure-speech-stt-standard',
        figures: { audioSeconds: 36 },
      },
      observer([]),
    );
    expect(await ledger.spend({ department: dept }, '2026-12')).toEqual({
      settledMicros: 0,
      reservedMicros: 10_000,
    });
    await hold.settle(undefined);
    expect(await ledger.spend({ department: dept }, '2026-12')).toEqual({
      settledMicros: 0,
      reservedMicros: 0,
    });
  });

  it('a soft budget warns but never refuses', async () => {
    const dept = department();
    const now = new Date('2026-12-02T10:15:00.000Z');
    await ledger.settle({ department: dept, appId: 'x', month: '2026-12', costMicros: 5_000 });
    const seen: string[] = [];
    const hold = await gate(configFor(dept, '0.001', false), now).reserve(
      { attribution: attribution(dept), api: 'chat', deployment: 'gpt-4o', figures: { promptTokens: 1000 } },
      observer(seen),
    );
    expect(hold.headers[BUDGET_HEADERS.warning]).toBe(`${dept}-budget 500% of 0.001 USD used`);
    expect(seen).toEqual([`warned ${dept}-budget 500 50 true`]);
  });
});

describe('budget telemetry', () => {
  it('counts warnings, refusals and unavailability as metrics with the budget and department', () => {
    const points: MetricPoint[] = [];
    const telemetry = new Telemetry({
      trackMetric: (p) => points.push(p),
      trackTrace: () => undefined,
      trackEvent: () => undefined,
    });
    telemetry.budgetWarning({ budgetId: 'research', department: 'research', threshold: 80 });
    telemetry.budgetRefused({ budgetId: 'research-chat', department: 'research', appId: 'chat-app' });
    telemetry.budgetUnavailable('reserve');
    expect(points).toEqual([
      {
        name: METRICS.budgetWarnings,
        value: 1,
        properties: { budget: 'research', department: 'research', threshold: '80' },
      },
      {
        name: METRICS.budgetRefusals,
        value: 1,
        properties: { budget: 'research-chat', department: 'research', appId: 'chat-app' },
      },
      { name: METRICS.budgetUnavailable, value: 1, properties: { stage: 'reserve' } },
    ]);
    expect(METRICS.budgetWarnings).toBe('chargeback.budget_warnings');
  });
});
