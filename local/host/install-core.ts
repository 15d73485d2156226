import Module from 'node:module';

/**
 * Makes `require('@azure/functions-core')` resolve to the local host's implementation, the way the
 * Azure Functions Node worker provides that module to `@azure/functions`. Must run before the app
 * (or `@azure/functions`) is first loaded.
 */
export function installFunctionsCore(): void {
  const moduleWithResolver = Module as unknown as {
    _resolveFilename: (request: string, ...rest: unknown[]) => string;
  };
  const original = moduleWithResolver._resolveFilename;
  const target = require.resolve('./functions-core');
  if ((original as { localCoreInstalled?: boolean }).localCoreInstalled) return;
  const patched = function (this: unknown, request: string, ...rest: unknown[]): string {
    if (request === '@azure/functions-core') return target;
    return original.call(this, request, ...rest);
  };
  (patched as { localCoreInstalled?: boolean }).localCoreInstalled = true;
  moduleWithResolver._resolveFilename = patched;
}
