import type { InvocationContext, Timer } from '@azure/functions';
import { app } from '@azure/functions';
import * as df from 'durable-functions';
import type { ActivityHandler, OrchestrationContext, OrchestrationHandler } from 'durable-functions';
import type { ConfigSnapshot, StepLogger, WindowBatch } from '../../shared/chargeback/ports';
import type { ChargebackRunSummary, ReportDue, Waiting, WindowOutcome } from '../../shared/chargeback/run';
import { CHARGEBACK_ORCHESTRATION, ConfigurationProblem, runInstanceId } from '../../shared/chargeback/run';
import type { AppServices } from '../../shared/config/composition';
import { appServices } from '../../shared/config/composition';
import { ensureError } from '../../shared/contracts/api-errors';
import { monthOf } from '../../shared/contracts/report-period';
import { WINDOW_MINUTES } from '../../shared/contracts/window';

/**
 * Every 15 minutes: find the closed windows still holding raw usage, aggregate each into Cosmos
 * DB (fan-out), release their raw data as soon as it is committed, roll up the days they touched,
 * and write the reports of every period whose data changed. Every activity retries; every step is
 * idempotent, so a rerun after a crash at any point writes the same documents and the same
 * reports. A step that waits for an admin (an invalid price override or CHARGEBACK_CONFIG) says
 * why in the run's custom status and output, and is tried again by the next run.
 */

const ACTIVITY_RETRY = new df.RetryOptions(2_000, 5);
ACTIVITY_RETRY.backoffCoefficient = 2;
ACTIVITY_RETRY.maxRetryIntervalInMilliseconds = 60_000;

export const CHARGEBACK_ACTIVITIES = {
  find: 'chargebackFindWindows',
  aggregate: 'chargebackAggregateWindow',
  release: 'chargebackReleaseBatch',
  daysToRollUp: 'chargebackDaysToRollUp',
  rollUp: 'chargebackRollUpDay',
  reportsDue: 'chargebackReportsDue',
  report: 'chargebackWriteReports',
} as const;

export interface RunInput {
  /** Normally absent ("now"). An admin's run-now or the demo may pass a later instant to close the current window early. */
  asOf?: string;
}
export interface FindInput {
  asOf: string;
}
export interface AggregateInput {
  windowId: string;
  proposedBatch: string;
  /** The orchestration's clock (ISO), replay-safe: a window claimed before it closed stays open. */
  now: string;
}
export type ReleaseInput = WindowBatch;
/** A day, YYYY-MM-DD. */
export type RollUpInput = string;
export interface RollUpOutput {
  day: string;
  waiting?: string;
}
/** The reports due, and the configuration (read once for the run) they are checked and written with. */
export interface ReportsDueOutput {
  config: ConfigSnapshot;
  due: ReportDue[];
}
export type ReportInput = ReportDue & { config: ConfigSnapshot };
export interface ReportOutput {
  period: string;
  paths: string[];
  waiting?: string;
}

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
  const call = (name: string, input: unknown): df.Task =>
    context.df.callActivityWithRetry(name, ACTIVITY_RETRY, input);

  context.df.setCustomStatus({ phase: 'finding windows' });
  const windows = (yield call(CHARGEBACK_ACTIVITIES.find, { asOf } satisfies FindInput)) as string[];

  context.df.setCustomStatus({ phase: 'aggregating', windows: windows.length });
  const outcomes = (yield* all(
    context,
    windows.map((windowId) =>
      call(CHARGEBACK_ACTIVITIES.aggregate, {
        windowId,
        proposedBatch: context.df.instanceId,
        now: context.df.currentUtcDateTime.toISOString(),
      } satisfies AggregateInput),
    ),
  )) as WindowOutcome[];

  // Committed: the raw data goes now, whatever happens to roll-ups and reports; a window claimed
  // before it closed (run-now) is kept for the first run after it closes.
  const final = outcomes.filter((o) => o.final);
  context.df.setCustomStatus({ phase: 'releasing', windows: final.length });
  yield* all(
    context,
    final.map((o) =>
      call(CHARGEBACK_ACTIVITIES.release, { windowId: o.windowId, batch: o.batch } satisfies ReleaseInput),
    ),
  );

  const days = (yield call(CHARGEBACK_ACTIVITIES.daysToRollUp, null)) as string[];
  context.df.setCustomStatus({ phase: 'rolling up', days: days.length });
  const rolledUp = (yield* all(
    context,
    days.map((day) => call(CHARGEBACK_ACTIVITIES.rollUp, day satisfies RollUpInput)),
  )) as RollUpOutput[];

  // The configuration is read once, here: every report of the run follows that one version.
  const { config, due } = (yield call(CHARGEBACK_ACTIVITIES.reportsDue, null)) as ReportsDueOutput;
  const configVersion = config.version;
  context.df.setCustomStatus({ phase: 'reporting', periods: due.length, configVersion });
  const reports = (yield* all(
    context,
    due.map((d) => call(CHARGEBACK_ACTIVITIES.report, { ...d, config } satisfies ReportInput)),
  )) as ReportOutput[];

  const waiting: Waiting[] = [
    ...rolledUp.flatMap((r) =>
      r.waiting === undefined ? [] : [{ step: 'roll-up' as const, period: r.day, problem: r.waiting }],
    ),
    ...reports.flatMap((r) =>
      r.waiting === undefined ? [] : [{ step: 'report' as const, period: r.period, problem: r.waiting }],
    ),
  ];
  const summary: ChargebackRunSummary = {
    asOf,
    configVersion,
    windows: outcomes.map((o) => ({ windowId: o.windowId, batch: o.batch, events: o.events })),
    events: outcomes.reduce((sum, o) => sum + o.events, 0),
    invalidEvents: outcomes.reduce((sum, o) => sum + o.invalidEvents, 0),
    aggregates: outcomes.reduce((sum, o) => sum + o.aggregates, 0),
    reports: reports.flatMap((r) => r.paths).sort(),
    waiting,
  };
  context.df.setCustomStatus(
    waiting.length === 0
      ? { phase: 'done', configVersion }
      : {
          phase: 'done, reports waiting',
          configVersion,
          waiting: [...new Set(waiting.map((w) => w.problem))],
        },
  );
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
  (await appServices())
    .chargeback()
    .aggregateWindow(input.windowId, input.proposedBatch, logger(context), new Date(input.now));

export const releaseBatch: ActivityHandler = async (batch: ReleaseInput) =>
  (await appServices()).chargeback().releaseBatch(batch);

export const daysToRollUp: ActivityHandler = async () => (await appServices()).chargeback().daysToRollUp();

/**
 * A step an admin must unblock returns why instead of failing: retrying it within the run cannot
 * help, and the next run tries again. The problem is logged as an error (Application Insights).
 */
async function orWaiting<T>(
  context: InvocationContext,
  what: string,
  step: () => Promise<T>,
): Promise<T | { waiting: string }> {
  try {
    return await step();
  } catch (error) {
    if (!(error instanceof ConfigurationProblem)) throw error;
    context.error(`CHARGEBACK_WAITING ${what}: ${error.message}`);
    return { waiting: error.message };
  }
}

export const rollUpDay: ActivityHandler = async (
  day: RollUpInput,
  context: InvocationContext,
): Promise<RollUpOutput> => {
  const steps = (await appServices()).chargeback();
  const result = await orWaiting(context, `roll-up of ${day}`, () => steps.rollUpDay(day));
  return 'waiting' in result ? { day, waiting: result.waiting } : { day };
};

export const reportsDue: ActivityHandler = async (
  _input: unknown,
  context: InvocationContext,
): Promise<ReportsDueOutput> => {
  const services = await appServices();
  const steps = services.chargeback();
  await reconcileBudgets(services, context);
  const config = await steps.configSnapshot();
  return { config, due: await steps.reportsDue(config) };
};

/**
 * After the run's roll-ups: budget spend of this month and the last is at least what the
 * chargeback committed (see BudgetGate.reconcile). A raise means counters had been lost; it is
 * logged. A failure here never holds the run's reports up: the next run tries again.
 */
async function reconcileBudgets(services: AppServices, context: InvocationContext): Promise<void> {
  const now = new Date();
  const months = [monthOf(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1))), monthOf(now)];
  try {
    for (const month of months) {
      const rows = await services.chargeback().committedRows(month);
      for (const raised of await services.budgets().reconcile(month, rows)) {
        const scope = raised.scope.appId
          ? `${raised.scope.department}/${raised.scope.appId}`
          : raised.scope.department;
        context.warn(
          `BUDGET_SPEND_RAISED ${month} ${scope}: the counter held ${raised.fromMicros} µUSD, the committed usage is ${raised.toMicros} µUSD`,
        );
      }
    }
  } catch (error) {
    context.warn(`BUDGET_RECONCILE_FAILED: ${ensureError(error).message}; the next run tries again.`);
  }
}

export const writeReports: ActivityHandler = async (
  due: ReportInput,
  context: InvocationContext,
): Promise<ReportOutput> => {
  const steps = (await appServices()).chargeback();
  const { config, ...period } = due;
  const result = await orWaiting(context, `reports of ${due.period}`, () =>
    steps.writePeriodReports(period, config),
  );
  return Array.isArray(result)
    ? { period: due.period, paths: result }
    : { period: due.period, paths: [], waiting: result.waiting };
};

/** A chargeback run that is still going, if any (a long catch-up, or one an admin started). */
async function runInProgress(client: df.DurableClient): Promise<string | undefined> {
  const running = await client.getStatusBy({
    runtimeStatus: [
      df.OrchestrationRuntimeStatus.Running,
      df.OrchestrationRuntimeStatus.Pending,
      df.OrchestrationRuntimeStatus.ContinuedAsNew,
    ],
  });
  return running.find((status) => status.name === CHARGEBACK_ORCHESTRATION)?.instanceId;
}

/**
 * Starts a chargeback run under `instanceId`, unless one is in progress: runs never overlap (the
 * next one picks up whatever is left). Returns the run in progress instead, if there is one.
 */
export async function startChargebackRun(
  client: df.DurableClient,
  instanceId: string,
  input?: RunInput,
): Promise<{ started: string } | { running: string }> {
  const running = await runInProgress(client);
  if (running !== undefined) return { running };
  await client.startNew(CHARGEBACK_ORCHESTRATION, { instanceId, ...(input ? { input } : {}) });
  return { started: instanceId };
}

/** One run per quarter hour, by id; never two at once. */
export async function chargebackTimer(_timer: Timer, context: InvocationContext): Promise<void> {
  const client = df.getClient(context);
  // A timer that fires twice for the same slot starts nothing new.
  const instanceId = runInstanceId(new Date());
  const existing = await client.getStatus(instanceId).catch(() => undefined);
  if (existing?.runtimeStatus) {
    context.log(`Chargeback run ${instanceId} already exists (${existing.runtimeStatus}).`);
    return;
  }
  const result = await startChargebackRun(client, instanceId);
  context.log(
    'running' in result
      ? `Chargeback run ${result.running} is still in progress; not starting another.`
      : `Started chargeback run ${instanceId}.`,
  );
}

df.app.orchestration(CHARGEBACK_ORCHESTRATION, chargebackOrchestrator);
df.app.activity(CHARGEBACK_ACTIVITIES.find, { handler: findWindows });
df.app.activity(CHARGEBACK_ACTIVITIES.aggregate, { handler: aggregateWindow });
df.app.activity(CHARGEBACK_ACTIVITIES.release, { handler: releaseBatch });
df.app.activity(CHARGEBACK_ACTIVITIES.daysToRollUp, { handler: daysToRollUp });
df.app.activity(CHARGEBACK_ACTIVITIES.rollUp, { handler: rollUpDay });
df.app.activity(CHARGEBACK_ACTIVITIES.reportsDue, { handler: reportsDue });
df.app.activity(CHARGEBACK_ACTIVITIES.report, { handler: writeReports });

app.timer('chargebackTimer', {
  // At the start of every window (0 */15 * * * *): six-field NCRONTAB, UTC.
  schedule: `0 */${WINDOW_MINUTES} * * * *`,
  extraInputs: [df.input.durableClient()],
  handler: chargebackTimer,
});
