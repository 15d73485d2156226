import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { app } from '@azure/functions';
import * as df from 'durable-functions';
import { z } from 'zod';
import { CHARGEBACK_ORCHESTRATION } from '../../shared/chargeback/run';
import { notFound } from '../../shared/contracts/api-errors';
import { APP_ROLES } from '../../shared/contracts/roles';
import { servicesFor, validated, withErrors } from '../http';

/**
 * GET /api/chargeback/runs/{id} — a chargeback run's status for an admin: its runtime status,
 * its phase (custom status: what it is doing, or which reports wait and why) and, once finished,
 * its summary (windows, events, reports written, reports waiting).
 */

const runId = z.string().regex(/^chargeback-[A-Za-z0-9-]{1,100}$/, 'must be a chargeback run id');

export async function runStatusHandler(
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  await servicesFor(request, APP_ROLES.admin, 'Chargeback runs');
  const id = validated(z.object({ id: runId }), { id: request.params.id ?? '' }).id;
  const status = await df
    .getClient(context)
    .getStatus(id)
    .catch(() => undefined);
  if (!status?.runtimeStatus || status.name !== CHARGEBACK_ORCHESTRATION) {
    throw notFound(`No chargeback run '${id}'.`);
  }
  return {
    status: 200,
    jsonBody: {
      id,
      status: status.runtimeStatus,
      createdTime: new Date(status.createdTime).toISOString(),
      lastUpdatedTime: new Date(status.lastUpdatedTime).toISOString(),
      progress: status.customStatus ?? null,
      summary: status.runtimeStatus === df.OrchestrationRuntimeStatus.Completed ? status.output : null,
      // A failure's own message may name internal hosts: it stays in the logs, under the run's id.
      ...(status.runtimeStatus === df.OrchestrationRuntimeStatus.Failed
        ? {
            error: `The run failed after its retries; the error is in the function app's logs under run id ${id}. Nothing committed is lost: the next run picks up what this one left.`,
          }
        : {}),
    },
  };
}

app.http('chargebackRunsGet', {
  methods: ['GET'],
  route: 'chargeback/runs/{id}',
  authLevel: 'function',
  extraInputs: [df.input.durableClient()],
  handler: withErrors(runStatusHandler),
});
