import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';

/**
 * Runs a server under a small bash wrapper that holds a pipe to this process on its stdin: when this
 * process dies, however it dies (SIGKILL, a crashed jest worker), the pipe closes and the wrapper
 * stops the server. Servers started for tests and `npm start` therefore never outlive us.
 */
export const LIFELINE_WRAPPER = `
exec 3<&0
"$@" </dev/null &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
trap 'kill -KILL "$child" 2>/dev/null' USR1
( read -r _ <&3; kill -TERM "$child" 2>/dev/null; sleep 5; kill -KILL "$child" 2>/dev/null ) &
watcher=$!
exec 3<&-
status=0
while :; do
  wait "$child"; status=$?
  kill -0 "$child" 2>/dev/null || break
done
kill "$watcher" 2>/dev/null
exit "$status"
`;

export interface LifelineProcess {
  readonly wrapper: ChildProcess;
  /** Last lines the server wrote, for error messages. */
  output(): string;
  /** Has the server exited? */
  readonly exited: Promise<number | null>;
  /** Graceful stop (SIGTERM to the server); resolves once it has exited. */
  stop(): Promise<void>;
  /** SIGKILL the server, to simulate a crash; resolves once it has exited. */
  kill(): Promise<void>;
}

export function spawnWithLifeline(
  command: string,
  args: string[],
  options: { cwd?: string } = {},
): LifelineProcess {
  const wrapper = spawn('bash', ['-c', LIFELINE_WRAPPER, 'lifeline', command, ...args], {
    cwd: options.cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let tail = '';
  const collect = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  };
  wrapper.stdout?.on('data', collect);
  wrapper.stderr?.on('data', collect);
  // The pipe must not keep our event loop alive, and must never be written to.
  wrapper.stdin?.on('error', () => undefined);
  const exited = new Promise<number | null>((resolve) => {
    if (wrapper.exitCode !== null) resolve(wrapper.exitCode);
    else wrapper.once('exit', (code) => resolve(code));
  });
  const signal = async (name: NodeJS.Signals): Promise<void> => {
    if (wrapper.exitCode === null && wrapper.signalCode === null) wrapper.kill(name);
    await exited;
  };
  return {
    wrapper,
    output: () => tail,
    exited,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGUSR1'),
  };
}
