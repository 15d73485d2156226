import { randomBytes } from 'node:crypto';
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { app } from '@azure/functions';
import * as df from 'durable-functions';
import { z } from 'zod';
import { ApiError, badRequest } from '../../shared/contracts/api-errors';
import { APP_ROLES } from '../../shared/contracts/roles';
import { windowEnd, windowId, windowStart } from '../../shared/contracts/window';
import { readJsonWithin, servicesFor, validated, withErrors } from '../http';
import { startChargebackRun } from './chargeback-run';

/**
 * POST /api/chargeback/runs — an admin runs the chargeback now, without waiting for the timer.
 * By default the run is "as of" the end of the current window plus the grace period, so it
 * includes the traffic of the window still open: usage that arrives in that window afterwards is
 * not lost, it starts a new batch and the next run adds it. Only through APIM (gateway credential)
 * and only for callers whose token carries the admin app role.
 */

const MAX_BODY_BYTES = 4 * 1024;

const body = z
  .object({
    /** ISO 8601 with a time zone, e.g. 2026-12-02T10:30:00Z. */
    asOf: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();

/** The latest as-of a run may take: the end of the current window plus the grace period. */
export function latestAsOf(now: Date, graceMs: number): Date {
  return new Date(windowEnd(windowStart(now)).getTime() + graceMs);
}

/** Where a run's status is read (chargeback/runs-get.ts). */
export function runStatusPath(instanceId: string): string {
  return `/api/chargeback/runs/${encodeURIComponent(instanceId)}`;
}

export async function startRunHandler(
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const services = await servicesFor(request, APP_ROLES.admin, 'Starting a chargeback run');
  const input = validated(body, await readJsonWithin(request, MAX_BODY_BYTES));
  const now = new Date();
  const latest = latestAsOf(now, services.config.chargeback.graceMs);
  const asOf = input.asOf === undefined ? latest : new Date(input.asOf);
  if (asOf > latest) {
    throw badRequest(
      `'asOf' must not be later than ${latest.toISOString()} (the end of the current window plus the grace period).`,
      'asOf',
    );
  }
  const instanceId = `chargeback-admin-${windowId(now)}-${randomBytes(4).toString('hex')}`;
  const result = await startChargebackRun(df.getClient(context), instanceId, { asOf: asOf.toISOString() });
  if ('running' in result) {
    throw new ApiError(
      409,
      'Conflict',
      `Chargeback run ${result.running} is in progress; runs never overlap. Try again when it has finished.`,
      null,
      { Location: runStatusPath(result.running) },
    );
  }
  context.log(`Admin started chargeback run ${instanceId} as of ${asOf.toISOString()}.`);
  const statusUrl = runStatusPath(instanceId);
  return {
    status: 202,
    headers: { Location: statusUrl },
    jsonBody: { id: instanceId, asOf: asOf.toISOString(), statusUrl },
  };
}

app.http('chargebackRunsPost', {
  methods: ['POST'],
  route: 'chargeback/runs',
  authLevel: 'function',
  extraInputs: [df.input.durableClient()],
  handler: withErrors(startRunHandler),
});
