/**
 * `npm run bench:proxy`: the metering proxy's added latency and cost, measured in one run against
 * the same upstream (the Azure OpenAI simulator with a fixed 20 ms latency):
 *   direct       the upstream itself (the floor)
 *   bare proxy   a bare Node pass-through proxy (the baseline for "a proxy at all")
 *   ours         the chargeback proxy function on the local Functions host, recording usage in Redis
 *   portkey      @portkey-ai/gateway routed to the same upstream
 *   gateway      ours behind the local gateway running the APIM policies (subscription key,
 *                anti-spoofing, rate and token limits, token metrics), as apps call it
 *   durable      ours again, with REDIS_WAIT_REPLICAS=1 against a Redis primary with one replica
 *                (every usage write waits for the replica's acknowledgement)
 * at 1, 64 and 256 connections, streaming and not. Prints three Markdown tables: ours against the
 * baselines, the policy layer's cost (gateway + ours against ours and Portkey), and the durable
 * setting's cost against ours. BENCH_DURABLE=0 skips the durable run.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import type { LifelineProcess } from '../local/services/lifeline';
import { spawnWithLifeline } from '../local/services/lifeline';
import { getFreePort } from '../local/services/ports';
import type { RedisServer } from '../local/services/redis';
import { startRedis } from '../local/services/redis';
import { readGatewayConfig } from '../local/gateway/local-config';
import { APIM_APIS, APIM_NAMED_VALUES } from '../shared/contracts/apim';
import { FUNCTION_KEY_HEADER, GATEWAY_HEADERS } from '../shared/contracts/gateway-headers';

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? '1,64,256').split(',').map(Number);
const DEPLOYMENT = 'gpt-4o-mini';
const API_VERSION = '2024-10-21';
const root = join(__dirname, '..', '..');
const DURABLE = process.env.BENCH_DURABLE !== '0';

interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
  pid?: number;
}

interface Measurement {
  p50: number;
  p99: number;
  rps: number;
  errors: number;
  cpuMsPerRequest?: number;
}

const children: LifelineProcess[] = [];

async function startChild(
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
): Promise<{ match: RegExpExecArray; pid?: number }> {
  const child = spawnWithLifeline('env', [
    ...Object.entries(env).map(([k, v]) => `${k}=${v ?? ''}`),
    process.execPath,
    ...args,
  ]);
  children.push(child);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const match = ready.exec(child.output());
    if (match) return { match, pid: await nodePid(child.wrapper.pid) };
    if (child.wrapper.exitCode !== null || Date.now() > deadline) {
      throw new Error(`${args.join(' ')} did not start:\n${child.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The node process under the lifeline wrapper (for its CPU time). */
async function nodePid(wrapperPid: number | undefined): Promise<number | undefined> {
  if (!wrapperPid) return undefined;
  const { execFileSync } = await import('node:child_process');
  try {
    const envPid = Number(
      execFileSync('pgrep', ['-P', String(wrapperPid), '-x', 'node'], { encoding: 'utf8' })
        .trim()
        .split('\n')[0],
    );
    return envPid || undefined;
  } catch {
    return undefined;
  }
}

function cpuMs(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in 1/100 s ticks
  } catch {
    return undefined;
  }
}

async function measure(
  target: Target,
  body: string,
  connections: number,
  duration: number,
): Promise<Measurement> {
  const cpuBefore = cpuMs(target.pid);
  const result = await autocannon({
    url: target.url,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...target.headers },
    body,
    connections,
    duration,
    timeout: 20,
  });
  const cpuAfter = cpuMs(target.pid);
  const requests = result.requests.total;
  return {
    p50: result.latency.p50,
    p99: result.latency.p99,
    rps: result.requests.average,
    errors: result.errors + result.timeouts + result.non2xx,
    cpuMsPerRequest:
      cpuBefore !== undefined && cpuAfter !== undefined && requests > 0
        ? (cpuAfter - cpuBefore) / requests
        : undefined,
  };
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-proxy-'));
  const durableDataDir = mkdtempSync(join(tmpdir(), 'bench-proxy-durable-'));
  const redisServers: RedisServer[] = [];
  // The gateway as configured locally, with limits far above what the benchmark sends: the
  // policies still run (and count) on every request, they just never refuse one.
  const gatewayConfig = readGatewayConfig(root);
  const gatewayConfigFile = join(dataDir, 'apim.bench.json');
  writeFileSync(
    gatewayConfigFile,
    JSON.stringify({
      ...gatewayConfig,
      namedValues: {
        ...gatewayConfig.namedValues,
        [APIM_NAMED_VALUES.requestsPerMinute.name]: '100000000',
        [APIM_NAMED_VALUES.tokensPerMinute.name]: '100000000000',
        [APIM_NAMED_VALUES.tokensPerMonth.name]: '100000000000000',
      },
    }),
  );
  const benchKey = gatewayConfig.subscriptions[0]?.key ?? '';
  try {
    const upstream = await startChild(
      [join(root, 'dist/bench/upstream.js')],
      {},
      /(\{"url":"[^"]+","apiKey":"[^"]+"\})/,
    );
    const { url: upstreamUrl, apiKey } = JSON.parse(upstream.match[1] as string) as {
      url: string;
      apiKey: string;
    };

    const bare = await startChild(
      [join(root, 'dist/bench/bare-proxy.js')],
      { BENCH_TARGET: upstreamUrl },
      /"url":"([^"]+)"/,
    );
    const ours = await startChild(
      [join(root, 'dist/local/start.js'), '--no-request-log'],
      {
        LOCAL_HOST_PORT: '0',
        LOCAL_GATEWAY_PORT: '0',
        LOCAL_GATEWAY_CONFIG: gatewayConfigFile,
        LOCAL_DATA_DIR: dataDir,
        AZURE_OPENAI_ENDPOINT: upstreamUrl,
        AZURE_OPENAI_API_KEY: apiKey,
        NODE_ENV: 'production',
      },
      /Functions host\s+(http:\/\/127\.0\.0\.1:\d+)[\s\S]*?Gateway\s+(http:\/\/127\.0\.0\.1:\d+)/,
    );
    let durable: { match: RegExpExecArray; pid?: number } | undefined;
    if (DURABLE) {
      const primary = await startRedis();
      redisServers.push(primary);
      redisServers.push(await startRedis({ replicaOf: primary.port }));
      durable = await startChild(
        [join(root, 'dist/local/start.js'), '--no-request-log'],
        {
          LOCAL_HOST_PORT: '0',
          LOCAL_GATEWAY_PORT: '0',
          LOCAL_DATA_DIR: durableDataDir,
          AZURE_OPENAI_ENDPOINT: upstreamUrl,
          AZURE_OPENAI_API_KEY: apiKey,
          REDIS_URL: primary.url,
          REDIS_WAIT_REPLICAS: '1',
          NODE_ENV: 'production',
        },
        /Functions host\s+(http:\/\/127\.0\.0\.1:\d+)/,
      );
    }
    const portkeyPort = await getFreePort();
    const portkey = await startChild(
      [
        '--require',
        join(root, 'bench/loopback-preload.cjs'),
        join(root, 'node_modules/@portkey-ai/gateway/build/start-server.js'),
        `--port=${portkeyPort}`,
        '--headless',
      ],
      { NODE_ENV: 'production' },
      /(listening|running|started|:\d+)/i,
    );
    await waitForPort(portkeyPort);

    const azurePath = `/openai/deployments/${DEPLOYMENT}/chat/completions?api-version=${API_VERSION}`;
    const targets: Target[] = [
      { name: 'direct', url: `${upstreamUrl}${azurePath}`, headers: { 'api-key': apiKey } },
      {
        name: 'bare proxy',
        url: `${bare.match[1]}${azurePath}`,
        headers: { 'api-key': apiKey },
        pid: bare.pid,
      },
      {
        name: 'ours',
        url: `${ours.match[1]}/api${azurePath}`,
        headers: {
          [FUNCTION_KEY_HEADER]: 'local-function-key',
          [GATEWAY_HEADERS.gatewayKey]: 'local-gateway-shared-secret',
          [GATEWAY_HEADERS.subscription]: 'bench-subscription',
          [GATEWAY_HEADERS.department]: 'bench',
        },
        pid: ours.pid,
      },
      {
        // The same process: its CPU per request is the gateway's and the function's together.
        name: 'gateway',
        url: `${ours.match[2]}${azurePath}`,
        headers: { [APIM_APIS.openai.subscriptionKey.header]: benchKey },
        pid: ours.pid,
      },
      {
        name: 'portkey',
        url: `http://127.0.0.1:${portkeyPort}/v1/chat/completions`,
        headers: {
          'x-portkey-provider': 'azure-openai',
          'x-portkey-custom-host': `${upstreamUrl}/openai`,
          'x-portkey-azure-resource-name': 'local',
          'x-portkey-azure-deployment-id': DEPLOYMENT,
          'x-portkey-azure-api-version': API_VERSION,
          authorization: `Bearer ${apiKey}`,
        },
        pid: portkey.pid,
      },
    ];
    const oursTarget = targets.find((t) => t.name === 'ours') as Target;
    if (durable) {
      targets.push({
        ...oursTarget,
        name: 'durable',
        url: `${durable.match[1]}/api${azurePath}`,
        pid: durable.pid,
      });
    }

    const messages = [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: 'Explain in two sentences how AI usage is charged back to departments.' },
    ];
    const rows: string[] = [];
    const gatewayRows: string[] = [];
    const durableRows: string[] = [];
    for (const stream of [false, true]) {
      const body = JSON.stringify({ messages, stream, ...(stream ? {} : { max_tokens: 200 }) });
      for (const connections of CONNECTIONS) {
        const results = new Map<string, Measurement>();
        for (const target of targets) {
          await measure(target, body, connections, 1); // warm-up: connections, JIT, caches
          results.set(target.name, await measure(target, body, connections, DURATION_S));
        }
        rows.push(row(stream, connections, results));
        gatewayRows.push(gatewayRow(stream, connections, results));
        if (durable) durableRows.push(durableRow(stream, connections, results));
        console.error(`done: ${stream ? 'streaming' : 'non-streaming'} × ${connections} connections`);
      }
    }
    console.log(
      [
        `Upstream: Azure OpenAI simulator, ${process.env.BENCH_UPSTREAM_LATENCY_MS ?? 20} ms latency; ${DURATION_S} s per measurement after a 1 s warm-up; ${new Date().toISOString().slice(0, 10)}.`,
        'Latencies in ms; "added" = p50/p99 minus the direct call\'s in the same run; CPU = ms of the proxy process per request.',
        '',
        '| mode | conns | direct p50 / p99 | bare proxy added p50 / p99 | ours added p50 / p99 | portkey added p50 / p99 | ours ÷ bare (added p50) | throughput vs direct: bare / ours / portkey | CPU ms/req: bare / ours / portkey | errors: ours / portkey |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
        ...rows,
        '',
        'The policy layer: ours behind the local gateway (the APIM policies executed, as apps call it) against ours called directly, and against Portkey (CPU: the one process running both):',
        '',
        '| mode | conns | ours added p50 / p99 | gateway + ours added p50 / p99 | policy layer added p50 | gateway + ours ÷ portkey (added p50) | throughput: gateway + ours ÷ ours | CPU ms/req: ours / gateway + ours | errors: gateway + ours |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
        ...gatewayRows,
        ...(durable
          ? [
              '',
              'The durable setting (REDIS_WAIT_REPLICAS=1, a primary and one replica on this machine) against ours as shipped:',
              '',
              '| mode | conns | ours added p50 / p99 | durable added p50 / p99 | durable ÷ ours (added p50) | throughput: durable ÷ ours | CPU ms/req: ours / durable | errors: durable |',
              '| --- | --- | --- | --- | --- | --- | --- | --- |',
              ...durableRows,
            ]
          : []),
      ].join('\n'),
    );
  } finally {
    await Promise.allSettled(children.map((c) => c.stop()));
    await Promise.allSettled(redisServers.map((r) => r.stop()));
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(durableDataDir, { recursive: true, force: true });
  }
}

function row(stream: boolean, connections: number, results: Map<string, Measurement>): string {
  const get = (name: string): Measurement => results.get(name) as Measurement;
  const direct = get('direct');
  const added = (m: Measurement): string => `${fmt(m.p50 - direct.p50)} / ${fmt(m.p99 - direct.p99)}`;
  const oursAdded = get('ours').p50 - direct.p50;
  const bareAdded = get('bare proxy').p50 - direct.p50;
  const ratio = bareAdded > 0 ? (oursAdded / bareAdded).toFixed(2) : 'n/a (bare adds ≤ 0)';
  const throughput = ['bare proxy', 'ours', 'portkey']
    .map((n) => `${(get(n).rps / direct.rps).toFixed(2)}×`)
    .join(' / ');
  const cpu = ['bare proxy', 'ours', 'portkey'].map((n) => fmt(get(n).cpuMsPerRequest)).join(' / ');
  return `| ${stream ? 'streaming' : 'JSON'} | ${connections} | ${fmt(direct.p50)} / ${fmt(direct.p99)} | ${added(get('bare proxy'))} | ${added(get('ours'))} | ${added(get('portkey'))} | ${ratio} | ${throughput} | ${cpu} | ${get('ours').errors} / ${get('portkey').errors} |`;
}

function gatewayRow(stream: boolean, connections: number, results: Map<string, Measurement>): string {
  const get = (name: string): Measurement => results.get(name) as Measurement;
  const direct = get('direct');
  const [ours, gateway, portkey] = [get('ours'), get('gateway'), get('portkey')];
  const added = (m: Measurement): string => `${fmt(m.p50 - direct.p50)} / ${fmt(m.p99 - direct.p99)}`;
  const portkeyAdded = portkey.p50 - direct.p50;
  const ratio = portkeyAdded > 0 ? ((gateway.p50 - direct.p50) / portkeyAdded).toFixed(2) : 'n/a';
  return `| ${stream ? 'streaming' : 'JSON'} | ${connections} | ${added(ours)} | ${added(gateway)} | ${fmt(gateway.p50 - ours.p50)} | ${ratio} | ${(gateway.rps / ours.rps).toFixed(2)}× | ${fmt(ours.cpuMsPerRequest)} / ${fmt(gateway.cpuMsPerRequest)} | ${gateway.errors} |`;
}

function durableRow(stream: boolean, connections: number, results: Map<string, Measurement>): string {
  const get = (name: string): Measurement => results.get(name) as Measurement;
  const direct = get('direct');
  const [ours, durable] = [get('ours'), get('durable')];
  const added = (m: Measurement): string => `${fmt(m.p50 - direct.p50)} / ${fmt(m.p99 - direct.p99)}`;
  const oursAdded = ours.p50 - direct.p50;
  const ratio = oursAdded > 0 ? ((durable.p50 - direct.p50) / oursAdded).toFixed(2) : 'n/a';
  return `| ${stream ? 'streaming' : 'JSON'} | ${connections} | ${added(ours)} | ${added(durable)} | ${ratio} | ${(durable.rps / ours.rps).toFixed(2)}× | ${fmt(ours.cpuMsPerRequest)} / ${fmt(durable.cpuMsPerRequest)} | ${durable.errors} |`;
}

function fmt(value: number | undefined): string {
  return value === undefined || Number.isNaN(value) ? '–' : value.toFixed(value >= 100 ? 0 : 1);
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/`);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`nothing listens on port ${port}`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
