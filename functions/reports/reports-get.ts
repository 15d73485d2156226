import { Readable } from 'node:stream';
import type { ReadableStream } from 'node:stream/web';
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { app } from '@azure/functions';
import { z } from 'zod';
import { listReports, reportReadLink } from '../../shared/adapters/blob-reports';
import { REPORT_SECURITY_HEADERS } from '../../shared/chargeback/render-html';
import type { AppServices } from '../../shared/config/composition';
import { ApiError, badRequest, notFound } from '../../shared/contracts/api-errors';
import { departmentIdSchema } from '../../shared/contracts/department';
import { REPORT_PATH_EXAMPLE, reportPathPeriod } from '../../shared/contracts/report-paths';
import { periodIdSchema, periodKindOf, REPORT_KINDS } from '../../shared/contracts/report-period';
import { APP_ROLES } from '../../shared/contracts/roles';
import { servicesFor, validated, withErrors } from '../http';

/**
 * The finance API: list the chargeback reports and download one, streamed or through a
 * short-lived read-only link. Only through APIM (gateway credential) and only for callers whose
 * token carries the finance app role.
 */

const listQuery = z.object({
  period: periodIdSchema.optional(),
  kind: z.enum(REPORT_KINDS).optional(),
  department: departmentIdSchema.optional(),
});

const linkTtl = z.coerce.number().int().min(1).max(15).default(15);

function queryOf(request: HttpRequest, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = request.query.get(name);
    if (value !== null && value !== '') out[name] = value;
  }
  return out;
}

function financeServices(request: HttpRequest): Promise<AppServices> {
  return servicesFor(request, APP_ROLES.finance, 'Chargeback reports');
}

/** GET /api/reports?period=&kind=&department= */
export async function listReportsHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const services = await financeServices(request);
  const filter = validated(listQuery, queryOf(request, ['period', 'kind', 'department']));
  if (filter.kind && filter.period && periodKindOf(filter.period) !== filter.kind) {
    throw badRequest(`'period' ${filter.period} is not a ${filter.kind} period.`, 'period');
  }
  return { jsonBody: { reports: await listReports(services.reportsContainer(), filter) } };
}

/** GET /api/reports/{path}: the report's bytes, or with `?link` a read-only link. */
export async function getReportHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const services = await financeServices(request);
  const path = request.params.path ?? '';
  // The path's shape first (a 400 naming the path), then its period against the calendar (a 400
  // naming the period): together they are exactly what parseReportPath accepts.
  const period = reportPathPeriod(path);
  if (period === undefined)
    throw badRequest(`'path' must name a report, e.g. ${REPORT_PATH_EXAMPLE}.`, 'path');
  validated(z.object({ period: periodIdSchema }), { period });
  const container = services.reportsContainer();
  const blob = container.getBlobClient(path);
  if (request.query.get('link') !== null) {
    if (!(await blob.exists())) throw notFound(`No report at '${path}'.`);
    const ttl = validated(linkTtl, request.query.get('ttlMinutes') ?? undefined);
    return { jsonBody: await reportReadLink(services.blobService(), container.containerName, path, ttl) };
  }
  const download = await blob.download().catch((error: { statusCode?: number }) => {
    if (error.statusCode === 404) throw notFound(`No report at '${path}'.`);
    throw error;
  });
  const body = download.readableStreamBody as NodeJS.ReadableStream | undefined;
  if (!body) throw new ApiError(502, 'BadGateway', 'Blob Storage returned no content.');
  return {
    status: 200,
    headers: {
      'content-type': download.contentType ?? 'application/octet-stream',
      ...(download.contentLength !== undefined ? { 'content-length': String(download.contentLength) } : {}),
      ...(download.contentDisposition ? { 'content-disposition': download.contentDisposition } : {}),
      ...(download.etag ? { etag: download.etag } : {}),
      'cache-control': 'private, no-store',
      // Every report file: the HTML page's policy (it needs nothing but its inline styles), and no
      // content sniffing, so that a CSV or JSON file is never run as a page.
      ...REPORT_SECURITY_HEADERS,
    },
    // Streamed from Blob Storage to the caller, never held whole in memory.
    body: Readable.toWeb(body as Readable) as ReadableStream<Uint8Array>,
  };
}

app.http('reportsList', {
  route: 'reports',
  methods: ['GET'],
  authLevel: 'function',
  handler: withErrors(listReportsHandler),
});
app.http('reportsDownload', {
  route: 'reports/{*path}',
  methods: ['GET'],
  authLevel: 'function',
  handler: withErrors(getReportHandler),
});
