import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { app } from '@azure/functions';
import { checkHealth } from '../../shared/adapters/health';
import { appServices } from '../../shared/config/composition';
import { withErrors } from '../http';

export async function getHealth(
  _request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const services = await appServices();
  const report = await checkHealth(
    services.healthProbes(),
    services.config.healthCheckTimeoutMs,
    (dependency, error) => context.warn(`Health probe '${dependency}' failed:`, error),
  );
  return {
    status: report.status === 'healthy' ? 200 : 503,
    headers: { 'cache-control': 'no-store' },
    jsonBody: report,
  };
}

app.http('health', {
  route: 'health',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: withErrors(getHealth),
});
