import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { app } from '@azure/functions';
import { etagOf, parsePrice, requireIfMatch } from '../../shared/chargeback/config-admin';
import { notFound } from '../../shared/contracts/api-errors';
import { withErrors } from '../http';
import {
  actorOf,
  ADMIN_ROUTE_PREFIX,
  adminServices,
  bodyOf,
  pathId,
  createdLocation,
  resourceResponse,
} from './admin-http';

/**
 * The admins' price overrides, in their own Cosmos DB container (`prices`, one document per
 * override, partitioned by model), with their effective dating: an override applies from the later
 * of its `effectiveFrom` and the moment it was written (`writtenAt`), so no change reprices usage
 * already aggregated. A replaced override is written anew, so it applies from its replacement on.
 *
 *   GET    /api/chargeback/admin/prices          every override
 *   POST   /api/chargeback/admin/prices          create (409 if the id exists, or the table would be invalid)
 *   GET    /api/chargeback/admin/prices/{id}     one, with its ETag
 *   PUT    /api/chargeback/admin/prices/{id}     replace (If-Match; the model cannot change)
 *   DELETE /api/chargeback/admin/prices/{id}     delete (If-Match)
 *
 * Each change and its audit record are one transactional batch in the model's partition. Price
 * overrides are not part of the configuration version (they keep their own storage): their audit
 * records carry no version.
 */

/** The route of the collection (the container that holds it is named in contracts/storage.ts). */
const PRICES_ROUTE = `${ADMIN_ROUTE_PREFIX}/prices`;

export async function listPricesHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const services = await adminServices(request);
  return { status: 200, jsonBody: { items: await services.configStore().prices() } };
}

export async function createPriceHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const services = await adminServices(request);
  const actor = actorOf(request);
  const entry = parsePrice(await bodyOf(request), actor);
  const price = await services.configStore().createPrice(entry, actor);
  return resourceResponse(201, price, etagOf(price), null, {
    Location: createdLocation(request, price.id),
  });
}

export async function getPriceHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const services = await adminServices(request);
  const id = pathId(request);
  const price = await services.configStore().price(id);
  if (!price) throw notFound(`No price '${id}'.`);
  return resourceResponse(200, price, etagOf(price), null);
}

export async function replacePriceHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const services = await adminServices(request);
  const id = pathId(request);
  const ifMatch = request.headers.get('if-match');
  requireIfMatch(ifMatch, `price '${id}'`);
  const actor = actorOf(request);
  const entry = parsePrice(await bodyOf(request), actor, id);
  const price = await services.configStore().changePrice(id, entry, ifMatch, actor);
  if (!price) throw notFound(`No price '${id}'.`);
  return resourceResponse(200, price, etagOf(price), null);
}

export async function deletePriceHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const services = await adminServices(request);
  const id = pathId(request);
  const ifMatch = request.headers.get('if-match');
  requireIfMatch(ifMatch, `price '${id}'`);
  await services.configStore().changePrice(id, null, ifMatch, actorOf(request));
  return { status: 204 };
}

app.http('pricesCollection', {
  methods: ['GET', 'POST'],
  route: PRICES_ROUTE,
  authLevel: 'function',
  handler: withErrors((request) =>
    request.method === 'POST' ? createPriceHandler(request) : listPricesHandler(request),
  ),
});

app.http('pricesItem', {
  methods: ['GET', 'PUT', 'DELETE'],
  route: `${PRICES_ROUTE}/{id}`,
  authLevel: 'function',
  handler: withErrors((request) =>
    request.method === 'PUT'
      ? replacePriceHandler(request)
      : request.method === 'DELETE'
        ? deletePriceHandler(request)
        : getPriceHandler(request),
  ),
});
