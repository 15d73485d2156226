import { spawnSync } from 'node:child_process';
import net from 'node:net';
import type { LifelineProcess } from './lifeline';
import { spawnWithLifeline } from './lifeline';
import { getFreePort } from './ports';
import { waitUntilReady } from './wait';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** Graceful shutdown (data flushed when persisted); resolves when the process is gone. */
  stop(): Promise<void>;
  /** SIGKILL, to simulate an outage. */
  kill(): Promise<void>;
  /** Starts again on the same port with the same data folder. */
  restart(): Promise<void>;
}

export interface RedisOptions {
  port?: number;
  /** Persist into this folder (append-only file); without it, nothing touches the disk. */
  dataDir?: string;
}

function ensureRedisInstalled(): void {
  if (spawnSync('sh', ['-c', 'command -v redis-server'], { stdio: 'ignore' }).status !== 0) {
    throw new Error(
      'redis-server is not installed: run `apt-get install -y redis-server` (npm test/start do it for you).',
    );
  }
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let answer = '';
    socket.setTimeout(1000);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk.toString();
      if (answer.includes('\r\n')) {
        socket.destroy();
        resolve(answer.startsWith('+PONG'));
      }
    });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

async function launch(port: number, dataDir: string | undefined): Promise<LifelineProcess> {
  const persistence = dataDir
    ? ['--dir', dataDir, '--appendonly', 'yes', '--save', '']
    : ['--save', '', '--appendonly', 'no'];
  const server = spawnWithLifeline('redis-server', [
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
  ]);
  await waitUntilReady(`redis-server on port ${port}`, server, () => ping(port), 10_000);
  return server;
}

export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  ensureRedisInstalled();
  let port = options.port ?? (await getFreePort());
  let current: LifelineProcess | undefined;
  for (let attempt = 1; !current; attempt++) {
    try {
      current = await launch(port, options.dataDir);
    } catch (error) {
      // Another process may have taken the free port we picked; try another unless it was fixed.
      const inUse = error instanceof Error && /Address already in use/i.test(error.message);
      if (!inUse || options.port !== undefined || attempt >= 5) throw error;
      port = await getFreePort();
    }
  }
  let server: LifelineProcess = current;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: () => server.stop(),
    kill: () => server.kill(),
    async restart() {
      await server.stop();
      server = await launch(port, options.dataDir);
    },
  };
}
