import * as df from 'durable-functions';
import type {
  ReleaseInput,
  ReportInput,
  ReportOutput,
  ReportsDueOutput,
} from '../../../functions/chargeback/chargeback-run';
import { CHARGEBACK_ACTIVITIES } from '../../../functions/chargeback/chargeback-run';
import type { InstanceStatus } from '../../../local/host/durable/engine';
import { DurableEngine } from '../../../local/host/durable/engine';
import type {
  HistoryEvent,
  OrchestratorAction,
  OrchestratorState,
} from '../../../local/host/durable/history';
import { ActionType, EventType, uniqueLeafActions } from '../../../local/host/durable/history';
import type { RegisteredFunction } from '../../../local/host/functions-core';
import { registry } from '../../../local/host/functions-core';
import { DEFAULT_CHARGEBACK_CONFIG } from '../../../shared/chargeback/default-config';
import type { ConfigSnapshot } from '../../../shared/chargeback/ports';
import type { ChargebackRunSummary, WindowOutcome } from '../../../shared/chargeback/run';
import { CHARGEBACK_ORCHESTRATION } from '../../../shared/chargeback/run';

/**
 * The chargeback orchestration's sequencing, with no Redis, Azurite or Cosmos DB: the real
 * orchestrator, as `df.app.orchestration` registered it (jest maps `@azure/functions-core` to the
 * local host's registry), is driven through the durable-functions library's own replay engine by
 * the local durable engine (local/host/durable), and the activities are stubs that record
 * every attempt. Timers are faked, so the retry back-off (2 s, doubling) costs no wall time; the
 * engine's setImmediate scheduling stays real.
 */

// The composition root (Redis, Cosmos DB, Blob clients) is never reached: the activities are stubs.
jest.mock('../../../shared/config/composition', () => ({
  appServices: () => Promise.reject(new Error('the orchestrator test uses stub activities')),
}));

type ActivityName = (typeof CHARGEBACK_ACTIVITIES)[keyof typeof CHARGEBACK_ACTIVITIES];
const {
  find: FIND,
  aggregate: AGGREGATE,
  release: RELEASE,
  daysToRollUp: DAYS,
  rollUp: ROLL_UP,
  reportsDue: DUE,
  report: REPORT,
} = CHARGEBACK_ACTIVITIES;
const ACTIVITY_NAMES: readonly string[] = Object.values(CHARGEBACK_ACTIVITIES);

const START = new Date('2026-03-16T09:17:03.000Z');
const INSTANCE = 'chargeback-20260316T0915Z';
/** A batch claimed by an earlier run that crashed before releasing it: the claim keeps it. */
const EARLIER_BATCH = 'chargeback-20260316T0900Z';

/** What the orchestrator passes to `callActivityWithRetry` (functions/chargeback/chargeback-run.ts). */
const RETRY_WIRE = {
  firstRetryIntervalInMilliseconds: 2_000,
  maxNumberOfAttempts: 5,
  backoffCoefficient: 2,
  maxRetryIntervalInMilliseconds: 60_000,
};

interface ActivityEvent {
  step: 'start' | 'end' | 'fail';
  activity: ActivityName;
  input: unknown;
  /** 1-based attempt of this activity with this input. */
  attempt: number;
  /** Fake clock at the time. */
  at: number;
}

interface Episode {
  /** The binding the engine handed the orchestrator, cloned before the library touched it. */
  binding: Record<string, unknown>;
  state?: OrchestratorState;
  error?: string;
}

type OutcomeFixture = Omit<WindowOutcome, 'batch' | 'final'> & { batch?: string; final?: boolean };

interface Scenario {
  /** What find returns, in its order. */
  windows: string[];
  /** Aggregate's answer per window; batch defaults to the proposed one. */
  outcomes: OutcomeFixture[];
  /** Periods whose report activity answers that it waits for an admin. */
  waiting?: string[];
  /** Fails the first `times` attempts of the matching activity call (every input unless given). */
  fail?: { activity: ActivityName; input?: unknown; times: number };
}

function orchestratorFunction(): RegisteredFunction {
  const fn = registry.functions().find((f) => f.metadata.name === CHARGEBACK_ORCHESTRATION);
  if (!fn) throw new Error(`${CHARGEBACK_ORCHESTRATION} was not registered`);
  return fn;
}

/** Runs one replay of the registered orchestrator on a copy of `binding`, as the Functions host would. */
async function replay(binding: Record<string, unknown>): Promise<OrchestratorState> {
  const context = new df.DummyOrchestrationContext(CHARGEBACK_ORCHESTRATION, undefined, () => undefined);
  return (await orchestratorFunction().callback(structuredClone(binding), context)) as OrchestratorState;
}

/** The report files a period's activity writes; deliberately not in sorted order. */
function filesOf(period: string): string[] {
  return [`reports/${period}/summary.csv`, `reports/${period}/detail.csv`, `reports/${period}/report.json`];
}

function realTick(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

async function ticks(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await realTick();
}

const TERMINAL = new Set(['Completed', 'Failed', 'Terminated']);

class Harness {
  readonly events: ActivityEvent[] = [];
  readonly episodes: Episode[] = [];
  readonly engineLog: string[] = [];
  readonly engine: DurableEngine;
  #progress = 0;
  readonly #attempts = new Map<string, number>();

  constructor(private readonly scenario: Scenario) {
    this.engine = new DurableEngine(
      {
        hasOrchestrator: (name) => name === CHARGEBACK_ORCHESTRATION,
        hasActivity: (name) => ACTIVITY_NAMES.includes(name),
        runOrchestrator: (_name, binding) => this.#orchestrate(binding),
        runActivity: (name, input) => this.#activity(name as ActivityName, input),
      },
      (message) => this.engineLog.push(message),
    );
  }

  /** Starts the run and drives it to a terminal state, firing (fake) retry timers only when nothing else can happen. */
  async run(input?: unknown): Promise<InstanceStatus> {
    this.engine.startNew(CHARGEBACK_ORCHESTRATION, { instanceId: INSTANCE, input });
    for (let round = 0; round < 200; round++) {
      await this.#settle();
      const status = this.engine.getStatus(INSTANCE);
      if (status && TERMINAL.has(status.runtimeStatus)) return status;
      if (jest.getTimerCount() === 0) throw new Error(`stuck: ${JSON.stringify(status)}`);
      jest.advanceTimersToNextTimer();
    }
    throw new Error('the run did not finish');
  }

  calls(activity: ActivityName, step: ActivityEvent['step'] = 'start'): unknown[] {
    return this.events.filter((e) => e.activity === activity && e.step === step).map((e) => e.input);
  }

  indexes(activity: ActivityName, step: ActivityEvent['step']): number[] {
    return this.events.flatMap((e, i) => (e.activity === activity && e.step === step ? [i] : []));
  }

  history(): Array<{ EventType: string; Name?: unknown; Input?: unknown }> {
    return (this.engine.getStatus(INSTANCE, { showHistory: true })?.history ?? []) as Array<{
      EventType: string;
      Name?: unknown;
      Input?: unknown;
    }>;
  }

  /** Leaf actions of the last episode: everything the orchestrator ever asked for, in order. */
  lastActions(): OrchestratorAction[] {
    const last = this.episodes.at(-1)?.state;
    return uniqueLeafActions((last?.actions ?? []).flat());
  }

  async #orchestrate(binding: Record<string, unknown>): Promise<OrchestratorState> {
    this.#progress++;
    const episode: Episode = { binding: structuredClone(binding) };
    this.episodes.push(episode);
    try {
      const context = new df.DummyOrchestrationContext(CHARGEBACK_ORCHESTRATION, undefined, () => undefined);
      const state = (await orchestratorFunction().callback(binding, context)) as OrchestratorState;
      episode.state = JSON.parse(JSON.stringify(state)) as OrchestratorState;
      return state;
    } catch (error) {
      episode.error = error instanceof Error ? error.message : String(error);
      throw error;
    } finally {
      this.#progress++;
    }
  }

  async #activity(activity: ActivityName, input: unknown): Promise<unknown> {
    const key = `${activity} ${JSON.stringify(input)}`;
    const attempt = (this.#attempts.get(key) ?? 0) + 1;
    this.#attempts.set(key, attempt);
    const record = (step: ActivityEvent['step']): void => {
      this.#progress++;
      this.events.push({ step, activity, input, attempt, at: Date.now() });
    };
    record('start');
    // Some real latency, so overlapping steps would interleave in the record.
    await ticks(3);
    try {
      const fail = this.scenario.fail;
      if (
        fail &&
        fail.activity === activity &&
        (fail.input === undefined || matches(input, fail.input)) &&
        attempt <= fail.times
      ) {
        throw new Error(`${activity} unavailable (attempt ${attempt})`);
      }
      const result = this.#answer(activity, input);
      record('end');
      return result;
    } catch (error) {
      record('fail');
      throw error;
    }
  }

  #answer(activity: ActivityName, input: unknown): unknown {
    switch (activity) {
      case FIND:
        return [...this.scenario.windows];
      case AGGREGATE: {
        const { windowId, proposedBatch } = input as { windowId: string; proposedBatch: string };
        const fixture = this.scenario.outcomes.find((o) => o.windowId === windowId);
        if (!fixture) throw new Error(`no fixture for window ${windowId}`);
        return {
          ...fixture,
          final: fixture.final ?? true,
          batch: fixture.batch ?? proposedBatch,
        } satisfies WindowOutcome;
      }
      case RELEASE:
        return undefined;
      case DAYS:
        return [...new Set(this.scenario.outcomes.map((o) => o.day))].sort();
      case ROLL_UP:
        return { day: input as string };
      case DUE:
        return { config: CONFIG, due: dueOf(this.scenario) } satisfies ReportsDueOutput;
      case REPORT: {
        const { period } = input as ReportInput;
        return (
          this.scenario.waiting?.includes(period)
            ? { period, paths: [], waiting: 'CHARGEBACK_CONFIG is invalid: (root): bad' }
            : { period, paths: filesOf(period) }
        ) satisfies ReportOutput;
      }
    }
  }

  /** Real event-loop turns until neither the engine nor an activity has done anything for a while. */
  async #settle(): Promise<void> {
    let last = -1;
    let quiet = 0;
    while (quiet < 25) {
      await realTick();
      if (this.#progress === last) quiet++;
      else {
        quiet = 0;
        last = this.#progress;
      }
    }
  }
}

/** Whether an activity's input has every field of `expected` (a primitive: is equal to it). */
function matches(input: unknown, expected: unknown): boolean {
  if (typeof expected !== 'object' || expected === null)
    return JSON.stringify(input) === JSON.stringify(expected);
  return Object.entries(expected).every(
    ([k, v]) => JSON.stringify((input as Record<string, unknown>)[k]) === JSON.stringify(v),
  );
}

/** The configuration the reports-due step read for the run: every report step gets it. */
const CONFIG: ConfigSnapshot = { version: '7', state: { ok: true, config: DEFAULT_CHARGEBACK_CONFIG } };

/** The ledger's answer: the months, then the days, of the scenario's windows. */
function dueOf(scenario: Scenario): Array<{ period: string; version: string }> {
  const months = [...new Set(scenario.outcomes.map((o) => o.month))].sort();
  const days = [...new Set(scenario.outcomes.map((o) => o.day))].sort();
  return [...months, ...days].map((period) => ({ period, version: `v-${period}` }));
}

/** A report step's input: the period due, with the run's configuration. */
const due = (period: string): ReportInput => ({ period, version: `v-${period}`, config: CONFIG });

/** Two windows on two days of March, listed by find latest first; the earlier one keeps an older batch. */
const TWO_DAYS: Scenario = {
  windows: ['20260315T2345Z', '20260314T1000Z'],
  outcomes: [
    {
      windowId: '20260315T2345Z',
      month: '2026-03',
      day: '2026-03-15',
      events: 12,
      invalidEvents: 1,
      aggregates: 4,
    },
    {
      windowId: '20260314T1000Z',
      batch: EARLIER_BATCH,
      month: '2026-03',
      day: '2026-03-14',
      events: 30,
      invalidEvents: 2,
      aggregates: 7,
    },
  ],
};

const TWO_DAYS_SUMMARY: ChargebackRunSummary = {
  asOf: START.toISOString(),
  configVersion: '7',
  windows: [
    { windowId: '20260315T2345Z', batch: INSTANCE, events: 12 },
    { windowId: '20260314T1000Z', batch: EARLIER_BATCH, events: 30 },
  ],
  events: 42,
  invalidEvents: 3,
  aggregates: 11,
  reports: [...filesOf('2026-03'), ...filesOf('2026-03-14'), ...filesOf('2026-03-15')].sort(),
  waiting: [],
};

let harnesses: Harness[] = [];
function harness(scenario: Scenario): Harness {
  const h = new Harness(scenario);
  harnesses.push(h);
  return h;
}

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'], now: START });
});
afterEach(async () => {
  for (const h of harnesses) await h.engine.stop();
  harnesses = [];
  jest.useRealTimers();
});

describe('chargeback orchestration (durable replay, stub activities)', () => {
  it('is registered by the function module as an orchestration trigger', () => {
    const fn = orchestratorFunction();
    expect(Object.values(fn.metadata.bindings).map((b) => b.type)).toContain('orchestrationTrigger');
    for (const name of ACTIVITY_NAMES) {
      const activity = registry.functions().find((f) => f.metadata.name === name);
      expect(Object.values(activity?.metadata.bindings ?? {}).map((b) => b.type)).toContain(
        'activityTrigger',
      );
    }
  });

  it('with no pending windows finds nothing to aggregate, roll up or report', async () => {
    const h = harness({ windows: [], outcomes: [] });
    const final = await h.run();

    expect(final.runtimeStatus).toBe('Completed');
    expect(final.output).toEqual({
      asOf: START.toISOString(),
      configVersion: '7',
      windows: [],
      events: 0,
      invalidEvents: 0,
      aggregates: 0,
      reports: [],
      waiting: [],
    } satisfies ChargebackRunSummary);
    expect(final.customStatus).toEqual({ phase: 'done', configVersion: '7' });
    // Find, then the ledger's two questions (a report left waiting by an earlier run is retried).
    expect(h.events.map((e) => `${e.step} ${e.activity}`)).toEqual([
      `start ${FIND}`,
      `end ${FIND}`,
      `start ${DAYS}`,
      `end ${DAYS}`,
      `start ${DUE}`,
      `end ${DUE}`,
    ]);
    expect(h.calls(FIND)).toEqual([{ asOf: START.toISOString() }]);
    const scheduled = h.history().filter((e) => e.EventType === 'TaskScheduled');
    expect(scheduled.map((e) => e.Name)).toEqual([FIND, DAYS, DUE]);
    expect(h.lastActions().map((a) => a.functionName)).toEqual([FIND, DAYS, DUE]);
    // The start, then one per completed task; the empty lists did not cost an episode each.
    expect(h.episodes).toHaveLength(4);
  });

  it('aggregates every window, releases each once committed, then rolls up days and reports month then days', async () => {
    const h = harness(TWO_DAYS);
    const final = await h.run();

    expect(final.runtimeStatus).toBe('Completed');
    expect(final.output).toEqual(TWO_DAYS_SUMMARY);
    const summary = final.output as ChargebackRunSummary;
    expect(summary.reports).toEqual([...summary.reports].sort());

    // Phases in order, each activity once per item, with the inputs the orchestrator is meant to pass.
    expect(h.calls(FIND)).toEqual([{ asOf: START.toISOString() }]);
    expect(h.calls(AGGREGATE)).toEqual([
      { windowId: '20260315T2345Z', proposedBatch: INSTANCE, now: START.toISOString() },
      { windowId: '20260314T1000Z', proposedBatch: INSTANCE, now: START.toISOString() },
    ]);
    expect(h.calls(ROLL_UP)).toEqual(['2026-03-14', '2026-03-15']);
    expect(h.calls(REPORT)).toEqual([due('2026-03'), due('2026-03-14'), due('2026-03-15')]);
    // The batch the aggregate step actually claimed, not the proposed one.
    expect(h.calls(RELEASE)).toEqual([
      { windowId: '20260315T2345Z', batch: INSTANCE },
      { windowId: '20260314T1000Z', batch: EARLIER_BATCH },
    ] satisfies ReleaseInput[]);

    // Global order: find < aggregates < releases < days < roll-ups < due < reports, and the
    // fan-outs really run side by side.
    const [findEnd] = h.indexes(FIND, 'end');
    const aggregateStarts = h.indexes(AGGREGATE, 'start');
    const aggregateEnds = h.indexes(AGGREGATE, 'end');
    const releaseStarts = h.indexes(RELEASE, 'start');
    const releaseEnds = h.indexes(RELEASE, 'end');
    const [daysStart] = h.indexes(DAYS, 'start');
    const rollUpStarts = h.indexes(ROLL_UP, 'start');
    const rollUpEnds = h.indexes(ROLL_UP, 'end');
    const [dueStart] = h.indexes(DUE, 'start');
    const [dueEnd] = h.indexes(DUE, 'end');
    const reportStarts = h.indexes(REPORT, 'start');
    const reportEnds = h.indexes(REPORT, 'end');
    expect(Math.min(...aggregateStarts)).toBeGreaterThan(findEnd as number);
    expect(Math.min(...releaseStarts)).toBeGreaterThan(Math.max(...aggregateEnds));
    expect(daysStart).toBeGreaterThan(Math.max(...releaseEnds));
    expect(Math.min(...rollUpStarts)).toBeGreaterThan(daysStart as number);
    expect(dueStart).toBeGreaterThan(Math.max(...rollUpEnds));
    expect(Math.min(...reportStarts)).toBeGreaterThan(dueEnd as number);
    expect(Math.max(...aggregateStarts)).toBeLessThan(Math.min(...aggregateEnds));
    expect(Math.max(...rollUpStarts)).toBeLessThan(Math.min(...rollUpEnds));
    expect(Math.max(...reportStarts)).toBeLessThan(Math.min(...reportEnds));
    expect(h.events.filter((e) => e.step === 'end')).toHaveLength(1 + 2 + 2 + 1 + 2 + 1 + 3);

    // Every activity goes through callActivityWithRetry with the run's RetryOptions.
    const actions = h.lastActions();
    expect(actions.map((a) => a.functionName)).toEqual([
      FIND,
      AGGREGATE,
      AGGREGATE,
      RELEASE,
      RELEASE,
      DAYS,
      ROLL_UP,
      ROLL_UP,
      DUE,
      REPORT,
      REPORT,
      REPORT,
    ]);
    for (const action of actions) {
      expect(action.actionType).toBe(ActionType.CallActivityWithRetry);
      expect(action.retryOptions).toMatchObject(RETRY_WIRE);
    }
    expect(final.customStatus).toEqual({ phase: 'done', configVersion: '7' });
  });

  it('reports every month before any day when the windows span two months', async () => {
    const h = harness({
      windows: ['20260301T0000Z', '20260228T2345Z', '20260301T0015Z'],
      outcomes: [
        {
          windowId: '20260301T0000Z',
          month: '2026-03',
          day: '2026-03-01',
          events: 1,
          invalidEvents: 0,
          aggregates: 1,
        },
        {
          windowId: '20260228T2345Z',
          month: '2026-02',
          day: '2026-02-28',
          events: 2,
          invalidEvents: 0,
          aggregates: 1,
        },
        {
          windowId: '20260301T0015Z',
          month: '2026-03',
          day: '2026-03-01',
          events: 3,
          invalidEvents: 0,
          aggregates: 2,
        },
      ],
    });
    const final = await h.run();

    expect(final.runtimeStatus).toBe('Completed');
    expect(h.calls(REPORT)).toEqual([due('2026-02'), due('2026-03'), due('2026-02-28'), due('2026-03-01')]);
    expect(h.calls(RELEASE)).toHaveLength(3);
    expect(final.output).toMatchObject({ events: 6, invalidEvents: 0, aggregates: 4 });
  });

  describe('asOf', () => {
    it('passes a requested asOf to find, normalised to ISO UTC', async () => {
      const h = harness({ windows: [], outcomes: [] });
      const final = await h.run({ asOf: '2026-03-16T10:30:00+01:00' });

      expect(h.calls(FIND)).toEqual([{ asOf: '2026-03-16T09:30:00.000Z' }]);
      expect((final.output as ChargebackRunSummary).asOf).toBe('2026-03-16T09:30:00.000Z');
    });

    it.each([
      ['an unparseable string', { asOf: 'not a date' }],
      ['a non-string', { asOf: 1_773_652_623_000 }],
      ['an empty input', {}],
      ['no input', undefined],
    ])('falls back to the orchestration time for %s', async (_label, input) => {
      const h = harness({ windows: [], outcomes: [] });
      // The orchestration's own time: the first episode's OrchestratorStarted timestamp.
      const final = await h.run(input);

      const first = h.episodes[0]?.binding.history as HistoryEvent[];
      const started = first.find((e) => e.EventType === EventType.OrchestratorStarted);
      expect(started?.Timestamp.toISOString()).toBe(START.toISOString());
      expect(h.calls(FIND)).toEqual([{ asOf: START.toISOString() }]);
      expect((final.output as ChargebackRunSummary).asOf).toBe(START.toISOString());
    });

    it('keeps the asOf of the first episode even when later episodes run at a later time', async () => {
      // A failed find pushes every later episode 2 s on; asOf must not follow the replay clock.
      const h = harness({ ...TWO_DAYS, fail: { activity: FIND, times: 1 } });
      const final = await h.run();

      expect(h.calls(FIND)).toEqual([{ asOf: START.toISOString() }, { asOf: START.toISOString() }]);
      expect(Date.now()).toBeGreaterThan(START.getTime());
      expect((final.output as ChargebackRunSummary).asOf).toBe(START.toISOString());
    });
  });

  describe('retries', () => {
    it.each([
      ['find', { activity: FIND, times: 1 }],
      [
        'one aggregate',
        { activity: AGGREGATE, input: { windowId: '20260314T1000Z', proposedBatch: INSTANCE }, times: 1 },
      ],
      ['one day report', { activity: REPORT, input: due('2026-03-15'), times: 1 }],
      ['the month report, twice', { activity: REPORT, input: due('2026-03'), times: 2 }],
      ['one roll-up', { activity: ROLL_UP, input: '2026-03-14', times: 1 }],
      ['the ledger', { activity: DUE, times: 1 }],
      [
        'one release',
        { activity: RELEASE, input: { windowId: '20260315T2345Z', batch: INSTANCE }, times: 1 },
      ],
    ] as Array<[string, NonNullable<Scenario['fail']>]>)(
      'retries %s that fails and completes with the same output',
      async (_label, fail) => {
        const h = harness({ ...TWO_DAYS, fail });
        const final = await h.run();

        expect(final.runtimeStatus).toBe('Completed');
        expect(final.output).toEqual(TWO_DAYS_SUMMARY);
        const attempts = h.events.filter(
          (e) =>
            e.step === 'start' &&
            e.activity === fail.activity &&
            (fail.input === undefined || matches(e.input, fail.input)),
        );
        expect(attempts.map((e) => e.attempt)).toEqual(
          Array.from({ length: fail.times + 1 }, (_, i) => i + 1),
        );
        // Back-off: 2 s, then 4 s, after each failed attempt.
        const gaps = attempts.slice(1).map((e, i) => e.at - (attempts[i] as ActivityEvent).at);
        expect(gaps).toEqual([2_000, 4_000].slice(0, fail.times));
        // Still: the same distinct calls, and every release before the first roll-up.
        expect(
          h
            .calls(REPORT, 'end')
            .map((d) => (d as ReportInput).period)
            .sort(),
        ).toEqual(['2026-03', '2026-03-14', '2026-03-15']);
        expect(h.calls(RELEASE, 'end')).toHaveLength(2);
        expect(Math.max(...h.indexes(RELEASE, 'end'))).toBeLessThan(Math.min(...h.indexes(ROLL_UP, 'start')));
      },
    );

    it('fails the run after 5 attempts of a report, with the raw data already released', async () => {
      const h = harness({
        ...TWO_DAYS,
        fail: { activity: REPORT, input: due('2026-03-14'), times: Infinity },
      });
      const final = await h.run();

      expect(final.runtimeStatus).toBe('Failed');
      expect(String(final.output)).toContain(`${REPORT} unavailable (attempt 5)`);
      const attempts = h.events.filter(
        (e) =>
          e.activity === REPORT && (e.input as ReportInput).period === '2026-03-14' && e.step === 'start',
      );
      expect(attempts.map((e) => e.attempt)).toEqual([1, 2, 3, 4, 5]);
      expect(attempts.slice(1).map((e, i) => e.at - (attempts[i] as ActivityEvent).at)).toEqual([
        2_000, 4_000, 8_000, 16_000,
      ]);
      // Committed usage does not wait for reports: both batches were released.
      expect(h.calls(RELEASE, 'end')).toHaveLength(2);
      expect(final.customStatus).toEqual({ phase: 'reporting', periods: 3, configVersion: '7' });
      expect(h.engineLog.join('\n')).toContain('failed');
    });

    it('fails the run after 5 attempts of an aggregate, before any report or release', async () => {
      const h = harness({
        ...TWO_DAYS,
        fail: {
          activity: AGGREGATE,
          input: { windowId: '20260315T2345Z', proposedBatch: INSTANCE },
          times: Infinity,
        },
      });
      const final = await h.run();

      expect(final.runtimeStatus).toBe('Failed');
      expect(String(final.output)).toContain(`${AGGREGATE} unavailable (attempt 5)`);
      expect(
        h.calls(AGGREGATE).filter((i) => (i as { windowId: string }).windowId === '20260315T2345Z'),
      ).toHaveLength(5);
      expect(h.calls(REPORT)).toEqual([]);
      expect(h.calls(RELEASE)).toEqual([]);
    });
  });

  describe('a window claimed before it closed (run-now)', () => {
    it('is aggregated, rolled up and reported, but not released: the first run after it closes releases it', async () => {
      const [open, closed] = TWO_DAYS.outcomes as [OutcomeFixture, OutcomeFixture];
      const h = harness({ ...TWO_DAYS, outcomes: [{ ...open, final: false }, closed] });
      const final = await h.run();

      expect(final.runtimeStatus).toBe('Completed');
      expect(h.calls(AGGREGATE)).toHaveLength(2);
      expect(h.calls(RELEASE)).toEqual([{ windowId: '20260314T1000Z', batch: EARLIER_BATCH }]);
      expect(h.calls(ROLL_UP)).toEqual(['2026-03-14', '2026-03-15']);
      expect((final.output as ChargebackRunSummary).windows.map((w) => w.windowId)).toEqual([
        '20260315T2345Z',
        '20260314T1000Z',
      ]);
    });
  });

  describe('waiting for an admin', () => {
    it('completes, says which reports wait and why, and still released every batch', async () => {
      const h = harness({ ...TWO_DAYS, waiting: ['2026-03', '2026-03-15'] });
      const final = await h.run();

      expect(final.runtimeStatus).toBe('Completed');
      const summary = final.output as ChargebackRunSummary;
      expect(summary.waiting).toEqual([
        { step: 'report', period: '2026-03', problem: 'CHARGEBACK_CONFIG is invalid: (root): bad' },
        { step: 'report', period: '2026-03-15', problem: 'CHARGEBACK_CONFIG is invalid: (root): bad' },
      ]);
      expect(summary.reports).toEqual(filesOf('2026-03-14').sort());
      expect(final.customStatus).toEqual({
        phase: 'done, reports waiting',
        configVersion: '7',
        waiting: ['CHARGEBACK_CONFIG is invalid: (root): bad'],
      });
      expect(h.calls(RELEASE, 'end')).toHaveLength(2);
      // A waiting step is an answer, not a failure: it is not retried within the run.
      expect(h.calls(REPORT)).toHaveLength(3);
    });
  });

  describe('replay', () => {
    it('replays the finished history to the same actions and output, with nothing new to schedule', async () => {
      const h = harness(TWO_DAYS);
      const final = await h.run();
      const last = h.episodes.at(-1) as Episode;
      const expected = uniqueLeafActions((last.state?.actions ?? []).flat());

      // Later wall clock: replay must depend on history only.
      jest.setSystemTime(new Date('2027-01-01T00:00:00Z'));
      const first = await replay(last.binding);
      const second = await replay(last.binding);

      for (const state of [first, second]) {
        expect(state.isDone).toBe(true);
        expect(state.output).toEqual(final.output);
        expect(state.customStatus).toEqual({ phase: 'done', configVersion: '7' });
        const leaves = uniqueLeafActions(state.actions.flat());
        expect(JSON.parse(JSON.stringify(leaves))).toEqual(expected);
      }
      // Exactly one action per task the engine scheduled: a replay asks for nothing new.
      const scheduled = h.history().filter((e) => e.EventType === 'TaskScheduled');
      expect(uniqueLeafActions(first.actions.flat())).toHaveLength(scheduled.length);
      expect(scheduled.map((e) => e.Name)).toEqual(expected.map((a) => a.functionName));
    });

    it('asks, episode after episode, for the actions it asked for before plus the new ones', async () => {
      const h = harness({ ...TWO_DAYS, fail: { activity: REPORT, input: due('2026-03-15'), times: 1 } });
      await h.run();

      const lists = h.episodes.map((e) => JSON.stringify(uniqueLeafActions((e.state?.actions ?? []).flat())));
      for (let i = 1; i < lists.length; i++) {
        const before = JSON.parse(lists[i - 1] as string) as unknown[];
        const now = JSON.parse(lists[i] as string) as unknown[];
        expect(now.slice(0, before.length)).toEqual(before);
      }
      // Each mid-run history replays to exactly what the engine recorded for it.
      for (const episode of h.episodes) {
        const again = await replay(episode.binding);
        expect(JSON.parse(JSON.stringify(again))).toEqual(episode.state);
      }
    });
  });
});
