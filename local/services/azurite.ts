import { mkdirSync } from 'node:fs';
import http from 'node:http';
import { spawnWithLifeline } from './lifeline';
import { waitUntilReady } from './wait';

/** Azurite's well-known development account; valid only against the emulator. */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteServer {
  /** `http://127.0.0.1:PORT/devstoreaccount1` (path-style, as Azurite expects). */
  readonly blobEndpoint: string;
  readonly queueEndpoint: string;
  readonly tableEndpoint: string;
  /** The development-storage connection string with these explicit endpoints. */
  readonly connectionString: string;
  readonly accountName: string;
  readonly accountKey: string;
  readonly dataDir: string | undefined;
  readonly pid: number;
  /** Graceful stop (Azurite saves its metadata when persisted); resolves when the process is gone. */
  stop(): Promise<void>;
}

export interface AzuriteOptions {
  /** Keep data in this folder; without it, everything is in memory. */
  dataDir?: string;
  /** Fixed ports; by default the OS picks free ones as Azurite binds (no race with other processes). */
  blobPort?: number;
  queuePort?: number;
  tablePort?: number;
  /** Told when Azurite exits without having been asked to. */
  log?: (line: string) => void;
}

const SERVICES = ['Blob', 'Queue', 'Table'] as const;
type Service = (typeof SERVICES)[number];
const READY_TIMEOUT_MS = 30_000;

function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 1000, agent: false }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

/** The ports Azurite reports ("... service is successfully listening at http://127.0.0.1:PORT"). */
function listeningPorts(output: string): Partial<Record<Service, number>> {
  const ports: Partial<Record<Service, number>> = {};
  const pattern = /Azurite (Blob|Queue|Table) service (?:is )?successfully listen\w* (?:at|on) \S+?:(\d+)/g;
  for (const match of output.matchAll(pattern)) {
    ports[match[1] as Service] = Number(match[2]);
  }
  return ports;
}

/**
 * Azurite (Blob, Queue, Table) as a child process on loopback. `--disableTelemetry` because it
 * otherwise tries the network; `--skipApiVersionCheck` so that SDKs newer than this Azurite work;
 * `--loose` so that headers it does not implement are ignored rather than refused.
 */
export async function startAzurite(options: AzuriteOptions = {}): Promise<AzuriteServer> {
  const { dataDir, log } = options;
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const requested: Record<Service, number> = {
    Blob: options.blobPort ?? 0,
    Queue: options.queuePort ?? 0,
    Table: options.tablePort ?? 0,
  };
  const args = [
    require.resolve('azurite/dist/src/azurite.js'),
    ...SERVICES.flatMap((s) => [
      `--${s.toLowerCase()}Host`,
      '127.0.0.1',
      `--${s.toLowerCase()}Port`,
      String(requested[s]),
    ]),
    '--disableTelemetry',
    '--skipApiVersionCheck',
    '--loose',
    '--silent',
    ...(dataDir ? ['--location', dataDir] : ['--inMemoryPersistence']),
  ];
  const server = spawnWithLifeline(process.execPath, args, { outputLimit: 16_000 });

  let ports: Partial<Record<Service, number>> = {};
  await waitUntilReady(
    'Azurite',
    server,
    async () => {
      ports = listeningPorts(server.output());
      if (SERVICES.some((s) => ports[s] === undefined)) return false;
      const up = await Promise.all(SERVICES.map((s) => answers(`http://127.0.0.1:${ports[s]}/`)));
      return up.every(Boolean);
    },
    READY_TIMEOUT_MS,
  );
  const pid = await server.started;
  const endpoint = (s: Service): string => `http://127.0.0.1:${ports[s]}/${AZURITE_ACCOUNT}`;
  const blobEndpoint = endpoint('Blob');
  const queueEndpoint = endpoint('Queue');
  const tableEndpoint = endpoint('Table');

  let expectedExit = false;
  void server.exited.then((code) => {
    if (!expectedExit) log?.(`Azurite exited unexpectedly (code ${code}):\n${server.output().trim()}`);
  });

  return {
    blobEndpoint,
    queueEndpoint,
    tableEndpoint,
    accountName: AZURITE_ACCOUNT,
    accountKey: AZURITE_KEY,
    connectionString:
      `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};` +
      `BlobEndpoint=${blobEndpoint};QueueEndpoint=${queueEndpoint};TableEndpoint=${tableEndpoint};`,
    dataDir,
    pid,
    stop: () => {
      expectedExit = true;
      return server.stop();
    },
  };
}
