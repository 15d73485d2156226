import { DEFAULT_CHARGEBACK_CONFIG } from '../../../shared/chargeback/default-config';
import type { UsageAggregate } from '../../../shared/chargeback/model';
import { money, sum } from '../../../shared/chargeback/money';
import { buildReport } from '../../../shared/chargeback/report';
import { reportFiles } from '../../../shared/chargeback/report-files';
import { FOCUS_VERSION } from '../../../shared/chargeback/render-csv';
import { parsePeriod } from '../../../shared/contracts/report-period';
import { usageAggregate } from '../../fixtures/usage';

/** The files of one report: the whole report, and each department's own. */

function row(department: string, cost: string): UsageAggregate {
  return usageAggregate({ department, cost, id: `row-${department}`, requests: 3 });
}

interface JsonReport {
  total: string;
  departments: Array<{ department: string; total: string }>;
  rows: Array<{ BilledCost: string; SubAccountId: string }>;
}

describe("a department's JSON file", () => {
  const report = buildReport({
    period: parsePeriod('2026-11'),
    aggregates: [row('research', '12.50'), row('marketing', '3.25')],
    config: DEFAULT_CHARGEBACK_CONFIG,
    dataThrough: '2026-11-03T10:15:00.000Z',
  });
  const files = reportFiles(report);
  const json = (path: string): JsonReport => {
    const file = files.find((f) => f.path === path);
    if (!file) throw new Error(`no file ${path}`);
    return JSON.parse(file.content) as JsonReport;
  };

  it.each(['research', 'marketing', 'finance'])(
    '%s.json carries that department only: its total is its own and equals its rows',
    (department) => {
      const own = report.departments.find((d) => d.department === department);
      const file = json(`monthly/2026-11/departments/${department}.json`);
      expect(file.total).toBe(own?.total);
      expect(file.departments).toEqual([own]);
      expect(file.rows.every((r) => r.SubAccountId === department)).toBe(true);
      expect(sum(file.rows.map((r) => money(r.BilledCost))).toFixed(2)).toBe(file.total);
    },
  );

  it('CSV and JSON files name the FOCUS version their rows follow, in the metadata and the JSON', () => {
    for (const file of files.filter((f) => f.format !== 'html')) {
      expect(file.metadata.focusversion).toBe(FOCUS_VERSION);
    }
    expect(files.find((f) => f.format === 'html')?.metadata.focusversion).toBeUndefined();
    expect(json('monthly/2026-11/chargeback-2026-11.json')).toMatchObject({ focusVersion: '1.2' });
  });

  it('the whole report still lists every department and the report total', () => {
    const whole = json('monthly/2026-11/chargeback-2026-11.json');
    expect(whole.total).toBe(report.total);
    expect(whole.departments).toEqual(report.departments);
  });
});
