import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { app } from '@azure/functions';
import { getAppContext } from '../../shared/app-context';
import { checkHealth } from '../../shared/health';
import { dependencyProbes } from '../../shared/health-probes';

export async function getHealth(
  _request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const appContext = await getAppContext();
  const report = await checkHealth(
    dependencyProbes(appContext),
    appContext.config.healthCheckTimeoutMs,
    (dependency, error) => context.warn(`Health probe '${dependency}' failed:`, error),
  );
  return {
    status: report.status === 'healthy' ? 200 : 503,
    headers: { 'cache-control': 'no-store' },
    jsonBody: report,
  };
}

app.http('health', { route: 'health', methods: ['GET'], authLevel: 'anonymous', handler: getHealth });
