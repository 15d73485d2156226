import { accessSync, constants, mkdirSync } from 'node:fs';
import net from 'node:net';
import { delimiter, join } from 'node:path';
import type { LifelineProcess } from './lifeline';
import { spawnWithLifeline } from './lifeline';
import { getFreePort } from './ports';
import { sleep, waitUntilReady } from './wait';

export interface RedisServer {
  /** `redis://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  /** pid of the current (or, once stopped, the last) redis-server process. */
  readonly pid: number;
  readonly dataDir: string | undefined;
  /** Graceful shutdown (flushes the append-only file when persisted); resolves once the process is gone. */
  stop(): Promise<void>;
  /** SIGKILL, to simulate an outage; resolves when the process is gone. */
  kill(): Promise<void>;
  /** Starts again on the same port with the same data folder (stops the running server first, if any). */
  restart(): Promise<void>;
}

export interface RedisOptions {
  /** Fixed port; by default a free one is picked (and another one if it is taken in the meantime). */
  port?: number;
  /** Persist into this folder (append-only file); without it, nothing touches the disk. */
  dataDir?: string;
  /** Told when redis-server exits without having been asked to. */
  log?: (line: string) => void;
  /** Start as a replica of the primary on this loopback port (promote it with `REPLICAOF NO ONE`). */
  replicaOf?: number;
  /** Start as a Redis Cluster node, keeping its nodes.conf in this folder (see startRedisCluster). */
  clusterDir?: string;
}

const START_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 10_000;
/** After kill(), the port can stay busy for a moment (e.g. taken as a client's ephemeral port). */
const RESTART_PORT_WAIT_MS = 3_000;

/** The redis-server binary on PATH; throws how to install it when there is none. */
export function findRedisServer(): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'redis-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this folder.
    }
  }
  throw new Error(
    'redis-server is not on PATH: install it with `apt-get install redis-server` ' +
      '(Debian/Ubuntu; `npm start` and `npm test` do this when they can).',
  );
}

/**
 * Is redis-server `pid` serving `port`? Asking for the pid matters: when the port was taken by
 * another Redis in the meantime, that one would answer a plain PING while ours failed to bind.
 */
function servedBy(port: number, pid: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let received = Buffer.alloc(0);
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000);
    socket.on('connect', () => socket.write('INFO server\r\n'));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const answer = received.toString('latin1');
      // An error ("-LOADING" while the append-only file is replayed) means not ready yet.
      if (answer.startsWith('-')) return done(false);
      const header = /^\$(\d+)\r\n/.exec(answer);
      if (!header?.[1] || answer.length < header[0].length + Number(header[1])) return;
      done(new RegExp(`^process_id:${pid}\r?$`, 'm').test(answer));
    });
    socket.on('error', () => done(false));
    socket.on('timeout', () => done(false));
    socket.on('close', () => done(false));
  });
}

class PortInUseError extends Error {}

async function launch(
  binary: string,
  port: number,
  dataDir: string | undefined,
  replicaOf: number | undefined,
  clusterDir?: string,
): Promise<LifelineProcess> {
  const persistence = dataDir
    ? // appendfsync everysec: Redis writes the append-only file before it replies (unless a slow fsync
      // makes it defer, up to 2 s), so a SIGKILL of redis-server loses nothing acknowledged; only a
      // machine crash can lose the last second. `always` would fsync on every write.
      ['--dir', dataDir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '']
    : ['--save', '', '--appendonly', 'no'];
  const server = spawnWithLifeline(binary, [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--protected-mode',
    'yes',
    '--daemonize',
    'no',
    '--loglevel',
    'warning',
    ...persistence,
    // A replica loads the primary's data straight from the socket, writing no file of its own.
    ...(replicaOf === undefined
      ? []
      : ['--replicaof', '127.0.0.1', String(replicaOf), '--repl-diskless-load', 'on-empty-db']),
    ...(clusterDir === undefined
      ? []
      : [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(clusterDir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '2000',
          // Replicas sync from memory at once, and nothing is written into the working directory.
          '--repl-diskless-sync',
          'yes',
          '--repl-diskless-sync-delay',
          '0',
          '--repl-diskless-load',
          'on-empty-db',
          ...(dataDir ? [] : ['--dir', clusterDir]),
        ]),
  ]);
  try {
    const pid = await server.started;
    await waitUntilReady(`redis-server on port ${port}`, server, () => servedBy(port, pid), READY_TIMEOUT_MS);
  } catch (error) {
    if (/Address already in use/i.test(server.output())) {
      throw new PortInUseError(error instanceof Error ? error.message : String(error));
    }
    throw error;
  }
  return server;
}

/** The real redis-server (Debian package) on a loopback port, tied to this process's lifetime. */
export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  const binary = findRedisServer();
  const { dataDir, log, replicaOf, clusterDir } = options;
  if (clusterDir) mkdirSync(clusterDir, { recursive: true });
  if (dataDir) mkdirSync(dataDir, { recursive: true });

  let port = options.port ?? (await getFreePort());
  let current: LifelineProcess | undefined;
  for (let attempt = 1; !current; attempt++) {
    try {
      current = await launch(binary, port, dataDir, replicaOf, options.clusterDir);
    } catch (error) {
      // Someone took the free port we picked before redis-server bound it: pick another, unless
      // the caller chose the port.
      if (!(error instanceof PortInUseError) || options.port !== undefined || attempt >= START_ATTEMPTS) {
        throw error;
      }
      port = await getFreePort();
    }
  }

  let server: LifelineProcess = current;
  let pid = await server.started;
  let expectedExit = false;
  const watch = (watched: LifelineProcess): void => {
    void watched.exited.then((code) => {
      if (!expectedExit && watched === server) {
        log?.(`redis-server on port ${port} exited unexpectedly (code ${code}):\n${watched.output().trim()}`);
      }
    });
  };
  watch(server);

  // restart() during stop() (or the other way round) must not leave two servers on one port.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(operation: () => Promise<T>): Promise<T> => {
    const next = queue.then(operation);
    queue = next.catch(() => undefined);
    return next;
  };
  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    expectedExit = true;
    await server.stop(signal);
  };

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return pid;
    },
    dataDir,
    stop: () => serial(() => halt('SIGTERM')),
    kill: () => serial(() => halt('SIGKILL')),
    restart: () =>
      serial(async () => {
        await halt('SIGTERM');
        const deadline = Date.now() + RESTART_PORT_WAIT_MS;
        for (;;) {
          try {
            server = await launch(binary, port, dataDir, replicaOf, options.clusterDir);
            break;
          } catch (error) {
            if (!(error instanceof PortInUseError) || Date.now() > deadline) throw error;
            await sleep(100);
          }
        }
        pid = await server.started;
        expectedExit = false;
        watch(server);
      }),
  };
}
