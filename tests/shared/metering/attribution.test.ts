import { GATEWAY_HEADERS } from '../../../shared/contracts/gateway-headers';
import { APP_ROLES } from '../../../shared/contracts/roles';
import type { HeaderReader } from '../../../shared/metering/attribution';
import {
  correlationIdOf,
  readAttribution,
  requireRole,
  verifyGateway,
} from '../../../shared/metering/attribution';
import { apiErrorOf } from '../../fixtures/errors';

const SECRET = 'gateway-secret-0123456789';

function headers(values: Record<string, string>): HeaderReader {
  const map = new Map(Object.entries(values));
  return { get: (name: string) => map.get(name) ?? null };
}

/** The headers APIM sets on a forwarded call, with overrides. */
function gateway(extra: Record<string, string> = {}): HeaderReader {
  return headers({
    [GATEWAY_HEADERS.gatewayKey]: SECRET,
    [GATEWAY_HEADERS.subscription]: 'sub-research',
    [GATEWAY_HEADERS.app]: 'app-notebooks',
    [GATEWAY_HEADERS.department]: 'research',
    [GATEWAY_HEADERS.user]: 'alice@contoso.com',
    ...extra,
  });
}

function without(name: string): HeaderReader {
  const all = gateway();
  return { get: (n: string) => (n === name ? null : all.get(n)) };
}

describe('verifyGateway', () => {
  it('accepts the exact gateway key', () => {
    expect(() => verifyGateway(gateway(), SECRET)).not.toThrow();
  });

  it.each([
    ['a wrong key of the same length', 'gateway-secret-0123456780'],
    ['a prefix of the key', 'gateway-secret'],
    ['the key with a suffix', `${SECRET}x`],
    ['the key in another case', SECRET.toUpperCase()],
    ['an empty key', ''],
  ])('refuses %s with 401', (_, key) => {
    const error = apiErrorOf(() => verifyGateway(gateway({ [GATEWAY_HEADERS.gatewayKey]: key }), SECRET));
    expect(error.status).toBe(401);
    expect(error.code).toBe('Unauthorized');
  });

  it('refuses a request without the key header with 401', () => {
    expect(apiErrorOf(() => verifyGateway(without(GATEWAY_HEADERS.gatewayKey), SECRET)).status).toBe(401);
  });

  it('refuses everything when no secret is configured, even a matching empty key', () => {
    expect(apiErrorOf(() => verifyGateway(gateway({ [GATEWAY_HEADERS.gatewayKey]: '' }), '')).status).toBe(
      401,
    );
    expect(apiErrorOf(() => verifyGateway(without(GATEWAY_HEADERS.gatewayKey), '')).status).toBe(401);
  });

  it('compares bytes, not characters: a key with the same length in UTF-16 but not in UTF-8 is refused', () => {
    // 'é' is one UTF-16 unit but two UTF-8 bytes: a naive length check would still pass it to timingSafeEqual.
    const secret = 'abcé';
    expect(() => verifyGateway(headers({ [GATEWAY_HEADERS.gatewayKey]: 'abcé' }), secret)).not.toThrow();
    expect(
      apiErrorOf(() => verifyGateway(headers({ [GATEWAY_HEADERS.gatewayKey]: 'abce' }), secret)).status,
    ).toBe(401);
  });
});

describe('readAttribution', () => {
  it('reads subscription, app, department and user from the gateway headers', () => {
    expect(readAttribution(gateway(), SECRET)).toEqual({
      subscriptionId: 'sub-research',
      appId: 'app-notebooks',
      department: 'research',
      userId: 'alice@contoso.com',
      unassigned: false,
    });
  });

  it('checks the gateway key first: a wrong key is 401 even with full attribution', () => {
    const error = apiErrorOf(() =>
      readAttribution(gateway({ [GATEWAY_HEADERS.gatewayKey]: 'nope' }), SECRET),
    );
    expect(error.status).toBe(401);
    expect(error.message).toBe('This endpoint only accepts requests from the API gateway.');
  });

  it('refuses a missing key with 401', () => {
    expect(apiErrorOf(() => readAttribution(without(GATEWAY_HEADERS.gatewayKey), SECRET)).status).toBe(401);
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['blank', '   '],
    ['with a space inside', 'sub research'],
    ['with a forbidden character', 'sub;drop'],
    ['longer than 128 characters', 's'.repeat(129)],
  ])('requires a valid subscription (401 when %s)', (_, value) => {
    const reader =
      value === undefined
        ? without(GATEWAY_HEADERS.subscription)
        : gateway({ [GATEWAY_HEADERS.subscription]: value });
    const error = apiErrorOf(() => readAttribution(reader, SECRET));
    expect(error.status).toBe(401);
    expect(error.message).toBe(`The gateway sent no valid ${GATEWAY_HEADERS.subscription} header.`);
  });

  it('accepts a subscription of exactly 128 characters and trims surrounding space', () => {
    const long = 's'.repeat(128);
    expect(readAttribution(gateway({ [GATEWAY_HEADERS.subscription]: long }), SECRET).subscriptionId).toBe(
      long,
    );
    expect(
      readAttribution(gateway({ [GATEWAY_HEADERS.subscription]: '  sub-research  ' }), SECRET).subscriptionId,
    ).toBe('sub-research');
  });

  it('uses the subscription as the app when no app is named', () => {
    expect(readAttribution(without(GATEWAY_HEADERS.app), SECRET).appId).toBe('sub-research');
  });

  it('uses the subscription as the app when the app header is invalid', () => {
    expect(readAttribution(gateway({ [GATEWAY_HEADERS.app]: 'my app' }), SECRET).appId).toBe('sub-research');
  });

  it('charges a request without a department to unassigned, and flags it', () => {
    const attribution = readAttribution(without(GATEWAY_HEADERS.department), SECRET);
    expect(attribution.department).toBe('unassigned');
    expect(attribution.unassigned).toBe(true);
    // The rest of the attribution is unaffected.
    expect(attribution.subscriptionId).toBe('sub-research');
    expect(attribution.appId).toBe('app-notebooks');
  });

  it.each([
    ['empty', ''],
    ['blank', '  '],
    ['with spaces and &', 'research & development'],
    ['longer than 128 characters', 'x'.repeat(129)],
    ['with markup', 'dept<script>'],
  ])('charges an invalid department (%s) to unassigned', (_, department) => {
    const attribution = readAttribution(gateway({ [GATEWAY_HEADERS.department]: department }), SECRET);
    expect(attribution).toMatchObject({ department: 'unassigned', unassigned: true });
  });

  it('drops an invalid user but keeps the request', () => {
    const attribution = readAttribution(gateway({ [GATEWAY_HEADERS.user]: 'Alice Smith' }), SECRET);
    expect(attribution.userId).toBeUndefined();
    expect(attribution.department).toBe('research');
    expect(attribution.unassigned).toBe(false);
  });

  it('has no user when the header is absent', () => {
    expect(readAttribution(without(GATEWAY_HEADERS.user), SECRET).userId).toBeUndefined();
  });

  it('accepts the identifier characters . _ - @ : / in a user id', () => {
    const user = 'tenant/alice_b.c-d@contoso.com:1';
    expect(readAttribution(gateway({ [GATEWAY_HEADERS.user]: user }), SECRET).userId).toBe(user);
  });
});

describe('requireRole', () => {
  const finance = APP_ROLES.finance;

  it('lets a gateway request with the role through', () => {
    expect(() =>
      requireRole(gateway({ [GATEWAY_HEADERS.roles]: finance }), SECRET, finance, 'Reports'),
    ).not.toThrow();
  });

  it('finds the role in a comma-separated list with spaces', () => {
    const reader = gateway({ [GATEWAY_HEADERS.roles]: ` Reader ,  ${finance} , Writer` });
    expect(() => requireRole(reader, SECRET, finance, 'Reports')).not.toThrow();
  });

  it('is 401 without the gateway key, even with the role', () => {
    const reader = headers({ [GATEWAY_HEADERS.roles]: finance });
    expect(apiErrorOf(() => requireRole(reader, SECRET, finance, 'Reports')).status).toBe(401);
  });

  it('is 403 without the role, naming what needs it', () => {
    const error = apiErrorOf(() =>
      requireRole(gateway({ [GATEWAY_HEADERS.roles]: 'Chargeback.Reader' }), SECRET, finance, 'Reports'),
    );
    expect(error.status).toBe(403);
    expect(error.code).toBe('Forbidden');
    expect(error.message).toBe(`Reports require the '${finance}' role.`);
  });

  it('is 403 when no roles header is sent', () => {
    expect(apiErrorOf(() => requireRole(gateway(), SECRET, finance, 'Reports')).status).toBe(403);
  });

  it('does not match a role by prefix, substring or case', () => {
    for (const roles of [`${finance}Admin`, `x${finance}`, finance.toLowerCase(), `${finance};Reader`]) {
      const error = apiErrorOf(() =>
        requireRole(gateway({ [GATEWAY_HEADERS.roles]: roles }), SECRET, finance, 'R'),
      );
      expect(error.status).toBe(403);
    }
  });
});

describe('correlationIdOf', () => {
  const fallback = (): string => 'generated-id';
  const withId = (id: string): HeaderReader => headers({ [GATEWAY_HEADERS.requestId]: id });

  it('uses the gateway request id when it is valid', () => {
    expect(correlationIdOf(withId('7f3c2a10-1b2c-4d5e-8f90-abcdef012345'), fallback)).toBe(
      '7f3c2a10-1b2c-4d5e-8f90-abcdef012345',
    );
  });

  it('trims the gateway id', () => {
    expect(correlationIdOf(withId('  req.42:a_b  '), fallback)).toBe('req.42:a_b');
  });

  it('accepts exactly 128 characters and falls back at 129', () => {
    expect(correlationIdOf(withId('a'.repeat(128)), fallback)).toBe('a'.repeat(128));
    expect(correlationIdOf(withId('a'.repeat(129)), fallback)).toBe('generated-id');
  });

  it.each([
    ['a space', 'req 42'],
    ['a slash', 'req/42'],
    ['an @', 'req@42'],
    ['a newline', 'req\n42'],
    ['a non-ASCII letter', 'réq-42'],
    ['nothing but blanks', '   '],
    ['nothing', ''],
  ])('falls back when the id has %s', (_, id) => {
    expect(correlationIdOf(withId(id), fallback)).toBe('generated-id');
  });

  it('falls back when the gateway sent no id, and calls the fallback only then', () => {
    const calls: string[] = [];
    const counting = (): string => {
      calls.push('called');
      return `fallback-${calls.length}`;
    };
    expect(correlationIdOf(headers({}), counting)).toBe('fallback-1');
    expect(correlationIdOf(withId('gw-1'), counting)).toBe('gw-1');
    expect(calls).toHaveLength(1);
  });
});
