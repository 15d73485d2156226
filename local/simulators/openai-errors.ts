import type http from 'node:http';

/** Errors of the Azure OpenAI simulator, with the status, code and wording the service uses. */
export class OpenAiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
    readonly headers: http.OutgoingHttpHeaders = {},
  ) {
    super(message);
  }

  /** `{"error":{"code","message","param","type"}}`; `type` as the service sets it for client errors. */
  toBody(): { error: { code: string; message: string; param: string | null; type: string | null } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        param: this.param,
        type: this.status >= 400 && this.status < 500 && this.status !== 429 ? 'invalid_request_error' : null,
      },
    };
  }
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

export const ACCESS_DENIED = (): OpenAiError =>
  new OpenAiError(
    401,
    '401',
    'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
  );

/** What Azure answers for an unknown path, and for the deployments form without `api-version`. */
export const RESOURCE_NOT_FOUND = (): OpenAiError => new OpenAiError(404, '404', 'Resource not found');

export const DEPLOYMENT_NOT_FOUND = (): OpenAiError =>
  new OpenAiError(
    404,
    'DeploymentNotFound',
    'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.',
  );

export function operationNotSupported(operation: string, model: string): OpenAiError {
  return new OpenAiError(
    400,
    'OperationNotSupported',
    `The ${operation} operation does not work with the specified model, ${model}. Please choose different model and try again. You can learn more about which models can be used with each operation here: https://go.microsoft.com/fwlink/?linkid=2197993.`,
  );
}
