import type { LocalStack } from '../../../local/stack';
import { startTestStack } from '../../stack';
import { BlobReportStore } from '../../../shared/adapters/blob-reports';
import { DEFAULT_CHARGEBACK_CONFIG } from '../../../shared/chargeback/default-config';
import type { UsageAggregate } from '../../../shared/chargeback/model';
import { buildReport } from '../../../shared/chargeback/report';
import { reportFiles } from '../../../shared/chargeback/report-files';
import { appServices } from '../../../shared/config/composition';
import { GATEWAY_HEADERS } from '../../../shared/contracts/gateway-headers';
import { parsePeriod } from '../../../shared/contracts/report-period';
import { APP_ROLES } from '../../../shared/contracts/roles';
import { usageAggregate } from '../../fixtures/usage';

/** The finance API on the local host, against reports written to Azurite. */

let stack: LocalStack;
const MONTH = 'monthly/2026-11/chargeback-2026-11.csv';

function row(department: string, cost: string): UsageAggregate {
  return usageAggregate({ department, cost, id: `row-${department}`, appId: 'a', requests: 3 });
}

beforeAll(async () => {
  stack = await startTestStack();
  const store = new BlobReportStore((await appServices()).reportsContainer());
  for (const period of ['2026-11', '2026-11-03']) {
    await store.write(
      reportFiles(
        buildReport({
          period: parsePeriod(period),
          aggregates: [row('research', '12.50'), row('marketing', '3.25')],
          config: DEFAULT_CHARGEBACK_CONFIG,
          dataThrough: '2026-11-03T10:15:00.000Z',
        }),
      ),
    );
  }
}, 60_000);

afterAll(() => stack.stop());

function headers(overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const all: Record<string, string | undefined> = {
    'x-functions-key': stack.settings.LOCAL_FUNCTION_KEY,
    [GATEWAY_HEADERS.gatewayKey]: process.env.GATEWAY_SHARED_SECRET,
    [GATEWAY_HEADERS.roles]: `Reader, ${APP_ROLES.finance}`,
    ...overrides,
  };
  return Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined));
}

const get = (path: string, overrides?: Record<string, string | undefined>): Promise<Response> =>
  fetch(`${stack.host.url}/api/${path}`, { headers: headers(overrides) });

async function errorOf(response: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await response.json()) as { error: { code: string; message: string } };
  return { status: response.status, ...body.error };
}

describe('finance API', () => {
  it('lists reports by period, kind and department', async () => {
    const all = (await (await get('reports')).json()) as { reports: Array<{ path: string }> };
    expect(all.reports.map((r) => r.path)).toContain(MONTH);
    expect(all.reports.map((r) => r.path)).toContain('daily/2026-11-03/chargeback-2026-11-03.html');

    const research = (await (await get('reports?period=2026-11&department=research')).json()) as {
      reports: Array<{ path: string; department?: string; total?: string; format: string }>;
    };
    expect(research.reports.map((r) => r.path)).toEqual([
      'monthly/2026-11/departments/research.csv',
      'monthly/2026-11/departments/research.json',
    ]);
    expect(research.reports.every((r) => r.department === 'research')).toBe(true);

    const daily = (await (await get('reports?kind=daily')).json()) as { reports: Array<{ kind: string }> };
    expect(daily.reports.length).toBeGreaterThan(0);
    expect(daily.reports.every((r) => r.kind === 'daily')).toBe(true);
  });

  it('streams a report with its content type, the same bytes as in storage', async () => {
    const response = await get(`reports/${MONTH}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const stored = await (await appServices()).reportsContainer().getBlobClient(MONTH).downloadToBuffer();
    expect(Buffer.from(await response.arrayBuffer())).toEqual(stored);
  });

  it('gives a short-lived read-only link that downloads the report and cannot write', async () => {
    const response = await get(`reports/${MONTH}?link=1&ttlMinutes=5`);
    expect(response.status).toBe(200);
    const { url, expiresAt } = (await response.json()) as { url: string; expiresAt: string };
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(5 * 60_000);
    expect(new URL(url).searchParams.get('sp')).toBe('r');
    const download = await fetch(url);
    expect(download.status).toBe(200);
    expect(await download.text()).toContain('BilledCost');
    const write = await fetch(url, { method: 'PUT', headers: { 'x-ms-blob-type': 'BlockBlob' }, body: 'x' });
    expect(write.status).toBe(403);
  });

  it('refuses callers without the gateway secret (401) or the finance role (403)', async () => {
    expect(
      (await errorOf(await get('reports', { [GATEWAY_HEADERS.gatewayKey]: 'wrong-secret-1234567' }))).status,
    ).toBe(401);
    const noRole = await errorOf(await get(`reports/${MONTH}`, { [GATEWAY_HEADERS.roles]: 'Reader' }));
    expect(noRole).toMatchObject({ status: 403, code: 'Forbidden' });
    expect((await get(`reports/${MONTH}?link=1`, { [GATEWAY_HEADERS.roles]: undefined })).status).toBe(403);
  });

  it.each([
    ['reports?period=2026-13', "'period' must be a calendar month"],
    ['reports?period=2026-02-30', "'period' must be a calendar month"],
    ['reports?period=26-11', "'period' must be a calendar month"],
    ['reports?kind=weekly', "'kind'"],
    ['reports?department=../x', "'department' must be a department id"],
    ['reports?kind=daily&period=2026-11', 'is not a daily period'],
    ['reports/monthly/2026-11/..%2F..%2Fusage-spool%2Fx.json', "'path' must name a report"],
    ['reports/..%2Fusage-spool/20261103T1000Z/a.json', "'path' must name a report"],
    ['reports/monthly/2026-11/chargeback-2026-11.exe', "'path' must name a report"],
    ['reports/monthly%5C2026-11%5Cchargeback-2026-11.csv', "'path' must name a report"],
    ['reports/daily/2026-02-30/chargeback-2026-02-30.csv', "'period' must be a calendar month"],
    ['reports/monthly/2026-11/chargeback-2026-10.csv', "'path' must name a report"],
  ])('%s → 400', async (path, message) => {
    const error = await errorOf(await get(path));
    expect(error.status).toBe(400);
    expect(error.message).toContain(message);
  });

  it('an unknown report is a 404, streamed or as a link', async () => {
    expect((await errorOf(await get('reports/monthly/2025-01/chargeback-2025-01.csv'))).status).toBe(404);
    expect((await errorOf(await get('reports/monthly/2025-01/chargeback-2025-01.csv?link=1'))).status).toBe(
      404,
    );
  });
});
