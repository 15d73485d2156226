import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { ActivityFaults } from '../../../local/host/activity-faults';
import { usageKeys } from '../../../shared/adapters/redis-usage-buffer';
import type { LocalStack } from '../../../local/stack';
import { CHARGEBACK_ACTIVITIES } from '../../../functions/chargeback/chargeback-run';
import { latestAsOf } from '../../../functions/chargeback/runs-post';
import type { ChargebackRunSummary } from '../../../shared/chargeback/run';
import { CHARGEBACK_ORCHESTRATION } from '../../../shared/chargeback/run';
import { appServices } from '../../../shared/config/composition';
import { GATEWAY_HEADERS } from '../../../shared/contracts/gateway-headers';
import { APP_ROLES } from '../../../shared/contracts/roles';
import { dayOf } from '../../../shared/contracts/report-period';
import { windowIdAt } from '../../../shared/contracts/window';
import { gatewayHeaders, recordedEvents, startTestStack } from '../../stack';

/**
 * The admin's run-now API on the local host: start a chargeback run that includes the window still
 * open, read its status, and every way a request can be refused.
 */

jest.setTimeout(120_000);

let stack: LocalStack;
const faults = new ActivityFaults();

beforeAll(async () => {
  stack = await startTestStack();
  stack.host.durable.interceptActivities(faults);
});
afterAll(() => stack.stop());
afterEach(() => faults.reset());

function adminHeaders(overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const all: Record<string, string | undefined> = {
    'x-functions-key': stack.settings.LOCAL_FUNCTION_KEY,
    'content-type': 'application/json',
    [GATEWAY_HEADERS.gatewayKey]: process.env.GATEWAY_SHARED_SECRET,
    [GATEWAY_HEADERS.roles]: APP_ROLES.admin,
    ...overrides,
  };
  return Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined));
}

const start = (body?: string, overrides?: Record<string, string | undefined>): Promise<Response> =>
  fetch(`${stack.host.url}/api/chargeback/runs`, {
    method: 'POST',
    headers: adminHeaders(overrides),
    ...(body === undefined ? {} : { body }),
  });

const status = (id: string, overrides?: Record<string, string | undefined>): Promise<Response> =>
  fetch(`${stack.host.url}/api/chargeback/runs/${id}`, { headers: adminHeaders(overrides) });

async function errorOf(response: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await response.json()) as { error: { code: string; message: string } };
  return { status: response.status, ...body.error };
}

/** A chat completion through the proxy, as APIM forwards one; returns its request id once served. */
async function chat(caller: { subscription: string; app: string; department: string }): Promise<string> {
  const requestId = randomUUID();
  const response = await fetch(
    `${stack.host.url}/api/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21`,
    {
      method: 'POST',
      headers: { ...gatewayHeaders(stack, requestId, caller), 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'Hello there' }] }),
    },
  );
  expect(response.status).toBe(200);
  await response.text();
  return requestId;
}

interface RunStatus {
  id: string;
  status: string;
  progress: unknown;
  summary: ChargebackRunSummary | null;
}

async function finished(id: string): Promise<RunStatus> {
  for (let i = 0; i < 900; i++) {
    const body = (await (await status(id)).json()) as RunStatus;
    if (['Completed', 'Failed', 'Terminated'].includes(body.status)) return body;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`run ${id} did not finish`);
}

describe('admin run-now API', () => {
  it('runs the chargeback now, including the window still open, and reports its traffic', async () => {
    const before = new Date();
    await chat({ subscription: 'sub-1', app: 'app-1', department: 'research' });
    const now = new Date();

    const response = await start();
    expect(response.status).toBe(202);
    const started = (await response.json()) as { id: string; asOf: string; statusUrl: string };
    expect(started.id).toMatch(/^chargeback-admin-/);
    expect(response.headers.get('location')).toBe(started.statusUrl);
    const graceMs = (await appServices()).config.chargeback.graceMs;
    expect(started.asOf).toBe(latestAsOf(now, graceMs).toISOString());

    const run = await finished(started.id);
    expect(run.status).toBe('Completed');
    // The configuration version the run used: CHARGEBACK_CONFIG (here the default) seeds version 1.
    expect(run.progress).toEqual({ phase: 'done', configVersion: '1' });
    expect(run.summary?.configVersion).toBe('1');
    // The window still open when the request was made (or the next one, at a boundary).
    const open = run.summary?.windows.map((w) => w.windowId) ?? [];
    expect(open.some((id) => id === windowIdAt(before) || id === windowIdAt(now))).toBe(true);
    expect(run.summary?.reports).toContain(`daily/${dayOf(now)}/chargeback-${dayOf(now)}.json`);
  });

  it('keeps the open window it claimed: a second run adds what arrived since, counting a late duplicate once', async () => {
    const redis = new Redis(process.env.REDIS_URL as string);
    try {
      const late = { subscription: 'sub-2', app: 'app-late', department: 'marketing' };
      const first = await chat(late);
      const [recorded] = await recordedEvents(redis, first);
      if (!recorded) throw new Error('the first request was not recorded');
      const window = windowIdAt(new Date(recorded.window));
      const runNow = async (): Promise<RunStatus> => {
        const started = (await (await start()).json()) as { id: string };
        const run = await finished(started.id);
        expect(run.status).toBe('Completed');
        return run;
      };
      const lateRequests = async (): Promise<number> => {
        const report = JSON.parse(
          (
            await (
              await appServices()
            )
              .reportsContainer()
              .getBlobClient(
                `daily/${recorded.window.slice(0, 10)}/chargeback-${recorded.window.slice(0, 10)}.json`,
              )
              .downloadToBuffer()
          ).toString(),
        ) as { rows: Array<Record<string, string>> };
        return report.rows
          .filter((r) => r.x_AppId === 'app-late' && r.x_Meter === 'input-tokens')
          .reduce((n, r) => n + Number(r.x_Requests), 0);
      };

      await runNow();
      expect(await lateRequests()).toBe(1);
      // Claimed before it closed: its raw usage is kept, not released.
      expect((await redis.keys(usageKeys.pattern)).some((key) => key.includes(`{w:${window}}`))).toBe(true);

      // The spool copy of the same event arrives late (a Redis write that timed out but landed),
      // and a new request comes in; the next run adopts the open batch.
      await (await appServices()).spool().write(recorded);
      await chat(late);
      await runNow();
      expect(await lateRequests()).toBe(2);
    } finally {
      redis.disconnect();
    }
  });

  it('takes an earlier asOf, and refuses one after the end of the current window plus the grace period', async () => {
    const earlier = await start(JSON.stringify({ asOf: '2026-01-01T00:00:00+01:00' }));
    expect(earlier.status).toBe(202);
    const { id, asOf } = (await earlier.json()) as { id: string; asOf: string };
    expect(asOf).toBe('2025-12-31T23:00:00.000Z');
    expect((await finished(id)).status).toBe('Completed');

    const late = await errorOf(await start(JSON.stringify({ asOf: '2999-01-01T00:00:00Z' })));
    expect(late).toMatchObject({ status: 400, code: 'BadRequest' });
    expect(late.message).toMatch(/^'asOf' must not be later than \d{4}-/);
  });

  it.each([
    ['not JSON', '{asOf', 'The request body is not valid JSON.'],
    ['not a date', JSON.stringify({ asOf: 'tomorrow' }), "'asOf'"],
    ['a date without a time zone', JSON.stringify({ asOf: '2026-12-01T10:00:00' }), "'asOf'"],
    ['an unknown field', JSON.stringify({ asof: '2026-12-01T10:00:00Z' }), 'Unrecognized key'],
    ['not an object', '[]', 'expected object'],
  ])('refuses a body that is %s with a 400', async (_label, body, message) => {
    const error = await errorOf(await start(body));
    expect(error).toMatchObject({ status: 400, code: 'BadRequest' });
    expect(error.message).toContain(message);
  });

  it('refuses a run while another is in progress (409), and points at it', async () => {
    faults.arm(CHARGEBACK_ACTIVITIES.find, 'before', 1); // held in its first retry for 2 s
    const held = `test-${randomUUID()}`;
    stack.host.durable.startNew(CHARGEBACK_ORCHESTRATION, { instanceId: held, input: {} });
    const response = await start();
    expect(response.status).toBe(409);
    expect(response.headers.get('location')).toBe(`/api/chargeback/runs/${held}`);
    expect((await errorOf(response)).message).toContain(`Chargeback run ${held} is in progress`);
    await stack.host.durable.waitForCompletion(held, 60_000);
  });

  it('needs the gateway credential (401) and the admin role (403), for both calls', async () => {
    const noGateway = { [GATEWAY_HEADERS.gatewayKey]: undefined };
    const finance = { [GATEWAY_HEADERS.roles]: APP_ROLES.finance };
    expect((await errorOf(await start(undefined, noGateway))).status).toBe(401);
    expect((await errorOf(await start(undefined, finance))).status).toBe(403);
    expect((await errorOf(await status('chargeback-x', noGateway))).status).toBe(401);
    expect((await errorOf(await status('chargeback-x', finance))).status).toBe(403);
  });

  it('says a run failed without passing on its error, which may name internal hosts', async () => {
    faults.arm(CHARGEBACK_ACTIVITIES.find, 'before', 100);
    const failing = `chargeback-test-${randomUUID()}`;
    stack.host.durable.startNew(CHARGEBACK_ORCHESTRATION, { instanceId: failing, input: {} });
    const run = (await finished(failing)) as RunStatus & { error?: string };
    expect(run.status).toBe('Failed');
    expect(run.summary).toBeNull();
    expect(run.error).toContain(`under run id ${failing}`);
    expect(JSON.stringify(run)).not.toMatch(/unavailable|fault|Error:|at .*\.ts/);
  }, 120_000);

  it('answers 404 for an unknown run and 400 for a malformed id', async () => {
    expect(await errorOf(await status('chargeback-none'))).toMatchObject({ status: 404, code: 'NotFound' });
    expect(await errorOf(await status('..%2F..%2Fadmin'))).toMatchObject({ status: 400, code: 'BadRequest' });
  });
});
