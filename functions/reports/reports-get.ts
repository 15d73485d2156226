import { Readable } from 'node:stream';
import type { ReadableStream } from 'node:stream/web';
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { app } from '@azure/functions';
import { z } from 'zod';
import { getAppContext } from '../../shared/app-context';
import { requireFinanceRole } from '../../shared/attribution';
import { listReports, REPORT_PATH, reportReadLink } from '../../shared/chargeback/report-store';
import { ApiError, badRequest } from '../../shared/errors';
import { errorResponse } from '../http';

/**
 * The finance API: list the chargeback reports and download one, streamed or through a
 * short-lived read-only link. Only through APIM (gateway secret) and only for callers whose token
 * carries the finance app role.
 */

/** A real calendar month (YYYY-MM) or day (YYYY-MM-DD). */
const period = z.string().refine((value) => {
  const m = /^(\d{4})-(\d{2})(?:-(\d{2}))?$/.exec(value);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), m[3] === undefined ? 1 : Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}, "must be a calendar month 'YYYY-MM' or day 'YYYY-MM-DD'");

const listQuery = z.object({
  period: period.optional(),
  kind: z.enum(['monthly', 'daily']).optional(),
  department: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must be a department id (a-z, 0-9, . _ -)')
    .optional(),
});

function queryOf(request: HttpRequest, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = request.query.get(name);
    if (value !== null && value !== '') out[name] = value;
  }
  return out;
}

function validated<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue?.path.join('.') || null;
    throw badRequest(`${param ? `'${param}' ` : ''}${issue?.message ?? 'is invalid'}`, param);
  }
  return parsed.data;
}

app.http('reportsList', {
  route: 'reports',
  methods: ['GET'],
  authLevel: 'function',
  handler: async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      const appContext = await getAppContext();
      requireFinanceRole(request.headers, appContext.config.proxy.gatewaySecret);
      const filter = validated(listQuery, queryOf(request, ['period', 'kind', 'department']));
      if (filter.kind && filter.period && (filter.kind === 'monthly') !== (filter.period.length === 7)) {
        throw badRequest(`'period' ${filter.period} is not a ${filter.kind} period.`, 'period');
      }
      const container = appContext
        .blobService()
        .getContainerClient(appContext.config.storage.reportsContainer);
      return { jsonBody: { reports: await listReports(container, filter) } };
    } catch (error) {
      return errorResponse(error, context);
    }
  },
});

app.http('reportsDownload', {
  route: 'reports/{*path}',
  methods: ['GET'],
  authLevel: 'function',
  handler: async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      const appContext = await getAppContext();
      requireFinanceRole(request.headers, appContext.config.proxy.gatewaySecret);
      const path = request.params.path ?? '';
      const match = REPORT_PATH.exec(path);
      if (!match) {
        throw badRequest(
          "'path' must name a report, e.g. monthly/2026-11/chargeback-2026-11.csv or daily/2026-11-22/departments/research.json.",
          'path',
        );
      }
      validated(z.object({ period }), { period: path.split('/')[1] });
      const { config } = appContext;
      const blob = appContext
        .blobService()
        .getContainerClient(config.storage.reportsContainer)
        .getBlobClient(path);
      if (request.query.get('link') !== null) {
        if (!(await blob.exists())) throw new ApiError(404, 'NotFound', `No report at '${path}'.`);
        const ttl = validated(
          z.coerce.number().int().min(1).max(15).default(15),
          request.query.get('ttlMinutes') ?? undefined,
        );
        return {
          jsonBody: await reportReadLink(
            appContext.blobService(),
            config.storage.reportsContainer,
            path,
            ttl,
          ),
        };
      }
      const download = await blob.download().catch((error: { statusCode?: number }) => {
        if (error.statusCode === 404) throw new ApiError(404, 'NotFound', `No report at '${path}'.`);
        throw error;
      });
      const body = download.readableStreamBody as NodeJS.ReadableStream | undefined;
      if (!body) throw new ApiError(502, 'BadGateway', 'Blob Storage returned no content.');
      return {
        status: 200,
        headers: {
          'content-type': download.contentType ?? 'application/octet-stream',
          ...(download.contentLength !== undefined
            ? { 'content-length': String(download.contentLength) }
            : {}),
          ...(download.contentDisposition ? { 'content-disposition': download.contentDisposition } : {}),
          ...(download.etag ? { etag: download.etag } : {}),
          'cache-control': 'private, no-store',
        },
        // Streamed from Blob Storage to the caller, never held whole in memory.
        body: Readable.toWeb(body as Readable) as ReadableStream<Uint8Array>,
      };
    } catch (error) {
      return errorResponse(error, context);
    }
  },
});
