import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { app } from '@azure/functions';
import type { ConfigCollection } from '../../shared/chargeback/config-admin';
import {
  CONFIG_COLLECTIONS,
  etagOf,
  findItem,
  idOfItem,
  itemsOf,
  parseItem,
  requireIfMatch,
} from '../../shared/chargeback/config-admin';
import { notFound } from '../../shared/contracts/api-errors';
import { withErrors } from '../http';
import {
  actorOf,
  ADMIN_ROUTE_PREFIX,
  adminServices,
  bodyOf,
  CONFIG_VERSION_HEADER,
  pathId,
  createdLocation,
  resourceResponse,
} from './admin-http';

/**
 * The admin API's configuration collections, one entry at a time, stored in Cosmos DB (see
 * adapters/cosmos-config-store.ts and docs/admin-api.md):
 *
 *   GET    /api/chargeback/admin/{departments,apps,budgets,shared-costs}        the list
 *   POST   /api/chargeback/admin/{...}                                          create (409 if it exists)
 *   GET    /api/chargeback/admin/{...}/{id}                                     one, with its ETag (404)
 *   PUT    /api/chargeback/admin/{...}/{id}     If-Match required (428, 412)    replace
 *   DELETE /api/chargeback/admin/{...}/{id}     If-Match required (428, 412)    delete
 *
 * A body is checked on its own (400), then the whole configuration it would produce (409 naming
 * every problem, e.g. a department still named by an app, a budget or a fixed percentage). Each
 * change is one new configuration version with one audit record.
 */

function collectionHandlers(collection: ConfigCollection) {
  const spec = CONFIG_COLLECTIONS[collection];

  async function list(request: HttpRequest): Promise<HttpResponseInit> {
    const services = await adminServices(request);
    const stored = await services.configStore().read();
    const items = stored.stored ? itemsOf(stored.document.config, collection) : [];
    const version = stored.stored ? String(stored.document.version) : null;
    return {
      status: 200,
      jsonBody: { version, items },
      headers: version === null ? {} : { [CONFIG_VERSION_HEADER]: version },
    };
  }

  async function create(request: HttpRequest): Promise<HttpResponseInit> {
    const services = await adminServices(request);
    const item = parseItem(collection, await bodyOf(request));
    const outcome = await services
      .configStore()
      .change({ action: 'create', collection, item }, null, actorOf(request));
    const id = idOfItem(collection, item);
    return resourceResponse(201, outcome.resource, etagOf(outcome.resource), outcome.version, {
      Location: createdLocation(request, id),
    });
  }

  async function get(request: HttpRequest): Promise<HttpResponseInit> {
    const services = await adminServices(request);
    const id = pathId(request);
    const stored = await services.configStore().read();
    const item = stored.stored ? findItem(stored.document.config, collection, id) : undefined;
    if (!stored.stored || item === undefined) throw notFound(`No ${spec.singular} '${id}'.`);
    return resourceResponse(200, item, etagOf(item), String(stored.document.version));
  }

  async function replace(request: HttpRequest): Promise<HttpResponseInit> {
    const services = await adminServices(request);
    const id = pathId(request);
    const ifMatch = request.headers.get('if-match');
    requireIfMatch(ifMatch, `${spec.singular} '${id}'`);
    const item = parseItem(collection, await bodyOf(request), id);
    const outcome = await services
      .configStore()
      .change({ action: 'replace', collection, id, item }, ifMatch, actorOf(request));
    return resourceResponse(200, outcome.resource, etagOf(outcome.resource), outcome.version);
  }

  async function remove(request: HttpRequest): Promise<HttpResponseInit> {
    const services = await adminServices(request);
    const id = pathId(request);
    const ifMatch = request.headers.get('if-match');
    requireIfMatch(ifMatch, `${spec.singular} '${id}'`);
    const outcome = await services
      .configStore()
      .change({ action: 'delete', collection, id }, ifMatch, actorOf(request));
    return { status: 204, headers: { [CONFIG_VERSION_HEADER]: outcome.version } };
  }

  return { list, create, get, replace, remove };
}

/** `shared-costs` → `sharedCosts`: function names (which must not start with `admin`). */
function camel(collection: ConfigCollection): string {
  return collection.replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
}

export const CONFIG_COLLECTION_HANDLERS = Object.fromEntries(
  (Object.keys(CONFIG_COLLECTIONS) as ConfigCollection[]).map((c) => [c, collectionHandlers(c)]),
) as Record<ConfigCollection, ReturnType<typeof collectionHandlers>>;

for (const collection of Object.keys(CONFIG_COLLECTIONS) as ConfigCollection[]) {
  const handlers = CONFIG_COLLECTION_HANDLERS[collection];
  app.http(`${camel(collection)}Collection`, {
    methods: ['GET', 'POST'],
    route: `${ADMIN_ROUTE_PREFIX}/${collection}`,
    authLevel: 'function',
    handler: withErrors((request) =>
      request.method === 'POST' ? handlers.create(request) : handlers.list(request),
    ),
  });
  app.http(`${camel(collection)}Item`, {
    methods: ['GET', 'PUT', 'DELETE'],
    route: `${ADMIN_ROUTE_PREFIX}/${collection}/{id}`,
    authLevel: 'function',
    handler: withErrors((request) =>
      request.method === 'PUT'
        ? handlers.replace(request)
        : request.method === 'DELETE'
          ? handlers.remove(request)
          : handlers.get(request),
    ),
  });
}
