/**
 * Errors the proxy answers with, in the Azure OpenAI error shape
 * `{"error":{"code","message","param","type"}}`, mapped to HTTP once, here.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toBody(): { error: { code: string; message: string; param: string | null; type: string } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        param: this.param,
        type: this.status >= 500 ? 'server_error' : 'invalid_request_error',
      },
    };
  }
}

export const badRequest = (message: string, param: string | null = null): ApiError =>
  new ApiError(400, 'BadRequest', message, param);

export const unauthorized = (message: string): ApiError => new ApiError(401, 'Unauthorized', message);

export function ensureError(value: unknown): Error {
  return value instanceof Error
    ? value
    : new Error(typeof value === 'string' ? value : JSON.stringify(value));
}
