import { randomUUID } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import type { LocalStack, StandIn } from '../../../local/stack';
import { appServices } from '../../../shared/config/composition';
import { GATEWAY_HEADERS } from '../../../shared/contracts/gateway-headers';
import { APP_ROLES } from '../../../shared/contracts/roles';
import { BLOB_CONTAINERS } from '../../../shared/contracts/storage';
import { gatewayHeaders, startTestStack } from '../../stack';
import { usageEvent } from '../../fixtures/usage';
import { Redis } from 'ioredis';
import { CosmosChargebackStore } from '../../../shared/adapters/cosmos-store';
import { usageKeys } from '../../../shared/adapters/redis-usage-buffer';
import { windowId } from '../../../shared/contracts/window';
import { lastResortLine } from '../../../shared/metering/last-resort';

/**
 * Redis and the spool both unavailable while the upstream serves requests: the caller still gets
 * the answer, within the stores' timeouts; the usage survives as a last-resort record (a log line
 * carrying the whole event, and the same as a telemetry event in Azure); an admin re-imports the
 * records, as often as they like, and each event is in the reports exactly once.
 */

jest.setTimeout(120_000);

const REDIS_TIMEOUT_MS = 200;
const SPOOL_TIMEOUT_MS = 1000;

let stack: LocalStack;
let logged: string[] = [];
let errorSpy: jest.SpyInstance;

beforeAll(async () => {
  process.env.REDIS_WRITE_TIMEOUT_MS = String(REDIS_TIMEOUT_MS);
  process.env.SPOOL_WRITE_TIMEOUT_MS = String(SPOOL_TIMEOUT_MS);
  stack = await startTestStack();
  const original = console.error.bind(console);
  errorSpy = jest.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
    logged.push(args.map(String).join(' '));
    original(...args);
  });
});
afterAll(async () => {
  errorSpy?.mockRestore();
  await stack?.stop();
});
beforeEach(() => {
  logged = [];
});

function standIn(name: string): StandIn {
  const found = stack.standIns.find((s) => s.name === name);
  if (!found) throw new Error(`the test stack has no ${name}`);
  return found;
}

function spoolContainer() {
  return BlobServiceClient.fromConnectionString(
    process.env.STORAGE_CONNECTION_STRING as string,
  ).getContainerClient(BLOB_CONTAINERS.usageSpool);
}

async function chat(id: string, app: string, stream: boolean): Promise<{ status: number; body: string }> {
  const response = await fetch(
    `${stack.host.url}/api/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21`,
    {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...gatewayHeaders(stack, id, { subscription: 'sub-last-resort', app, department: 'research' }),
      },
      body: JSON.stringify({ messages: [{ role: 'user', content: `question ${id}` }], stream }),
    },
  );
  return { status: response.status, body: await response.text() };
}

const adminHeaders = (contentType: string): Record<string, string> => ({
  'x-functions-key': stack.settings.LOCAL_FUNCTION_KEY,
  'content-type': contentType,
  [GATEWAY_HEADERS.gatewayKey]: process.env.GATEWAY_SHARED_SECRET as string,
  [GATEWAY_HEADERS.roles]: APP_ROLES.admin,
});

interface ImportResult {
  events: number;
  imported: number;
  alreadyImported: number;
  pending: number;
  maybeCounted: string[];
}

async function reimport(lines: string[], query = ''): Promise<ImportResult> {
  const response = await fetch(`${stack.host.url}/api/usage/imports${query}`, {
    method: 'POST',
    headers: adminHeaders('text/plain'),
    body: lines.join('\n'),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as ImportResult;
}

async function runNow(): Promise<void> {
  const started = await fetch(`${stack.host.url}/api/chargeback/runs`, {
    method: 'POST',
    headers: adminHeaders('application/json'),
  });
  expect(started.status).toBe(202);
  const { id } = (await started.json()) as { id: string };
  for (let i = 0; i < 900; i++) {
    const run = (await (
      await fetch(`${stack.host.url}/api/chargeback/runs/${id}`, {
        headers: adminHeaders('application/json'),
      })
    ).json()) as { status: string };
    if (run.status === 'Completed') return;
    if (run.status === 'Failed' || run.status === 'Terminated') throw new Error(`run ${id}: ${run.status}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`run ${id} did not finish`);
}

/** Requests of an app on its primary line in today's daily report (each request counts once there). */
async function reportedRequests(app: string): Promise<number> {
  const day = new Date().toISOString().slice(0, 10);
  const report = JSON.parse(
    (
      await (
        await appServices()
      )
        .reportsContainer()
        .getBlobClient(`daily/${day}/chargeback-${day}.json`)
        .downloadToBuffer()
    ).toString(),
  ) as { rows: Array<Record<string, string>> };
  return report.rows
    .filter((r) => r.x_AppId === app && r.x_Meter === 'input-tokens')
    .reduce((n, r) => n + Number(r.x_Requests), 0);
}

function lastResortLines(ids: string[]): string[] {
  return logged.filter(
    (line) => line.startsWith('USAGE_EVENT_UNRECORDED ') && ids.some((id) => line.includes(`"id":"${id}"`)),
  );
}

it('serves the answer when Redis is down and the spool refuses, and a re-import counts each event once', async () => {
  const redis = standIn('Redis');
  await redis.stop();
  await spoolContainer().delete();
  const app = 'app-refused';
  const ids = [`refused-${randomUUID()}`, `refused-stream-${randomUUID()}`];
  try {
    const began = Date.now();
    const plain = await chat(ids[0] as string, app, false);
    const streamed = await chat(ids[1] as string, app, true);
    expect(plain.status).toBe(200);
    expect(JSON.parse(plain.body)).toHaveProperty('choices');
    expect(streamed.status).toBe(200);
    expect(streamed.body.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(Date.now() - began).toBeLessThan(2 * (REDIS_TIMEOUT_MS + SPOOL_TIMEOUT_MS) + 4000);
  } finally {
    await redis.restart?.();
    await spoolContainer().createIfNotExists();
  }
  const records = lastResortLines(ids);
  expect(records).toHaveLength(2);

  // Both stores refused outright: certainly stored nowhere.
  // Both stores refused outright (not connected; no container): certainly stored nowhere.
  expect(records.every((line) => line.includes('"maybeStored":false'))).toBe(true);
  const imported = { events: 2, imported: 2, alreadyImported: 0, pending: 0, maybeCounted: [] };
  const again = { events: 2, imported: 0, alreadyImported: 2, pending: 0, maybeCounted: [] };
  expect(await reimport(records)).toEqual(imported);
  // Twice is the same as once.
  expect(await reimport(records)).toEqual(again);
  await runNow();
  expect(await reportedRequests(app)).toBe(2);
  expect(await reimport(records)).toEqual(again);
  await runNow();
  expect(await reportedRequests(app)).toBe(2);
});

it('serves the answer in bounded time when Redis and Blob Storage hang; a write that lands after all still counts once', async () => {
  const paused = [standIn('Redis'), standIn('Azurite')].map((s) => (s.pid as () => number)());
  const app = 'app-paused';
  const id = `paused-${randomUUID()}`;
  for (const pid of paused) process.kill(pid, 'SIGSTOP');
  let elapsed: number;
  try {
    const began = Date.now();
    const answer = await chat(id, app, false);
    elapsed = Date.now() - began;
    expect(answer.status).toBe(200);
  } finally {
    for (const pid of paused) process.kill(pid, 'SIGCONT');
  }
  expect(elapsed).toBeLessThan(REDIS_TIMEOUT_MS + SPOOL_TIMEOUT_MS + 3000);
  const records = lastResortLines([id]);
  expect(records).toHaveLength(1);
  // The writes the paused stores had already received may land once they resume: the re-import
  // finds such an event still pending and leaves it to the run, which merges copies by id.
  await new Promise((resolve) => setTimeout(resolve, 500));
  // Timed out, not refused: a store may hold it after all.
  expect(records[0]).toContain('"maybeStored":true');
  let result = await reimport(records);
  expect(result.events).toBe(1);
  if (result.maybeCounted.length > 0) {
    // Neither store holds it: the admin, who knows the window was not reported yet, imports it.
    expect(result.maybeCounted).toEqual([id]);
    result = await reimport(records, '?includeMaybeStored=true');
  }
  expect(result.imported + result.pending).toBe(1);
  await runNow();
  expect(await reportedRequests(app)).toBe(1);
  await reimport(records);
  await runNow();
  expect(await reportedRequests(app)).toBe(1);
});

it('never counts twice an event that a store took late, however often it is re-imported, before or after its release', async () => {
  const services = await appServices();
  const steps = services.chargeback();
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
  // A closed window of its own, long past.
  const recordedAt = '2026-11-03T10:05:00.000Z';
  const window = windowId(new Date('2026-11-03T10:00:00.000Z'));
  const late = usageEvent({ id: `late-${randomUUID()}`, recordedAt, appId: 'app-late', promptTokens: 10 });
  const lost = usageEvent({ id: `lost-${randomUUID()}`, recordedAt, appId: 'app-late', promptTokens: 10 });
  const lines = [late, lost].map((event) => lastResortLine(event, 'Redis write timed out', true));
  // The write that timed out landed in Redis after all; the other one did not.
  const redis = new Redis(process.env.REDIS_URL as string);
  try {
    await redis.hsetnx(usageKeys.events(window), late.id, JSON.stringify(late));
  } finally {
    redis.disconnect();
  }

  // Held by the buffer: pending; not held and maybe stored: listed, not imported.
  expect(await reimport(lines)).toEqual({
    events: 2,
    imported: 0,
    alreadyImported: 0,
    pending: 1,
    maybeCounted: [lost.id],
  });
  // The run counts the late copy and releases the window's raw usage.
  const outcome = await steps.aggregateWindow(window, `run-${randomUUID()}`, log, new Date());
  expect(outcome.events).toBe(1);
  await steps.releaseBatch(outcome);
  // Re-imported after the release: still counted once. The admin imports the other one.
  expect(await reimport(lines, '?includeMaybeStored=true')).toEqual({
    events: 2,
    imported: 1,
    alreadyImported: 1,
    pending: 0,
    maybeCounted: [],
  });
  expect(await reimport(lines, '?includeMaybeStored=true')).toMatchObject({ alreadyImported: 2 });
  const counted = (
    await new CosmosChargebackStore(services.cosmos(), services.config.cosmos.database).batches('2026-11')
  )
    .filter((b) => b.windowId === window)
    .reduce((n, b) => n + b.events, 0);
  expect(counted).toBe(2);
});

it('refuses a re-import flag that is not true or false', async () => {
  const response = await fetch(`${stack.host.url}/api/usage/imports?includeMaybeStored=yes`, {
    method: 'POST',
    headers: adminHeaders('text/plain'),
    body: 'x',
  });
  expect(response.status).toBe(400);
  expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(
    /includeMaybeStored/,
  );
});

it('refuses a re-import that is not usage records, naming the line', async () => {
  const response = await fetch(`${stack.host.url}/api/usage/imports`, {
    method: 'POST',
    headers: adminHeaders('text/plain'),
    body: 'USAGE_EVENT_UNRECORDED {"id":"x"}\nnot a record',
  });
  expect(response.status).toBe(400);
  const body = (await response.json()) as { error: { message: string } };
  expect(body.error.message).toMatch(/line 1/);
  expect(body.error.message).toMatch(/line 2/);
});

it('requires the admin role', async () => {
  const response = await fetch(`${stack.host.url}/api/usage/imports`, {
    method: 'POST',
    headers: { ...adminHeaders('text/plain'), [GATEWAY_HEADERS.roles]: 'Chargeback.Reader' },
    body: '',
  });
  expect(response.status).toBe(403);
});
