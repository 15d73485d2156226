import type http from 'node:http';
import type { FaultPlan } from './faults';
import { retryAfterSeconds } from './faults';
import type { FaultErrors } from './http';
import { ACCESS_DENIED_MESSAGE } from './http';

/**
 * Errors of the Speech simulator's REST endpoints. The Speech service answers in the Cognitive
 * Services shape `{"error":{"code","message"}}`: unlike Azure OpenAI's (shared/contracts/api-errors.ts)
 * it has no `param` and no `type`.
 */
export class SpeechError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: http.OutgoingHttpHeaders = {},
  ) {
    super(message);
  }

  toBody(): { error: { code: string; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

/** A thrown value as the simulator answers it: its own errors as they are, anything else a 500. */
export function asSpeechError(error: unknown): SpeechError {
  return error instanceof SpeechError
    ? error
    : new SpeechError(500, 'InternalServerError', error instanceof Error ? error.message : String(error));
}

export const badRequest = (message: string): SpeechError => new SpeechError(400, 'BadRequest', message);

export const ACCESS_DENIED = (): SpeechError => new SpeechError(401, '401', ACCESS_DENIED_MESSAGE);

export const RESOURCE_NOT_FOUND = (): SpeechError => new SpeechError(404, '404', 'Resource not found');

export const SPEECH_FAULT_ERRORS: FaultErrors = {
  rateLimited: (plan: FaultPlan) => {
    const seconds = retryAfterSeconds(plan);
    return new SpeechError(
      429,
      '429',
      `Too many requests. The rate limit of your Speech resource was exceeded. Please retry after ${seconds} second${seconds === 1 ? '' : 's'}.`,
      { 'retry-after': String(seconds), 'retry-after-ms': String(plan.retryAfterMs) },
    );
  },
  serverError: () => new SpeechError(500, 'InternalServerError', 'An internal server error occurred.'),
  unavailable: () => new SpeechError(503, 'ServiceUnavailable', 'The service is temporarily unavailable.'),
};
