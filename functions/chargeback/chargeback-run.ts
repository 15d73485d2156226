import type { InvocationContext, Timer } from '@azure/functions';
import { app } from '@azure/functions';
import * as df from 'durable-functions';
import type { OrchestrationContext, OrchestrationHandler } from 'durable-functions';
import type { ChargebackRunSummary, PeriodRef, WindowOutcome } from '../../shared/chargeback/run';
import {
  aggregateWindow,
  CHARGEBACK_ORCHESTRATION,
  findPendingWindows,
  periodsOf,
  releaseBatch,
  runInstanceId,
  writePeriodReports,
} from '../../shared/chargeback/run';
import type { WindowBatch } from '../../shared/chargeback/usage-batches';

/**
 * Every 15 minutes: find the closed windows still holding raw usage, aggregate each into Cosmos
 * DB (fan-out), recompute the reports of the months and days they touch, and only then release
 * the raw data. Every activity retries; every step is idempotent, so a rerun after a crash at any
 * point writes the same documents and the same reports.
 */

const ACTIVITY_RETRY = new df.RetryOptions(2_000, 5);
ACTIVITY_RETRY.backoffCoefficient = 2;
ACTIVITY_RETRY.maxRetryIntervalInMilliseconds = 60_000;

const ACTIVITIES = {
  find: 'chargebackFindWindows',
  aggregate: 'chargebackAggregateWindow',
  report: 'chargebackWriteReports',
  release: 'chargebackReleaseBatch',
} as const;

/** Task.all of nothing is an error in durable-functions; an empty list is simply done. */
function* all(context: OrchestrationContext, tasks: df.Task[]): Generator<df.Task, unknown[], unknown> {
  if (tasks.length === 0) return [];
  return (yield context.df.Task.all(tasks)) as unknown[];
}

const orchestrator: OrchestrationHandler = function* (context: OrchestrationContext) {
  // Normally "now". A drill or the demo may pass a later `asOf` to close the current window early:
  // safe, since events that arrive after a window's release start a new batch and add to it.
  const requested = context.df.getInput<{ asOf?: unknown } | undefined>()?.asOf;
  const asOf =
    typeof requested === 'string' && !Number.isNaN(Date.parse(requested))
      ? new Date(requested).toISOString()
      : context.df.currentUtcDateTime.toISOString();
  context.df.setCustomStatus({ phase: 'finding windows' });
  const windows = (yield context.df.callActivityWithRetry(ACTIVITIES.find, ACTIVITY_RETRY, {
    asOf,
  })) as string[];

  context.df.setCustomStatus({ phase: 'aggregating', windows: windows.length });
  const outcomes = (yield* all(
    context,
    windows.map((windowId) =>
      context.df.callActivityWithRetry(ACTIVITIES.aggregate, ACTIVITY_RETRY, {
        windowId,
        proposedBatch: context.df.instanceId,
      }),
    ),
  )) as WindowOutcome[];

  const periods = periodsOf(outcomes);
  context.df.setCustomStatus({ phase: 'reporting', periods: periods.length });
  const reports = (yield* all(
    context,
    periods.map((period) => context.df.callActivityWithRetry(ACTIVITIES.report, ACTIVITY_RETRY, period)),
  )) as string[][];

  // Raw data goes only once everything computed from it is committed.
  context.df.setCustomStatus({ phase: 'releasing' });
  yield* all(
    context,
    outcomes.map((outcome) =>
      context.df.callActivityWithRetry(ACTIVITIES.release, ACTIVITY_RETRY, {
        windowId: outcome.windowId,
        batch: outcome.batch,
      } satisfies WindowBatch),
    ),
  );
  const summary: ChargebackRunSummary = {
    asOf,
    windows: outcomes.map((o) => ({ windowId: o.windowId, batch: o.batch, events: o.events })),
    events: outcomes.reduce((sum, o) => sum + o.events, 0),
    invalidEvents: outcomes.reduce((sum, o) => sum + o.invalidEvents, 0),
    aggregates: outcomes.reduce((sum, o) => sum + o.aggregates, 0),
    reports: reports.flat().sort(),
  };
  context.df.setCustomStatus({ phase: 'done' });
  return summary;
};

df.app.orchestration(CHARGEBACK_ORCHESTRATION, orchestrator);
df.app.activity(ACTIVITIES.find, {
  handler: (input: { asOf: string }) => findPendingWindows(new Date(input.asOf)),
});
df.app.activity(ACTIVITIES.aggregate, {
  handler: (input: { windowId: string; proposedBatch: string }) =>
    aggregateWindow(input.windowId, input.proposedBatch),
});
df.app.activity(ACTIVITIES.report, { handler: (period: PeriodRef) => writePeriodReports(period) });
df.app.activity(ACTIVITIES.release, { handler: (batch: WindowBatch) => releaseBatch(batch) });

app.timer('chargebackTimer', {
  schedule: '0 */15 * * * *',
  extraInputs: [df.input.durableClient()],
  handler: async (_timer: Timer, context: InvocationContext): Promise<void> => {
    const client = df.getClient(context);
    // One run per quarter hour, by id: a timer that fires twice for the same slot starts nothing new.
    const instanceId = runInstanceId(new Date());
    const existing = await client.getStatus(instanceId).catch(() => undefined);
    if (existing?.runtimeStatus) {
      context.log(`Chargeback run ${instanceId} already exists (${existing.runtimeStatus}).`);
      return;
    }
    // A run still in progress (a long catch-up) is not overlapped: the next slot picks up the rest.
    const running = (
      await client.getStatusBy({
        runtimeStatus: [
          df.OrchestrationRuntimeStatus.Running,
          df.OrchestrationRuntimeStatus.Pending,
          df.OrchestrationRuntimeStatus.ContinuedAsNew,
        ],
      })
    ).filter(
      (status) =>
        status.name === CHARGEBACK_ORCHESTRATION &&
        ['Running', 'Pending', 'ContinuedAsNew'].includes(String(status.runtimeStatus)),
    );
    if (running.length > 0) {
      context.log(`Chargeback run ${running[0]?.instanceId} is still in progress; not starting another.`);
      return;
    }
    await client.startNew(CHARGEBACK_ORCHESTRATION, { instanceId });
    context.log(`Started chargeback run ${instanceId}.`);
  },
});
