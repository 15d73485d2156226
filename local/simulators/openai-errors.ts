import { ApiError } from '../../shared/contracts/api-errors';
import type { FaultPlan } from './faults';
import { retryAfterSeconds } from './faults';
import type { FaultErrors } from './http';
import { ACCESS_DENIED_MESSAGE } from './http';

/**
 * Errors of the Azure OpenAI simulator, with the status, code and wording the service uses. The
 * body, `{"error":{"code","message","param","type"}}` with `type` as the service sets it, is the
 * shared contract's (shared/contracts/api-errors.ts), so the simulator and the functions answer
 * in one shape.
 */
export class OpenAiError extends ApiError {
  constructor(
    status: number,
    code: string,
    message: string,
    param: string | null = null,
    /** Headers the answer carries, e.g. `retry-after`. */
    headers: Record<string, string> = {},
  ) {
    super(status, code, message, param, headers);
    this.name = 'OpenAiError';
  }
}

/** A thrown value as the simulator answers it: its own errors as they are, anything else a 500. */
export function asOpenAiError(error: unknown): OpenAiError {
  return error instanceof OpenAiError
    ? error
    : new OpenAiError(500, 'InternalServerError', error instanceof Error ? error.message : String(error));
}

export function invalidRequest(message: string, param: string | null = null, code = 'invalid_request_error') {
  return new OpenAiError(400, code, message, param);
}

export function unsupportedParameter(param: string, instead?: string): OpenAiError {
  return invalidRequest(
    `Unsupported parameter: '${param}' is not supported with this model.${instead ? ` Use '${instead}' instead.` : ''}`,
    param,
    'unsupported_parameter',
  );
}

export function invalidValue(param: string, value: unknown, expected: string): OpenAiError {
  return invalidRequest(
    `Invalid value for '${param}': ${JSON.stringify(value)}. ${expected}`,
    param,
    'invalid_value',
  );
}

export const ACCESS_DENIED = (): OpenAiError => new OpenAiError(401, '401', ACCESS_DENIED_MESSAGE);

/** What Azure answers for an unknown path, and for the deployments form without `api-version`. */
export const RESOURCE_NOT_FOUND = (): OpenAiError => new OpenAiError(404, '404', 'Resource not found');

export const API_VERSION_NOT_SUPPORTED = (): OpenAiError =>
  new OpenAiError(400, 'BadRequest', 'API version not supported');

export const UNSUPPORTED_MEDIA_TYPE = (): OpenAiError =>
  new OpenAiError(415, 'UnsupportedMediaType', "Unsupported Content-Type; expected 'application/json'.");

export const DEPLOYMENT_NOT_FOUND = (): OpenAiError =>
  new OpenAiError(
    404,
    'DeploymentNotFound',
    'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.',
  );

export function responseNotFound(id: string): OpenAiError {
  return new OpenAiError(404, 'not_found', `Response with id '${id}' not found.`);
}

export function operationNotSupported(operation: string, model: string): OpenAiError {
  return new OpenAiError(
    400,
    'OperationNotSupported',
    `The ${operation} operation does not work with the specified model, ${model}. Please choose different model and try again. You can learn more about which models can be used with each operation here: https://go.microsoft.com/fwlink/?linkid=2197993.`,
  );
}

/** The answers to injected failures; `operation` and `apiVersion` as the rate limit message names them. */
export function faultErrors(operation: string, apiVersion: string): FaultErrors {
  return {
    rateLimited: (plan: FaultPlan) => {
      const seconds = retryAfterSeconds(plan);
      return new OpenAiError(
        429,
        '429',
        `Requests to the ${operation} Operation under Azure OpenAI API version ${apiVersion} have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after ${seconds} second${seconds === 1 ? '' : 's'}. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.`,
        null,
        {
          'retry-after': String(seconds),
          'retry-after-ms': String(plan.retryAfterMs),
          'x-ratelimit-remaining-requests': '0',
          'x-ratelimit-remaining-tokens': '0',
        },
      );
    },
    serverError: () =>
      new OpenAiError(
        500,
        'InternalServerError',
        'The server had an error while processing your request. Sorry about that!',
      ),
    unavailable: () =>
      new OpenAiError(
        503,
        'ServiceUnavailable',
        'The service is temporarily unable to process your request. Please try again later.',
      ),
  };
}
