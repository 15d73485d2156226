import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { spawnWithLifeline } from '../../../local/services/lifeline';
import { alive, commandOf, descendants, until } from './helpers';

describe('spawnWithLifeline', () => {
  it('reports the server’s own pid and stops it gracefully', async () => {
    const server = spawnWithLifeline('sleep', ['300']);
    const pid = await server.started;
    expect(server.pid).toBe(pid);
    expect(pid).not.toBe(server.wrapper.pid);
    // Reported just before the exec: the same pid, then running the server.
    expect(await until(() => commandOf(pid) === 'sleep', 2000)).toBe(true);
    await server.stop();
    expect(alive(pid)).toBe(false);
    expect(await server.exited).toBe(128 + 15); // SIGTERM
    expect(server.hasExited).toBe(true);
    await server.stop(); // nothing left to stop
  });

  it('delivers SIGINT to the server, even right after the start', async () => {
    // Bash starts background commands with SIGINT ignored; a signal sent in that window would be lost.
    for (let i = 0; i < 20; i++) {
      const server = spawnWithLifeline('sleep', ['300'], { graceMs: 5000 });
      await server.stop('SIGINT');
      expect(await server.exited).toBe(128 + 2);
    }
  });

  it('escalates to SIGKILL after the grace period when SIGTERM is ignored', async () => {
    const server = spawnWithLifeline(
      'bash',
      ['-c', 'trap "" TERM; echo ready; while :; do sleep 0.05; done'],
      {
        graceMs: 300,
      },
    );
    expect(await until(() => server.output().includes('ready'), 5000)).toBe(true);
    const began = Date.now();
    await server.stop();
    expect(Date.now() - began).toBeGreaterThanOrEqual(250);
    expect(await server.exited).toBe(128 + 9);
  });

  it('keeps the tail of the output and the exit code of a server that fails', async () => {
    const server = spawnWithLifeline('bash', [
      '-c',
      'echo starting; echo "bind: Address already in use" >&2; exit 3',
    ]);
    expect(await server.exited).toBe(3);
    expect(server.output()).toContain('starting');
    expect(server.output()).toContain('bind: Address already in use');
  });

  it('reports a command that does not exist', async () => {
    const server = spawnWithLifeline('no-such-server-binary', []);
    expect(await server.exited).toBe(127);
    expect(server.output()).toMatch(/no-such-server-binary: not found/);
  });

  it('stops the server when the wrapper itself is told to stop', async () => {
    const server = spawnWithLifeline('sleep', ['300']);
    const pid = await server.started;
    server.wrapper.kill('SIGTERM');
    await server.exited;
    expect(alive(pid)).toBe(false);
  });

  it('keeps a script that only waits for its server alive until the server is up', async () => {
    // Whether the loop ran dry before the server reported its pid was a race: several scripts at
    // once, as a bench or a busy machine would, make losing it likely.
    const run = async (): Promise<string> => {
      const script = spawn(process.execPath, [join(__dirname, 'fixtures', 'redis-alone.js')], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      script.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      script.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => script.once('exit', resolve));
      return `${output}exit ${code}`;
    };
    const outcomes = await Promise.all(Array.from({ length: 6 }, run));
    expect(outcomes).toEqual(Array(6).fill('ready\nstopped\nexit 0'));
  }, 30_000);

  it('takes Redis and Azurite down with a parent that is SIGKILLed', async () => {
    const parent = spawn(process.execPath, [join(__dirname, 'fixtures', 'parent.js')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let errors = '';
    parent.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    const pids = await new Promise<{ redis: number; azurite: number }>((resolve, reject) => {
      parent.stdout.on('data', (chunk: Buffer) => resolve(JSON.parse(chunk.toString()) as never));
      parent.once('exit', () => reject(new Error(`the parent exited early:\n${errors}`)));
    });
    const everything = descendants(parent.pid as number);
    expect(everything).toEqual(expect.arrayContaining([pids.redis, pids.azurite]));
    expect(commandOf(pids.redis)).toBe('redis-server');

    parent.kill('SIGKILL');
    expect(await until(() => everything.every((pid) => !alive(pid)), 5000)).toBe(true);
  }, 20_000);
});
