import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { app } from '@azure/functions';
import { z } from 'zod';
import { badRequest } from '../../shared/contracts/api-errors';
import { APP_ROLES } from '../../shared/contracts/roles';
import { LAST_RESORT_MARKER, parseLastResortRecords } from '../../shared/metering/last-resort';
import { readBodyWithin, servicesFor, validated, withErrors } from '../http';

/**
 * POST /api/usage/imports — an admin re-imports usage events that neither Redis nor the spool
 * took (their last-resort records: `USAGE_EVENT_UNRECORDED` log lines, or the `UsageEventUnrecorded`
 * custom events exported from Application Insights), one record per line. Idempotent by event id:
 * importing the same records again changes nothing. The next chargeback run (or a run-now) rolls
 * the days up and rewrites their reports. An event a store may have taken after all, which the
 * buffer no longer holds, is listed (`maybeCounted`) and imported only with
 * `?includeMaybeStored=true`. Only through APIM, for callers with the admin role.
 */

const MAX_BODY_BYTES = 16 * 1024 * 1024;
/** `?includeMaybeStored=true`: import events a store may hold after all (see importEvents). */
const query = z.object({
  includeMaybeStored: z
    .enum(['true', 'false'])
    .optional()
    .transform((value) => value === 'true'),
});

/** Problems listed in a 400, at most. */
const LISTED_PROBLEMS = 10;

export async function importUsageHandler(
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const services = await servicesFor(request, APP_ROLES.admin, 'Usage imports');
  const text = new TextDecoder('utf-8', { fatal: false }).decode(
    await readBodyWithin(request, MAX_BODY_BYTES),
  );
  const { includeMaybeStored } = validated(query, {
    includeMaybeStored: request.query.get('includeMaybeStored') ?? undefined,
  });
  const { records, problems } = parseLastResortRecords(text);
  if (problems.length > 0) {
    const more = problems.length > LISTED_PROBLEMS ? ` (and ${problems.length - LISTED_PROBLEMS} more)` : '';
    throw badRequest(`Nothing was imported: ${problems.slice(0, LISTED_PROBLEMS).join('; ')}${more}.`, null);
  }
  if (records.length === 0) {
    throw badRequest(
      `The body has no records: send one ${LAST_RESORT_MARKER} line (or exported event) per line.`,
    );
  }
  const outcome = await services.chargeback().importEvents(
    records,
    {
      info: (message) => context.log(message),
      warn: (message) => context.warn(message),
      error: (message) => context.error(message),
    },
    { includeMaybeStored },
  );
  return { status: 200, jsonBody: outcome };
}

app.http('usageImportsPost', {
  methods: ['POST'],
  route: 'usage/imports',
  authLevel: 'function',
  handler: withErrors(importUsageHandler),
});
