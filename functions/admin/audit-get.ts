import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { app } from '@azure/functions';
import { z } from 'zod';
import { resourceIdSchema } from '../../shared/chargeback/config-admin';
import { validated, withErrors } from '../http';
import { ADMIN_ROUTE_PREFIX, adminServices } from './admin-http';

/**
 * GET /api/chargeback/admin/audit?resourceType=&resourceId=&limit= — the audit trail, newest
 * first: one record per change (who, when, what, the entry before and after, and the configuration
 * version it produced), for the configuration's entries and the price overrides.
 */

const auditQuery = z
  .object({
    resourceType: z.enum(['department', 'app', 'budget', 'shared-cost', 'price', 'configuration']).optional(),
    resourceId: resourceIdSchema.optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strict();

export async function getAuditHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const services = await adminServices(request);
  const query = validated(auditQuery, Object.fromEntries(request.query.entries()));
  const records = await services.configStore().audit(query);
  // Where a record is stored (its partition) is not part of it.
  return { status: 200, jsonBody: { items: records.map(({ pk: _pk, type: _type, ...record }) => record) } };
}

app.http('auditGet', {
  methods: ['GET'],
  route: `${ADMIN_ROUTE_PREFIX}/audit`,
  authLevel: 'function',
  handler: withErrors(getAuditHandler),
});
