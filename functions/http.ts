import { randomUUID } from 'node:crypto';
import type { HttpHandler, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import type { z } from 'zod';
import { ApiError, badRequest, ensureError, internalError } from '../shared/contracts/api-errors';
import type { AppServices } from '../shared/config/composition';
import { appServices } from '../shared/config/composition';
import type { AppRole } from '../shared/contracts/roles';
import { correlationIdOf, requireRole } from '../shared/metering/attribution';

/** Maps any error to the Azure OpenAI error shape, once; unexpected errors are logged, not leaked. */
export function errorResponse(error: unknown, context: InvocationContext): HttpResponseInit {
  if (error instanceof ApiError) {
    // The detail (an upstream's body, a socket error) is for the log, and kept to a few lines there.
    if (error.detail !== undefined) {
      const detail = error.detail.length > 500 ? `${error.detail.slice(0, 500)}… (truncated)` : error.detail;
      context.warn(`${error.status} ${error.code}: ${detail}`);
    }
    return {
      status: error.status,
      jsonBody: error.toBody(),
      ...(Object.keys(error.headers).length > 0 ? { headers: error.headers } : {}),
    };
  }
  context.error('Unhandled error:', ensureError(error));
  return { status: 500, jsonBody: internalError().toBody() };
}

/** Every HTTP function's handler goes through here: one place maps errors to responses. */
export function withErrors(
  handler: (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>,
): HttpHandler {
  return async (request, context) => {
    try {
      return await handler(request, context);
    } catch (error) {
      return errorResponse(error, context);
    }
  };
}

/** Reads the request body, refusing more than `limit` bytes without buffering past it. */
export async function readBodyWithin(request: HttpRequest, limit: number): Promise<Uint8Array<ArrayBuffer>> {
  const tooLarge = (): ApiError =>
    new ApiError(
      413,
      'RequestEntityTooLarge',
      `The request body is larger than the limit of ${limit} bytes.`,
    );
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (declared > limit) throw tooLarge();
  if (!request.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > limit) throw tooLarge();
    chunks.push(chunk);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

/** The id that makes a retried request count once: APIM's request id, else a new one. */
export function correlationIdFor(request: HttpRequest): string {
  return correlationIdOf(request.headers, randomUUID);
}

/** Validates an external input: a 400 naming the first problem's parameter, never a stack. */
export function validated<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue?.path.join('.') || null;
    throw badRequest(`${param ? `'${param}' ` : ''}${issue?.message ?? 'is invalid'}`, param);
  }
  return parsed.data;
}

/** A JSON request body of at most `limit` bytes; an empty body is `{}`. */
export async function readJsonWithin(request: HttpRequest, limit: number): Promise<unknown> {
  const body = await readBodyWithin(request, limit);
  if (body.byteLength === 0) return {};
  try {
    return JSON.parse(new TextDecoder().decode(body)) as unknown;
  } catch {
    throw badRequest('The request body is not valid JSON.', null);
  }
}

/**
 * The app's services for a caller APIM forwarded with `role`: the gateway credential is checked
 * (401), then the role from the caller's token (403, naming `what` needs it).
 */
export async function servicesFor(request: HttpRequest, role: AppRole, what: string): Promise<AppServices> {
  const services = await appServices();
  requireRole(request.headers, services.config.proxy.gatewaySecret, role, what);
  return services;
}
