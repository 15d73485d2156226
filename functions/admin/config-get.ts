import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { app } from '@azure/functions';
import { etagOf } from '../../shared/chargeback/config-admin';
import { withErrors } from '../http';
import { ADMIN_ROUTE_PREFIX, adminServices, CONFIG_VERSION_HEADER } from './admin-http';

/**
 * GET /api/chargeback/admin/config — the whole chargeback configuration as stored, with its
 * version (what the next chargeback run records), who changed it last and when. Read from Cosmos
 * DB directly (never the proxies' cache): an admin sees their change at once. When nothing is
 * stored yet it is seeded from CHARGEBACK_CONFIG; when that setting is unusable too, `stored` is
 * false, `config` null and `problems` says why (the first valid change creates version 1).
 */
export async function getConfigHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const services = await adminServices(request);
  const stored = await services.configStore().read();
  if (!stored.stored) {
    return {
      status: 200,
      jsonBody: {
        version: null,
        stored: false,
        config: null,
        problems: stored.state.ok ? [] : stored.state.problems,
      },
    };
  }
  const { document, state } = stored;
  const version = String(document.version);
  return {
    status: 200,
    headers: { ETag: etagOf(document.config), [CONFIG_VERSION_HEADER]: version },
    jsonBody: {
      version,
      stored: true,
      updatedAt: document.updatedAt,
      updatedBy: document.updatedBy,
      config: document.config,
      // A document edited outside the API may not pass the check; the runs' reports then wait.
      problems: state.ok ? [] : state.problems,
      refreshSeconds: services.config.chargeback.configRefreshMs / 1000,
    },
  };
}

app.http('configurationGet', {
  methods: ['GET'],
  route: `${ADMIN_ROUTE_PREFIX}/config`,
  authLevel: 'function',
  handler: withErrors(getConfigHandler),
});
