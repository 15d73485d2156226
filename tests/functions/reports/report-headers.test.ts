import type { LocalStack } from '../../../local/stack';
import { startTestStack } from '../../stack';
import { BlobReportStore } from '../../../shared/adapters/blob-reports';
import { DEFAULT_CHARGEBACK_CONFIG } from '../../../shared/chargeback/default-config';
import type { ChargebackReport, UsageAggregate } from '../../../shared/chargeback/model';
import { REPORT_CONTENT_SECURITY_POLICY, renderHtml } from '../../../shared/chargeback/render-html';
import { buildReport } from '../../../shared/chargeback/report';
import { reportFiles } from '../../../shared/chargeback/report-files';
import { appServices } from '../../../shared/config/composition';
import { FUNCTION_KEY_HEADER, GATEWAY_HEADERS } from '../../../shared/contracts/gateway-headers';
import { reportPath } from '../../../shared/contracts/report-paths';
import { parsePeriod } from '../../../shared/contracts/report-period';
import { APP_ROLES } from '../../../shared/contracts/roles';
import { usageAggregate } from '../../fixtures/usage';

/**
 * The security headers of served report files: every report the finance API streams carries the
 * HTML page's Content-Security-Policy and `nosniff`; the HTML page is served inline, the CSV and
 * JSON files as attachments.
 */

/** The policy, spelled out: the page needs its inline styles and nothing else. */
const POLICY =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

let stack: LocalStack;
let report: ChargebackReport;

function row(department: string, cost: string): UsageAggregate {
  return usageAggregate({ department, cost, id: `row-${department}`, appId: 'a', requests: 3 });
}

beforeAll(async () => {
  stack = await startTestStack();
  report = buildReport({
    period: parsePeriod('2026-11'),
    aggregates: [row('research', '12.50'), row('marketing', '3.25')],
    config: DEFAULT_CHARGEBACK_CONFIG,
    dataThrough: '2026-11-03T10:15:00.000Z',
  });
  await new BlobReportStore((await appServices()).reportsContainer()).write(reportFiles(report));
}, 60_000);

afterAll(() => stack.stop());

const get = (path: string): Promise<Response> =>
  fetch(`${stack.host.url}/api/reports/${path}`, {
    headers: {
      [FUNCTION_KEY_HEADER]: stack.settings.LOCAL_FUNCTION_KEY,
      [GATEWAY_HEADERS.gatewayKey]: process.env.GATEWAY_SHARED_SECRET ?? '',
      [GATEWAY_HEADERS.roles]: APP_ROLES.finance,
    },
  });

const month = { kind: 'monthly', period: '2026-11' } as const;

describe('served report files', () => {
  it('the policy is the one the page is built for', () => {
    expect(REPORT_CONTENT_SECURITY_POLICY).toBe(POLICY);
  });

  it('the HTML page: inline, with the Content-Security-Policy and nosniff, its bytes unchanged', async () => {
    const response = await get(reportPath({ ...month, format: 'html' }));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('content-security-policy')).toBe(POLICY);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('content-disposition') ?? 'inline').toMatch(/^inline/);
    expect(await response.text()).toBe(renderHtml(report));
  });

  it.each([
    ['csv', 'text/csv; charset=utf-8', undefined],
    ['json', 'application/json; charset=utf-8', undefined],
    ['csv', 'text/csv; charset=utf-8', 'research'],
    ['json', 'application/json; charset=utf-8', 'research'],
  ] as const)(
    'the %s file (department %s): an attachment, nosniff and the same policy',
    async (format, type, department) => {
      const response = await get(reportPath({ ...month, format, ...(department ? { department } : {}) }));
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe(type);
      expect(response.headers.get('content-disposition')).toMatch(/^attachment; filename="/);
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('content-security-policy')).toBe(POLICY);
      await response.arrayBuffer();
    },
  );
});
