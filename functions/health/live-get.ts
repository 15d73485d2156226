import type { HttpResponseInit } from '@azure/functions';
import { app } from '@azure/functions';
import { withErrors } from '../http';

/**
 * GET /api/live — liveness, for the platform's health check: the app answers. It touches no
 * dependency, so an outage of Redis, Cosmos DB or an upstream never makes the platform restart or
 * drop instances that are still serving (metering has its spool for that). Readiness, with each
 * dependency's state, is GET /api/health.
 */
export function getLiveness(): Promise<HttpResponseInit> {
  return Promise.resolve({
    status: 200,
    headers: { 'cache-control': 'no-store' },
    jsonBody: { status: 'alive' },
  });
}

app.http('live', {
  route: 'live',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: withErrors(getLiveness),
});
