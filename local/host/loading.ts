import type { BindingMetadata, RegisteredFunction } from './functions-core';
import { registry } from './functions-core';
import { describe } from './util';

const TRIGGER = /trigger$/i;

/** Where each function found in the registry goes, by the kind of trigger it has. */
export interface TriggerHandlers {
  http(fn: RegisteredFunction, trigger: BindingMetadata): void;
  timer(fn: RegisteredFunction, trigger: BindingMetadata): void;
}

export function isTriggerBinding(type: string): boolean {
  return TRIGGER.test(type);
}

export function triggerOf(fn: RegisteredFunction): BindingMetadata {
  const trigger = Object.values(fn.metadata.bindings).find((b) => isTriggerBinding(b.type));
  if (!trigger) throw new Error(`Function '${fn.metadata.name}' has no trigger binding.`);
  return trigger;
}

export function routeSystemLog(log: (line: string) => void): void {
  registry.setSystemLog((level, _category, message) => {
    // The worker shows the library's system log from `information` up; debug and trace are noise here.
    if (level !== 'debug' && level !== 'trace') log(`[${level}] ${message}`);
  });
}

/**
 * Loads the app's modules, which register their functions with `@azure/functions-core` as they
 * load, and hands each registration to the part of the host that runs its trigger. Durable
 * triggers are only recorded: the durable engine finds them by name when it needs them.
 * Returns every function by lower-cased name (function names are case-insensitive on the host).
 */
export function loadFunctions(
  entryModules: string[],
  handlers: TriggerHandlers,
): Map<string, RegisteredFunction> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loading the app is what a host does
  for (const entry of entryModules) require(entry);
  const functions = registry.functions();
  if (functions.length === 0) {
    throw new Error(`No functions were registered by ${entryModules.join(', ')}.`);
  }
  const byName = new Map<string, RegisteredFunction>();
  for (const fn of functions) {
    byName.set(fn.metadata.name.toLowerCase(), fn);
    const trigger = triggerOf(fn);
    const type = trigger.type.toLowerCase();
    if (type === 'httptrigger') handlers.http(fn, trigger);
    else if (type === 'timertrigger') handlers.timer(fn, trigger);
    else if (type !== 'orchestrationtrigger' && type !== 'activitytrigger') {
      throw new Error(
        `Function '${fn.metadata.name}' uses trigger '${trigger.type}', which the local host does not run.`,
      );
    }
  }
  return byName;
}

export async function runAppStartHooks(): Promise<void> {
  for (const hook of registry.hooks('appStart')) await hook({ hookData: {}, appHookData: {} });
}

/** A failing hook must not keep the host from shutting down, nor the hooks after it from running. */
export async function runAppTerminateHooks(log: (line: string) => void): Promise<void> {
  for (const hook of registry.hooks('appTerminate')) {
    try {
      await hook({ hookData: {}, appHookData: {} });
    } catch (error) {
      log(`appTerminate hook failed: ${describe(error)}`);
    }
  }
}
