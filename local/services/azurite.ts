import http from 'node:http';
import type { LifelineProcess } from './lifeline';
import { spawnWithLifeline } from './lifeline';
import { getFreePort } from './ports';
import { waitUntilReady } from './wait';

/** Azurite's well-known development account; valid only against the emulator. */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteServer {
  readonly blobEndpoint: string;
  readonly queueEndpoint: string;
  readonly tableEndpoint: string;
  readonly connectionString: string;
  readonly accountName: string;
  readonly accountKey: string;
  stop(): Promise<void>;
}

export interface AzuriteOptions {
  dataDir?: string;
  blobPort?: number;
  queuePort?: number;
  tablePort?: number;
}

function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 1000 }, (res) => {
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

/** Azurite (Blob, Queue, Table) as a child process, bound to loopback, with telemetry off. */
export async function startAzurite(options: AzuriteOptions = {}): Promise<AzuriteServer> {
  const [blobPort, queuePort, tablePort] = await Promise.all([
    options.blobPort ?? getFreePort(),
    options.queuePort ?? getFreePort(),
    options.tablePort ?? getFreePort(),
  ]);
  const args = [
    require.resolve('azurite/dist/src/azurite.js'),
    '--blobHost',
    '127.0.0.1',
    '--blobPort',
    String(blobPort),
    '--queueHost',
    '127.0.0.1',
    '--queuePort',
    String(queuePort),
    '--tableHost',
    '127.0.0.1',
    '--tablePort',
    String(tablePort),
    '--disableTelemetry',
    '--skipApiVersionCheck',
    '--loose',
    '--silent',
    ...(options.dataDir ? ['--location', options.dataDir] : ['--inMemoryPersistence']),
  ];
  const server: LifelineProcess = spawnWithLifeline(process.execPath, args);
  const blobEndpoint = `http://127.0.0.1:${blobPort}/${AZURITE_ACCOUNT}`;
  const queueEndpoint = `http://127.0.0.1:${queuePort}/${AZURITE_ACCOUNT}`;
  const tableEndpoint = `http://127.0.0.1:${tablePort}/${AZURITE_ACCOUNT}`;
  await waitUntilReady('Azurite', server, async () => {
    const up = await Promise.all([blobEndpoint, queueEndpoint, tableEndpoint].map(answers));
    return up.every(Boolean);
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
    stop: () => server.stop(),
  };
}
