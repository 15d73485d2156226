import type { LifelineProcess } from './lifeline';

/** Polls `ready` until it resolves true; fails early with the server's own output if it exits. */
export async function waitUntilReady(
  name: string,
  server: LifelineProcess,
  ready: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  let exited = false;
  void server.exited.then(() => (exited = true));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) throw new Error(`${name} exited during start-up:\n${server.output().trim()}`);
    if (await ready().catch(() => false)) return;
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`${name} did not become ready within ${timeoutMs} ms:\n${server.output().trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
