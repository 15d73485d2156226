import { spawn } from 'node:child_process';
import { alive, descendants } from './services/helpers';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * `npm start` end to end, on the compiled app (npm test builds first): the stack comes up on
 * its embedded defaults, /api/health is 200, and Ctrl-C (SIGINT) leaves no process behind.
 */
const repoRoot = join(__dirname, '..', '..');
const startScript = join(repoRoot, 'dist', 'local', 'start.js');

describe('npm start', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'chargeback-start-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('brings the whole stack up, serves a healthy /api/health, and stops cleanly on Ctrl-C', async () => {
    expect(existsSync(startScript)).toBe(true);
    const env: NodeJS.ProcessEnv = { ...process.env, LOCAL_HOST_PORT: '0', LOCAL_DATA_DIR: dataDir };
    for (const name of [
      'REDIS_URL',
      'STORAGE_CONNECTION_STRING',
      'COSMOS_ENDPOINT',
      'AZURE_OPENAI_ENDPOINT',
      'SPEECH_ENDPOINT',
      'SPEECH_REGION',
      'WEBSITE_HOSTNAME',
    ]) {
      delete env[name];
    }
    const child = spawn(process.execPath, [startScript], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

    try {
      const deadline = Date.now() + 45_000;
      let url: string | undefined;
      while (!url && Date.now() < deadline && child.exitCode === null) {
        url = /Functions host\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
        await new Promise((r) => setTimeout(r, 100));
      }
      if (!url) throw new Error(`the stack did not come up:\n${output}`);

      expect(output).toContain(`curl ${url}/api/health`);
      expect(output).toContain(dataDir.split('/').pop());
      const res = await fetch(`${url}/api/health`);
      const body = (await res.json()) as { status: string };
      expect({ status: res.status, body: body.status }).toEqual({ status: 200, body: 'healthy' });

      const processes = descendants(child.pid as number);
      expect(processes.length).toBeGreaterThan(0); // redis-server and Azurite at least
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      const deadlineGone = Date.now() + 5000;
      while (processes.some(alive) && Date.now() < deadlineGone) await new Promise((r) => setTimeout(r, 50));
      expect(processes.filter(alive)).toEqual([]);
      // Data is kept under the data folder between runs.
      expect(readdirSync(dataDir).sort()).toEqual(expect.arrayContaining(['azurite', 'redis']));
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 60_000);
});
