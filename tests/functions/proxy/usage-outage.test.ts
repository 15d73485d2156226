import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { BlobServiceClient } from '@azure/storage-blob';
import { Redis } from 'ioredis';
import type { LocalStack } from '../../../local/stack';
import { BlobUsageSpool } from '../../../shared/adapters/blob-spool';
import { usageKeys } from '../../../shared/adapters/redis-usage-buffer';
import { BLOB_CONTAINERS } from '../../../shared/contracts/storage';
import { windowEnd, windowId, windowStart } from '../../../shared/contracts/window';
import { gatewayHeaders, startTestStack } from '../../stack';

/**
 * Redis goes down in the middle of concurrent traffic and comes back: every served request's usage
 * event must be in Redis or the spool, and merged by id each counts exactly once.
 */
let stack: LocalStack;
beforeAll(async () => {
  process.env.REDIS_WRITE_TIMEOUT_MS = '200';
  stack = await startTestStack({ persist: true });
}, 60_000);
afterAll(async () => {
  await stack?.stop();
  if (process.env.LOCAL_DATA_DIR) rmSync(process.env.LOCAL_DATA_DIR, { recursive: true, force: true });
});

function request(id: string, stream: boolean): Promise<Response> {
  return fetch(
    `${stack.host.url}/api/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21`,
    {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...gatewayHeaders(stack, id, { subscription: 'sub-research', department: 'research' }),
      },
      body: JSON.stringify({ messages: [{ role: 'user', content: `question ${id}` }], stream }),
    },
  );
}

it('loses no usage and counts none twice when Redis goes down during concurrent traffic', async () => {
  const redisStandIn = stack.standIns.find((s) => s.name === 'Redis');
  if (!redisStandIn?.restart) throw new Error('the test stack has no restartable Redis');
  const total = 240;
  const concurrency = 16;
  const served = new Set<string>();
  const failed: string[] = [];
  const startedAt = new Date();
  let next = 0;
  let completed = 0;
  let outage: Promise<void> | undefined;

  const worker = async (): Promise<void> => {
    while (next < total) {
      const n = next++;
      const id = `outage-${n}-${randomUUID()}`;
      const res = await request(id, n % 3 === 0);
      await res.text(); // consume the whole answer, streamed or not
      if (res.status === 200) served.add(id);
      else failed.push(`${id}: ${res.status}`);
      completed += 1;
      if (completed === 60) outage = redisStandIn.stop().then(() => undefined);
      if (completed === 160) {
        await outage;
        await redisStandIn.restart?.();
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  expect(failed).toEqual([]); // the outage never reaches the caller
  expect(served.size).toBe(total);

  // Read back both stores over every window the run touched.
  const redis = new Redis(process.env.REDIS_URL as string);
  const spool = new BlobUsageSpool(
    BlobServiceClient.fromConnectionString(
      process.env.STORAGE_CONNECTION_STRING as string,
    ).getContainerClient(BLOB_CONTAINERS.usageSpool),
  );
  const inRedis: string[] = [];
  const inSpool: string[] = [];
  try {
    for (let w = windowStart(startedAt); w <= new Date(); w = windowEnd(w)) {
      inRedis.push(...Object.keys(await redis.hgetall(usageKeys.events(windowId(w)))));
      inSpool.push(...(await spool.eventsOf(windowId(w))).map((event) => event.id));
    }
  } finally {
    redis.disconnect();
  }
  expect(inSpool.length).toBeGreaterThan(0); // the outage really happened
  expect(inRedis.length).toBeGreaterThan(0);
  expect(new Set(inSpool).size).toBe(inSpool.length);
  const merged = new Set([...inRedis, ...inSpool]);
  expect([...merged].sort()).toEqual([...served].sort());
}, 60_000);
