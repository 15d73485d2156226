// Checks resource declarations against Azure's published resource type definitions (the
// bicep-types-az type graphs vendored by scripts/bicep-types.mjs into tests/fixtures/bicep-types/),
// the way the Bicep compiler's type checker does for property names, enum values and read-only
// properties.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BicepExpression,
  formatLocation,
  isBicepObject,
  locationOf,
  type BicepObject,
  type BicepResource,
  type BicepValue,
  type SourceLocation,
} from './bicep-ast';

export const VENDORED_TYPES_DIR = join(__dirname, '..', 'fixtures', 'bicep-types');

const FLAG_REQUIRED = 1;
const FLAG_READ_ONLY = 2;
const FLAG_WRITE_ONLY = 4;

interface TypeRef {
  $ref: string;
}
interface Property {
  type: TypeRef;
  flags: number;
}
type TypeNode =
  | {
      $type: 'ObjectType';
      name: string;
      properties: Record<string, Property>;
      additionalProperties?: TypeRef;
    }
  | {
      $type: 'DiscriminatedObjectType';
      name: string;
      discriminator: string;
      baseProperties: Record<string, Property>;
      elements: Record<string, TypeRef>;
    }
  | { $type: 'ArrayType'; itemType: TypeRef }
  | { $type: 'UnionType'; elements: TypeRef[] }
  | { $type: 'StringLiteralType'; value: string }
  | { $type: 'StringType' | 'IntegerType' | 'BooleanType' | 'AnyType' | 'NullType' };

interface VendoredFile {
  source: { repository: string; commit: string; paths: string[] };
  resources: Record<string, { path: string; body: number }>;
  types: TypeNode[];
}

export interface VendoredIndexEntry {
  /** Every apiVersion bicep-types-az has for the type (GA and preview). */
  apiVersions: string[];
  newestGa: string | null;
  /** apiVersion -> vendored file name. */
  vendored: Record<string, string>;
}

export interface VendoredResourceType {
  /** Type@apiVersion as bicep-types-az spells it. */
  readonly name: string;
  readonly file: string;
  readonly sourcePath: string;
  readonly commit: string;
  readonly types: readonly TypeNode[];
  readonly body: number;
}

export interface VendoredTypes {
  readonly commit: string;
  /** Lower-cased type -> index entry. */
  readonly index: ReadonlyMap<string, VendoredIndexEntry & { type: string }>;
  /** Lower-cased `type@apiVersion` -> definition. */
  readonly resources: ReadonlyMap<string, VendoredResourceType>;
}

export function loadVendoredTypes(dir: string = VENDORED_TYPES_DIR): VendoredTypes {
  const indexDoc = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as {
    source: { commit: string };
    resourceTypes: Record<string, VendoredIndexEntry>;
  };
  const index = new Map<string, VendoredIndexEntry & { type: string }>();
  for (const [type, entry] of Object.entries(indexDoc.resourceTypes))
    index.set(type.toLowerCase(), { ...entry, type });
  const resources = new Map<string, VendoredResourceType>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'index.json')) {
    const doc = JSON.parse(readFileSync(join(dir, file), 'utf8')) as VendoredFile;
    for (const [name, r] of Object.entries(doc.resources)) {
      resources.set(name.toLowerCase(), {
        name,
        file,
        sourcePath: r.path,
        commit: doc.source.commit,
        types: doc.types,
        body: r.body,
      });
    }
  }
  return { commit: indexDoc.source.commit, index, resources };
}

/** A bare-date Azure apiVersion, or Microsoft Graph's `v1.0` (not `beta`). */
export function isGaApiVersion(apiVersion: string): boolean {
  return /^\d{4}-\d{2}-\d{2}$/.test(apiVersion) || /^v\d+\.\d+$/.test(apiVersion);
}

export interface TypeIssue {
  readonly location: SourceLocation;
  readonly message: string;
}

export function formatIssue(i: TypeIssue): string {
  return `${formatLocation(i.location)}: ${i.message}`;
}

/** Bicep's own resource-level keywords, not part of the ARM body type. */
const RESOURCE_LEVEL = new Set(['parent', 'dependsOn', 'scope']);

/**
 * Checks one resource declaration (not its children): type@apiVersion vendored (so known to
 * bicep-types-az), GA apiVersion where the type has a GA one, every property name known,
 * string literals within enums, no read-only properties set.
 */
export interface CheckOptions {
  /**
   * Lower-cased resource types that bicep-types-az has no definition for at all and that are
   * accepted anyway (the Bicep compiler only warns, BCP081, and deploys them unchecked).
   */
  readonly untypedAllowed?: ReadonlySet<string>;
}

export function checkResource(
  resource: BicepResource,
  vendored: VendoredTypes,
  options: CheckOptions = {},
): TypeIssue[] {
  const issues: TypeIssue[] = [];
  const where = resource.location;
  const id = `${resource.type}@${resource.apiVersion ?? '?'}`;
  if (!resource.apiVersion) {
    return [
      {
        location: where,
        message: `${resource.symbolicName}: resource type '${resource.type}' has no @apiVersion`,
      },
    ];
  }
  const known = vendored.index.get(resource.type.toLowerCase());
  if (known && known.apiVersions.length === 0) {
    if (options.untypedAllowed?.has(resource.type.toLowerCase())) return [];
    issues.push({
      location: where,
      message: `${resource.symbolicName}: ${resource.type} has no type definition in bicep-types-az (commit ${vendored.commit}); the Bicep compiler warns BCP081 and cannot check it`,
    });
    return issues;
  }
  if (known && !known.apiVersions.includes(resource.apiVersion)) {
    issues.push({
      location: where,
      message: `${resource.symbolicName}: unknown apiVersion ${id}: bicep-types-az (commit ${vendored.commit}) has ${known.apiVersions.join(', ')}`,
    });
    return issues;
  }
  if (!isGaApiVersion(resource.apiVersion) && known?.newestGa) {
    issues.push({
      location: where,
      message: `${resource.symbolicName}: ${id} is not a GA apiVersion; the newest GA one is ${known.newestGa}`,
    });
  }
  const def = vendored.resources.get(id.toLowerCase());
  if (!def) {
    issues.push({
      location: where,
      message: `${resource.symbolicName}: ${id} is not in the vendored type set (tests/fixtures/bicep-types): run scripts/bicep-types.mjs --templates bicep`,
    });
    return issues;
  }
  if (def.name.split('@')[0] !== resource.type) {
    issues.push({
      location: where,
      message: `${resource.symbolicName}: resource type '${resource.type}' is spelled '${def.name.split('@')[0]}' by Azure`,
    });
  }
  if (resource.existing) {
    for (const key of Object.keys(resource.body)) {
      if (!['name', 'scope', 'parent'].includes(key)) {
        issues.push({
          location: locationOf(resource.body, key) ?? where,
          message: `${resource.symbolicName}: an 'existing' resource can only set name, scope and parent, not '${key}'`,
        });
      }
    }
    return issues;
  }
  const body: BicepObject = {};
  for (const [k, v] of Object.entries(resource.body)) if (!RESOURCE_LEVEL.has(k)) body[k] = v;
  copyLocations(resource.body, body);
  issues.push(...checkValue(def.types, def.body, body, `${resource.symbolicName}`, where));
  return issues;
}

const locationCopies = new WeakMap<BicepObject, BicepObject>();
function copyLocations(from: BicepObject, to: BicepObject): void {
  locationCopies.set(to, from);
}
function keyLocation(obj: BicepObject, key: string): SourceLocation | undefined {
  return locationOf(locationCopies.get(obj) ?? obj, key);
}

function deref(types: readonly TypeNode[], ref: TypeRef | number): { index: number; node: TypeNode } {
  const index = typeof ref === 'number' ? ref : Number(/^#\/(\d+)$/.exec(ref.$ref)?.[1] ?? NaN);
  const node = types[index];
  if (!node) throw new Error(`vendored type graph: dangling reference ${JSON.stringify(ref)}`);
  return { index, node };
}

function literalsOf(
  types: readonly TypeNode[],
  ref: TypeRef | number,
): { literals: string[]; open: boolean } {
  const { node } = deref(types, ref);
  switch (node.$type) {
    case 'StringLiteralType':
      return { literals: [node.value], open: false };
    case 'UnionType': {
      const parts = node.elements.map((e) => literalsOf(types, e));
      return { literals: parts.flatMap((p) => p.literals), open: parts.some((p) => p.open) };
    }
    case 'StringType':
    case 'AnyType':
      return { literals: [], open: true };
    default:
      return { literals: [], open: false };
  }
}

function closest(name: string, candidates: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  const sameCase = candidates.find((c) => c.toLowerCase() === lower);
  if (sameCase) return sameCase;
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(lower, c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= Math.max(2, Math.floor(name.length / 4)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        (prev[j] ?? 0) + 1,
        (cur[j - 1] ?? 0) + 1,
        (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

function checkObjectProperties(
  types: readonly TypeNode[],
  properties: Record<string, Property>,
  additional: TypeRef | undefined,
  value: BicepObject,
  typeName: string,
  path: string,
  fallback: SourceLocation,
): TypeIssue[] {
  const issues: TypeIssue[] = [];
  for (const [key, v] of Object.entries(value)) {
    const at = keyLocation(value, key) ?? fallback;
    const prop = properties[key];
    if (!prop) {
      if (additional) {
        issues.push(...checkValue(types, additional, v, `${path}.${key}`, at));
        continue;
      }
      const hint = closest(key, Object.keys(properties));
      issues.push({
        location: at,
        message: `${path}: property '${key}' does not exist on ${typeName}${hint ? ` (did you mean '${hint}'?)` : ''}; allowed: ${Object.keys(properties).sort().join(', ')}`,
      });
      continue;
    }
    if (prop.flags & FLAG_READ_ONLY && !(prop.flags & (FLAG_WRITE_ONLY | FLAG_REQUIRED))) {
      issues.push({ location: at, message: `${path}.${key} is read-only on ${typeName} and cannot be set` });
      continue;
    }
    issues.push(...checkValue(types, prop.type, v, `${path}.${key}`, at));
  }
  return issues;
}

/** Checks a value against a type; expressions (not literals) are not checked. */
export function checkValue(
  types: readonly TypeNode[],
  ref: TypeRef | number,
  value: BicepValue,
  path: string,
  at: SourceLocation,
): TypeIssue[] {
  if (value instanceof BicepExpression) return [];
  const { node } = deref(types, ref);
  switch (node.$type) {
    case 'ObjectType':
      if (!isBicepObject(value)) return [];
      return checkObjectProperties(
        types,
        node.properties,
        node.additionalProperties,
        value,
        node.name,
        path,
        at,
      );
    case 'DiscriminatedObjectType': {
      if (!isBicepObject(value)) return [];
      const d = value[node.discriminator];
      const variants = Object.keys(node.elements);
      if (typeof d === 'string') {
        const variant = node.elements[d];
        if (!variant) {
          return [
            {
              location: keyLocation(value, node.discriminator) ?? at,
              message: `${path}.${node.discriminator}: '${d}' is not one of ${variants.map((v) => `'${v}'`).join(', ')}`,
            },
          ];
        }
        const vnode = deref(types, variant).node;
        const props = { ...node.baseProperties, ...(vnode.$type === 'ObjectType' ? vnode.properties : {}) };
        const additional = vnode.$type === 'ObjectType' ? vnode.additionalProperties : undefined;
        return checkObjectProperties(
          types,
          props,
          additional,
          value,
          `${node.name} (${node.discriminator} '${d}')`,
          path,
          at,
        );
      }
      // Discriminator not a literal: accept any property of any variant.
      const props: Record<string, Property> = { ...node.baseProperties };
      for (const e of Object.values(node.elements)) {
        const vnode = deref(types, e).node;
        if (vnode.$type === 'ObjectType') Object.assign(props, vnode.properties);
      }
      return checkObjectProperties(types, props, undefined, value, node.name, path, at);
    }
    case 'ArrayType': {
      if (!Array.isArray(value)) return [];
      return value.flatMap((item, i) =>
        checkValue(types, node.itemType, item, `${path}[${i}]`, locationOf(value, i) ?? at),
      );
    }
    case 'UnionType': {
      if (typeof value === 'string') {
        // Closed enums and Azure's extensible enums (known literals | string) alike: a literal
        // outside the known values is almost always a typo, so both are reported.
        const { literals, open } = literalsOf(types, ref);
        if (literals.length === 0 || literals.includes(value)) return [];
        const hint = literals.find((l) => l.toLowerCase() === value.toLowerCase());
        return [
          {
            location: at,
            message: `${path}: '${value}' is not one of ${literals.map((l) => `'${l}'`).join(', ')}${hint ? ` (case: '${hint}')` : ''}${open ? ' (known values of an extensible enum)' : ''}`,
          },
        ];
      }
      if (isBicepObject(value) || Array.isArray(value)) {
        const candidates = node.elements.filter((e) => {
          const t = deref(types, e).node.$type;
          return Array.isArray(value)
            ? t === 'ArrayType'
            : t === 'ObjectType' || t === 'DiscriminatedObjectType';
        });
        if (candidates.length === 0) return [];
        const results = candidates.map((c) => checkValue(types, c, value, path, at));
        return results.find((r) => r.length === 0) ?? results[0] ?? [];
      }
      return [];
    }
    case 'StringLiteralType':
      if (typeof value === 'string' && value !== node.value) {
        return [{ location: at, message: `${path}: '${value}' is not '${node.value}'` }];
      }
      return [];
    default:
      return [];
  }
}
