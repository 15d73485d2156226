import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { app } from '@azure/functions';
import type { HealthReport } from '../../shared/adapters/health';
import { checkHealth } from '../../shared/adapters/health';
import { appServices } from '../../shared/config/composition';
import { withErrors } from '../http';

/**
 * GET /api/health — readiness: each dependency's state (by name and a coarse reason, never a host),
 * behind the function key. Checked at most once every READINESS_CACHE_MS, however many callers ask
 * (concurrent callers share one check), so it cannot load the dependencies it reports on. The
 * platform's health check uses GET /api/live.
 */
export const READINESS_CACHE_MS = 5_000;

let latest: { at: number; report: Promise<HealthReport> } | undefined;

export async function getHealth(
  _request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const now = Date.now();
  if (!latest || now - latest.at >= READINESS_CACHE_MS) {
    const services = await appServices();
    const report = checkHealth(
      services.healthProbes(),
      services.config.healthCheckTimeoutMs,
      (dependency, error) => context.warn(`Health probe '${dependency}' failed:`, error),
    );
    latest = { at: now, report };
    // A check that throws is not kept: the next caller tries again.
    report.catch(() => {
      if (latest?.report === report) latest = undefined;
    });
  }
  const report = await latest.report;
  return {
    status: report.status === 'healthy' ? 200 : 503,
    headers: { 'cache-control': 'no-store' },
    jsonBody: report,
  };
}

app.http('health', {
  route: 'health',
  methods: ['GET'],
  authLevel: 'function',
  handler: withErrors(getHealth),
});
