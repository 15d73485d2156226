import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { z } from 'zod';
import { resourceIdSchema } from '../../shared/chargeback/config-admin';
import type { AppServices } from '../../shared/config/composition';
import { GATEWAY_HEADERS } from '../../shared/contracts/gateway-headers';
import { APP_ROLES } from '../../shared/contracts/roles';
import { readJsonWithin, servicesFor, validated } from '../http';

/**
 * What every admin API function shares: the route prefix, the role check, the acting user, the
 * path id, the body and the answers with their ETag and configuration version.
 *
 * The prefix is `chargeback/admin`, not `admin`: the Azure Functions host refuses any function
 * route whose first segment is `admin` (its own admin API lives there; the function is then "in
 * error: the specified route conflicts with one or more built in routes"), whatever the route
 * prefix. Function names must not start with `admin` either.
 */

export const ADMIN_ROUTE_PREFIX = 'chargeback/admin';

/** The largest body an admin call takes: an entry of the configuration is a few hundred bytes. */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;

/** The configuration version a change produced (or a read saw), on every answer of the admin API. */
export const CONFIG_VERSION_HEADER = 'x-config-version';

/** The admin's services, after the gateway credential and the admin role are checked (401, 403). */
export async function adminServices(request: HttpRequest): Promise<AppServices> {
  return servicesFor(request, APP_ROLES.admin, 'Calls to the configuration admin API');
}

const actorSchema = z
  .string()
  .trim()
  .min(1)
  .max(256)
  .regex(/^[^\s,\p{Cc}][^,\p{Cc}]*$/u);

/**
 * Who is acting, for the audit trail: the user APIM names (from the caller's token), else the
 * APIM subscription, else `unknown`. Trusted only because requireRole checked the gateway
 * credential first.
 */
export function actorOf(request: HttpRequest): string {
  for (const header of [GATEWAY_HEADERS.user, GATEWAY_HEADERS.subscription]) {
    const value = actorSchema.safeParse(request.headers.get(header) ?? '');
    if (value.success) return value.data;
  }
  return 'unknown';
}

/** The `{id}` of the path, checked (400). */
export function pathId(request: HttpRequest): string {
  return validated(z.object({ id: resourceIdSchema }), { id: request.params.id ?? '' }).id;
}

/** The JSON body (400 when it is not JSON, 413 when too large). */
export function bodyOf(request: HttpRequest): Promise<unknown> {
  return readJsonWithin(request, MAX_ADMIN_BODY_BYTES);
}

/**
 * A created resource's Location, relative to the collection's URL the caller posted to
 * (`<collection>/<id>`, the collection as the caller named it): right whatever path the gateway
 * gives the admin API.
 */
export function createdLocation(request: HttpRequest, id: string): string {
  const collection = new URL(request.url).pathname.split('/').filter(Boolean).pop() ?? '';
  return `${collection}/${encodeURIComponent(id)}`;
}

/** An answer with a resource, its ETag and (for the configuration's resources) the version. */
export function resourceResponse(
  status: number,
  resource: unknown,
  etag: string,
  version: string | null,
  extra: Record<string, string> = {},
): HttpResponseInit {
  return {
    status,
    jsonBody: resource,
    headers: { ETag: etag, ...(version === null ? {} : { [CONFIG_VERSION_HEADER]: version }), ...extra },
  };
}
