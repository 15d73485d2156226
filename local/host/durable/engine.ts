import { randomUUID } from 'node:crypto';
import type { OrchestratorAction, OrchestratorState, HistoryEvent, RetryOptionsWire } from './history';
import { ActionType, EventType, historyEvent, retryDelayMs, uniqueLeafActions } from './history';

export type RuntimeStatus = 'Pending' | 'Running' | 'Completed' | 'Failed' | 'Terminated' | 'ContinuedAsNew';

/** Every status a query may ask for, as the Durable extension names them; this engine never reaches the extra ones. */
export type QueryRuntimeStatus = RuntimeStatus | 'Canceled' | 'Suspended' | 'Unknown';

/** The filters of the client's `getStatusBy`; every one given must match. */
export interface InstanceQuery {
  /** Any of these; an empty list filters nothing. */
  runtimeStatus?: readonly QueryRuntimeStatus[];
  /** Created at or after this time. */
  createdTimeFrom?: Date;
  /** Created at or before this time. */
  createdTimeTo?: Date;
}

export interface InstanceStatus {
  name: string;
  instanceId: string;
  createdTime: string;
  lastUpdatedTime: string;
  input: unknown;
  output: unknown;
  runtimeStatus: RuntimeStatus;
  customStatus: unknown;
  history?: unknown[];
}

/** How the engine reaches the app's orchestrator and activity functions (provided by the host). */
export interface DurableFunctionInvoker {
  hasOrchestrator(name: string): boolean;
  hasActivity(name: string): boolean;
  runOrchestrator(name: string, binding: Record<string, unknown>): Promise<OrchestratorState>;
  runActivity(name: string, input: unknown): Promise<unknown>;
}

/**
 * Sees every attempt of every activity, for fault injection in tests. Whatever it throws fails the
 * attempt exactly as the activity throwing would: TaskFailed in history, retried under RetryOptions.
 */
export interface ActivityInterceptor {
  /** Runs before the activity; a throw fails this attempt as if the activity had thrown. */
  before?(activity: string, input: unknown): void | Promise<void>;
  /** Runs after the activity succeeded (its side effects are done); a throw fails the attempt anyway (a crash after commit). */
  after?(activity: string, input: unknown, output: unknown): void | Promise<void>;
}

export class InstanceConflictError extends Error {}
export class UnknownFunctionError extends Error {}

const OUT_OF_PROC_LABEL = '\n\n$OutOfProcData$:';
const TERMINAL: ReadonlySet<RuntimeStatus> = new Set(['Completed', 'Failed', 'Terminated']);

interface PendingRetry {
  kind: 'activity' | 'subOrchestration';
  functionName: string;
  input: unknown;
  options: RetryOptionsWire;
  /** Attempts made so far, counted the way the library's RetryableTask counts them. */
  attemptNumber: number;
  waitingOnTimer: boolean;
  subInstanceId?: string;
}

interface Instance {
  instanceId: string;
  name: string;
  input: unknown;
  output: unknown;
  customStatus: unknown;
  status: RuntimeStatus;
  createdTime: Date;
  lastUpdatedTime: Date;
  history: HistoryEvent[];
  inbox: HistoryEvent[];
  /** Mirror of the library's sequence counter: ids must be handed out in exactly its order. */
  nextSequence: number;
  /** Leaf actions already acted on; the library reports every action from the start on each replay. */
  leafActionsSeen: number;
  retries: Map<number, PendingRetry>;
  /** The generation matters: a child started before continueAsNew must not answer the next one. */
  parent?: { instanceId: string; taskId: number; generation: number };
  busy: boolean;
  generation: number;
  waiters: Array<() => void>;
}

/**
 * Runs durable orchestrations through the durable-functions library's own replay engine, doing the
 * host extension's part: keeping history, scheduling activities, sub-orchestrations and timers,
 * retrying per RetryOptions, and feeding completions back one event per episode.
 */
export class DurableEngine {
  readonly #instances = new Map<string, Instance>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #inFlight = new Set<Promise<unknown>>();
  #stopped = false;
  #interceptor: ActivityInterceptor | undefined;

  constructor(
    private readonly invoker: DurableFunctionInvoker,
    private readonly log: (message: string) => void = () => undefined,
  ) {}

  startNew(name: string, options: { instanceId?: string; input?: unknown } = {}): string {
    if (!this.invoker.hasOrchestrator(name)) {
      throw new UnknownFunctionError(
        `The function '${name}' doesn't exist, is disabled, or is not an orchestrator function.`,
      );
    }
    const instanceId = options.instanceId ?? randomUUID().replace(/-/g, '');
    const existing = this.#instances.get(instanceId);
    if (existing && !TERMINAL.has(existing.status)) {
      throw new InstanceConflictError(
        `An instance with ID '${instanceId}' already exists and is ${existing.status.toLowerCase()}.`,
      );
    }
    const now = new Date();
    const instance: Instance = {
      instanceId,
      name,
      input: options.input ?? null,
      output: null,
      customStatus: null,
      status: 'Pending',
      createdTime: now,
      lastUpdatedTime: now,
      history: [],
      inbox: [
        historyEvent(EventType.ExecutionStarted, {
          Name: name,
          Input: JSON.stringify(options.input ?? null),
        }),
      ],
      nextSequence: 0,
      leafActionsSeen: 0,
      retries: new Map(),
      busy: false,
      generation: (existing?.generation ?? 0) + 1,
      waiters: existing?.waiters ?? [],
    };
    this.#instances.set(instanceId, instance);
    this.#schedule(instance);
    return instanceId;
  }

  getStatus(
    instanceId: string,
    options: { showHistory?: boolean; showInput?: boolean } = {},
  ): InstanceStatus | undefined {
    const instance = this.#instances.get(instanceId);
    return instance ? this.#toStatus(instance, options) : undefined;
  }

  list(query: InstanceQuery = {}): InstanceStatus[] {
    const { runtimeStatus, createdTimeFrom, createdTimeTo } = query;
    const statuses = runtimeStatus?.length ? new Set<string>(runtimeStatus) : undefined;
    return [...this.#instances.values()]
      .filter(
        (instance) =>
          (!statuses || statuses.has(instance.status)) &&
          (!createdTimeFrom || instance.createdTime.getTime() >= createdTimeFrom.getTime()) &&
          (!createdTimeTo || instance.createdTime.getTime() <= createdTimeTo.getTime()),
      )
      .map((instance) => this.#toStatus(instance, {}));
  }

  /** Replaces the activity interceptor; `undefined` removes it. Applies from the next attempt on. */
  interceptActivities(interceptor: ActivityInterceptor | undefined): void {
    this.#interceptor = interceptor;
  }

  raiseEvent(instanceId: string, eventName: string, data: unknown): boolean {
    const instance = this.#instances.get(instanceId);
    if (!instance || TERMINAL.has(instance.status)) return false;
    this.#deliver(
      instance,
      historyEvent(EventType.EventRaised, { Name: eventName, Input: JSON.stringify(data ?? null) }),
    );
    return true;
  }

  terminate(instanceId: string, reason: string): boolean {
    const instance = this.#instances.get(instanceId);
    if (!instance || TERMINAL.has(instance.status)) return false;
    this.#finish(instance, 'Terminated', reason);
    return true;
  }

  /** Resolves with the final status once the instance is Completed, Failed or Terminated. */
  async waitForCompletion(instanceId: string, timeoutMs = 30_000): Promise<InstanceStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const instance = this.#instances.get(instanceId);
      if (instance && TERMINAL.has(instance.status)) return this.#toStatus(instance, {});
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new Error(`Orchestration instance '${instanceId}' did not complete within ${timeoutMs} ms.`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(remaining, 1000));
        if (instance) {
          instance.waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        }
      });
    }
  }

  /** Stops timers and waits for activities already running, so the host can shut down cleanly. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    await Promise.allSettled([...this.#inFlight]);
  }

  #toStatus(instance: Instance, options: { showHistory?: boolean; showInput?: boolean }): InstanceStatus {
    const status: InstanceStatus = {
      name: instance.name,
      instanceId: instance.instanceId,
      createdTime: instance.createdTime.toISOString(),
      lastUpdatedTime: instance.lastUpdatedTime.toISOString(),
      input: options.showInput === false ? null : instance.input,
      output: instance.output,
      runtimeStatus: instance.status,
      customStatus: instance.customStatus,
    };
    if (options.showHistory) {
      status.history = instance.history
        .filter(
          (e) =>
            e.EventType !== EventType.OrchestratorStarted && e.EventType !== EventType.OrchestratorCompleted,
        )
        .map((e) => ({ ...e, EventType: eventTypeName(e.EventType), Timestamp: e.Timestamp.toISOString() }));
    }
    return status;
  }

  #deliver(instance: Instance, event: HistoryEvent, generation = instance.generation): void {
    if (this.#stopped || generation !== instance.generation || TERMINAL.has(instance.status)) return;
    instance.inbox.push(event);
    this.#schedule(instance);
  }

  #schedule(instance: Instance): void {
    if (instance.busy || this.#stopped) return;
    instance.busy = true;
    setImmediate(() => {
      this.#drain(instance)
        .catch((error: unknown) => {
          this.#finish(instance, 'Failed', `Local durable host error: ${errorMessage(error)}`);
        })
        .finally(() => {
          instance.busy = false;
          if (instance.inbox.length > 0 && !TERMINAL.has(instance.status)) this.#schedule(instance);
        });
    });
  }

  async #drain(instance: Instance): Promise<void> {
    while (instance.inbox.length > 0 && !TERMINAL.has(instance.status) && !this.#stopped) {
      // One new event per episode keeps the sequence numbers we hand out in lockstep with the
      // library's: it allocates retry ids while processing the event, then user code runs.
      const event = instance.inbox.shift() as HistoryEvent;
      await this.#runEpisode(instance, event);
    }
  }

  async #runEpisode(instance: Instance, event: HistoryEvent): Promise<void> {
    const generation = instance.generation;
    for (const old of instance.history) old.IsPlayed = true;
    const episodeEvents: HistoryEvent[] = [historyEvent(EventType.OrchestratorStarted), event];
    episodeEvents.push(...this.#mirrorRetryBookkeeping(instance, event));
    instance.history.push(...episodeEvents);
    if (instance.status === 'Pending') instance.status = 'Running';

    let state: OrchestratorState;
    let failure: string | undefined;
    try {
      state = await this.invoker.runOrchestrator(instance.name, {
        history: instance.history,
        input: instance.input,
        instanceId: instance.instanceId,
        isReplaying: instance.history.some((e) => e.IsPlayed),
        parentInstanceId: instance.parent?.instanceId,
        upperSchemaVersion: 3,
        maximumShortTimerDuration: '6.00:00:00',
        longRunningTimerIntervalDuration: '3.00:00:00',
        defaultHttpAsyncRequestSleepTimeMillseconds: 30000,
      });
    } catch (error) {
      const parsed = parseOrchestratorFailure(error);
      state = parsed.state ?? { isDone: false, actions: [] };
      failure = parsed.message;
    }
    if (generation !== instance.generation || TERMINAL.has(instance.status)) return;

    instance.history.push(historyEvent(EventType.OrchestratorCompleted));
    instance.customStatus = state.customStatus ?? null; // setCustomStatus(null) clears it
    instance.lastUpdatedTime = new Date();

    const leaves = uniqueLeafActions((state.actions ?? []).flat());
    const newActions = leaves.slice(instance.leafActionsSeen);
    instance.leafActionsSeen = leaves.length;

    if (failure !== undefined) {
      this.#finish(instance, 'Failed', `Orchestrator function '${instance.name}' failed: ${failure}`);
      return;
    }
    const continueAsNew = newActions.find((a) => a.actionType === ActionType.ContinueAsNew);
    if (state.isDone && continueAsNew) {
      this.#continueAsNew(instance, continueAsNew.input);
      return;
    }
    for (const action of newActions) this.#schedulAction(instance, action);
    if (state.isDone) this.#finish(instance, 'Completed', state.output ?? null);
  }

  /** Does what the library's RetryableTask expects of the host for a failed attempt or a retry timer. */
  #mirrorRetryBookkeeping(instance: Instance, event: HistoryEvent): HistoryEvent[] {
    const failed =
      event.EventType === EventType.TaskFailed ||
      event.EventType === EventType.SubOrchestrationInstanceFailed;
    if (failed) {
      const taskId = event.TaskScheduledId as number;
      const retry = instance.retries.get(taskId);
      if (!retry || retry.waitingOnTimer) return [];
      instance.retries.delete(taskId);
      const timerId = instance.nextSequence++;
      const fireAt = new Date(Date.now() + retryDelayMs(retry.options, retry.attemptNumber));
      retry.attemptNumber += 1;
      retry.waitingOnTimer = true;
      instance.retries.set(timerId, retry);
      this.#startTimer(instance, timerId, fireAt);
      return [historyEvent(EventType.TimerCreated, { FireAt: fireAt }, timerId)];
    }
    if (event.EventType === EventType.TimerFired) {
      const timerId = event.TimerId as number;
      const retry = instance.retries.get(timerId);
      if (!retry) return [];
      instance.retries.delete(timerId);
      if (retry.attemptNumber > retry.options.maxNumberOfAttempts) return [];
      const taskId = instance.nextSequence++;
      retry.waitingOnTimer = false;
      instance.retries.set(taskId, retry);
      return [
        this.#dispatch(instance, taskId, retry.kind, retry.functionName, retry.input, retry.subInstanceId),
      ];
    }
    return [];
  }

  #schedulAction(instance: Instance, action: OrchestratorAction): void {
    switch (action.actionType) {
      case ActionType.WaitForExternalEvent:
        return; // keyed by event name, not by sequence number
      case ActionType.CallActivity:
      case ActionType.CallActivityWithRetry:
      case ActionType.CallSubOrchestrator:
      case ActionType.CallSubOrchestratorWithRetry: {
        const taskId = instance.nextSequence++;
        const kind =
          action.actionType === ActionType.CallActivity ||
          action.actionType === ActionType.CallActivityWithRetry
            ? 'activity'
            : 'subOrchestration';
        const functionName = action.functionName ?? '';
        const subInstanceId =
          kind === 'subOrchestration' ? (action.instanceId ?? `${instance.instanceId}:${taskId}`) : undefined;
        if (action.retryOptions) {
          instance.retries.set(taskId, {
            kind,
            functionName,
            input: action.input,
            options: action.retryOptions,
            attemptNumber: 1,
            waitingOnTimer: false,
            subInstanceId,
          });
        }
        instance.history.push(
          this.#dispatch(instance, taskId, kind, functionName, action.input, subInstanceId),
        );
        return;
      }
      case ActionType.CreateTimer: {
        const timerId = instance.nextSequence++;
        const fireAt = new Date(action.fireAt ?? Date.now());
        instance.history.push(historyEvent(EventType.TimerCreated, { FireAt: fireAt }, timerId));
        if (!action.isCanceled) this.#startTimer(instance, timerId, fireAt);
        return;
      }
      default:
        throw new Error(
          `The local durable host does not support action type ${action.actionType} (entities and durable HTTP are not used by this app).`,
        );
    }
  }

  #dispatch(
    instance: Instance,
    taskId: number,
    kind: 'activity' | 'subOrchestration',
    functionName: string,
    input: unknown,
    subInstanceId?: string,
  ): HistoryEvent {
    const generation = instance.generation;
    if (kind === 'activity') {
      const run = this.#runActivity(functionName, input).then(
        (result) =>
          this.#deliver(
            instance,
            historyEvent(EventType.TaskCompleted, { TaskScheduledId: taskId, Result: result }),
            generation,
          ),
        (error: unknown) =>
          this.#deliver(
            instance,
            historyEvent(EventType.TaskFailed, {
              TaskScheduledId: taskId,
              Reason: errorMessage(error),
              Details: error instanceof Error ? (error.stack ?? '') : '',
            }),
            generation,
          ),
      );
      this.#track(run);
      return historyEvent(
        EventType.TaskScheduled,
        { Name: functionName, Input: JSON.stringify(input ?? null) },
        taskId,
      );
    }
    const childId = subInstanceId ?? `${instance.instanceId}:${taskId}`;
    try {
      // Unlike activity inputs, sub-orchestration inputs are not JSON-encoded by the library.
      this.startNew(functionName, { instanceId: childId, input: cloneInput(input) });
      const child = this.#instances.get(childId) as Instance;
      child.parent = { instanceId: instance.instanceId, taskId, generation };
    } catch (error) {
      queueMicrotask(() =>
        this.#deliver(
          instance,
          historyEvent(EventType.SubOrchestrationInstanceFailed, {
            TaskScheduledId: taskId,
            Reason: errorMessage(error),
            Details: '',
          }),
          generation,
        ),
      );
    }
    return historyEvent(
      EventType.SubOrchestrationInstanceCreated,
      { Name: functionName, InstanceId: childId },
      taskId,
    );
  }

  async #runActivity(functionName: string, input: unknown): Promise<string> {
    if (!this.invoker.hasActivity(functionName)) {
      throw new UnknownFunctionError(`The activity function '${functionName}' doesn't exist or is disabled.`);
    }
    const decoded = decodeInput(input);
    const interceptor = this.#interceptor;
    await interceptor?.before?.(functionName, decoded);
    const result = await this.invoker.runActivity(functionName, decoded);
    await interceptor?.after?.(functionName, decoded, result);
    // The library JSON-parses every result; undefined must travel as null.
    return JSON.stringify(result ?? null);
  }

  #startTimer(instance: Instance, timerId: number, fireAt: Date): void {
    const generation = instance.generation;
    // setTimeout fires at once beyond ~24.8 days; longer waits re-arm until the time has come.
    const arm = (): void => {
      const timer = setTimeout(
        () => {
          this.#timers.delete(timer);
          if (fireAt.getTime() > Date.now() + 5) return arm();
          this.#deliver(
            instance,
            historyEvent(EventType.TimerFired, { TimerId: timerId, FireAt: fireAt }),
            generation,
          );
        },
        Math.min(Math.max(0, fireAt.getTime() - Date.now()), 2 ** 31 - 1),
      );
      this.#timers.add(timer);
    };
    arm();
  }

  #continueAsNew(instance: Instance, input: unknown): void {
    instance.generation += 1;
    instance.input = decodeInput(input) ?? null;
    instance.history = [];
    instance.inbox = [
      historyEvent(EventType.ExecutionStarted, {
        Name: instance.name,
        Input: JSON.stringify(instance.input),
      }),
    ];
    instance.nextSequence = 0;
    instance.leafActionsSeen = 0;
    instance.retries.clear();
    instance.status = 'Running';
    instance.lastUpdatedTime = new Date();
  }

  #finish(instance: Instance, status: RuntimeStatus, output: unknown): void {
    instance.status = status;
    instance.output = output;
    instance.inbox = [];
    instance.generation += 1;
    instance.lastUpdatedTime = new Date();
    if (status === 'Failed')
      this.log(`Orchestration '${instance.name}' (${instance.instanceId}) failed: ${String(output)}`);
    const parent = instance.parent && this.#instances.get(instance.parent.instanceId);
    if (parent && instance.parent) {
      const taskId = instance.parent.taskId;
      this.#deliver(
        parent,
        status === 'Completed'
          ? historyEvent(EventType.SubOrchestrationInstanceCompleted, {
              TaskScheduledId: taskId,
              Result: JSON.stringify(output ?? null),
            })
          : historyEvent(EventType.SubOrchestrationInstanceFailed, {
              TaskScheduledId: taskId,
              Reason: String(output),
              Details: `Sub-orchestration '${instance.instanceId}' ended ${status}.`,
            }),
        instance.parent.generation,
      );
    }
    for (const wake of instance.waiters.splice(0)) wake();
  }

  #track(promise: Promise<unknown>): void {
    this.#inFlight.add(promise);
    void promise.finally(() => this.#inFlight.delete(promise));
  }
}

function cloneInput(input: unknown): unknown {
  return input === undefined ? undefined : (JSON.parse(JSON.stringify(input)) as unknown);
}

/** String inputs travel JSON-encoded in actions (the library's Utils.processInput); others as they are. */
function decodeInput(input: unknown): unknown {
  if (typeof input !== 'string')
    return input === undefined ? undefined : (JSON.parse(JSON.stringify(input)) as unknown);
  try {
    return JSON.parse(input) as unknown;
  } catch {
    return input;
  }
}

function parseOrchestratorFailure(error: unknown): { message: string; state?: OrchestratorState } {
  const text = errorMessage(error);
  const at = text.indexOf(OUT_OF_PROC_LABEL);
  if (at < 0) return { message: text };
  try {
    // The library puts the orchestrator's own error in the state; the text before the label is not it.
    const state = JSON.parse(text.slice(at + OUT_OF_PROC_LABEL.length)) as OrchestratorState;
    return { message: state.error ?? text.slice(0, at), state };
  } catch {
    return { message: text.slice(0, at) };
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function eventTypeName(type: number): string {
  return Object.entries(EventType).find(([, value]) => value === type)?.[0] ?? String(type);
}
