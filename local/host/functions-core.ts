/**
 * The `@azure/functions-core` module that the Azure Functions Node worker injects at run time.
 *
 * `@azure/functions` v4 looks this module up lazily on its first `app.*` call and hands every
 * registration to it. Providing it ourselves lets the local host load the app's own registration
 * code unchanged, exactly as the real worker does. Node resolution is redirected here by
 * `install-core.ts`; jest does it with `moduleNameMapper`.
 */

export type HookName = 'appStart' | 'appTerminate' | 'preInvocation' | 'postInvocation' | 'log';

export interface BindingMetadata {
  type: string;
  direction: 'in' | 'out' | 'inout';
  name?: string;
  [option: string]: unknown;
}

export interface FunctionMetadata {
  name: string;
  bindings: Record<string, BindingMetadata>;
  retryOptions?: unknown;
  [property: string]: unknown;
}

export type FunctionCallback = (...args: unknown[]) => unknown;
export type HookCallback = (context: Record<string, unknown>) => unknown;

export interface RegisteredFunction {
  metadata: FunctionMetadata;
  callback: FunctionCallback;
}

export class Disposable {
  readonly #dispose: () => void;
  constructor(dispose: () => void) {
    this.#dispose = dispose;
  }
  dispose(): void {
    this.#dispose();
  }
}

const functions = new Map<string, RegisteredFunction>();
const hooks = new Map<HookName, HookCallback[]>();
let programmingModel: unknown;

export const version = '3.10.1-local';
export const hostVersion = '4.1000.0-local';

export function registerFunction(metadata: FunctionMetadata, callback: FunctionCallback): Disposable {
  const key = metadata.name.toLowerCase();
  if (functions.has(key)) {
    throw new Error(`A function with the name "${metadata.name}" has already been registered.`);
  }
  functions.set(key, { metadata, callback });
  return new Disposable(() => functions.delete(key));
}

export function registerHook(name: HookName, callback: HookCallback): Disposable {
  const list = hooks.get(name) ?? [];
  list.push(callback);
  hooks.set(name, list);
  return new Disposable(() => {
    const current = hooks.get(name) ?? [];
    hooks.set(
      name,
      current.filter((cb) => cb !== callback),
    );
  });
}

export function setProgrammingModel(model: unknown): void {
  programmingModel = model;
}

export function getProgrammingModel(): unknown {
  return programmingModel;
}

type CoreLogLevel = 'trace' | 'debug' | 'information' | 'warning' | 'error' | 'critical' | 'none';
let systemLog: (level: CoreLogLevel, category: string, message: string) => void = (
  level,
  _category,
  message,
) => {
  if (level === 'error' || level === 'critical' || level === 'warning') console.error(message);
};

export function log(level: CoreLogLevel, category: string, message: string): void {
  systemLog(level, category, message);
}

/** Host-side API: not part of the worker contract, used only by the local host. */
export const registry = {
  functions(): RegisteredFunction[] {
    return [...functions.values()];
  },
  hooks(name: HookName): HookCallback[] {
    return [...(hooks.get(name) ?? [])];
  },
  setSystemLog(logger: typeof systemLog): void {
    systemLog = logger;
  },
};
