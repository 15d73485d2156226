import { spawn } from 'node:child_process';
import { alive, descendants } from './services/helpers';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * `npm start` end to end, on the compiled app (npm test builds first): the stack comes up on
 * its embedded defaults, /api/health is 200, the screen's chat completion example works and is
 * logged with its usage, and Ctrl-C (SIGINT) leaves no process behind.
 */
const repoRoot = join(__dirname, '..', '..');
const startScript = join(repoRoot, 'dist', 'local', 'start.js');

describe('npm start', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'chargeback-start-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('brings the whole stack up, serves a healthy /api/health, and stops cleanly on Ctrl-C', async () => {
    expect(existsSync(startScript)).toBe(true);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      LOCAL_HOST_PORT: '0',
      LOCAL_GATEWAY_PORT: '0',
      LOCAL_DATA_DIR: dataDir,
    };
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
        // The whole screen: it may arrive in more than one chunk.
        if (output.includes('Ctrl-C stops everything.'))
          url = /Functions host\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
        await new Promise((r) => setTimeout(r, 100));
      }
      if (!url) throw new Error(`the stack did not come up:\n${output}`);

      const gateway = /Gateway\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
      expect(gateway).toBeDefined();
      expect(output).toContain(`curl ${url}/api/live`);
      expect(output).toContain(`curl -H 'x-functions-key: local-function-key' ${url}/api/health`);
      expect(output).toContain(dataDir.split('/').pop());
      // Where apps call (the gateway), with which key, which deployments exist, and the finance API.
      expect(output).toMatch(/research\/chat-app\s+local-research-chat-app-key/);
      expect(output).toContain(`new AzureOpenAI({ endpoint: '${gateway}', apiKey: '<key>'`);
      expect(output).toMatch(/deployments\s+gpt-4o, gpt-4o-mini,.*embeddings: text-embedding-3-small/);
      expect(output).toMatch(
        new RegExp(`${gateway}/chargeback/reports/monthly/\\d{4}-\\d{2}/chargeback-\\d{4}-\\d{2}\\.html`),
      );
      // The printed way to a finance token works, and the token opens the finance API.
      const tokenUrl = new RegExp(`curl -s (${gateway}/\\S+)/<user>`).exec(output)?.[1];
      const token = await (await fetch(`${tokenUrl}/finance`)).text();
      const reports = await fetch(`${gateway}/chargeback/reports`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(reports.status).toBe(200);
      const res = await fetch(`${url}/api/health`, { headers: { 'x-functions-key': 'local-function-key' } });
      const body = (await res.json()) as { status: string };
      expect({ status: res.status, body: body.status }).toEqual({ status: 200, body: 'healthy' });

      // The screen's chat completion, as printed (curl's URL, -H and -d arguments).
      const curl = /^ {4}curl '(http[^']+chat\/completions[^']*)'[\s\S]*?-d '([^']*)'$/m.exec(output);
      if (!curl) throw new Error(`no chat completion example on the screen:\n${output}`);
      const headers = Object.fromEntries(
        [...curl[0].matchAll(/-H '([^:]+): ([^']*)'/g)].map((m) => [m[1] as string, m[2] as string]),
      );
      const chat = await fetch(curl[1] as string, { method: 'POST', headers, body: curl[2] });
      expect(chat.status).toBe(200);
      const { usage } = (await chat.json()) as {
        usage: { prompt_tokens: number; completion_tokens: number };
      };
      // Logged once the response is written, stamped as Core Tools stamps its lines.
      const line =
        /^\[\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\] POST \/api\/openai\/deployments\/gpt-4o-mini\/chat\/completions 200 research\/chat-app gpt-4o-mini ([\d,]+) tokens \(([\d,]+) in, ([\d,]+) out\) [\d,]+ ms$/m;
      const logDeadline = Date.now() + 5000;
      while (!line.test(output) && Date.now() < logDeadline) await new Promise((r) => setTimeout(r, 50));
      const logged = line.exec(output);
      if (!logged) throw new Error(`the chat completion was not logged:\n${output}`);
      const figures = logged.slice(1, 4).map((f) => Number(f.replace(/,/g, '')));
      expect(figures).toEqual([
        usage.prompt_tokens + usage.completion_tokens,
        usage.prompt_tokens,
        usage.completion_tokens,
      ]);

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
