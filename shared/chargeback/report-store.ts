import { createHash } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import type { ChargebackReport } from './model';
import { renderCsv, renderHtml, renderJson } from './render';

/**
 * Reports in Blob Storage (container `reports`):
 *   monthly/<YYYY-MM>/chargeback-<YYYY-MM>.{csv,json,html}        month to date, rewritten each run
 *   daily/<YYYY-MM-DD>/chargeback-<YYYY-MM-DD>.{csv,json,html}
 *   <same folder>/departments/<department>.{csv,json}                one department's lines
 * Each file is written with a single Put Blob, which Blob Storage commits atomically: a reader
 * sees the old content or the new, never a half-written file. A file whose content is unchanged
 * (same SHA-256 in its metadata) is not rewritten.
 */

export const REPORT_PATH =
  /^(monthly\/(\d{4}-\d{2})\/chargeback-\2|daily\/(\d{4}-\d{2}-\d{2})\/chargeback-\3)\.(csv|json|html)$|^(monthly\/\d{4}-\d{2}|daily\/\d{4}-\d{2}-\d{2})\/departments\/([a-z0-9][a-z0-9._-]{0,63})\.(csv|json)$/;

const CONTENT_TYPES = {
  csv: 'text/csv; charset=utf-8',
  json: 'application/json; charset=utf-8',
  html: 'text/html; charset=utf-8',
} as const;

export function reportFolder(report: Pick<ChargebackReport, 'period'>): string {
  return `${report.period.kind === 'month' ? 'monthly' : 'daily'}/${report.period.id}`;
}

export function reportFiles(
  report: ChargebackReport,
): Array<{ path: string; content: string; department?: string }> {
  const folder = reportFolder(report);
  const base = `${folder}/chargeback-${report.period.id}`;
  const files: Array<{ path: string; content: string; department?: string }> = [
    { path: `${base}.csv`, content: renderCsv(report) },
    { path: `${base}.json`, content: renderJson(report) },
    { path: `${base}.html`, content: renderHtml(report) },
  ];
  for (const { department } of report.departments) {
    if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(department)) continue; // not a safe file name: in the main files only
    const lines = report.lines.filter((l) => l.department === department);
    files.push(
      { path: `${folder}/departments/${department}.csv`, content: renderCsv(report, lines), department },
      { path: `${folder}/departments/${department}.json`, content: renderJson(report, lines), department },
    );
  }
  return files;
}

/** Writes the report's files; returns their paths. Idempotent and byte-identical on reruns. */
export async function writeReport(container: ContainerClient, report: ChargebackReport): Promise<string[]> {
  const files = reportFiles(report);
  await Promise.all(
    files.map(async ({ path, content, department }) => {
      const body = Buffer.from(content, 'utf8');
      const sha256 = createHash('sha256').update(body).digest('hex');
      const blob = container.getBlockBlobClient(path);
      const existing = await blob.getProperties().catch((error: { statusCode?: number }) => {
        if (error.statusCode === 404) return undefined;
        throw error;
      });
      if (existing?.metadata?.sha256 === sha256) return;
      const format = path.slice(path.lastIndexOf('.') + 1) as keyof typeof CONTENT_TYPES;
      await blob.upload(body, body.byteLength, {
        blobHTTPHeaders: {
          blobContentType: CONTENT_TYPES[format],
          ...(format === 'html'
            ? {}
            : { blobContentDisposition: `attachment; filename="${path.split('/').join('_')}"` }),
        },
        metadata: {
          kind: report.period.kind,
          period: report.period.id,
          datathrough: report.dataThrough,
          currency: report.currency,
          total: department
            ? (report.departments.find((d) => d.department === department)?.total ?? '0.00')
            : report.total,
          ...(department ? { department } : {}),
          sha256,
        },
      });
    }),
  );
  return files.map((f) => f.path);
}
