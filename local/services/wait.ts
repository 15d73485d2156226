import type { LifelineProcess } from './lifeline';

/**
 * Polls `ready` until it resolves true. Fails early, with the server's own output, when the server
 * exits; on timeout it stops the server first, so that a failed start leaves no process behind.
 */
export async function waitUntilReady(
  name: string,
  server: LifelineProcess,
  ready: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (server.hasExited) throw new Error(`${name} exited during start-up:\n${server.output().trim()}`);
    if (await ready().catch(() => false)) return;
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`${name} did not become ready within ${timeoutMs} ms:\n${server.output().trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
