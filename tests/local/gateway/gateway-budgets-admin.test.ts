import { AzureOpenAI } from 'openai';
import { RedisBudgetLedger } from '../../../shared/adapters/redis-budget';
import { APIM_APIS } from '../../../shared/contracts/apim';
import { BUDGET_EXCEEDED_CODE } from '../../../shared/contracts/budget';
import { GATEWAY_HEADERS } from '../../../shared/contracts/gateway-headers';
import { monthOf } from '../../../shared/contracts/report-period';
import { DEFAULT_CHARGEBACK_CONFIG } from '../../../shared/chargeback/default-config';
import { recordedEvent, useTestStack } from '../../stack';

/**
 * Budgets and the admin API as apps and admins meet them: through the local gateway, with the
 * official `AzureOpenAI` client and a subscription key, and an admin's Entra ID token. A department
 * over its budget is refused before the provider sees the request; concurrent requests at the edge
 * stay within the stated bound (zero, for text requests that set an output limit); an admin's
 * budget change reaches the proxy within CONFIG_REFRESH_SECONDS; the audit trail names the admin.
 */

jest.setTimeout(120_000);

const REFRESH_SECONDS = 1;
const CONFIG = {
  ...DEFAULT_CHARGEBACK_CONFIG,
  budgets: [
    // Spent after a few requests; refuses before the provider is called.
    {
      id: 'marketing-tight',
      department: 'marketing',
      monthlyAmount: '0.0004',
      warnAtPercent: [50],
      hard: true,
    },
    {
      id: 'engineering-edge',
      department: 'engineering',
      monthlyAmount: '0.0003',
      warnAtPercent: [80],
      hard: true,
    },
  ],
};

const t = useTestStack({
  CHARGEBACK_CONFIG: JSON.stringify(CONFIG),
  CONFIG_REFRESH_SECONDS: String(REFRESH_SECONDS),
});

function keyOf(product: string): string {
  const found = t.stack.gatewayConfig.subscriptions.find((s) => s.product === product);
  if (!found) throw new Error(`no subscription of product ${product}`);
  return found.key;
}

function client(product: string): AzureOpenAI {
  return new AzureOpenAI({
    endpoint: t.stack.gateway.url,
    apiKey: keyOf(product),
    apiVersion: '2024-10-21',
    maxRetries: 0,
  });
}

function upstreamRequests(): number {
  const simulator = t.stack.openAiSimulator;
  if (!simulator) throw new Error('no Azure OpenAI simulator');
  return simulator.stats.requests;
}

async function spentMicros(department: string): Promise<number> {
  const ledger = new RedisBudgetLedger(() => t.redis, { readyTimeoutMs: 1000 });
  return (await ledger.spend({ department }, monthOf(new Date()))).settledMicros;
}

const ask = (content: string) => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user' as const, content }],
  max_tokens: 40,
});

function admin(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${t.stack.gateway.url}/${APIM_APIS.chargeback.path}/chargeback/admin/${path}`, {
    ...init,
    headers: {
      authorization: `Bearer ${t.stack.gateway.tokenFor('admin')}`,
      'content-type': 'application/json',
      ...(init.headers as Record<string, string> | undefined),
    },
  });
}

it('refuses a department over its hard budget before the provider is called', async () => {
  let refused: unknown;
  let served = 0;
  for (let i = 0; i < 40 && !refused; i++) {
    try {
      await client('marketing').chat.completions.create(ask(`Write tagline number ${i}`));
      served += 1;
    } catch (error) {
      refused = error;
    }
  }
  expect(served).toBeGreaterThan(0);
  expect(refused).toMatchObject({ status: 429, code: BUDGET_EXCEEDED_CODE });
  expect(String((refused as Error).message)).toMatch(/marketing-tight/);
  // Refused again: the provider's request count does not move.
  const before = upstreamRequests();
  const again = await client('marketing')
    .chat.completions.create(ask('One more?'))
    .catch((e: unknown) => e);
  expect(again).toMatchObject({ status: 429, code: BUDGET_EXCEEDED_CODE });
  expect(upstreamRequests()).toBe(before);
  expect(await spentMicros('marketing')).toBeLessThanOrEqual(400);
});

it('keeps concurrent requests at the budget edge within the budget (text with an output limit: bound 0)', async () => {
  const before = upstreamRequests();
  const outcomes = await Promise.all(
    Array.from({ length: 30 }, (_, i) =>
      client('engineering')
        .chat.completions.create(ask(`Review pull request ${i}`))
        .withResponse()
        .then(
          ({ response }) => ({ status: 200, id: response.headers.get(GATEWAY_HEADERS.requestId) ?? '' }),
          (e: { status?: number }) => ({ status: e.status ?? 0, id: '' }),
        ),
    ),
  );
  const served = outcomes.filter((o) => o.status === 200);
  const refused = outcomes.filter((o) => o.status === 429);
  expect(served.length + refused.length).toBe(30);
  expect(refused.length).toBeGreaterThan(0);
  expect(upstreamRequests() - before).toBe(served.length);
  for (const { id } of served) expect(await recordedEvent(t.redis, id)).toBeDefined();
  expect(await spentMicros('engineering')).toBeLessThanOrEqual(300);
});

it('lets an admin raise a budget through the gateway: the proxy serves again within CONFIG_REFRESH_SECONDS, and the audit names the admin', async () => {
  const current = await admin('budgets/marketing-tight');
  expect(current.status).toBe(200);
  const etag = current.headers.get('etag') ?? '';
  const budget = (await current.json()) as Record<string, unknown>;

  // A stale ETag is refused with 412; the current one is accepted.
  const stale = await admin('budgets/marketing-tight', {
    method: 'PUT',
    headers: { 'if-match': '"not-the-current-version"' },
    body: JSON.stringify({ ...budget, monthlyAmount: '50.00' }),
  });
  expect(stale.status).toBe(412);
  const changedAt = Date.now();
  const put = await admin('budgets/marketing-tight', {
    method: 'PUT',
    headers: { 'if-match': etag },
    body: JSON.stringify({ ...budget, monthlyAmount: '50.00' }),
  });
  expect(put.status).toBe(200);

  // Served again once the proxy's configuration cache has refreshed (stated: within the refresh time plus a read).
  let servedAt: number | undefined;
  while (servedAt === undefined && Date.now() - changedAt < (REFRESH_SECONDS + 5) * 1000) {
    const ok = await client('marketing')
      .chat.completions.create(ask('Back in budget?'))
      .then(
        () => true,
        () => false,
      );
    if (ok) servedAt = Date.now();
    else await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect(servedAt).toBeDefined();
  expect((servedAt ?? Infinity) - changedAt).toBeLessThan((REFRESH_SECONDS + 2) * 1000);

  const audit = await admin('audit?resourceType=budget&resourceId=marketing-tight');
  expect(audit.status).toBe(200);
  const adminUser = t.stack.gatewayConfig.users.find((u) => u.name === 'admin');
  const { items } = (await audit.json()) as { items: Array<Record<string, unknown>> };
  expect(items[0]).toMatchObject({
    action: 'replace',
    actor: adminUser?.oid,
    before: { monthlyAmount: '0.0004' },
    after: { monthlyAmount: '50.00' },
  });
});

it('creates through the gateway with a Location the caller can follow', async () => {
  const created = await admin('departments', {
    method: 'POST',
    body: JSON.stringify({ id: 'legal', name: 'Legal' }),
  });
  expect(created.status).toBe(201);
  const location = new URL(created.headers.get('location') ?? '', created.url);
  expect(location.pathname).toBe(`/${APIM_APIS.chargeback.path}/chargeback/admin/departments/legal`);
  const followed = await fetch(location, {
    headers: { authorization: `Bearer ${t.stack.gateway.tokenFor('admin')}` },
  });
  expect(followed.status).toBe(200);
  expect(await followed.json()).toEqual({ id: 'legal', name: 'Legal' });
});

it('refuses the admin API to a finance token and to a caller without a token', async () => {
  const finance = await fetch(`${t.stack.gateway.url}/${APIM_APIS.chargeback.path}/chargeback/admin/config`, {
    headers: { authorization: `Bearer ${t.stack.gateway.tokenFor('finance')}` },
  });
  expect(finance.status).toBe(403);
  const none = await fetch(`${t.stack.gateway.url}/${APIM_APIS.chargeback.path}/chargeback/admin/config`, {
    headers: { [GATEWAY_HEADERS.roles]: 'Chargeback.Admin' },
  });
  expect(none.status).toBe(401);
});
