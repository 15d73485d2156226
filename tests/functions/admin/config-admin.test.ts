import {
  applyChange,
  canonicalJson,
  checkIfMatch,
  EMPTY_CONFIG,
  etagOf,
  parseItem,
  parsePrice,
} from '../../../shared/chargeback/config-admin';
import { DEFAULT_CHARGEBACK_CONFIG } from '../../../shared/chargeback/default-config';
import type { ApiError } from '../../../shared/contracts/api-errors';

/** The admin API's pure rules (shared/chargeback/config-admin.ts): no host, no Cosmos DB. */

function refusal(run: () => unknown): Pick<ApiError, 'status' | 'code' | 'message' | 'param'> {
  try {
    run();
  } catch (error) {
    const { status, code, message, param } = error as ApiError;
    return { status, code, message, param };
  }
  throw new Error('expected a refusal');
}

describe('etagOf', () => {
  it('depends on the content only, not on the order of keys', () => {
    expect(etagOf({ a: 1, b: { c: [1, 2], d: 'x' } })).toBe(etagOf({ b: { d: 'x', c: [1, 2] }, a: 1 }));
    expect(etagOf({ a: 1 })).not.toBe(etagOf({ a: 2 }));
    expect(etagOf({ a: [1, 2] })).not.toBe(etagOf({ a: [2, 1] }));
    expect(etagOf({ a: 1 })).toMatch(/^"[\w-]{27}"$/);
    expect(canonicalJson({ b: undefined, a: null })).toBe('{"a":null}');
  });
});

describe('checkIfMatch', () => {
  const current = { id: 'research', name: 'Research' };
  it('takes the current ETag (alone or in a list), refuses a stale one (412) and none or * (428)', () => {
    expect(() => checkIfMatch(etagOf(current), current, "department 'research'")).not.toThrow();
    expect(() => checkIfMatch(`"old", ${etagOf(current)}`, current, 'x')).not.toThrow();
    expect(refusal(() => checkIfMatch('"old"', current, "department 'research'"))).toMatchObject({
      status: 412,
      code: 'PreconditionFailed',
      message: expect.stringContaining("Department 'research' has changed"),
    });
    for (const missing of [null, '', '  ', '*']) {
      expect(refusal(() => checkIfMatch(missing, current, 'x')).status).toBe(428);
    }
  });
});

describe('parseItem', () => {
  it('fills defaults and takes the id from the path', () => {
    expect(parseItem('budgets', { department: 'research', monthlyAmount: '10' }, 'b-1')).toEqual({
      id: 'b-1',
      department: 'research',
      monthlyAmount: '10',
      warnAtPercent: [80],
      hard: true,
    });
  });

  it.each([
    ['departments', { id: 'Bad Id', name: 'x' }, 'id'],
    ['departments', { id: 'ok', name: '' }, 'name'],
    ['apps', { appId: 'a/b', department: 'research' }, 'appId'],
    ['apps', { appId: 'a', department: 'research', extra: 1 }, null],
    [
      'budgets',
      { id: 'b', department: 'research', monthlyAmount: '10', warnAtPercent: [50, 50] },
      'warnAtPercent',
    ],
    ['shared-costs', { id: 's', name: 'S', monthlyAmount: '-1', rule: { kind: 'even' } }, 'monthlyAmount'],
    [
      'shared-costs',
      { id: 's', name: 'S', monthlyAmount: '1', rule: { kind: 'fixed', percentages: { a: '99.9' } } },
      'rule.percentages',
    ],
  ] as const)('refuses a %s body %j (400, param %s)', (collection, body, param) => {
    expect(refusal(() => parseItem(collection, body))).toMatchObject({
      status: 400,
      code: 'BadRequest',
      param,
    });
  });

  it('refuses a body naming another id than the path', () => {
    expect(refusal(() => parseItem('departments', { id: 'a', name: 'A' }, 'b'))).toMatchObject({
      status: 400,
      param: 'id',
    });
  });
});

describe('applyChange', () => {
  const base = DEFAULT_CHARGEBACK_CONFIG;

  it('creates, replaces and deletes, returning the checked configuration and the entry before and after', () => {
    const created = applyChange(base, {
      action: 'create',
      collection: 'apps',
      item: { appId: 'chat-app', department: 'research' },
    });
    expect(created.config.apps).toContainEqual({ appId: 'chat-app', department: 'research' });
    expect(created).toMatchObject({ before: null, after: { appId: 'chat-app' }, resourceId: 'chat-app' });
    const replaced = applyChange(created.config, {
      action: 'replace',
      collection: 'apps',
      id: 'chat-app',
      item: { appId: 'chat-app', department: 'marketing' },
    });
    expect(replaced.before).toEqual({ appId: 'chat-app', department: 'research' });
    expect(replaced.after).toEqual({ appId: 'chat-app', department: 'marketing' });
    const deleted = applyChange(replaced.config, { action: 'delete', collection: 'apps', id: 'chat-app' });
    expect(deleted.after).toBeNull();
    expect(deleted.config.apps).toEqual(base.apps);
    // The input is never changed in place.
    expect(base.apps.map((a) => a.appId)).not.toContain('chat-app');
  });

  it('answers 404 for a missing entry and 409 for an existing one', () => {
    expect(
      refusal(() => applyChange(base, { action: 'delete', collection: 'budgets', id: 'none' })).status,
    ).toBe(404);
    expect(
      refusal(() =>
        applyChange(base, {
          action: 'create',
          collection: 'departments',
          item: { id: 'research', name: 'R' },
        }),
      ),
    ).toMatchObject({ status: 409, param: 'id' });
  });

  it('refuses (409) deleting a department still named, listing every entry that names it', () => {
    const error = refusal(() =>
      applyChange(base, { action: 'delete', collection: 'departments', id: 'customer-support' }),
    );
    expect(error.status).toBe(409);
    expect(error.message).toContain("app 'support-voicebot' names department 'customer-support'");
    expect(error.message).toContain(
      "shared cost 'platform-team' gives a percentage to department 'customer-support'",
    );
  });

  it('refuses (409) deleting the last department', () => {
    const one = { ...EMPTY_CONFIG, departments: [{ id: 'only', name: 'Only' }] };
    const error = refusal(() =>
      applyChange(one, { action: 'delete', collection: 'departments', id: 'only' }),
    );
    expect(error).toMatchObject({ status: 409 });
    expect(error.message).toContain('departments');
  });
});

describe('parsePrice', () => {
  const body = {
    id: 'p-1',
    model: 'gpt-4o',
    meter: 'output-tokens',
    unitPrice: '8',
    currency: 'USD',
    effectiveFrom: '2030-01-01T00:00:00Z',
  };
  it('fills the source with the acting admin, and keeps one given', () => {
    expect(parsePrice(body, 'alice').source).toBe('set by alice through the admin API');
    expect(parsePrice({ ...body, source: 'contract 42' }, 'alice').source).toBe('contract 42');
  });
  it.each([
    ['a bad meter', { ...body, meter: 'requests' }, 'meter'],
    ['another currency', { ...body, currency: 'EUR' }, 'currency'],
    ['a date without a time zone', { ...body, effectiveFrom: '2030-01-01T00:00:00' }, 'effectiveFrom'],
    ['an id with a slash', { ...body, id: 'a/b' }, 'id'],
  ])('refuses %s (400)', (_label, price, param) => {
    expect(refusal(() => parsePrice(price, 'alice'))).toMatchObject({ status: 400, param });
  });
});
