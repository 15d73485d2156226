#!/usr/bin/env node
// Vendors the Azure resource type definitions that the Bicep compiler uses, for the resource
// types our templates (bicep/) declare, into tests/fixtures/bicep-types/. The tests in
// tests/bicep/bicep-types.test.ts check every resource body against them.
//
// SOURCE
//   The public repository Azure/bicep-types-az. Its `generated/<provider>/<namespace>/<apiVersion>/types.json`
//   files are the type graphs that ship in the Bicep compiler (Azure.Bicep.Types.Az): a JSON array of
//   types that reference each other as {"$ref": "#/<index>"}; `ResourceType` entries are named
//   `<Namespace>/<type>@<apiVersion>` and point at their body `ObjectType`. Property flags:
//   1 Required, 2 ReadOnly, 4 WriteOnly, 8 DeployTimeConstant, 16 Identifier.
//   (`generated/index.json` maps every type@apiVersion to its file; it is not needed here: this
//   script scans the types.json files of the namespaces it is asked for.)
//
// HOW TO RUN
//   1. Get the repository (a partial clone keeps it small):
//        git clone --filter=blob:none --no-checkout https://github.com/Azure/bicep-types-az.git
//   2. node scripts/bicep-types.mjs --source ./bicep-types-az \
//        [--out tests/fixtures/bicep-types] [--templates bicep] [Type[@apiVersion] ...]
//      --source is a clone (work tree or bare/partial git directory); files are read from its HEAD
//      with `git show`, and HEAD's commit is recorded. Without type arguments the built-in list
//      DEFAULT_TYPES below is used. A type without @apiVersion gets the newest GA (no `-preview`
//      or other suffix) apiVersion that bicep-types-az has for it; a child type (e.g.
//      Microsoft.Storage/storageAccounts/blobServices) gets its parent's chosen apiVersion when
//      that version defines it, because a nested Bicep `resource` inherits its parent's apiVersion.
//      --templates DIR additionally vendors every 'Type@apiVersion' literal found in DIR's
//      .bicep files (plus the listed child types at those versions), so the versions the templates
//      really use are covered. A version that bicep-types-az does not have is reported and skipped.
//
// WHAT IS WRITTEN
//   <out>/<Namespace>@<apiVersion>.json: { source, resources: { "<Type>@<apiVersion>": { path, body,
//     readableScopes, writableScopes } }, types: [...] } where `types` is the pruned type graph
//     (only what the listed resource bodies reach, refs renumbered; descriptions dropped).
//   <out>/index.json: for every listed type, every apiVersion bicep-types-az has for it (GA and
//     preview), the newest GA one, and which versions are vendored in which file.
//
// MICROSOFT GRAPH (--graph)
//   The Microsoft Graph Bicep extension's types (Microsoft.Graph/applications@v1.0, ...) are not in
//   bicep-types-az. They come from the public repository microsoftgraph/msgraph-bicep-types, whose
//   `generated/microsoftgraph/microsoft.graph/<graphApiVersion>/<extensionVersion>/types.json` is the
//   same kind of type graph, shipped as the extension `br:mcr.microsoft.com/bicep/extensions/
//   microsoftgraph/<graphApiVersion>:<extensionVersion>`.
//        git clone --filter=blob:none --no-checkout https://github.com/microsoftgraph/msgraph-bicep-types.git
//        node scripts/bicep-types.mjs --graph ./msgraph-bicep-types [--graph-version 1.0.0] [--templates bicep]
//   vendors GRAPH_DEFAULT_TYPES (and the Microsoft.Graph types the templates use) from the newest
//   release without a suffix (or --graph-version) of every Graph API version (v1.0, beta) into
//   <out>/Microsoft.Graph@<graphApiVersion>.json, and merges them into index.json. The Graph API
//   version `v1.0` counts as GA, `beta` does not. --source and --graph can run together or alone;
//   each rewrites only its own files and its own entries of index.json.
//   Vendored: microsoftgraph/msgraph-bicep-types at bc4390567a8808286eb5e48815fda8ebd6e9eea8,
//   extension version 1.0.0.
//
// No dependencies beyond Node >= 20 built-ins and git.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const DEFAULT_TYPES = [
  'Microsoft.OperationalInsights/workspaces',
  'Microsoft.Insights/components',
  'Microsoft.Storage/storageAccounts',
  'Microsoft.Storage/storageAccounts/blobServices',
  'Microsoft.Storage/storageAccounts/blobServices/containers',
  'Microsoft.Storage/storageAccounts/managementPolicies',
  'Microsoft.Storage/storageAccounts/queueServices',
  'Microsoft.Storage/storageAccounts/queueServices/queues',
  'Microsoft.Storage/storageAccounts/tableServices',
  'Microsoft.Storage/storageAccounts/tableServices/tables',
  'Microsoft.Web/serverfarms',
  'Microsoft.Web/sites',
  'Microsoft.Web/sites/config',
  'Microsoft.Web/sites/basicPublishingCredentialsPolicies',
  'Microsoft.Web/sites/host/functionKeys',
  'Microsoft.DocumentDB/databaseAccounts',
  'Microsoft.DocumentDB/databaseAccounts/sqlDatabases',
  'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers',
  'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments',
  'Microsoft.DocumentDB/databaseAccounts/sqlRoleDefinitions',
  'Microsoft.Cache/redisEnterprise',
  'Microsoft.Cache/redisEnterprise/databases',
  'Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments',
  'Microsoft.KeyVault/vaults',
  'Microsoft.KeyVault/vaults/secrets',
  'Microsoft.CognitiveServices/accounts',
  'Microsoft.CognitiveServices/accounts/deployments',
  'Microsoft.ApiManagement/service',
  'Microsoft.ApiManagement/service/apis',
  'Microsoft.ApiManagement/service/apis/policies',
  'Microsoft.ApiManagement/service/apis/operations',
  'Microsoft.ApiManagement/service/apis/operations/policies',
  'Microsoft.ApiManagement/service/apis/diagnostics',
  'Microsoft.ApiManagement/service/products',
  'Microsoft.ApiManagement/service/products/apis',
  'Microsoft.ApiManagement/service/products/policies',
  'Microsoft.ApiManagement/service/subscriptions',
  'Microsoft.ApiManagement/service/namedValues',
  'Microsoft.ApiManagement/service/loggers',
  'Microsoft.ApiManagement/service/diagnostics',
  'Microsoft.ApiManagement/service/backends',
  'Microsoft.ApiManagement/service/policies',
  'Microsoft.ApiManagement/service/policyFragments',
  'Microsoft.Authorization/roleAssignments',
  'Microsoft.Authorization/roleDefinitions',
  'Microsoft.ManagedIdentity/userAssignedIdentities',
  'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials',
  'Microsoft.Insights/diagnosticSettings',
  'Microsoft.Insights/workbooks',
  'Microsoft.Insights/scheduledQueryRules',
  'Microsoft.Insights/metricAlerts',
  'Microsoft.Insights/actionGroups',
  'Microsoft.Network/virtualNetworks',
  'Microsoft.Network/virtualNetworks/subnets',
  'Microsoft.Network/privateEndpoints',
  'Microsoft.Network/privateEndpoints/privateDnsZoneGroups',
  'Microsoft.Network/privateDnsZones',
  'Microsoft.Network/privateDnsZones/virtualNetworkLinks',
  'Microsoft.Resources/resourceGroups',
];

export const GRAPH_DEFAULT_TYPES = ['Microsoft.Graph/applications', 'Microsoft.Graph/servicePrincipals'];
const GRAPH_NAMESPACE = 'Microsoft.Graph';
const isGraphType = (type) => lc(type).startsWith(`${lc(GRAPH_NAMESPACE)}/`);
const isGraphFile = (fileName) => fileName.startsWith(`${GRAPH_NAMESPACE}@`);

const FLAG_NAMES = {
  1: 'Required',
  2: 'ReadOnly',
  4: 'WriteOnly',
  8: 'DeployTimeConstant',
  16: 'Identifier',
};

/**
 * True for a GA apiVersion: a bare date, no `-preview`/`-beta`/`-privatepreview` suffix; or a
 * Microsoft Graph API version like `v1.0` (not `beta`).
 */
export function isGaApiVersion(apiVersion) {
  return /^\d{4}-\d{2}-\d{2}$/.test(apiVersion) || /^v\d+\.\d+$/.test(apiVersion);
}

function parseArgs(argv) {
  const opts = {
    source: undefined,
    graph: undefined,
    graphVersion: undefined,
    out: 'tests/fixtures/bicep-types',
    templates: [],
    types: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--source') opts.source = next();
    else if (a === '--graph') opts.graph = next();
    else if (a === '--graph-version') opts.graphVersion = next();
    else if (a === '--out') opts.out = next();
    else if (a === '--templates') opts.templates.push(next());
    else if (a === '--help' || a === '-h') {
      console.log(
        readFileSync(new URL(import.meta.url), 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('//'))
          .join('\n'),
      );
      process.exit(0);
    } else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else opts.types.push(a);
  }
  if (!opts.source && !opts.graph)
    throw new Error(
      '--source <bicep-types-az clone> and/or --graph <msgraph-bicep-types clone> is required (see --help)',
    );
  return opts;
}

function gitRunner(source) {
  const dir = resolve(source);
  const isBare = existsSync(join(dir, 'HEAD')) && existsSync(join(dir, 'objects'));
  const base = isBare ? [`--git-dir=${dir}`] : ['-C', dir];
  return (args) => execFileSync('git', [...base, ...args], { encoding: 'utf8', maxBuffer: 1 << 30 });
}

/** Template scan: every 'Namespace/type@apiVersion' string literal in .bicep files under dir. */
function typesFromTemplates(dir) {
  const found = new Set();
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.bicep')) {
        const text = readFileSync(p, 'utf8');
        for (const m of text.matchAll(
          /'([A-Za-z]+\.[A-Za-z.]+(?:\/[A-Za-z0-9]+)+)@([0-9]{4}-[0-9]{2}-[0-9]{2}[A-Za-z0-9-]*|v[0-9]+\.[0-9]+|beta)'/g,
        )) {
          found.add(`${m[1]}@${m[2]}`);
        }
      }
    }
  };
  if (existsSync(dir)) walk(dir);
  return [...found].sort();
}

const lc = (s) => s.toLowerCase();
const refIndex = (ref) => {
  const m = /^#\/(\d+)$/.exec(ref.$ref);
  if (!m) throw new Error(`unsupported type reference ${JSON.stringify(ref)}`);
  return Number(m[1]);
};

/** Copies the part of `types` reachable from `roots` into `out` (appending), renumbering refs. */
function pruneInto(types, roots, out, memo) {
  const visit = (i) => {
    if (memo.has(i)) return memo.get(i);
    const t = types[i];
    if (!t) throw new Error(`dangling type reference #/${i}`);
    const slot = out.length;
    memo.set(i, slot);
    out.push(null);
    const ref = (r) => ({ $ref: `#/${visit(refIndex(r))}` });
    const keep = (obj, keys) =>
      Object.fromEntries(keys.filter((k) => obj[k] !== undefined).map((k) => [k, obj[k]]));
    const props = (ps) =>
      Object.fromEntries(
        Object.entries(ps ?? {}).map(([k, p]) => [k, { type: ref(p.type), flags: p.flags ?? 0 }]),
      );
    let copy;
    switch (t.$type) {
      case 'ObjectType':
        copy = { $type: t.$type, name: t.name, properties: props(t.properties) };
        if (t.additionalProperties) copy.additionalProperties = ref(t.additionalProperties);
        if (t.sensitive) copy.sensitive = true;
        break;
      case 'DiscriminatedObjectType':
        copy = {
          $type: t.$type,
          name: t.name,
          discriminator: t.discriminator,
          baseProperties: props(t.baseProperties),
          elements: Object.fromEntries(Object.entries(t.elements).map(([k, r]) => [k, ref(r)])),
        };
        break;
      case 'ArrayType':
        copy = { $type: t.$type, itemType: ref(t.itemType), ...keep(t, ['minLength', 'maxLength']) };
        break;
      case 'UnionType':
        copy = { $type: t.$type, elements: t.elements.map(ref) };
        break;
      case 'StringLiteralType':
        copy = { $type: t.$type, value: t.value };
        break;
      case 'StringType':
        copy = { $type: t.$type, ...keep(t, ['pattern', 'minLength', 'maxLength', 'sensitive']) };
        break;
      case 'IntegerType':
        copy = { $type: t.$type, ...keep(t, ['minValue', 'maxValue']) };
        break;
      case 'BooleanType':
      case 'AnyType':
      case 'NullType':
        copy = { $type: t.$type };
        break;
      default:
        throw new Error(`unsupported $type ${t.$type} at #/${i}`);
    }
    out[slot] = copy;
    return slot;
  };
  return roots.map(visit);
}

function readIndex(outDir) {
  const p = join(outDir, 'index.json');
  return existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : undefined;
}

function vendorAzure(opts) {
  const git = gitRunner(opts.source);
  const commit = git(['rev-parse', 'HEAD']).trim();
  const allFiles = git(['ls-tree', '-r', '--name-only', 'HEAD', 'generated'])
    .split('\n')
    .filter((p) => /^generated\/[^/]+\/[^/]+\/[^/]+\/types\.json$/.test(p));

  const requested = (opts.types.length ? [...opts.types] : [...DEFAULT_TYPES]).filter((t) => !isGraphType(t));
  for (const dir of opts.templates) requested.push(...typesFromTemplates(dir).filter((t) => !isGraphType(t)));
  const wantedTypes = new Map(); // lc type -> display name (as listed)
  const pinned = []; // [type, apiVersion]
  const unversioned = new Set(); // lc types listed without @apiVersion: newest GA is vendored
  for (const r of requested) {
    const [type, apiVersion] = r.split('@');
    if (!wantedTypes.has(lc(type))) wantedTypes.set(lc(type), type);
    if (apiVersion) pinned.push([type, apiVersion]);
    else unversioned.add(lc(type));
  }
  // Child types of templates' types: keep the listed children of every namespace.
  const namespaces = new Set([...wantedTypes.keys()].map((t) => t.split('/')[0]));

  // Read every types.json of the namespaces involved; remember which resource types each defines.
  const cache = new Map(); // path -> parsed types array
  const available = new Map(); // lc type -> Map(apiVersion -> [{path, index, name}])
  for (const path of allFiles) {
    const ns = path.split('/')[2];
    if (!namespaces.has(ns)) continue;
    const types = JSON.parse(git(['show', `HEAD:${path}`]));
    cache.set(path, types);
    types.forEach((t, index) => {
      if (t.$type !== 'ResourceType') return;
      const at = t.name.lastIndexOf('@');
      const type = t.name.slice(0, at);
      const apiVersion = t.name.slice(at + 1);
      if (!wantedTypes.has(lc(type))) return;
      let byVersion = available.get(lc(type));
      if (!byVersion) available.set(lc(type), (byVersion = new Map()));
      const list = byVersion.get(apiVersion) ?? [];
      list.push({ path, index, name: type });
      byVersion.set(apiVersion, list);
    });
  }

  // Decide the versions to vendor: newest GA per listed type (child follows parent), plus pinned ones.
  const choose = new Map(); // lc type -> Set(apiVersion)
  const add = (type, v) => {
    const s = choose.get(lc(type)) ?? new Set();
    s.add(v);
    choose.set(lc(type), s);
  };
  const picked = new Map(); // lc type -> version picked as "newest GA" (children follow their parent)
  const problems = [];
  const sortedTypes = [...wantedTypes.keys()].sort((a, b) => a.split('/').length - b.split('/').length);
  for (const t of sortedTypes) {
    const versions = [...(available.get(t)?.keys() ?? [])].sort();
    const ga = versions.filter(isGaApiVersion);
    if (unversioned.has(t)) {
      const parent = t.split('/').slice(0, -1).join('/');
      const parentPick = picked.get(parent);
      const pick = parentPick && versions.includes(parentPick) ? parentPick : ga[ga.length - 1];
      if (pick) {
        add(t, pick);
        picked.set(t, pick);
      } else
        problems.push(
          `${wantedTypes.get(t)}: no GA apiVersion in bicep-types-az (has: ${versions.join(', ') || 'none'})`,
        );
    }
  }
  for (const [type, v] of pinned) {
    if (available.get(lc(type))?.has(v)) add(type, v);
    else problems.push(`${type}@${v}: not in bicep-types-az`);
    // Nested children declared without @apiVersion inherit this version: vendor listed children too.
    for (const child of wantedTypes.keys()) {
      if (child.startsWith(`${lc(type)}/`) && available.get(child)?.has(v)) add(child, v);
    }
  }

  // Group by Namespace@apiVersion and write the pruned graphs.
  const outDir = resolve(opts.out);
  mkdirSync(outDir, { recursive: true });
  const previousIndex = readIndex(outDir);
  for (const f of readdirSync(outDir))
    if (f.endsWith('.json') && f !== 'index.json' && !isGraphFile(f)) rmSync(join(outDir, f));
  const files = new Map(); // fileName -> [{type, apiVersion, entry}]
  for (const [t, versions] of choose) {
    for (const v of versions) {
      for (const entry of available.get(t).get(v)) {
        const ns = wantedTypes.get(t).split('/')[0]; // casing as listed: sources vary (microsoft.insights)
        const fileName = `${ns}@${v}.json`;
        const list = files.get(fileName) ?? [];
        list.push({ type: entry.name, apiVersion: v, entry });
        files.set(fileName, list);
      }
    }
  }
  const index = {};
  for (const [fileName, entries] of [...files].sort()) {
    const out = [];
    const resources = {};
    const memos = new Map();
    for (const { type, apiVersion, entry } of entries.sort((a, b) => a.type.localeCompare(b.type))) {
      const key = `${type}@${apiVersion}`;
      if (resources[key]) continue; // same type@version in two provider folders: first wins
      const types = cache.get(entry.path);
      const rt = types[entry.index];
      const memo = memos.get(entry.path) ?? new Map();
      memos.set(entry.path, memo);
      const [body] = pruneInto(types, [refIndex(rt.body)], out, memo);
      resources[key] = {
        path: entry.path,
        body,
        ...(rt.readableScopes !== undefined ? { readableScopes: rt.readableScopes } : {}),
        ...(rt.writableScopes !== undefined ? { writableScopes: rt.writableScopes } : {}),
        ...(rt.scopeType !== undefined ? { scopeType: rt.scopeType } : {}),
        ...(rt.flags !== undefined ? { flags: rt.flags } : {}),
      };
      const ix = (index[lc(type)] ??= { type, vendored: {} });
      ix.vendored[apiVersion] = fileName;
    }
    const doc = {
      source: {
        repository: 'Azure/bicep-types-az',
        commit,
        paths: [...new Set(entries.map((e) => e.entry.path))].sort(),
        url: `https://github.com/Azure/bicep-types-az/tree/${commit}/generated`,
      },
      generatedBy: 'scripts/bicep-types.mjs',
      propertyFlags: FLAG_NAMES,
      resources,
      types: out,
    };
    writeFileSync(join(outDir, fileName), `${JSON.stringify(doc)}\n`);
    console.error(`wrote ${fileName}: ${Object.keys(resources).length} resource types, ${out.length} types`);
  }
  // Microsoft.Graph entries (--graph) are kept as they are.
  const graphEntries = Object.entries(previousIndex?.resourceTypes ?? {}).filter(([t]) => isGraphType(t));
  const indexDoc = {
    source: { repository: 'Azure/bicep-types-az', commit },
    ...(previousIndex?.graphSource ? { graphSource: previousIndex.graphSource } : {}),
    generatedBy: 'scripts/bicep-types.mjs',
    note: previousIndex?.note ?? INDEX_NOTE,
    resourceTypes: Object.fromEntries(
      [
        ...[...wantedTypes.keys()].map((t) => {
          const versions = [...(available.get(t)?.keys() ?? [])].sort();
          return [
            wantedTypes.get(t),
            {
              apiVersions: versions,
              newestGa: versions.filter(isGaApiVersion).pop() ?? null,
              vendored: index[t]?.vendored ?? {},
            },
          ];
        }),
        ...graphEntries,
      ].sort(([a], [b]) => lc(a).localeCompare(lc(b))),
    ),
  };
  writeFileSync(join(outDir, 'index.json'), `${JSON.stringify(indexDoc, null, 2)}\n`);
  for (const p of problems) console.error(`WARNING ${p}`);
}

const INDEX_NOTE =
  'apiVersions: every version bicep-types-az (Microsoft.Graph: msgraph-bicep-types) has for the type; vendored: version -> file in this folder.';

/** Semver-ish compare of extension versions like 1.0.0, 0.2.0-preview. */
function compareVersions(a, b) {
  const pa = a.split(/[.-]/).map((x) => (/^\d+$/.test(x) ? Number(x) : x));
  const pb = b.split(/[.-]/).map((x) => (/^\d+$/.test(x) ? Number(x) : x));
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return String(x).localeCompare(String(y));
  }
  return 0;
}

/** Microsoft Graph types from microsoftgraph/msgraph-bicep-types (see MICROSOFT GRAPH above). */
function vendorGraph(opts) {
  const git = gitRunner(opts.graph);
  const commit = git(['rev-parse', 'HEAD']).trim();
  const root = 'generated/microsoftgraph/microsoft.graph';
  const releases = new Map(); // graph API version (v1.0, beta) -> [extension versions]
  for (const p of git(['ls-tree', '-r', '--name-only', 'HEAD', root]).split('\n')) {
    const m = /^generated\/microsoftgraph\/microsoft\.graph\/([^/]+)\/([^/]+)\/types\.json$/.exec(p);
    if (!m) continue;
    const list = releases.get(m[1]) ?? [];
    list.push(m[2]);
    releases.set(m[1], list);
  }
  const requested = (opts.types.length ? [...opts.types] : [...GRAPH_DEFAULT_TYPES]).filter(isGraphType);
  for (const dir of opts.templates) requested.push(...typesFromTemplates(dir).filter(isGraphType));
  const wanted = new Map(requested.map((r) => [lc(r.split('@')[0]), r.split('@')[0]]));

  const outDir = resolve(opts.out);
  mkdirSync(outDir, { recursive: true });
  for (const f of readdirSync(outDir)) if (isGraphFile(f)) rmSync(join(outDir, f));
  const available = new Map(); // lc type -> Set(graph API version)
  const vendored = new Map(); // lc type -> { graphApiVersion: fileName }
  for (const [graphApiVersion, versions] of [...releases].sort()) {
    const ga = versions.filter((v) => /^\d+\.\d+\.\d+$/.test(v)).sort(compareVersions);
    const release = opts.graphVersion && versions.includes(opts.graphVersion) ? opts.graphVersion : ga.pop();
    if (!release) continue;
    const path = `${root}/${graphApiVersion}/${release}/types.json`;
    const types = JSON.parse(git(['show', `HEAD:${path}`]));
    const out = [];
    const resources = {};
    const memo = new Map();
    const found = types
      .map((t, index) => ({ t, index }))
      .filter(({ t }) => t.$type === 'ResourceType' && wanted.has(lc(t.name.split('@')[0])))
      .sort((a, b) => a.t.name.localeCompare(b.t.name));
    for (const { t: rt } of found) {
      const type = rt.name.split('@')[0];
      (available.get(lc(type)) ?? available.set(lc(type), new Set()).get(lc(type))).add(graphApiVersion);
      // Only the GA Graph API version is vendored (a template on `beta` is reported as not GA).
      if (!isGaApiVersion(graphApiVersion)) continue;
      const [body] = pruneInto(types, [refIndex(rt.body)], out, memo);
      resources[rt.name] = {
        path,
        body,
        ...(rt.scopeType !== undefined ? { scopeType: rt.scopeType } : {}),
        ...(rt.flags !== undefined ? { flags: rt.flags } : {}),
      };
      (vendored.get(lc(type)) ?? vendored.set(lc(type), {}).get(lc(type)))[graphApiVersion] =
        `${GRAPH_NAMESPACE}@${graphApiVersion}.json`;
    }
    if (Object.keys(resources).length === 0) continue;
    const fileName = `${GRAPH_NAMESPACE}@${graphApiVersion}.json`;
    const doc = {
      source: {
        repository: 'microsoftgraph/msgraph-bicep-types',
        commit,
        paths: [path],
        url: `https://github.com/microsoftgraph/msgraph-bicep-types/tree/${commit}/generated`,
        extension: `br:mcr.microsoft.com/bicep/extensions/microsoftgraph/${graphApiVersion}:${release}`,
      },
      generatedBy: 'scripts/bicep-types.mjs --graph',
      propertyFlags: FLAG_NAMES,
      resources,
      types: out,
    };
    writeFileSync(join(outDir, fileName), `${JSON.stringify(doc)}\n`);
    console.error(`wrote ${fileName}: ${Object.keys(resources).length} resource types, ${out.length} types`);
  }

  const previousIndex = readIndex(outDir);
  const kept = Object.entries(previousIndex?.resourceTypes ?? {}).filter(([t]) => !isGraphType(t));
  const graphEntries = [...wanted].map(([t, display]) => {
    const versions = [...(available.get(t) ?? [])].sort();
    return [
      display,
      {
        apiVersions: versions,
        newestGa: versions.filter(isGaApiVersion).pop() ?? null,
        vendored: vendored.get(t) ?? {},
      },
    ];
  });
  const indexDoc = {
    source: previousIndex?.source ?? { repository: 'Azure/bicep-types-az', commit: null },
    graphSource: { repository: 'microsoftgraph/msgraph-bicep-types', commit },
    generatedBy: 'scripts/bicep-types.mjs',
    note: INDEX_NOTE,
    resourceTypes: Object.fromEntries(
      [...kept, ...graphEntries].sort(([a], [b]) => lc(a).localeCompare(lc(b))),
    ),
  };
  writeFileSync(join(outDir, 'index.json'), `${JSON.stringify(indexDoc, null, 2)}\n`);
  for (const [t, display] of wanted)
    if (!available.has(t)) console.error(`WARNING ${display}: not in msgraph-bicep-types`);
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.source) vendorAzure(opts);
  if (opts.graph) vendorGraph(opts);
}

main();
