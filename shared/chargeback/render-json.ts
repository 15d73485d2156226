import type { ChargebackReport } from './model';
import type { Row } from './render-csv';
import { FOCUS_VERSION, reportRows } from './render-csv';

/**
 * The report as JSON: the whole report, or one department's part of it (its own total, its own
 * entry and its own rows), so that a department's file never states another's figures.
 */
export function renderJson(report: ChargebackReport, department?: string): string {
  const lines =
    department === undefined ? report.lines : report.lines.filter((l) => l.department === department);
  return jsonOf(report, department, reportRows(report, lines));
}

/** The JSON of a report (or a department's part) with its rows already made by reportRows. */
export function jsonOf(
  report: ChargebackReport,
  department: string | undefined,
  rows: readonly Row[],
): string {
  const departments =
    department === undefined
      ? report.departments
      : report.departments.filter((d) => d.department === department);
  return `${JSON.stringify(
    {
      period: report.period,
      currency: report.currency,
      focusVersion: FOCUS_VERSION,
      dataThrough: report.dataThrough,
      total: department === undefined ? report.total : (departments[0]?.total ?? '0.00'),
      departments,
      rows,
    },
    null,
    2,
  )}\n`;
}
