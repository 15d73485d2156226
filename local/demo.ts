/**
 * `npm run demo`: a day of AI traffic for several departments, through the metering proxy on the
 * local stack with the official `openai` client, then the chargeback run, then the totals.
 *
 * The day's shape (quiet nights, a morning and an afternoon peak; chat, streaming, reasoning,
 * embeddings, an app with no department) is replayed compressed into about a minute: usage is
 * recorded when it happens, so all of it lands in the current 15-minute window, and the run is
 * started "as of" the end of that window instead of waiting for it to close.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { SingleBar } from 'cli-progress';
import { AzureOpenAI } from 'openai';
import { FUNCTION_KEY_HEADER, GATEWAY_HEADERS } from '../shared/contracts/gateway-headers';
import type { ChargebackRunSummary } from '../shared/chargeback/run';
import { CHARGEBACK_ORCHESTRATION } from '../shared/chargeback/run';
import { parseReportPath, REPORT_FORMATS, reportPath } from '../shared/contracts/report-paths';
import { APP_ROLES } from '../shared/contracts/roles';
import { BLOB_CONTAINERS } from '../shared/contracts/storage';
import { windowEnd, windowStart } from '../shared/contracts/window';
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

async function main(): Promise<void> {
  console.log('Starting the local stack (Redis, Azurite, Cosmos DB emulator, simulators, Functions host)...');
  const stack = await startLocalStack({
    port: 0,
    persist: false,
    mode: 'compiled',
    timers: 'manual',
    readSettingsFile: false,
  });
  try {
    const clientFor = (caller: Caller): AzureOpenAI =>
      new AzureOpenAI({
        endpoint: `${stack.host.url}/api`,
        apiKey: stack.settings.LOCAL_FUNCTION_KEY,
        apiVersion: '2024-10-21',
        maxRetries: 2,
        defaultHeaders: {
          // What APIM adds: the function key, the backend secret, the caller's attribution.
          [FUNCTION_KEY_HEADER]: stack.settings.LOCAL_FUNCTION_KEY,
          [GATEWAY_HEADERS.gatewayKey]: process.env.GATEWAY_SHARED_SECRET ?? '',
          [GATEWAY_HEADERS.subscription]: caller.subscription,
          [GATEWAY_HEADERS.app]: caller.app,
          ...(caller.department ? { [GATEWAY_HEADERS.department]: caller.department } : {}),
        },
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
    const id = `demo-${randomUUID()}`;
    stack.host.durable.startNew(CHARGEBACK_ORCHESTRATION, { instanceId: id, input: { asOf } });
    const status = await stack.host.durable.waitForCompletion(id, 5 * 60_000);
    if (status.runtimeStatus !== 'Completed') {
      throw new Error(`chargeback run ${String(status.runtimeStatus)}: ${JSON.stringify(status.output)}`);
    }
    const summary = status.output as ChargebackRunSummary;
    const month = new Date().toISOString().slice(0, 7);
    const reports = `${stack.host.url}/api/reports`;
    const financeHeaders = {
      [FUNCTION_KEY_HEADER]: stack.settings.LOCAL_FUNCTION_KEY,
      [GATEWAY_HEADERS.gatewayKey]: process.env.GATEWAY_SHARED_SECRET ?? '',
      [GATEWAY_HEADERS.roles]: APP_ROLES.finance,
    };
    const json = (await (
      await fetch(`${reports}/${reportPath({ kind: 'monthly', period: month, format: 'json' })}`, {
        headers: financeHeaders,
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
      `\nMonth to date (${month}), ${json.currency}: usage + shared platform costs (accrued to date)`,
    );
    console.table(
      json.departments.map((d) => ({ department: d.name, usage: d.usage, shared: d.shared, total: d.total })),
    );
    console.log(`Total: ${json.currency} ${json.total}\n`);
    // Copies of the month's files, to open after the demo has stopped the stack.
    const outDir = resolve(process.env.LOCAL_DATA_DIR ?? '.data', 'demo-reports');
    mkdirSync(outDir, { recursive: true });
    const saved: string[] = [];
    for (const format of REPORT_FORMATS) {
      const path = reportPath({ kind: 'monthly', period: month, format });
      const file = join(outDir, basename(path));
      writeFileSync(
        file,
        Buffer.from(await (await fetch(`${reports}/${path}`, { headers: financeHeaders })).arrayBuffer()),
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
    for (const file of saved) console.log(`  ${file}`);
  } finally {
    await stack.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
