import { randomUUID } from 'node:crypto';
import { InvocationContext } from '@azure/functions';
import type { DurableFunctionInvoker } from './durable/engine';
import type { OrchestratorState } from './durable/history';
import type { RegisteredFunction } from './functions-core';
import { isTriggerBinding, triggerOf } from './loading';
import { describe } from './util';

export type ContextExtras = Partial<ConstructorParameters<typeof InvocationContext>[0]>;

export interface InvocationOptions {
  log: (line: string) => void;
  /** Asked on every invocation: host.json is read when the host starts, after this is built. */
  functionTimeoutMs: () => number | undefined;
  /** What a `durableClient` input binding receives. */
  durableClientData: () => Record<string, unknown>;
}

/** Calls the app's functions the way the Node worker does: a fresh context each time, host.json's timeout. */
export class FunctionRunner {
  readonly #options: InvocationOptions;

  constructor(options: InvocationOptions) {
    this.#options = options;
  }

  context(fn: RegisteredFunction, extras: ContextExtras = {}): InvocationContext {
    const name = fn.metadata.name;
    const context = new InvocationContext({
      invocationId: randomUUID(),
      functionName: name,
      logHandler: (level, ...args) =>
        this.#options.log(`[${name}] ${level}: ${args.map(describe).join(' ')}`),
      options: effectiveOptions(fn),
      ...extras,
    });
    for (const input of context.options.extraInputs) {
      if (input.type === 'durableClient' || input.type === 'orchestrationClient') {
        context.extraInputs.set(input, this.#options.durableClientData());
      }
    }
    return context;
  }

  async invoke(fn: RegisteredFunction, trigger: unknown, context: InvocationContext): Promise<unknown> {
    const timeoutMs = this.#options.functionTimeoutMs();
    const run = Promise.resolve().then(() => fn.callback(trigger, context));
    if (timeoutMs === undefined) return run;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new Error(`Timeout value of ${timeoutMs} ms exceeded by function '${fn.metadata.name}'.`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([run, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** How the durable engine reaches the app's orchestrator and activity functions. */
export function durableInvoker(
  functions: () => ReadonlyMap<string, RegisteredFunction>,
  runner: FunctionRunner,
): DurableFunctionInvoker {
  const find = (name: string, type: string): RegisteredFunction | undefined => {
    const fn = functions().get(name.toLowerCase());
    return fn && triggerOf(fn).type.toLowerCase() === type ? fn : undefined;
  };
  return {
    hasOrchestrator: (name) => find(name, 'orchestrationtrigger') !== undefined,
    hasActivity: (name) => find(name, 'activitytrigger') !== undefined,
    runOrchestrator: async (name, binding) => {
      const fn = find(name, 'orchestrationtrigger') as RegisteredFunction;
      // A fresh context per replay: the library only creates `context.df` when it is missing.
      return (await fn.callback(binding, runner.context(fn))) as OrchestratorState;
    },
    runActivity: async (name, input) => {
      const fn = find(name, 'activitytrigger') as RegisteredFunction;
      return runner.invoke(fn, input, runner.context(fn));
    },
  };
}

/** The `context.options` the Node worker builds from a function's bindings (fromRpcBindings). */
function effectiveOptions(
  fn: RegisteredFunction,
): NonNullable<ConstructorParameters<typeof InvocationContext>[0]>['options'] {
  const extraInputs: Array<{ name: string; type: string }> = [];
  const extraOutputs: Array<{ name: string; type: string }> = [];
  let trigger: { name: string; type: string } | undefined;
  let ret: { name: string; type: string } | undefined;
  for (const [name, binding] of Object.entries(fn.metadata.bindings)) {
    const option = { ...binding, name, type: binding.type };
    if (isTriggerBinding(binding.type)) trigger = option;
    else if (name === '$return') ret = option;
    else if (binding.direction === 'in') extraInputs.push(option);
    else extraOutputs.push(option);
  }
  return { trigger: trigger ?? { name: 'trigger', type: 'unknown' }, return: ret, extraInputs, extraOutputs };
}
