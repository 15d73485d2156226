import type { ReportKind, ReportPeriod } from './report-period';
import { periodKindOf } from './report-period';
import { DEPARTMENT_ID_SOURCE, isDepartmentId } from './department';

/**
 * Where reports live in the reports container:
 *   monthly/<YYYY-MM>/chargeback-<YYYY-MM>.{csv,json,html}        month to date, rewritten each run
 *   daily/<YYYY-MM-DD>/chargeback-<YYYY-MM-DD>.{csv,json,html}
 *   <same folder>/departments/<department>.{csv,json}                one department's lines
 * One builder and one parser: the report store writes with the first, the finance API reads paths
 * with the second.
 */

export const REPORT_FORMATS = ['csv', 'json', 'html'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];
/** Per-department files: the lines, without the summary page. */
export const DEPARTMENT_REPORT_FORMATS = ['csv', 'json'] as const satisfies readonly ReportFormat[];

export interface ReportFile {
  kind: ReportKind;
  /** The period id (YYYY-MM or YYYY-MM-DD). */
  period: string;
  /** Set for a department's file. */
  department?: string;
  format: ReportFormat;
}

export const REPORT_PATH_EXAMPLE =
  'monthly/2026-11/chargeback-2026-11.csv or daily/2026-11-22/departments/research.json';

export function reportFolder(period: Pick<ReportPeriod, 'kind' | 'id'>): string {
  return `${period.kind}/${period.id}`;
}

export function reportPath(file: ReportFile): string {
  const folder = reportFolder({ kind: file.kind, id: file.period });
  if (file.department === undefined) return `${folder}/chargeback-${file.period}.${file.format}`;
  if (!isDepartmentId(file.department)) throw new Error(`'${file.department}' is not a department id`);
  if (!(DEPARTMENT_REPORT_FORMATS as readonly string[]).includes(file.format)) {
    throw new Error(`department reports have no ${file.format} file`);
  }
  return `${folder}/departments/${file.department}.${file.format}`;
}

const PATH_SHAPE = new RegExp(
  String.raw`^(monthly/(\d{4}-\d{2})|daily/(\d{4}-\d{2}-\d{2}))/(?:chargeback-\2\3\.(csv|json|html)|departments/(${DEPARTMENT_ID_SOURCE})\.(csv|json))$`,
);

/** The period id a report-shaped path names, not yet checked against the calendar; undefined for any other path. */
export function reportPathPeriod(path: string): string | undefined {
  const m = PATH_SHAPE.exec(path);
  return m ? (m[2] ?? m[3]) : undefined;
}

/** What a report path names, or undefined when it names no report (wrong shape or no such calendar date). */
export function parseReportPath(path: string): ReportFile | undefined {
  const m = PATH_SHAPE.exec(path);
  if (!m) return undefined;
  const period = (m[2] ?? m[3]) as string;
  const kind: ReportKind = m[2] !== undefined ? 'monthly' : 'daily';
  if (periodKindOf(period) !== kind) return undefined;
  const department = m[5];
  return {
    kind,
    period,
    ...(department !== undefined ? { department } : {}),
    format: (m[4] ?? m[6]) as ReportFormat,
  };
}

/** The listing prefix for a filter: a kind, or a kind and a period. */
export function reportPrefix(filter: { kind?: ReportKind; period?: string }): string {
  const kind = filter.kind ?? (filter.period ? periodKindOf(filter.period) : undefined);
  if (!kind) return '';
  return filter.period ? `${reportFolder({ kind, id: filter.period })}/` : `${kind}/`;
}
