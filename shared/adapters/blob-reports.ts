import { createHash } from 'node:crypto';
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import {
  BlobSASPermissions,
  generateBlobSASQueryParameters,
  SASProtocol,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';
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

export interface ReportListing {
  path: string;
  kind: 'monthly' | 'daily';
  period: string;
  department?: string;
  format: 'csv' | 'json' | 'html';
  size: number;
  lastModified: string;
  contentType?: string;
  total?: string;
}

/** The reports there are, optionally for one period (month or day), kind and department. */
export async function listReports(
  container: ContainerClient,
  filter: { period?: string; kind?: 'monthly' | 'daily'; department?: string },
): Promise<ReportListing[]> {
  const kind =
    filter.kind ?? (filter.period ? (filter.period.length === 7 ? 'monthly' : 'daily') : undefined);
  const prefix = kind ? `${kind}/${filter.period ? `${filter.period}/` : ''}` : '';
  const found: ReportListing[] = [];
  if (!(await container.exists())) return found;
  for await (const blob of container.listBlobsFlat({ prefix, includeMetadata: true })) {
    const match = REPORT_PATH.exec(blob.name);
    if (!match) continue;
    const department = match[6];
    if (filter.department && department !== filter.department) continue;
    found.push({
      path: blob.name,
      kind: blob.name.startsWith('monthly/') ? 'monthly' : 'daily',
      period: blob.name.split('/')[1] as string,
      ...(department ? { department } : {}),
      format: blob.name.slice(blob.name.lastIndexOf('.') + 1) as ReportListing['format'],
      size: blob.properties.contentLength ?? 0,
      lastModified: (blob.properties.lastModified ?? new Date(0)).toISOString(),
      ...(blob.properties.contentType ? { contentType: blob.properties.contentType } : {}),
      ...(blob.metadata?.total ? { total: blob.metadata.total } : {}),
    });
  }
  return found.sort((a, b) => (a.path < b.path ? -1 : 1));
}

/**
 * A read-only link to one report, valid `ttlMinutes` (at most 15): signed with the account key
 * when the client has one (Azurite, key-based accounts), else with a user delegation key obtained
 * through the app's Entra identity (no account key in production).
 */
export async function reportReadLink(
  service: BlobServiceClient,
  containerName: string,
  path: string,
  ttlMinutes = 15,
): Promise<{ url: string; expiresAt: string }> {
  const minutes = Math.min(Math.max(ttlMinutes, 1), 15);
  const startsOn = new Date(Date.now() - 60_000);
  const expiresOn = new Date(Date.now() + minutes * 60_000);
  const blob = service.getContainerClient(containerName).getBlobClient(path);
  const permissions = BlobSASPermissions.parse('r');
  if (service.credential instanceof StorageSharedKeyCredential) {
    return {
      url: await blob.generateSasUrl({ permissions, startsOn, expiresOn }),
      expiresAt: expiresOn.toISOString(),
    };
  }
  const key = await service.getUserDelegationKey(startsOn, expiresOn);
  const sas = generateBlobSASQueryParameters(
    { containerName, blobName: path, permissions, startsOn, expiresOn, protocol: SASProtocol.Https },
    key,
    service.accountName,
  );
  return { url: `${blob.url}?${sas.toString()}`, expiresAt: expiresOn.toISOString() };
}
