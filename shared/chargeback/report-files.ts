import { createHash } from 'node:crypto';
import { isDepartmentId } from '../contracts/department';
import type { ReportFormat } from '../contracts/report-paths';
import { DEPARTMENT_REPORT_FORMATS, REPORT_FORMATS, reportPath } from '../contracts/report-paths';
import type { ChargebackReport } from './model';
import type { RenderedReportFile } from './ports';
import type { Row } from './render-csv';
import { csvOf, FOCUS_VERSION, reportRows } from './render-csv';
import { renderHtml } from './render-html';
import { jsonOf } from './render-json';

const CONTENT_TYPES: Record<ReportFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  json: 'application/json; charset=utf-8',
  html: 'text/html; charset=utf-8',
};

/** Renders one file; the rows (the CSV's and the JSON's) are made once per report and shared. */
function render(
  format: ReportFormat,
  report: ChargebackReport,
  rows: readonly Row[],
  department: string | undefined,
): string {
  switch (format) {
    case 'csv':
      return csvOf(rows);
    case 'json':
      return jsonOf(report, department, rows);
    case 'html':
      return renderHtml(report);
  }
}

/**
 * A report's files: the whole report in every format, and each department's lines. Pure and
 * deterministic: the same report gives the same files, byte for byte, with a SHA-256 of each in
 * its metadata (the store skips a file whose content is unchanged).
 */
export function reportFiles(report: ChargebackReport): RenderedReportFile[] {
  const { kind, id } = report.period;
  const common = { kind, period: id, datathrough: report.dataThrough, currency: report.currency };
  const rows = reportRows(report);
  const rowsOf = (department: string): Row[] =>
    rows.filter((_, i) => report.lines[i]?.department === department);
  const file = (format: ReportFormat, total: string, department?: string, own = rows): RenderedReportFile => {
    const content = render(format, report, own, department);
    return {
      kind,
      period: id,
      ...(department !== undefined ? { department } : {}),
      format,
      path: reportPath({ kind, period: id, department, format }),
      content,
      contentType: CONTENT_TYPES[format],
      attachment: format !== 'html',
      metadata: {
        ...common,
        total,
        ...(department !== undefined ? { department } : {}),
        // The FOCUS version the rows claim (the HTML page is not a FOCUS dataset).
        ...(format !== 'html' ? { focusversion: FOCUS_VERSION } : {}),
        sha256: createHash('sha256').update(content, 'utf8').digest('hex'),
      },
    };
  };
  const files = REPORT_FORMATS.map((format) => file(format, report.total));
  for (const { department, total } of report.departments) {
    if (!isDepartmentId(department)) continue; // not a safe file name: in the main files only
    const own = rowsOf(department);
    for (const format of DEPARTMENT_REPORT_FORMATS) files.push(file(format, total, department, own));
  }
  return files;
}
