/**
 * `npm run demo`: a day of AI traffic for several departments, through the metering proxy with the
 * official `openai` client, then the chargeback run, then the totals.
 *
 * Into the stack `npm start` runs, when one answers on the local host port (its terminal logs the
 * traffic, its storage keeps the reports); otherwise into a private stack of its own, in memory and
 * stopped at the end. Either way the month's files are also saved under LOCAL_DATA_DIR/demo-reports.
 *
 * The day's shape (quiet nights, a morning and an afternoon peak; chat, streaming, reasoning,
 * embeddings, an app with no department) is replayed compressed into about a minute: usage is
 * recorded when it happens, so all of it lands in the current 15-minute window, and the run is
 * started "as of" the end of that window instead of waiting for it to close (through the durable
 * HTTP API, with the master key).
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { SingleBar } from 'cli-progress';
import { AzureOpenAI } from 'openai';
import { FUNCTION_KEY_HEADER } from '../shared/contracts/gateway-headers';
import type { ChargebackRunSummary } from '../shared/chargeback/run';
import { CHARGEBACK_ORCHESTRATION } from '../shared/chargeback/run';
import { parseReportPath, REPORT_FORMATS, reportPath } from '../shared/contracts/report-paths';
import { BLOB_CONTAINERS } from '../shared/contracts/storage';
import { windowEnd, windowStart } from '../shared/contracts/window';
import type { LocalCredentials } from './credentials';
import { financeHeaders, localCredentials, proxyHeaders } from './credentials';
import { findAppRoot } from './host/app-entry';
import { applyLocalSettingsFile, readLocalSettings } from './settings';
import { startLocalStack } from './stack';

interface Caller {
  subscription: string;
  app: string;
  department?: string;
  /** Share of the day's requests. */
  weight: number;
  call: (client: AzureOpenAI) => Promise<unknown>;
}

const QUESTIONS = [
  'Summarise the quarterly report in three bullet points.',
  'Draft a polite reply to a customer asking about a late delivery.',
  'Explain retrieval-augmented generation to a new analyst.',
  'Which of these expenses look unusual, and why?',
  'Write a product description for a solar-powered garden light.',
];

const pick = <T>(items: readonly T[], i: number): T => items[i % items.length] as T;
const ask = (i: number): Array<{ role: 'user'; content: string }> => [
  { role: 'user', content: pick(QUESTIONS, i) },
];

const CALLERS: Caller[] = [
  {
    subscription: 'sub-research',
    app: 'research-notebooks',
    department: 'research',
    weight: 25,
    call: (c) => c.chat.completions.create({ model: 'gpt-4o', messages: ask(1) }),
  },
  {
    subscription: 'sub-research',
    app: 'research-agents',
    department: 'research',
    weight: 10,
    call: (c) => c.chat.completions.create({ model: 'o3-mini', messages: ask(2) }),
  },
  {
    subscription: 'sub-marketing',
    app: 'campaign-writer',
    department: 'marketing',
    weight: 20,
    call: async (c) => {
      const stream = await c.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: ask(4),
        stream: true,
      });
      for await (const chunk of stream) void chunk;
    },
  },
  {
    subscription: 'sub-support',
    app: 'support-assistant',
    department: 'customer-support',
    weight: 25,
    call: (c) => c.chat.completions.create({ model: 'gpt-4o-mini', messages: ask(0) }),
  },
  {
    subscription: 'sub-engineering',
    app: 'code-search',
    department: 'engineering',
    weight: 10,
    call: (c) =>
      c.embeddings.create({
        model: 'text-embedding-3-small',
        input: [pick(QUESTIONS, 3), pick(QUESTIONS, 2)],
      }),
  },
  {
    subscription: 'sub-finance',
    app: 'expense-review',
    department: 'finance',
    weight: 7,
    call: (c) => c.chat.completions.create({ model: 'gpt-4.1', messages: ask(3) }),
  },
  {
    // A subscription APIM knows no department for: charged to `unassigned`, never dropped.
    subscription: 'sub-hackathon',
    app: 'hackathon-bot',
    weight: 3,
    call: (c) => c.chat.completions.create({ model: 'gpt-4o-mini', messages: ask(2) }),
  },
];

/** Requests per hour of a working day: quiet at night, peaks at 10:00 and 15:00. */
const HOURLY = [2, 1, 1, 1, 1, 2, 4, 9, 16, 22, 26, 24, 18, 20, 24, 26, 22, 16, 10, 7, 5, 4, 3, 2];
const REQUESTS = Number(process.env.DEMO_REQUESTS ?? 600);
const CONCURRENCY = 16;

function schedule(): Caller[] {
  const total = HOURLY.reduce((a, b) => a + b, 0);
  const weights = CALLERS.reduce((a, c) => a + c.weight, 0);
  const plan: Caller[] = [];
  let n = 0;
  for (const perHour of HOURLY) {
    const count = Math.round((REQUESTS * perHour) / total);
    for (let i = 0; i < count; i++, n++) {
      // Deterministic mix: callers in proportion to their weights.
      let slot = (n * 7919) % weights;
      const caller = CALLERS.find((c) => (slot -= c.weight) < 0) as Caller;
      plan.push(caller);
    }
  }
  return plan;
}

/** Where the demo sends its traffic. */
interface Target {
  url: string;
  credentials: LocalCredentials;
  /** True for the stack `npm start` runs; false for the demo's own. */
  shared: boolean;
  stop(): Promise<void>;
}

/** What answers on the host port: the local stack (with these keys), something else, or nothing. */
async function probe(url: string, masterKey: string): Promise<'local stack' | 'other' | 'nothing'> {
  try {
    const res = await fetch(`${url}/admin/host/status`, {
      headers: { [FUNCTION_KEY_HEADER]: masterKey },
      signal: AbortSignal.timeout(2000),
    });
    const body = (await res.json().catch(() => ({}))) as { version?: unknown };
    return res.status === 200 && body.version === '4-local' ? 'local stack' : 'other';
  } catch {
    return 'nothing';
  }
}

/**
 * The stack `npm start` runs, found on the port and with the keys `npm start` would use (the
 * environment, then local.settings.json, then the embedded defaults); else a private one.
 */
async function findOrStartStack(
  settings: ReturnType<typeof readLocalSettings>,
  env: NodeJS.ProcessEnv,
  reportsDir: string,
): Promise<Target> {
  const url = `http://127.0.0.1:${settings.LOCAL_HOST_PORT}`;
  const found = settings.LOCAL_HOST_PORT === 0 ? 'nothing' : await probe(url, settings.LOCAL_MASTER_KEY);
  if (found === 'local stack') {
    console.log(
      `Using the local stack on ${url} (npm start): its terminal logs each request, and the reports stay in its storage (${shown(join(settings.LOCAL_DATA_DIR, 'azurite'))}); the month's files are also saved to ${shown(reportsDir)}/.`,
    );
    return { url, credentials: localCredentials(settings, env), shared: true, stop: () => Promise.resolve() };
  }
  const why =
    found === 'nothing'
      ? `No local stack on ${url}`
      : `${url} answers, but not as the local stack with this LOCAL_MASTER_KEY`;
  console.log(
    `${why}: starting a private one for this demo (its data is discarded at exit; the month's files are saved to ${shown(reportsDir)}/).`,
  );
  const stack = await startLocalStack({
    port: 0,
    persist: false,
    mode: 'compiled',
    timers: 'manual',
    readSettingsFile: false,
  });
  return { url: stack.host.url, credentials: stack.credentials, shared: false, stop: () => stack.stop() };
}

/** Runs the chargeback "as of" `asOf` through the durable HTTP API and waits for its summary. */
async function runChargeback(target: Target, asOf: string): Promise<ChargebackRunSummary> {
  const id = `demo-${randomUUID()}`;
  const webhooks = `${target.url}/runtime/webhooks/durabletask`;
  const headers = { [FUNCTION_KEY_HEADER]: target.credentials.masterKey, 'content-type': 'application/json' };
  const started = await fetch(`${webhooks}/orchestrators/${CHARGEBACK_ORCHESTRATION}/${id}`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ asOf }),
  });
  if (started.status !== 202) {
    throw new Error(`Could not start the chargeback run: ${started.status} ${await started.text()}`);
  }
  const deadline = Date.now() + 5 * 60_000;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const status = (await (await fetch(`${webhooks}/instances/${id}`, { headers })).json()) as {
      runtimeStatus?: string;
      output?: unknown;
    };
    if (status.runtimeStatus === 'Completed') return status.output as ChargebackRunSummary;
    if (status.runtimeStatus !== 'Running' && status.runtimeStatus !== 'Pending') {
      throw new Error(`chargeback run ${String(status.runtimeStatus)}: ${JSON.stringify(status.output)}`);
    }
    if (Date.now() > deadline)
      throw new Error(`chargeback run ${id} still ${status.runtimeStatus} after 5 minutes`);
  }
}

function shown(path: string): string {
  return relative(process.cwd(), path) || '.';
}

async function main(): Promise<void> {
  // The settings `npm start` uses, so that the demo finds the stack it runs and can call it.
  const appRoot = findAppRoot(__dirname);
  const env = { ...process.env };
  applyLocalSettingsFile(appRoot, env);
  const settings = readLocalSettings(env, appRoot);
  const reportsDir = join(settings.LOCAL_DATA_DIR, 'demo-reports');
  const target = await findOrStartStack(settings, env, reportsDir);
  try {
    const clientFor = (caller: Caller): AzureOpenAI =>
      new AzureOpenAI({
        endpoint: `${target.url}/api`,
        apiKey: target.credentials.functionKey,
        apiVersion: '2024-10-21',
        maxRetries: 2,
        // What APIM adds: the function key, the backend secret, the caller's attribution.
        defaultHeaders: proxyHeaders(target.credentials, {
          subscription: caller.subscription,
          app: caller.app,
          department: caller.department,
        }),
      });
    const clients = new Map(CALLERS.map((c) => [c, clientFor(c)]));
    const plan = schedule();
    console.log(
      `Replaying a day of traffic: ${plan.length} requests from ${CALLERS.length} apps in 6 departments.`,
    );
    const bar = new SingleBar({
      format: '  {bar} {percentage}% | {value}/{total} requests | {failed} failed',
      barCompleteChar: '█',
      barIncompleteChar: '░',
    });
    bar.start(plan.length, 0, { failed: 0 });
    let next = 0;
    let failed = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < plan.length) {
          const caller = plan[next++] as Caller;
          try {
            await caller.call(clients.get(caller) as AzureOpenAI);
          } catch (error) {
            failed++;
            if (failed === 1) console.error(`\n  first failure: ${(error as Error).message}`);
          }
          bar.increment(1, { failed });
        }
      }),
    );
    bar.stop();

    const asOf = new Date(windowEnd(windowStart(new Date())).getTime() + 5 * 60_000).toISOString();
    console.log(
      'Running the chargeback orchestration (aggregate → Cosmos DB → allocate → reports → release)...',
    );
    const summary = await runChargeback(target, asOf);
    const month = new Date().toISOString().slice(0, 7);
    const reports = `${target.url}/api/reports`;
    const finance = financeHeaders(target.credentials);
    const json = (await (
      await fetch(`${reports}/${reportPath({ kind: 'monthly', period: month, format: 'json' })}`, {
        headers: finance,
      })
    ).json()) as {
      total: string;
      currency: string;
      departments: Array<{ name: string; usage: string; shared: string; total: string }>;
    };
    console.log(
      `\n${summary.events} usage events in ${summary.windows.length} window(s) → ${summary.aggregates} Cosmos DB rows.`,
    );
    console.log(
      `\nMonth to date (${month}), ${json.currency}: usage + shared platform costs (accrued to date)${target.shared ? ', with everything else this stack metered this month' : ''}`,
    );
    console.table(
      json.departments.map((d) => ({ department: d.name, usage: d.usage, shared: d.shared, total: d.total })),
    );
    console.log(`Total: ${json.currency} ${json.total}\n`);
    // Copies of the month's files, to open after the demo (and a private stack) has stopped.
    mkdirSync(reportsDir, { recursive: true });
    const saved: string[] = [];
    for (const format of REPORT_FORMATS) {
      const path = reportPath({ kind: 'monthly', period: month, format });
      const file = join(reportsDir, basename(path));
      writeFileSync(
        file,
        Buffer.from(await (await fetch(`${reports}/${path}`, { headers: finance })).arrayBuffer()),
      );
      saved.push(file);
    }
    console.log(
      `Reports written by the run to the Blob container "${BLOB_CONTAINERS.reports}" (${summary.reports.length} files), e.g.:`,
    );
    for (const path of summary.reports.filter((p) => parseReportPath(p)?.department === undefined)) {
      console.log(`  ${path}`);
    }
    console.log('\nDownloaded through the finance API (open the HTML in a browser):');
    for (const file of saved) console.log(`  ${shown(file)}`);
    if (target.shared) {
      console.log(
        `\nThey stay in the running stack: GET ${reports}?period=${month} with the finance headers.`,
      );
    }
  } finally {
    await target.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
