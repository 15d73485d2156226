/**
 * Errors answered to API callers, in the Azure OpenAI error shape
 * `{"error":{"code","message","param","type"}}`, so the official SDKs map them to their own error
 * classes. The functions map every ApiError to HTTP once; the local simulators answer with the
 * same shape.
 */

export interface ApiErrorBody {
  error: { code: string; message: string; param: string | null; type: string | null };
}

/** `type` as Azure OpenAI sets it: client errors are `invalid_request_error`; rate limits and server errors carry none. */
export function errorType(status: number): string | null {
  return status >= 400 && status < 500 && status !== 429 ? 'invalid_request_error' : null;
}

export function errorBody(
  status: number,
  code: string,
  message: string,
  param: string | null = null,
): ApiErrorBody {
  return { error: { code, message, param, type: errorType(status) } };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
    /** Headers the answer must carry, e.g. `retry-after`. */
    readonly headers: Record<string, string> = {},
    /**
     * What went wrong inside (an upstream's own message, which may name internal hosts): logged by
     * the function, never put in the answer.
     */
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toBody(): ApiErrorBody {
    return errorBody(this.status, this.code, this.message, this.param);
  }
}

export const badRequest = (message: string, param: string | null = null): ApiError =>
  new ApiError(400, 'BadRequest', message, param);

export const unauthorized = (message: string): ApiError => new ApiError(401, 'Unauthorized', message);

export const forbidden = (message: string): ApiError => new ApiError(403, 'Forbidden', message);

export const notFound = (message: string): ApiError => new ApiError(404, 'NotFound', message);

/** The answer to an unexpected failure: nothing internal leaks. */
export const internalError = (): ApiError =>
  new ApiError(500, 'InternalServerError', 'The server had an error while processing your request.');

/** Any thrown value as an Error (catch blocks receive `unknown`). */
export function ensureError(value: unknown): Error {
  return value instanceof Error
    ? value
    : new Error(typeof value === 'string' ? value : JSON.stringify(value));
}
