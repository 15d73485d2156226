/**
 * Durable Task history events and orchestrator actions as the durable-functions library reads
 * them. The library does not export these numbers; they are the wire values the Functions host's
 * durable extension sends (see shared notes/local-runtime.md).
 */

export const EventType = {
  ExecutionStarted: 0,
  ExecutionCompleted: 1,
  ExecutionFailed: 2,
  ExecutionTerminated: 3,
  TaskScheduled: 4,
  TaskCompleted: 5,
  TaskFailed: 6,
  SubOrchestrationInstanceCreated: 7,
  SubOrchestrationInstanceCompleted: 8,
  SubOrchestrationInstanceFailed: 9,
  TimerCreated: 10,
  TimerFired: 11,
  OrchestratorStarted: 12,
  OrchestratorCompleted: 13,
  EventRaised: 15,
} as const;

export const ActionType = {
  CallActivity: 0,
  CallActivityWithRetry: 1,
  CallSubOrchestrator: 2,
  CallSubOrchestratorWithRetry: 3,
  ContinueAsNew: 4,
  CreateTimer: 5,
  WaitForExternalEvent: 6,
  CallEntity: 7,
  CallHttp: 8,
  SignalEntity: 9,
  WhenAny: 11,
  WhenAll: 12,
} as const;

export interface HistoryEvent {
  EventType: number;
  EventId: number;
  IsPlayed: boolean;
  Timestamp: Date;
  IsProcessed: boolean;
  [field: string]: unknown;
}

export interface RetryOptionsWire {
  firstRetryIntervalInMilliseconds: number;
  maxNumberOfAttempts: number;
  backoffCoefficient?: number;
  maxRetryIntervalInMilliseconds?: number;
  retryTimeoutInMilliseconds?: number;
}

export interface OrchestratorAction {
  actionType: number;
  functionName?: string;
  input?: unknown;
  retryOptions?: RetryOptionsWire;
  instanceId?: string;
  fireAt?: Date;
  isCanceled?: boolean;
  reason?: string;
  compoundActions?: OrchestratorAction[];
}

export interface OrchestratorState {
  isDone: boolean;
  actions: OrchestratorAction[][];
  output?: unknown;
  error?: string;
  customStatus?: unknown;
}

export function historyEvent(type: number, fields: Record<string, unknown> = {}, eventId = -1): HistoryEvent {
  return {
    EventType: type,
    EventId: eventId,
    IsPlayed: false,
    Timestamp: new Date(),
    IsProcessed: false,
    ...fields,
  };
}

/**
 * Leaf actions in the order the library hands out sequence numbers (compound actions flattened).
 * A task yielded again inside a later Task.all / Task.any appears again as the same action object;
 * it already has its id, so it is listed once.
 */
export function uniqueLeafActions(actions: OrchestratorAction[]): OrchestratorAction[] {
  const seen = new Set<OrchestratorAction>();
  const leaves: OrchestratorAction[] = [];
  const visit = (action: OrchestratorAction): void => {
    if (action.actionType === ActionType.WhenAll || action.actionType === ActionType.WhenAny) {
      for (const child of action.compoundActions ?? []) visit(child);
    } else if (!seen.has(action)) {
      seen.add(action);
      leaves.push(action);
    }
  };
  actions.forEach(visit);
  return leaves;
}

export function retryDelayMs(options: RetryOptionsWire, failedAttempt: number): number {
  const coefficient = options.backoffCoefficient ?? 1;
  const delay = options.firstRetryIntervalInMilliseconds * Math.pow(coefficient, failedAttempt - 1);
  const cap = options.maxRetryIntervalInMilliseconds;
  return cap !== undefined && cap > 0 ? Math.min(delay, cap) : delay;
}
