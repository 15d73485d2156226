import type { InvocationContext, Timer } from '@azure/functions';
import { app } from '@azure/functions';
import * as df from 'durable-functions';
import type { ActivityHandler, OrchestrationContext, OrchestrationHandler } from 'durable-functions';
import type { StepLogger, WindowBatch } from '../../shared/chargeback/ports';
import type { ChargebackRunSummary, WindowOutcome } from '../../shared/chargeback/run';
import { CHARGEBACK_ORCHESTRATION, periodsOf, runInstanceId } from '../../shared/chargeback/run';
import { appServices } from '../../shared/config/composition';
import { WINDOW_MINUTES } from '../../shared/contracts/window';

/**
 * Every 15 minutes: find the closed windows still holding raw usage, aggregate each into Cosmos
 * DB (fan-out), recompute the reports of the months and days they touch, and only then release
 * the raw data. Every activity retries; every step is idempotent, so a rerun after a crash at any
 * point writes the same documents and the same reports.
 */

const ACTIVITY_RETRY = new df.RetryOptions(2_000, 5);
ACTIVITY_RETRY.backoffCoefficient = 2;
ACTIVITY_RETRY.maxRetryIntervalInMilliseconds = 60_000;

export const CHARGEBACK_ACTIVITIES = {
  find: 'chargebackFindWindows',
  aggregate: 'chargebackAggregateWindow',
  report: 'chargebackWriteReports',
  release: 'chargebackReleaseBatch',
} as const;

export interface RunInput {
  /** Normally absent ("now"). A drill or the demo may pass a later instant to close the current window early. */
  asOf?: string;
}
export interface FindInput {
  asOf: string;
}
export interface AggregateInput {
  windowId: string;
  proposedBatch: string;
}
/** A period id: YYYY-MM (month to date) or YYYY-MM-DD. */
export type ReportInput = string;
export type ReleaseInput = WindowBatch;

/** Task.all of nothing is an error in durable-functions; an empty list is simply done. */
function* all(context: OrchestrationContext, tasks: df.Task[]): Generator<df.Task, unknown[], unknown> {
  if (tasks.length === 0) return [];
  return (yield context.df.Task.all(tasks)) as unknown[];
}

export const chargebackOrchestrator: OrchestrationHandler = function* (context: OrchestrationContext) {
  // A later `asOf` is safe: events that arrive after a window's release start a new batch and add to it.
  const requested = context.df.getInput<RunInput | undefined>()?.asOf;
  const asOf =
    typeof requested === 'string' && !Number.isNaN(Date.parse(requested))
      ? new Date(requested).toISOString()
      : context.df.currentUtcDateTime.toISOString();
  context.df.setCustomStatus({ phase: 'finding windows' });
  const windows = (yield context.df.callActivityWithRetry(CHARGEBACK_ACTIVITIES.find, ACTIVITY_RETRY, {
    asOf,
  } satisfies FindInput)) as string[];

  context.df.setCustomStatus({ phase: 'aggregating', windows: windows.length });
  const outcomes = (yield* all(
    context,
    windows.map((windowId) =>
      context.df.callActivityWithRetry(CHARGEBACK_ACTIVITIES.aggregate, ACTIVITY_RETRY, {
        windowId,
        proposedBatch: context.df.instanceId,
      } satisfies AggregateInput),
    ),
  )) as WindowOutcome[];

  const periods = periodsOf(outcomes);
  context.df.setCustomStatus({ phase: 'reporting', periods: periods.length });
  const reports = (yield* all(
    context,
    periods.map((period) =>
      context.df.callActivityWithRetry(
        CHARGEBACK_ACTIVITIES.report,
        ACTIVITY_RETRY,
        period satisfies ReportInput,
      ),
    ),
  )) as string[][];

  // Raw data goes only once everything computed from it is committed.
  context.df.setCustomStatus({ phase: 'releasing' });
  yield* all(
    context,
    outcomes.map((outcome) =>
      context.df.callActivityWithRetry(CHARGEBACK_ACTIVITIES.release, ACTIVITY_RETRY, {
        windowId: outcome.windowId,
        batch: outcome.batch,
      } satisfies ReleaseInput),
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

function logger(context: InvocationContext): StepLogger {
  return {
    info: (message) => context.log(message),
    warn: (message) => context.warn(message),
    error: (message) => context.error(message),
  };
}

export const findWindows: ActivityHandler = async (input: FindInput) =>
  (await appServices()).chargeback().findPendingWindows(new Date(input.asOf));

export const aggregateWindow: ActivityHandler = async (input: AggregateInput, context: InvocationContext) =>
  (await appServices()).chargeback().aggregateWindow(input.windowId, input.proposedBatch, logger(context));

export const writeReports: ActivityHandler = async (period: ReportInput) =>
  (await appServices()).chargeback().writePeriodReports(period);

export const releaseBatch: ActivityHandler = async (batch: ReleaseInput) =>
  (await appServices()).chargeback().releaseBatch(batch);

/** One run per quarter hour, by id; never two at once. */
export async function startChargebackRun(_timer: Timer, context: InvocationContext): Promise<void> {
  const client = df.getClient(context);
  // A timer that fires twice for the same slot starts nothing new.
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
  ).filter((status) => status.name === CHARGEBACK_ORCHESTRATION);
  if (running.length > 0) {
    context.log(`Chargeback run ${running[0]?.instanceId} is still in progress; not starting another.`);
    return;
  }
  await client.startNew(CHARGEBACK_ORCHESTRATION, { instanceId });
  context.log(`Started chargeback run ${instanceId}.`);
}

df.app.orchestration(CHARGEBACK_ORCHESTRATION, chargebackOrchestrator);
df.app.activity(CHARGEBACK_ACTIVITIES.find, { handler: findWindows });
df.app.activity(CHARGEBACK_ACTIVITIES.aggregate, { handler: aggregateWindow });
df.app.activity(CHARGEBACK_ACTIVITIES.report, { handler: writeReports });
df.app.activity(CHARGEBACK_ACTIVITIES.release, { handler: releaseBatch });

app.timer('chargebackTimer', {
  // At the start of every window (0 */15 * * * *): six-field NCRONTAB, UTC.
  schedule: `0 */${WINDOW_MINUTES} * * * *`,
  extraInputs: [df.input.durableClient()],
  handler: startChargebackRun,
});
