import { timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { ApiError, unauthorized } from './errors';
import { UNASSIGNED_DEPARTMENT } from './usage';

/**
 * Identity headers. APIM is their only writer: it strips any a client sends and sets them from the
 * subscription and token claims. The functions trust them only on requests that carry the
 * gateway's backend secret, which apps never see.
 */
export const ATTRIBUTION_HEADERS = {
  gatewaySecret: 'x-chargeback-gateway-key',
  subscription: 'x-chargeback-subscription',
  app: 'x-chargeback-app',
  department: 'x-chargeback-department',
  user: 'x-chargeback-user',
  requestId: 'x-chargeback-request-id',
  /** App roles from the caller's Entra token (the JWT's `roles` claim), comma-separated. */
  roles: 'x-chargeback-roles',
} as const;

/** The app role that may list and download chargeback reports. */
export const FINANCE_ROLE = 'Chargeback.Finance';

/** Checks the gateway secret, then the finance role APIM forwarded from the caller's token. */
export function requireFinanceRole(
  headers: { get(name: string): string | null },
  gatewaySecret: string,
): void {
  if (!safeEqual(headers.get(ATTRIBUTION_HEADERS.gatewaySecret) ?? '', gatewaySecret)) {
    throw unauthorized('This endpoint only accepts requests from the API gateway.');
  }
  const roles = (headers.get(ATTRIBUTION_HEADERS.roles) ?? '').split(',').map((r) => r.trim());
  if (!roles.includes(FINANCE_ROLE)) {
    throw new ApiError(403, 'Forbidden', `Chargeback reports require the '${FINANCE_ROLE}' role.`);
  }
}

const identifier = z
  .string()
  .trim()
  .min(1)
  .max(128)
  .regex(/^[\w.@:/-]+$/, 'letters, digits and . _ - @ : / only');

export interface Attribution {
  subscriptionId: string;
  appId: string;
  department: string;
  userId?: string;
  /** True when APIM named no department: the usage is charged to `unassigned`. */
  unassigned: boolean;
}

export function readAttribution(
  headers: { get(name: string): string | null },
  gatewaySecret: string,
): Attribution {
  const presented = headers.get(ATTRIBUTION_HEADERS.gatewaySecret) ?? '';
  if (!safeEqual(presented, gatewaySecret)) {
    throw unauthorized('This endpoint only accepts requests from the API gateway.');
  }
  const subscription = identifier.safeParse(headers.get(ATTRIBUTION_HEADERS.subscription) ?? '');
  if (!subscription.success) {
    throw unauthorized(`The gateway sent no valid ${ATTRIBUTION_HEADERS.subscription} header.`);
  }
  const app = identifier.safeParse(headers.get(ATTRIBUTION_HEADERS.app) ?? '');
  const department = identifier.safeParse(headers.get(ATTRIBUTION_HEADERS.department) ?? '');
  const user = identifier.safeParse(headers.get(ATTRIBUTION_HEADERS.user) ?? '');
  return {
    subscriptionId: subscription.data,
    appId: app.success ? app.data : subscription.data,
    department: department.success ? department.data : UNASSIGNED_DEPARTMENT,
    userId: user.success ? user.data : undefined,
    unassigned: !department.success,
  };
}

function safeEqual(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return b.length > 0 && a.length === b.length && timingSafeEqual(a, b);
}
