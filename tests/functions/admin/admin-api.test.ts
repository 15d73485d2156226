import { randomUUID } from 'node:crypto';
import { CONFIG_VERSION_HEADER } from '../../../functions/admin/admin-http';
import { CosmosChargebackStore } from '../../../shared/adapters/cosmos-store';
import type { AuditRecord } from '../../../shared/chargeback/config-admin';
import { DEFAULT_CHARGEBACK_CONFIG } from '../../../shared/chargeback/default-config';
import type { ChargebackConfig } from '../../../shared/chargeback/model';
import type { ReportReceipt } from '../../../shared/chargeback/ports';
import type { ChargebackRunSummary } from '../../../shared/chargeback/run';
import { appServices } from '../../../shared/config/composition';
import { FUNCTION_KEY_HEADER, GATEWAY_HEADERS } from '../../../shared/contracts/gateway-headers';
import { APP_ROLES } from '../../../shared/contracts/roles';
import { useTestStack } from '../../stack';

/**
 * The configuration admin API on the local host, against the Cosmos DB emulator: CRUD with zod
 * validation, cross-references, ETag/If-Match concurrency, the audit trail, how fast a change
 * reaches the configuration source (the proxies' and the runs'), and the version a run records.
 */

jest.setTimeout(120_000);

const CONFIG: ChargebackConfig = {
  ...DEFAULT_CHARGEBACK_CONFIG,
  apps: [{ appId: 'support-voicebot', department: 'customer-support' }],
  budgets: [
    { id: 'research-month', department: 'research', monthlyAmount: '1000', warnAtPercent: [80], hard: true },
  ],
};

/** The stated propagation time for this file: small, so that the test of it is quick. */
const REFRESH_SECONDS = 1;

const t = useTestStack({
  CHARGEBACK_CONFIG: JSON.stringify(CONFIG),
  CONFIG_REFRESH_SECONDS: String(REFRESH_SECONDS),
});

const BASE = '/api/chargeback/admin';

/** The headers APIM adds for an admin: function key, gateway secret, the admin role, the user. */
function adminHeaders(overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const all: Record<string, string | undefined> = {
    [FUNCTION_KEY_HEADER]: t.stack.settings.LOCAL_FUNCTION_KEY,
    [GATEWAY_HEADERS.gatewayKey]: process.env.GATEWAY_SHARED_SECRET,
    [GATEWAY_HEADERS.roles]: APP_ROLES.admin,
    [GATEWAY_HEADERS.user]: 'alice@contoso.example',
    [GATEWAY_HEADERS.subscription]: 'sub-admin',
    'content-type': 'application/json',
    ...overrides,
  };
  return Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined));
}

interface Call {
  method?: string;
  body?: unknown;
  /** A raw body (sent as is). */
  raw?: string;
  headers?: Record<string, string | undefined>;
}

async function call(path: string, options: Call = {}): Promise<Response> {
  const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  return fetch(`${t.stack.host.url}${BASE}${path}`, {
    method: options.method ?? 'GET',
    headers: adminHeaders(options.headers),
    ...(body === undefined ? {} : { body }),
  });
}

async function json<T>(response: Response): Promise<T> {
  return (await response.json()) as T;
}

async function errorOf(
  response: Response,
): Promise<{ status: number; code: string; message: string; param: string | null }> {
  const body = await json<{ error: { code: string; message: string; param: string | null } }>(response);
  return { status: response.status, ...body.error };
}

/** A resource and its ETag, read through the API. */
async function read<T>(path: string): Promise<{ resource: T; etag: string; version: string }> {
  const response = await call(path);
  expect(response.status).toBe(200);
  return {
    resource: await json<T>(response),
    etag: response.headers.get('etag') ?? '',
    version: response.headers.get(CONFIG_VERSION_HEADER) ?? '',
  };
}

async function configVersion(): Promise<string> {
  return (await json<{ version: string }>(await call('/config'))).version;
}

async function audit(query: string): Promise<AuditRecord[]> {
  const response = await call(`/audit?${query}`);
  expect(response.status).toBe(200);
  return (await json<{ items: AuditRecord[] }>(response)).items;
}

describe('the configuration', () => {
  it('is seeded once from CHARGEBACK_CONFIG as version 1, with an audit record of the seed', async () => {
    const response = await call('/config');
    expect(response.status).toBe(200);
    const body = await json<{
      version: string;
      stored: boolean;
      updatedBy: string;
      config: ChargebackConfig;
    }>(response);
    expect(body).toMatchObject({ version: '1', stored: true, updatedBy: 'CHARGEBACK_CONFIG' });
    expect(body.config).toEqual(CONFIG);
    expect(response.headers.get('etag')).toMatch(/^"[\w-]+"$/);
    const [seed] = await audit('resourceType=configuration');
    expect(seed).toMatchObject({
      action: 'seed',
      actor: 'CHARGEBACK_CONFIG',
      configVersion: '1',
      before: null,
      after: CONFIG,
    });
  });
});

describe('CRUD of a collection', () => {
  it('creates, reads, lists, replaces and deletes a department, one version and one audit record each', async () => {
    const v0 = Number(await configVersion());
    const created = await call('/departments', { method: 'POST', body: { id: 'legal', name: 'Legal' } });
    expect(created.status).toBe(201);
    // Relative to the URL the caller posted to, whatever path the gateway gave it.
    expect(created.headers.get('location')).toBe('departments/legal');
    expect(created.headers.get(CONFIG_VERSION_HEADER)).toBe(String(v0 + 1));
    expect(await json(created)).toEqual({ id: 'legal', name: 'Legal' });
    const createdEtag = created.headers.get('etag');

    const one = await read<{ id: string; name: string }>('/departments/legal');
    expect(one.resource).toEqual({ id: 'legal', name: 'Legal' });
    expect(one.etag).toBe(createdEtag);

    const list = await json<{ version: string; items: Array<{ id: string }> }>(await call('/departments'));
    expect(list.version).toBe(String(v0 + 1));
    expect(list.items.map((d) => d.id)).toEqual([...CONFIG.departments.map((d) => d.id), 'legal']);

    const replaced = await call('/departments/legal', {
      method: 'PUT',
      body: { name: 'Legal & Compliance', costCenter: 'CC-7100' },
      headers: { 'if-match': one.etag },
    });
    expect(replaced.status).toBe(200);
    expect(await json(replaced)).toEqual({ id: 'legal', name: 'Legal & Compliance', costCenter: 'CC-7100' });
    expect(replaced.headers.get('etag')).not.toBe(one.etag);
    expect(replaced.headers.get(CONFIG_VERSION_HEADER)).toBe(String(v0 + 2));

    const deleted = await call('/departments/legal', {
      method: 'DELETE',
      headers: { 'if-match': replaced.headers.get('etag') ?? '' },
    });
    expect(deleted.status).toBe(204);
    expect(deleted.headers.get(CONFIG_VERSION_HEADER)).toBe(String(v0 + 3));
    expect(await errorOf(await call('/departments/legal'))).toMatchObject({ status: 404, code: 'NotFound' });

    const trail = await audit('resourceType=department&resourceId=legal');
    expect(trail.map((r) => [r.action, r.configVersion])).toEqual([
      ['delete', String(v0 + 3)],
      ['replace', String(v0 + 2)],
      ['create', String(v0 + 1)],
    ]);
  });

  it('manages apps, budgets and shared costs the same way', async () => {
    const app = await call('/apps', { method: 'POST', body: { appId: 'chat-app', department: 'research' } });
    expect(app.status).toBe(201);
    const budget = await call('/budgets', {
      method: 'POST',
      body: { id: 'chat-app-month', department: 'research', appId: 'chat-app', monthlyAmount: '250.00' },
    });
    expect(budget.status).toBe(201);
    // Defaults filled in, as the configuration's schema has them.
    expect(await json(budget)).toEqual({
      id: 'chat-app-month',
      department: 'research',
      appId: 'chat-app',
      monthlyAmount: '250.00',
      warnAtPercent: [80],
      hard: true,
    });
    const shared = await call('/shared-costs', {
      method: 'POST',
      body: {
        id: 'ptu',
        name: 'Provisioned throughput',
        monthlyAmount: '2000',
        rule: { kind: 'fixed', percentages: { research: '50', marketing: '50' } },
      },
    });
    expect(shared.status).toBe(201);
    const config = await json<{ config: ChargebackConfig }>(await call('/config'));
    expect(config.config.apps).toContainEqual({ appId: 'chat-app', department: 'research' });
    expect(config.config.budgets.map((b) => b.id)).toContain('chat-app-month');
    expect(config.config.sharedCosts.map((c) => c.id)).toContain('ptu');
  });
});

describe('refusals', () => {
  it.each([
    ['not JSON', '/departments', '{id:', 'The request body is not valid JSON.', null],
    ['not an object', '/departments', '[]', 'expected object', null],
    [
      'a bad department id',
      '/departments',
      JSON.stringify({ id: 'Legal Dept', name: 'x' }),
      'department id',
      'id',
    ],
    ['a missing name', '/departments', JSON.stringify({ id: 'legal' }), "'name'", 'name'],
    [
      'an unknown field',
      '/departments',
      JSON.stringify({ id: 'legal', name: 'L', boss: 'x' }),
      'Unrecognized key',
      null,
    ],
    [
      'warning thresholds that do not ascend',
      '/budgets',
      JSON.stringify({ id: 'b', department: 'research', monthlyAmount: '10', warnAtPercent: [90, 50] }),
      'warning thresholds must ascend',
      'warnAtPercent',
    ],
    [
      'a zero budget',
      '/budgets',
      JSON.stringify({ id: 'b', department: 'research', monthlyAmount: '0' }),
      'must be more than 0',
      'monthlyAmount',
    ],
    [
      'fixed percentages that add up to 90',
      '/shared-costs',
      JSON.stringify({
        id: 's',
        name: 'S',
        monthlyAmount: '10',
        rule: { kind: 'fixed', percentages: { research: '60', marketing: '30' } },
      }),
      'add up to 90, not 100',
      'rule.percentages',
    ],
    [
      'an unknown allocation rule',
      '/shared-costs',
      JSON.stringify({ id: 's', name: 'S', monthlyAmount: '10', rule: { kind: 'lottery' } }),
      "'rule.kind'",
      'rule.kind',
    ],
    [
      'a price that is not a decimal',
      '/prices',
      JSON.stringify({
        id: 'p',
        model: 'gpt-4o',
        meter: 'input-tokens',
        unitPrice: 'cheap',
        currency: 'USD',
        effectiveFrom: '2030-01-01T00:00:00Z',
      }),
      'non-negative decimal',
      'unitPrice',
    ],
    [
      "a price id of the shipped prices'",
      '/prices',
      JSON.stringify({
        id: 'default:gpt-4o:input-tokens:2025-01-01',
        model: 'gpt-4o',
        meter: 'input-tokens',
        unitPrice: '1',
        currency: 'USD',
        effectiveFrom: '2030-01-01T00:00:00Z',
      }),
      "starting with 'default:'",
      'id',
    ],
  ])('refuses a body with %s (400), and changes nothing', async (_label, path, raw, message, param) => {
    const before = await configVersion();
    const error = await errorOf(await call(path, { method: 'POST', raw }));
    expect(error).toMatchObject({ status: 400, code: 'BadRequest', param });
    expect(error.message).toContain(message);
    expect(JSON.stringify(error)).not.toMatch(/\bat \S+\.ts|https?:\/\/|127\.0\.0\.1/);
    expect(await configVersion()).toBe(before);
  });

  it('refuses a PUT whose body names another id (400) and a path id outside the alphabet (400)', async () => {
    const { etag } = await read('/departments/research');
    const other = await errorOf(
      await call('/departments/research', {
        method: 'PUT',
        body: { id: 'marketing', name: 'x' },
        headers: { 'if-match': etag },
      }),
    );
    expect(other).toMatchObject({ status: 400, param: 'id' });
    expect(other.message).toContain('an id never changes');
    expect(await errorOf(await call('/departments/..%2F..%2Fx'))).toMatchObject({ status: 400, param: 'id' });
  });

  it('needs the gateway credential (401) and the admin role (403) on every route', async () => {
    const finance = { [GATEWAY_HEADERS.roles]: APP_ROLES.finance };
    for (const path of [
      '/config',
      '/audit',
      '/departments',
      '/departments/research',
      '/prices',
      '/budgets',
    ]) {
      expect((await errorOf(await call(path, { headers: finance }))).status).toBe(403);
      expect(
        (await errorOf(await call(path, { headers: { [GATEWAY_HEADERS.gatewayKey]: undefined } }))).status,
      ).toBe(401);
    }
    const forbidden = await errorOf(
      await call('/departments', { method: 'POST', body: { id: 'x', name: 'X' }, headers: finance }),
    );
    expect(forbidden).toMatchObject({ status: 403, code: 'Forbidden' });
    expect(forbidden.message).toContain(APP_ROLES.admin);
    // The function key is the host's own check.
    expect((await call('/config', { headers: { [FUNCTION_KEY_HEADER]: undefined } })).status).toBe(401);
  });

  it('answers 404 for an entry that does not exist, and 409 for one that already does', async () => {
    expect(await errorOf(await call('/apps/no-such-app'))).toMatchObject({ status: 404, code: 'NotFound' });
    expect(
      await errorOf(
        await call('/budgets/none', {
          method: 'PUT',
          body: { department: 'research', monthlyAmount: '1' },
          headers: { 'if-match': '"x"' },
        }),
      ),
    ).toMatchObject({ status: 404 });
    const duplicate = await errorOf(
      await call('/departments', { method: 'POST', body: { id: 'research', name: 'Research again' } }),
    );
    expect(duplicate).toMatchObject({ status: 409, code: 'Conflict', param: 'id' });
    expect(duplicate.message).toBe("Department 'research' already exists.");
  });

  it('refuses a change that would break a cross-reference (409), naming every entry that still refers', async () => {
    const before = await configVersion();
    const { etag } = await read('/departments/research');
    // Named by the budget `research-month`, by the fixed percentages of `platform-team`.
    const error = await errorOf(
      await call('/departments/research', { method: 'DELETE', headers: { 'if-match': etag } }),
    );
    expect(error).toMatchObject({ status: 409, code: 'Conflict' });
    expect(error.message).toContain("Deleting department 'research' would leave the configuration invalid");
    expect(error.message).toContain(
      "budget 'research-month' names department 'research', which is not configured",
    );
    expect(error.message).toContain(
      "shared cost 'platform-team' gives a percentage to department 'research', which is not configured",
    );
    const unknown = await errorOf(
      await call('/apps', { method: 'POST', body: { appId: 'ghost-app', department: 'ghosts' } }),
    );
    expect(unknown).toMatchObject({ status: 409, code: 'Conflict' });
    expect(unknown.message).toContain("app 'ghost-app' names department 'ghosts', which is not configured");
    const twice = await errorOf(
      await call('/budgets', {
        method: 'POST',
        body: { id: 'again', department: 'research', monthlyAmount: '5' },
      }),
    );
    expect(twice.message).toContain("'research' already has a budget");
    expect(await configVersion()).toBe(before);
    expect((await read('/departments/research')).etag).toBe(etag);
  });
});

describe('ETag concurrency', () => {
  it('requires If-Match on PUT and DELETE (428)', async () => {
    for (const method of ['PUT', 'DELETE']) {
      const error = await errorOf(await call('/departments/marketing', { method, body: { name: 'M' } }));
      expect(error).toMatchObject({ status: 428, code: 'PreconditionRequired' });
      const star = await errorOf(
        await call('/departments/marketing', { method, body: { name: 'M' }, headers: { 'if-match': '*' } }),
      );
      expect(star.status).toBe(428);
    }
  });

  it('refuses the second of two writers that read the same version (412): no update is lost', async () => {
    const { etag } = await read<{ name: string }>('/departments/marketing');
    const first = await call('/departments/marketing', {
      method: 'PUT',
      body: { name: 'Marketing (first writer)' },
      headers: { 'if-match': etag, [GATEWAY_HEADERS.user]: 'first@contoso.example' },
    });
    expect(first.status).toBe(200);
    const second = await errorOf(
      await call('/departments/marketing', {
        method: 'PUT',
        body: { name: 'Marketing (second writer)' },
        headers: { 'if-match': etag, [GATEWAY_HEADERS.user]: 'second@contoso.example' },
      }),
    );
    expect(second).toMatchObject({ status: 412, code: 'PreconditionFailed' });
    expect((await read<{ name: string }>('/departments/marketing')).resource.name).toBe(
      'Marketing (first writer)',
    );
    const stale = await errorOf(
      await call('/departments/marketing', { method: 'DELETE', headers: { 'if-match': etag } }),
    );
    expect(stale.status).toBe(412);
  });

  it('with writers racing on one entry, exactly one wins; on different entries, every one is kept', async () => {
    const { etag } = await read('/departments/finance');
    const racing = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        call('/departments/finance', {
          method: 'PUT',
          body: { name: `Finance ${i}` },
          headers: { 'if-match': etag },
        }),
      ),
    );
    expect(racing.map((r) => r.status).sort()).toEqual([200, 412, 412, 412, 412, 412]);

    const v0 = Number(await configVersion());
    const ids = Array.from({ length: 8 }, (_, i) => `team-${i}-${randomUUID().slice(0, 8)}`);
    const created = await Promise.all(
      ids.map((id) => call('/departments', { method: 'POST', body: { id, name: id } })),
    );
    expect(created.map((r) => r.status)).toEqual(ids.map(() => 201));
    // Every writer got a version of its own, and the document has all of them.
    const versions = created.map((r) => Number(r.headers.get(CONFIG_VERSION_HEADER)));
    expect([...versions].sort((a, b) => a - b)).toEqual(ids.map((_, i) => v0 + 1 + i));
    const config = await json<{ version: string; config: ChargebackConfig }>(await call('/config'));
    expect(config.version).toBe(String(v0 + ids.length));
    expect(config.config.departments.map((d) => d.id)).toEqual(expect.arrayContaining(ids));
    // One audit record per version, none missing, none twice.
    const trail = await audit('resourceType=department&limit=1000');
    const auditedVersions = trail
      .filter((r) => ids.includes(r.resourceId))
      .map((r) => Number(r.configVersion));
    expect(auditedVersions.sort((a, b) => a - b)).toEqual(ids.map((_, i) => v0 + 1 + i));
  });
});

describe('the audit trail', () => {
  it('records who, when, what, before and after, and the version', async () => {
    const { resource: before, etag } =
      await read<ChargebackConfig['sharedCosts'][number]>('/shared-costs/apim');
    const start = new Date();
    const response = await call('/shared-costs/apim', {
      method: 'PUT',
      body: { ...before, monthlyAmount: '750.00' },
      headers: { 'if-match': etag, [GATEWAY_HEADERS.user]: 'bob@contoso.example' },
    });
    expect(response.status).toBe(200);
    const end = new Date();
    const version = response.headers.get(CONFIG_VERSION_HEADER);
    const [record] = await audit('resourceType=shared-cost&resourceId=apim&limit=1');
    expect(record).toEqual({
      id: expect.any(String),
      at: expect.any(String),
      actor: 'bob@contoso.example',
      resourceType: 'shared-cost',
      resourceId: 'apim',
      action: 'replace',
      before,
      after: { ...before, monthlyAmount: '750.00' },
      configVersion: version,
    });
    const at = Date.parse(record?.at ?? '');
    expect(at).toBeGreaterThanOrEqual(start.getTime() - 1000);
    expect(at).toBeLessThanOrEqual(end.getTime() + 1000);
  });

  it('names the subscription when APIM names no user, and `unknown` when it names neither', async () => {
    await call('/departments', {
      method: 'POST',
      body: { id: 'by-subscription', name: 'S' },
      headers: { [GATEWAY_HEADERS.user]: undefined, [GATEWAY_HEADERS.subscription]: 'sub-ops' },
    });
    await call('/departments', {
      method: 'POST',
      body: { id: 'by-nobody', name: 'N' },
      headers: { [GATEWAY_HEADERS.user]: undefined, [GATEWAY_HEADERS.subscription]: undefined },
    });
    expect((await audit('resourceId=by-subscription'))[0]?.actor).toBe('sub-ops');
    expect((await audit('resourceId=by-nobody'))[0]?.actor).toBe('unknown');
  });

  it('refuses an unknown filter (400)', async () => {
    expect(await errorOf(await call('/audit?resourceType=planet'))).toMatchObject({
      status: 400,
      param: 'resourceType',
    });
    expect(await errorOf(await call('/audit?limit=0'))).toMatchObject({ status: 400, param: 'limit' });
  });
});

describe('price overrides', () => {
  const PRICE = {
    id: 'negotiated-gpt-4o-input',
    model: 'gpt-4o',
    meter: 'input-tokens',
    unitPrice: '2.00',
    currency: 'USD',
    effectiveFrom: '2030-01-01T00:00:00.000Z',
  };

  it('creates, replaces (If-Match) and deletes one in the prices container, each change audited', async () => {
    const created = await call('/prices', { method: 'POST', body: PRICE });
    expect(created.status).toBe(201);
    const body = await json<Record<string, string>>(created);
    expect(body).toMatchObject({ ...PRICE, source: 'set by alice@contoso.example through the admin API' });
    expect(Date.parse(body.writtenAt ?? '')).toBeGreaterThan(Date.now() - 60_000);
    expect((await errorOf(await call('/prices', { method: 'POST', body: PRICE }))).status).toBe(409);

    // What the runs price with: the override, and never an audit record.
    const store = new CosmosChargebackStore(
      (await appServices()).cosmos(),
      (await appServices()).config.cosmos.database,
    );
    expect((await store.overrides()).map((o) => o.document.id)).toEqual([PRICE.id]);

    const { etag } = await read('/prices/negotiated-gpt-4o-input');
    expect(etag).toBe(created.headers.get('etag'));
    expect(
      await errorOf(
        await call('/prices/negotiated-gpt-4o-input', {
          method: 'PUT',
          body: { ...PRICE, model: 'gpt-4o-mini' },
          headers: { 'if-match': etag },
        }),
      ),
    ).toMatchObject({ status: 400, param: 'model' });
    const replaced = await call('/prices/negotiated-gpt-4o-input', {
      method: 'PUT',
      body: { ...PRICE, unitPrice: '1.80' },
      headers: { 'if-match': etag },
    });
    expect(replaced.status).toBe(200);
    expect(
      (
        await errorOf(
          await call('/prices/negotiated-gpt-4o-input', {
            method: 'PUT',
            body: { ...PRICE, unitPrice: '1.70' },
            headers: { 'if-match': etag },
          }),
        )
      ).status,
    ).toBe(412);
    expect((await call('/prices/negotiated-gpt-4o-input', { method: 'DELETE' })).status).toBe(428);
    const deleted = await call('/prices/negotiated-gpt-4o-input', {
      method: 'DELETE',
      headers: { 'if-match': replaced.headers.get('etag') ?? '' },
    });
    expect(deleted.status).toBe(204);
    expect((await call('/prices/negotiated-gpt-4o-input')).status).toBe(404);
    expect(await store.overrides()).toEqual([]);

    const trail = await audit('resourceType=price&resourceId=negotiated-gpt-4o-input');
    expect(trail.map((r) => r.action)).toEqual(['delete', 'replace', 'create']);
    expect(trail[1]).toMatchObject({
      actor: 'alice@contoso.example',
      before: { unitPrice: '2.00' },
      after: { unitPrice: '1.80' },
      configVersion: null,
    });
    expect(trail[0]?.after).toBeNull();
  });
});

describe('propagation', () => {
  it(`reaches the configuration source (proxies, runs) within CONFIG_REFRESH_SECONDS (${REFRESH_SECONDS} s here)`, async () => {
    const source = (await appServices()).configSource();
    const { resource, etag } = await read<{ id: string; name: string }>('/departments/engineering');
    const response = await call('/departments/engineering', {
      method: 'PUT',
      body: { name: `${resource.name} (renamed)` },
      headers: { 'if-match': etag },
    });
    expect(response.status).toBe(200);
    const written = Date.now();
    const version = response.headers.get(CONFIG_VERSION_HEADER);
    let seen: number | undefined;
    while (Date.now() - written < REFRESH_SECONDS * 1000 + 3000) {
      const snapshot = await source.current();
      if (snapshot.version === version) {
        seen = Date.now();
        if (!snapshot.state.ok) throw new Error('the stored configuration is invalid');
        expect(snapshot.state.config.departments.find((d) => d.id === 'engineering')?.name).toBe(
          `${resource.name} (renamed)`,
        );
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(seen).toBeDefined();
    // The TTL, plus one read of the emulator and this loop's step.
    expect((seen ?? Infinity) - written).toBeLessThanOrEqual(REFRESH_SECONDS * 1000 + 500);
  });
});

describe('the version a chargeback run records', () => {
  async function runNow(): Promise<ChargebackRunSummary & { progress: unknown }> {
    const response = await fetch(`${t.stack.host.url}/api/chargeback/runs`, {
      method: 'POST',
      headers: adminHeaders(),
    });
    expect(response.status).toBe(202);
    const { id } = await json<{ id: string }>(response);
    await t.stack.host.durable.waitForCompletion(id, 110_000);
    const status = await json<{ status: string; summary: ChargebackRunSummary; progress: unknown }>(
      await fetch(`${t.stack.host.url}/api/chargeback/runs/${id}`, { headers: adminHeaders() }),
    );
    expect(status.status).toBe('Completed');
    return { ...status.summary, progress: status.progress };
  }

  async function receipts(): Promise<Array<ReportReceipt & { configVersion?: string }>> {
    const app = await appServices();
    return new CosmosChargebackStore(app.cosmos(), app.config.cosmos.database).receipts();
  }

  it('records the version in the run (output and status) and in the receipts, and a new one after a change', async () => {
    // Usage to report: a chat completion through the proxy, as APIM forwards one.
    const chat = await fetch(
      `${t.stack.host.url}/api/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21`,
      {
        method: 'POST',
        headers: {
          ...adminHeaders({ [GATEWAY_HEADERS.department]: 'research', [GATEWAY_HEADERS.app]: 'chat-app' }),
          [GATEWAY_HEADERS.requestId]: randomUUID(),
        },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'Hello' }] }),
      },
    );
    expect(chat.status).toBe(200);
    await chat.text();
    // The source has caught up with every change made so far.
    await new Promise((resolve) => setTimeout(resolve, REFRESH_SECONDS * 1000 + 200));
    const v1 = await configVersion();
    const first = await runNow();
    expect(first.configVersion).toBe(v1);
    expect(first.progress).toEqual({ phase: 'done', configVersion: v1 });
    expect(first.reports.length).toBeGreaterThan(0);
    const written = await receipts();
    expect(written.length).toBeGreaterThan(0);
    for (const receipt of written) expect(receipt.configVersion).toBe(v1);

    // An admin changes the configuration; within the refresh time the next run uses the new version,
    // and rewrites the open month's reports with it.
    const { resource, etag } = await read<{ name: string }>('/departments/research');
    const changed = await call('/departments/research', {
      method: 'PUT',
      body: { ...resource, name: 'Research & Development' },
      headers: { 'if-match': etag },
    });
    const v2 = changed.headers.get(CONFIG_VERSION_HEADER) ?? '';
    expect(Number(v2)).toBeGreaterThan(Number(v1));
    await new Promise((resolve) => setTimeout(resolve, REFRESH_SECONDS * 1000 + 200));
    const second = await runNow();
    expect(second.configVersion).toBe(v2);
    expect(second.reports.length).toBeGreaterThan(0);
    const rewritten = await receipts();
    expect(
      rewritten
        .filter((r) => r.configVersion === v2)
        .map((r) => r.period)
        .sort(),
    ).toEqual(written.map((r) => r.period).sort());
  });
});
