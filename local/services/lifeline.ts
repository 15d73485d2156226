import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * The wrapper every server runs under. Its stdin is a pipe from this process that nothing ever
 * writes to: it reaches EOF only when this process is gone, however it went (SIGKILL, a crashed jest
 * worker), and the watcher then stops the server: SIGTERM, then SIGKILL after the grace period.
 *
 * Arguments: grace period in tenths of a second, then the command. The server's pid is written to
 * fd 3 so that callers can signal the server itself (once it has been exec'd: see execDone). The
 * wrapper exits with the server's status (128 + n when signal n ended it), and forwards SIGTERM,
 * SIGINT and SIGHUP sent to the wrapper itself to the server as SIGTERM.
 */
const LIFELINE_WRAPPER = String.raw`
ticks=$1; shift
server=
stopping=
trap 'interrupted=1; stopping=1; [ -n "$server" ] && kill -TERM "$server" 2>/dev/null' TERM INT HUP
exec 4<&0 </dev/null
# Bash starts background commands with SIGINT and SIGQUIT ignored: the server gets the defaults back.
( trap - TERM INT HUP QUIT; echo "$BASHPID" >&3; exec "$@" 3>&- 4<&- ) &
server=$!
exec 3>&-
# Told to stop before the server was known: stop it now.
[ -n "$stopping" ] && kill -TERM "$server" 2>/dev/null
(
  read -r _ <&4
  kill -TERM "$server" 2>/dev/null
  i=0
  while kill -0 "$server" 2>/dev/null; do
    if [ "$i" -ge "$ticks" ]; then kill -KILL "$server" 2>/dev/null; break; fi
    i=$((i + 1))
    sleep 0.1
  done
) >/dev/null 2>&1 &
watcher=$!
exec 4<&-
while :; do
  interrupted=0
  wait "$server"
  status=$?
  # A trap interrupts wait before the server has exited; only a plain return means it is gone.
  [ "$interrupted" = 1 ] || break
done
kill "$watcher" 2>/dev/null
exit "$status"
`;

export interface LifelineOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** How long to wait after SIGTERM before SIGKILL, in stop() and when this process dies. */
  graceMs?: number;
  /** How much of the server's latest output to keep for error messages. */
  outputLimit?: number;
}

export interface LifelineProcess {
  /** The bash wrapper; the server is its child. */
  readonly wrapper: ChildProcess;
  /** The server's own pid, known once the server has been exec'd (see `started`). */
  readonly pid: number | undefined;
  /** Resolves with the server's pid; rejects when the wrapper itself could not be started. */
  readonly started: Promise<number>;
  /** Resolves once the server is gone, with its exit code (128 + n after signal n; null if unknown). */
  readonly exited: Promise<number | null>;
  readonly hasExited: boolean;
  /** The latest stdout and stderr of the server, interleaved, for error messages. */
  output(): string;
  /** Sends `signal` (default SIGTERM), SIGKILL after the grace period; resolves once the server is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** SIGKILL, to simulate a crash; resolves once the server is gone. */
  kill(): Promise<void>;
}

const DEFAULT_GRACE_MS = 10_000;
const EXEC_WAIT_MS = 2_000;

function cmdline(pid: number | undefined): Buffer | undefined {
  try {
    return pid === undefined ? undefined : readFileSync(`/proc/${pid}/cmdline`);
  } catch {
    return undefined;
  }
}

/**
 * Waits until `pid`, a fork of the wrapper, has exec'd the server (Linux: its command line is no
 * longer the wrapper's). Until then bash may take a signal meant for the server and still exec it:
 * a stop() right after the start lost about one SIGINT in 300 that way.
 */
async function execDone(pid: number, wrapperPid: number | undefined): Promise<void> {
  const wrapperCommand = cmdline(wrapperPid);
  const deadline = Date.now() + EXEC_WAIT_MS;
  while (Date.now() < deadline) {
    const current = cmdline(pid);
    // No /proc, the wrapper already gone, or the server exec'd (or exited): nothing to wait for.
    if (!wrapperCommand || !current || !current.equals(wrapperCommand)) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/**
 * Starts `command` so that it can never outlive this process. The wrapper does not keep this
 * process alive by itself (an idle server must not hold a jest worker or a script open), except
 * while stop() is waiting for the server to go.
 */
export function spawnWithLifeline(
  command: string,
  args: readonly string[],
  options: LifelineOptions = {},
): LifelineProcess {
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  const outputLimit = options.outputLimit ?? 8000;
  const ticks = String(Math.max(1, Math.ceil(graceMs / 100)));
  const wrapper = spawn('bash', ['-c', LIFELINE_WRAPPER, 'lifeline', ticks, command, ...args], {
    cwd: options.cwd,
    env: options.env,
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    // Its own process group: Ctrl-C in a terminal reaches only us, and we stop servers in order.
    detached: true,
  });

  let tail = '';
  const collect = (chunk: Buffer | string): void => {
    tail = (tail + chunk.toString()).slice(-outputLimit);
  };
  wrapper.stdout?.on('data', collect);
  wrapper.stderr?.on('data', collect);
  // Nothing is ever written to the lifeline; an EPIPE once the wrapper is gone is expected.
  wrapper.stdin?.on('error', () => undefined);

  let pid: number | undefined;
  let exitCode: number | null | undefined;
  let rejectStarted: (error: Error) => void = () => undefined;
  const started = new Promise<number>((resolve, reject) => {
    rejectStarted = reject;
    let reported = '';
    const pidPipe = wrapper.stdio[3];
    pidPipe?.on('data', (chunk: Buffer) => {
      if (reported.endsWith('\n')) return;
      reported += chunk.toString();
      const match = /^(\d+)\n/.exec(reported);
      if (match?.[1] === undefined) return;
      const reportedPid = Number(match[1]);
      void execDone(reportedPid, wrapper.pid).then(() => {
        pid = reportedPid;
        resolve(reportedPid);
      });
    });
    pidPipe?.on('error', () => undefined);
  });
  // Callers that never ask for the pid must not get an unhandled rejection.
  started.catch(() => undefined);

  const exited = new Promise<number | null>((resolve) => {
    const finish = (code: number | null): void => {
      if (exitCode !== undefined) return;
      exitCode = code;
      rejectStarted(new Error(`${command} could not be started:\n${tail.trim()}`));
      resolve(code);
    };
    wrapper.once('error', (error) => {
      collect(`${error.message}\n`);
      finish(null);
    });
    wrapper.once('exit', (code) => {
      // Let the last output arrive (it carries start-up errors), without depending on grandchildren
      // that may still hold the pipes open.
      const timer = setTimeout(() => finish(code), 250);
      wrapper.once('close', () => {
        clearTimeout(timer);
        finish(code);
      });
    });
  });

  // The server must not keep this process alive; but until it has reported its pid, the pid pipe
  // does: a caller awaiting `started` with nothing else pending must not see its process exit.
  const pidPipe = wrapper.stdio[3] as { unref?: () => void } | null;
  for (const stream of wrapper.stdio) {
    if (stream !== pidPipe) (stream as { unref?: () => void } | null)?.unref?.();
  }
  void started.then(
    () => pidPipe?.unref?.(),
    () => pidPipe?.unref?.(),
  );
  wrapper.unref();

  const send = (target: number, signal: NodeJS.Signals): void => {
    try {
      process.kill(target, signal);
    } catch {
      // Already gone.
    }
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (exitCode !== undefined) return;
    wrapper.ref();
    let escalation: NodeJS.Timeout | undefined;
    const target = await started.catch(() => undefined);
    if (target !== undefined && exitCode === undefined) {
      send(target, signal);
      if (signal !== 'SIGKILL') escalation = setTimeout(() => send(target, 'SIGKILL'), graceMs);
    }
    await exited;
    clearTimeout(escalation);
  };

  return {
    wrapper,
    get pid() {
      return pid;
    },
    started,
    exited,
    get hasExited() {
      return exitCode !== undefined;
    },
    output: () => tail,
    stop,
    kill: () => stop('SIGKILL'),
  };
}
