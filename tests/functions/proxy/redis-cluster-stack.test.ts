import { Cluster } from 'ioredis';
import { AzureOpenAI } from 'openai';
import type { RedisCluster } from '../../../local/services/redis-cluster';
import { startRedisCluster } from '../../../local/services/redis-cluster';
import type { LocalStack } from '../../../local/stack';
import { usageKeys } from '../../../shared/adapters/redis-usage-buffer';
import { GATEWAY_HEADERS } from '../../../shared/contracts/gateway-headers';
import { APP_ROLES } from '../../../shared/contracts/roles';
import { windowId, windowStart } from '../../../shared/contracts/window';
import { startTestStack } from '../../stack';

/**
 * The whole app on a three-master Redis Cluster (REDIS_CLUSTER=true, a cluster-aware client), as
 * Azure Managed Redis with the OSS clustering policy presents itself: requests through the gateway
 * are recorded, a chargeback run finds their windows on whichever master holds them, commits and
 * releases them; the budget ledger counts the spend.
 */

jest.setTimeout(120_000);

let cluster: RedisCluster;
let stack: LocalStack;
let reader: Cluster;

beforeAll(async () => {
  cluster = await startRedisCluster(3);
  process.env.REDIS_URL = `redis://${cluster.seeds[0]?.host ?? ''}:${cluster.seeds[0]?.port ?? 0}`;
  process.env.REDIS_CLUSTER = 'true';
  stack = await startTestStack({ keep: ['REDIS_URL'] });
  reader = new Cluster([...cluster.seeds]);
  reader.on('error', () => undefined);
});
afterAll(async () => {
  delete process.env.REDIS_CLUSTER;
  reader?.disconnect();
  await stack?.stop();
  await cluster?.stop();
});

it('records through the gateway, and a chargeback run commits and releases, on the cluster', async () => {
  const research = stack.gatewayConfig.subscriptions.find((s) => s.product === 'research');
  const client = new AzureOpenAI({
    endpoint: stack.gateway.url,
    apiKey: research?.key ?? '',
    apiVersion: '2024-10-21',
    maxRetries: 0,
  });
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const { response } = await client.chat.completions
      .create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: `Question ${i}` }],
        max_tokens: 20,
      })
      .withResponse();
    ids.push(response.headers.get(GATEWAY_HEADERS.requestId) ?? '');
  }
  const window = windowId(windowStart(new Date()));
  const stored = await reader.hkeys(usageKeys.events(window));
  expect(stored.sort()).toEqual([...ids].sort());

  // Run now: the open window is claimed and committed (kept until it closes).
  const headers = {
    'x-functions-key': stack.settings.LOCAL_FUNCTION_KEY,
    [GATEWAY_HEADERS.gatewayKey]: process.env.GATEWAY_SHARED_SECRET ?? '',
    [GATEWAY_HEADERS.roles]: APP_ROLES.admin,
  };
  const started = await fetch(`${stack.host.url}/api/chargeback/runs`, { method: 'POST', headers });
  expect(started.status).toBe(202);
  const { statusUrl } = (await started.json()) as { statusUrl: string };
  let run: { status: string; summary?: { events: number } | null } = { status: '' };
  for (let i = 0; i < 300 && run.status !== 'Completed'; i++) {
    run = (await (await fetch(`${stack.host.url}${statusUrl}`, { headers })).json()) as typeof run;
    if (['Failed', 'Terminated'].includes(run.status)) throw new Error(`the run ended ${run.status}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect(run.status).toBe('Completed');
  expect(run.summary?.events).toBe(5);
  // The live events moved into the window's batch (same slot), nothing left behind.
  expect(await reader.hlen(usageKeys.events(window))).toBe(0);
});
