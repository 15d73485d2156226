import { timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { forbidden, unauthorized } from '../contracts/api-errors';
import { UNASSIGNED_DEPARTMENT } from '../contracts/department';
import { GATEWAY_HEADERS } from '../contracts/gateway-headers';
import type { AppRole } from '../contracts/roles';

/**
 * Who a request is billed to. APIM is the only writer of the gateway headers; the functions trust
 * them only on requests that carry the gateway credential, which apps never see.
 */

export interface HeaderReader {
  get(name: string): string | null;
}

const ID_MAX = 128;

const identifier = z
  .string()
  .trim()
  .min(1)
  .max(ID_MAX)
  .regex(/^[\w.@:/-]+$/, 'letters, digits and . _ - @ : / only');

export interface Attribution {
  subscriptionId: string;
  appId: string;
  department: string;
  userId?: string;
  /** True when APIM named no usable department: the usage is charged to `unassigned`. */
  unassigned: boolean;
  /**
   * Why the department header APIM sent could not be used (present, but two values joined, too
   * long, blank or outside the id alphabet): the gateway is misconfigured. Absent when the header
   * was usable or absent (a subscription without a department).
   */
  departmentProblem?: string;
}

/** Why a header value is not a usable identifier; undefined when it is. Never echoes the value. */
function identifierProblem(value: string): string | undefined {
  if (value.trim() === '') return 'it is blank';
  if (value.includes(',')) return 'it holds more than one value (a duplicated or joined header)';
  if (value.trim().length > ID_MAX) return `it is longer than ${ID_MAX} characters`;
  if (!identifier.safeParse(value).success) {
    return 'it has characters other than letters, digits and . _ - @ : /';
  }
  return undefined;
}

/** Refuses a request that does not come through the gateway (401). */
export function verifyGateway(headers: HeaderReader, gatewaySecret: string): void {
  if (!safeEqual(headers.get(GATEWAY_HEADERS.gatewayKey) ?? '', gatewaySecret)) {
    throw unauthorized('This endpoint only accepts requests from the API gateway.');
  }
}

/** Checks the gateway credential, then an app role APIM forwarded from the caller's token (403). */
export function requireRole(headers: HeaderReader, gatewaySecret: string, role: AppRole, what: string): void {
  verifyGateway(headers, gatewaySecret);
  const roles = (headers.get(GATEWAY_HEADERS.roles) ?? '').split(',').map((r) => r.trim());
  if (!roles.includes(role)) throw forbidden(`${what} require the '${role}' role.`);
}

export function readAttribution(headers: HeaderReader, gatewaySecret: string): Attribution {
  verifyGateway(headers, gatewaySecret);
  const subscription = identifier.safeParse(headers.get(GATEWAY_HEADERS.subscription) ?? '');
  if (!subscription.success) {
    throw unauthorized(`The gateway sent no valid ${GATEWAY_HEADERS.subscription} header.`);
  }
  const app = identifier.safeParse(headers.get(GATEWAY_HEADERS.app) ?? '');
  const sentDepartment = headers.get(GATEWAY_HEADERS.department);
  const department = identifier.safeParse(sentDepartment ?? '');
  const user = identifier.safeParse(headers.get(GATEWAY_HEADERS.user) ?? '');
  const departmentProblem = sentDepartment === null ? undefined : identifierProblem(sentDepartment);
  return {
    subscriptionId: subscription.data,
    appId: app.success ? app.data : subscription.data,
    department: department.success ? department.data : UNASSIGNED_DEPARTMENT,
    userId: user.success ? user.data : undefined,
    unassigned: !department.success,
    ...(departmentProblem === undefined ? {} : { departmentProblem }),
  };
}

const CORRELATION_ID = /^[\w.:-]{1,128}$/;

/** The id that makes a retried request count once: the gateway's request id, else a new one. */
export function correlationIdOf(headers: HeaderReader, fallback: () => string): string {
  const fromGateway = headers.get(GATEWAY_HEADERS.requestId)?.trim();
  return fromGateway && CORRELATION_ID.test(fromGateway) ? fromGateway : fallback();
}

function safeEqual(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return b.length > 0 && a.length === b.length && timingSafeEqual(a, b);
}
