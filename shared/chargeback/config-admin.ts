import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ApiError, badRequest, notFound } from '../contracts/api-errors';
import type { ChargebackConfig, PriceEntry } from './model';
import { chargebackConfigSchema, checkChargebackConfig, priceEntrySchema } from './model';
import type { StoredPrice } from './ports';
import { priceTableWith } from './prices';

/**
 * The admin API's changes to the chargeback configuration, as pure functions: which resources
 * there are, how a request body is checked, how a change is applied, and when the result is
 * refused. No I/O: the Cosmos DB adapter (adapters/cosmos-config-store.ts) reads, calls these and
 * writes.
 *
 * Two kinds of refusal:
 * - 400: the body itself is wrong (its shape, or a rule about the entry alone: fixed percentages
 *   that do not add up to 100, warning thresholds that do not ascend);
 * - 409: the body is fine but the configuration it would produce is not (a cross-reference: an
 *   app, a budget or a fixed percentage naming a department that is not configured, deleting a
 *   department something still names, a second budget for the same scope, the last department).
 */

/** The configuration's collections the admin API manages one entry at a time. */
export const CONFIG_COLLECTIONS = {
  departments: { key: 'departments', idField: 'id', singular: 'department', resourceType: 'department' },
  apps: { key: 'apps', idField: 'appId', singular: 'app', resourceType: 'app' },
  budgets: { key: 'budgets', idField: 'id', singular: 'budget', resourceType: 'budget' },
  'shared-costs': { key: 'sharedCosts', idField: 'id', singular: 'shared cost', resourceType: 'shared-cost' },
} as const;
export type ConfigCollection = keyof typeof CONFIG_COLLECTIONS;
type CollectionKey = (typeof CONFIG_COLLECTIONS)[ConfigCollection]['key'];
export type ConfigItem<C extends ConfigCollection> =
  ChargebackConfig[(typeof CONFIG_COLLECTIONS)[C]['key']][number];
type AnyItem = ConfigItem<ConfigCollection>;

/** What the audit trail names: a configuration entry, a price override, or the whole configuration (its seed). */
export type AuditResourceType =
  (typeof CONFIG_COLLECTIONS)[ConfigCollection]['resourceType'] | 'price' | 'configuration';
export type AuditAction = 'create' | 'replace' | 'delete' | 'seed';

/** One change, as the audit trail keeps it. */
export interface AuditRecord {
  id: string;
  pk: string;
  type: 'audit';
  /** When the change was made (ISO 8601). */
  at: string;
  /** Who made it: the gateway's user, else the APIM subscription, else `unknown`. */
  actor: string;
  resourceType: AuditResourceType;
  resourceId: string;
  action: AuditAction;
  /** The entry before and after the change (null when it did not exist / no longer exists). */
  before: unknown;
  after: unknown;
  /** The configuration version the change produced; null for price overrides (versioned on their own). */
  configVersion: string | null;
}

const shape = chargebackConfigSchema.shape;

/** The request body of each collection's POST and PUT: the entry, unknown fields refused. */
export const ITEM_SCHEMAS = {
  departments: shape.departments.element.strict(),
  apps: shape.apps.unwrap().element.strict(),
  budgets: shape.budgets.unwrap().element.strict(),
  'shared-costs': shape.sharedCosts.unwrap().element.strict(),
} as const;

/** A configuration with nothing in it: the base when none is stored and CHARGEBACK_CONFIG is unusable. */
export const EMPTY_CONFIG: ChargebackConfig = {
  currency: 'USD',
  departments: [],
  apps: [],
  sharedCosts: [],
  markupPercent: '0',
  budgets: [],
};

/** The id a path names: the alphabet every id of the configuration can be written in, in a URL. */
export const resourceIdSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\w.@:-]+$/, 'letters, digits and . _ - @ : only');

/** JSON with its object keys sorted: the same content always gives the same text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * A resource's ETag: a strong validator of its content. It changes exactly when the resource
 * does, whatever happens to the rest of the configuration, so a writer whose copy of this
 * resource is still current is never refused because someone changed another one.
 */
export function etagOf(resource: unknown): string {
  return `"${createHash('sha256').update(canonicalJson(resource)).digest('base64url').slice(0, 27)}"`;
}

/**
 * The If-Match a PUT or DELETE must carry: 428 without one (or with `*`, which would skip the
 * check), 412 when it names no current version of the resource (RFC 9110: a list of ETags,
 * strong comparison).
 */
export function checkIfMatch(ifMatch: string | null, current: unknown, what: string): void {
  const tags = requireIfMatch(ifMatch, what);
  if (!tags.includes(etagOf(current))) {
    throw new ApiError(
      412,
      'PreconditionFailed',
      `${capitalized(what)} has changed since the ETag in If-Match was read: GET it again, then retry.`,
    );
  }
}

/** The ETags of an If-Match header; 428 when there is none (or `*`). */
export function requireIfMatch(ifMatch: string | null, what: string): string[] {
  const header = ifMatch?.trim() ?? '';
  if (header === '' || header === '*') {
    throw new ApiError(
      428,
      'PreconditionRequired',
      `Changing ${what} requires an If-Match header with the ETag of a GET of it ('*' is not accepted).`,
    );
  }
  return header.split(',').map((tag) => tag.trim());
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function itemsOf<C extends ConfigCollection>(
  config: ChargebackConfig,
  collection: C,
): Array<ConfigItem<C>> {
  return config[CONFIG_COLLECTIONS[collection].key];
}

export function idOfItem(collection: ConfigCollection, item: AnyItem): string {
  return CONFIG_COLLECTIONS[collection].idField === 'appId'
    ? (item as { appId: string }).appId
    : (item as { id: string }).id;
}

export function findItem<C extends ConfigCollection>(
  config: ChargebackConfig,
  collection: C,
  id: string,
): ConfigItem<C> | undefined {
  return itemsOf(config, collection).find((item) => idOfItem(collection, item) === id);
}

/** The departments an entry names (to check the entry on its own, with them present). */
function departmentsNamed(collection: ConfigCollection, item: AnyItem): string[] {
  switch (collection) {
    case 'departments':
      return [];
    case 'apps':
    case 'budgets':
      return [(item as { department: string }).department];
    case 'shared-costs': {
      const rule = (item as ConfigItem<'shared-costs'>).rule;
      return rule.kind === 'fixed' ? Object.keys(rule.percentages) : [];
    }
  }
}

/** The problem path relative to the entry (`budgets.0.warnAtPercent` → `warnAtPercent`). */
function relativeParam(problem: string): { param: string | null; message: string } {
  const match = /^([^:]+): (.*)$/s.exec(problem);
  if (!match) return { param: null, message: problem };
  const path = (match[1] ?? '').split('.').slice(2).join('.');
  return { param: path === '' ? null : path, message: match[2] ?? problem };
}

/**
 * Checks a request body as an entry of `collection`: its shape (400 naming the field), the id in
 * the path (a PUT's body may repeat it, never change it), then the rules about the entry alone
 * (400), checked in a configuration that holds only the entry and the departments it names.
 */
export function parseItem<C extends ConfigCollection>(
  collection: C,
  body: unknown,
  pathId?: string,
): ConfigItem<C> {
  const { idField } = CONFIG_COLLECTIONS[collection];
  let input = body;
  if (pathId !== undefined && input !== null && typeof input === 'object' && !Array.isArray(input)) {
    const given = (input as Record<string, unknown>)[idField];
    if (given !== undefined && given !== pathId) {
      throw badRequest(
        `'${idField}' must be the id in the path ('${pathId}'): an id never changes.`,
        idField,
      );
    }
    input = { ...(input as Record<string, unknown>), [idField]: pathId };
  }
  const parsed = (ITEM_SCHEMAS[collection] as z.ZodType<ConfigItem<C>>).safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue?.path.join('.') || null;
    throw badRequest(`${param ? `'${param}' ` : ''}${issue?.message ?? 'is invalid'}`, param);
  }
  const item = parsed.data;
  const id = idOfItem(collection, item);
  if (!resourceIdSchema.safeParse(id).success) {
    throw badRequest(
      `'${idField}' must be at most 128 letters, digits and . _ - @ : (it is used in URLs)`,
      idField,
    );
  }
  const alone: ChargebackConfig = {
    ...EMPTY_CONFIG,
    departments:
      collection === 'departments'
        ? [item as ConfigItem<'departments'>]
        : [...new Set(departmentsNamed(collection, item))].map((d) => ({ id: d, name: d })),
    ...(collection === 'departments' ? {} : { [CONFIG_COLLECTIONS[collection].key]: [item] }),
  };
  if (alone.departments.length === 0) alone.departments = [{ id: 'x', name: 'x' }];
  const state = checkChargebackConfig(alone);
  if (!state.ok) {
    const first = relativeParam(state.problems[0] ?? '');
    throw badRequest(first.param ? `'${first.param}': ${first.message}` : first.message, first.param);
  }
  return item;
}

export type ConfigChange<C extends ConfigCollection = ConfigCollection> =
  | { action: 'create'; collection: C; item: ConfigItem<C> }
  | { action: 'replace'; collection: C; id: string; item: ConfigItem<C> }
  | { action: 'delete'; collection: C; id: string };

export interface AppliedChange {
  config: ChargebackConfig;
  before: AnyItem | null;
  after: AnyItem | null;
  resourceId: string;
}

/**
 * Applies a change to a configuration and checks the whole result: 404 for an entry that does not
 * exist, 409 for one that already does (create), and 409 naming every problem when the resulting
 * configuration would not pass checkChargebackConfig. Returns the checked configuration.
 */
export function applyChange(base: ChargebackConfig, change: ConfigChange): AppliedChange {
  const { collection } = change;
  const spec = CONFIG_COLLECTIONS[collection];
  const items: AnyItem[] = itemsOf<ConfigCollection>(base, collection);
  const id = change.action === 'create' ? idOfItem(collection, change.item) : change.id;
  const index = items.findIndex((item) => idOfItem(collection, item) === id);
  const before = index >= 0 ? (items[index] ?? null) : null;
  let next: AnyItem[];
  switch (change.action) {
    case 'create':
      if (before !== null) {
        throw new ApiError(
          409,
          'Conflict',
          `${capitalized(spec.singular)} '${id}' already exists.`,
          spec.idField,
        );
      }
      next = [...items, change.item];
      break;
    case 'replace':
      if (before === null) throw notFound(`No ${spec.singular} '${id}'.`);
      next = items.map((item, i) => (i === index ? change.item : item));
      break;
    case 'delete':
      if (before === null) throw notFound(`No ${spec.singular} '${id}'.`);
      next = items.filter((_, i) => i !== index);
      break;
  }
  const candidate = { ...base, [spec.key satisfies CollectionKey]: next };
  const state = checkChargebackConfig(candidate);
  if (!state.ok) {
    const verb = { create: 'Creating', replace: 'Replacing', delete: 'Deleting' }[change.action];
    throw new ApiError(
      409,
      'Conflict',
      `${verb} ${spec.singular} '${id}' would leave the configuration invalid: ${state.problems.join('; ')}`,
    );
  }
  const after = change.action === 'delete' ? null : (findItem(state.config, collection, id) ?? null);
  return { config: state.config, before, after, resourceId: id };
}

/** An admin's price override as the API shows it: the entry, and from when it applies at the earliest. */
export interface PriceResource extends PriceEntry {
  /** When the override was written: it never applies to usage before that (see prices.ts). */
  writtenAt: string;
}

export const PRICE_ID_RULE = 'at most 128 letters, digits and . _ - : (starting with a letter or digit)';
const priceIdSchema = z.string().regex(/^[A-Za-z0-9][\w.:-]{0,127}$/, PRICE_ID_RULE);

/** The body of a price override's POST and PUT. `source` defaults to the admin who set it. */
export const priceBodySchema = priceEntrySchema
  .extend({
    id: priceIdSchema.refine(
      (id) => !id.startsWith('default:'),
      "ids starting with 'default:' are the shipped prices'",
    ),
    model: priceIdSchema,
    source: z.string().min(1).max(500).optional(),
  })
  .strict();

/** Checks a price body (400), filling `source` and the path's id. */
export function parsePrice(body: unknown, actor: string, pathId?: string): PriceEntry {
  let input = body;
  if (pathId !== undefined && input !== null && typeof input === 'object' && !Array.isArray(input)) {
    const given = (input as Record<string, unknown>).id;
    if (given !== undefined && given !== pathId) {
      throw badRequest(`'id' must be the id in the path ('${pathId}'): an id never changes.`, 'id');
    }
    input = { ...(input as Record<string, unknown>), id: pathId };
  }
  const parsed = priceBodySchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue?.path.join('.') || null;
    throw badRequest(`${param ? `'${param}' ` : ''}${issue?.message ?? 'is invalid'}`, param);
  }
  return { ...parsed.data, source: parsed.data.source ?? `set by ${actor} through the admin API` };
}

/**
 * Checks the price table the overrides would make (the shipped defaults plus every override): a
 * 409 naming the problem when it could not price (an id used twice), so that no admin change can
 * make the runs' pricing wait.
 */
export function checkPriceTable(overrides: readonly StoredPrice[]): void {
  try {
    priceTableWith(overrides);
  } catch (error) {
    throw new ApiError(409, 'Conflict', `The price table would be invalid: ${(error as Error).message}`);
  }
}
