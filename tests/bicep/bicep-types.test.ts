// The checks a Bicep compiler would do, on every .bicep/.bicepparam file under bicep/: the files
// parse with the real Bicep grammar, and every resource declaration uses a type@apiVersion that
// Azure publishes (bicep-types-az, vendored in tests/fixtures/bicep-types), GA where a GA version
// exists, with known property names, valid enum literals and no read-only properties.
// Regenerate the vendored types with scripts/bicep-types.mjs.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import {
  allResources,
  BicepExpression,
  BicepSyntaxError,
  isBicepObject,
  locationOf,
  parseBicep,
  parseBicepSource,
  type BicepFile,
} from './bicep-ast';
import { checkResource, formatIssue, isGaApiVersion, loadVendoredTypes, type TypeIssue } from './bicep-types';

const ROOT = resolve(__dirname, '..', '..');
const BICEP_DIR = join(ROOT, 'bicep');
const FIXTURES = join(ROOT, 'tests', 'fixtures', 'bicep');

function bicepFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .flatMap((name) => {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) return bicepFiles(p);
      return /\.bicep(param)?$/.test(name) ? [p] : [];
    })
    .sort();
}

const vendored = loadVendoredTypes();

/**
 * Resource types Azure deploys but bicep-types-az does not describe (Bicep: warning BCP081).
 * Each entry is a deliberate exception; any other untyped type fails.
 */
const UNTYPED_ALLOWED = new Set(
  [
    // Function keys (PUT .../sites/{site}/host/default/functionKeys/{name}) exist in ARM but are
    // not in the Microsoft.Web swagger that bicep-types-az is generated from.
    'Microsoft.Web/sites/host/functionKeys',
  ].map((t) => t.toLowerCase()),
);

/**
 * Bicep's one namespace per file (BCP028, "identifier declared multiple times"): imported names,
 * user-defined types and functions, params, variables, resources and modules share it, so a
 * parameter may not be named like an imported type. Outputs have their own.
 */
function duplicateSymbols(file: BicepFile, rel: string): string[] {
  // Comments blanked to the same width, so offsets still give lines.
  const code = file.source.replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, (c) => c.replace(/[^\n]/g, ' '));
  const lineAt = (offset: number): number => code.slice(0, offset).split('\n').length;
  const imported = [...code.matchAll(/^import\s*\{([^}]*)\}/gm)].flatMap((m) =>
    (m[1] ?? '').split(',').map((part) => {
      const [name, alias] = part.trim().split(/\s+as\s+/);
      return { name: (alias ?? name ?? '').trim(), line: lineAt(m.index) };
    }),
  );
  const declared = [...code.matchAll(/^(?:type|func)\s+(\w+)/gm)].map((m) => ({
    name: m[1] ?? '',
    line: lineAt(m.index),
  }));
  const symbols = [
    ...imported,
    ...declared,
    ...file.params.map((p) => ({ name: p.name, line: p.location.line })),
    ...file.variables.map((v) => ({ name: v.name, line: v.location.line })),
    ...file.resources.map((r) => ({ name: r.symbolicName, line: r.line })),
    ...file.modules.map((m) => ({ name: m.symbolicName, line: m.line })),
  ]
    .filter((symbol) => symbol.name !== '')
    .sort((x, y) => x.line - y.line);
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const { name, line } of symbols) {
    if (seen.has(name)) problems.push(`${rel}:${line}:1: '${name}' is declared more than once (BCP028)`);
    seen.add(name);
  }
  return problems;
}

/** Every compiler-style problem of one file, as `file:line:column: message` strings. */
async function checkFile(path: string): Promise<string[]> {
  const rel = relative(ROOT, path);
  let file: BicepFile;
  try {
    file = await parseBicepSource(readFileSync(path, 'utf8'), rel);
  } catch (e) {
    if (e instanceof BicepSyntaxError) return [...e.errors];
    throw e;
  }
  const issues: TypeIssue[] = allResources(file).flatMap((r) =>
    checkResource(r, vendored, { untypedAllowed: UNTYPED_ALLOWED }),
  );
  const problems = issues.map(formatIssue);
  for (const m of file.modules) {
    if (/^(br|ts)[:/]/.test(m.path)) continue;
    if (!existsSync(resolve(dirname(path), m.path))) {
      problems.push(
        `${rel}:${m.line}:${m.location.column}: module ${m.symbolicName}: '${m.path}' does not exist`,
      );
    }
  }
  problems.push(...duplicateSymbols(file, rel));
  if (file.kind === 'bicepparam') {
    if (!file.using) problems.push(`${rel}:1:1: .bicepparam file without a using statement`);
    else if (
      !/^(br|ts)[:/]/.test(file.using) &&
      file.using !== 'none' &&
      !existsSync(resolve(dirname(path), file.using))
    ) {
      problems.push(`${rel}:1:1: using '${file.using}' does not exist`);
    }
  }
  return problems;
}

describe('bicep-ast: parsing with tree-sitter-bicep', () => {
  it('reads resources (nested, looped, conditional, existing), params, variables, outputs and modules', async () => {
    const file = await parseBicep(join(FIXTURES, 'valid', 'main.bicep'));
    expect(file.targetScope).toBe('resourceGroup');
    expect(file.params.map((p) => [p.name, p.type])).toEqual([
      ['location', 'string'],
      ['env', 'string'],
      ['containers', 'array'],
    ]);
    expect(file.params[1]?.defaultValue).toBe('dev');
    expect(file.params[1]?.decorators[0]?.args).toEqual([['dev', 'prod']]);
    expect(file.params[0]?.defaultValue).toBeInstanceOf(BicepExpression);
    expect(file.variables.map((v) => v.name)).toEqual(['prefix']);

    const all = allResources(file);
    expect(all.map((r) => [r.symbolicName, r.type, r.apiVersion, r.existing, r.line])).toEqual([
      ['storage', 'Microsoft.Storage/storageAccounts', '2026-04-01', false, 11],
      ['blobs', 'Microsoft.Storage/storageAccounts/blobServices', '2026-04-01', false, 26],
      ['container', 'Microsoft.Storage/storageAccounts/blobServices/containers', '2026-04-01', false, 29],
      ['vault', 'Microsoft.KeyVault/vaults', '2026-02-01', true, 36],
      ['secret', 'Microsoft.KeyVault/vaults/secrets', '2026-02-01', false, 40],
      ['site', 'Microsoft.Web/sites', '2025-03-01', false, 46],
    ]);
    const [storage, blobs, container, , secret, site] = all;
    expect(storage?.body['sku']).toEqual({ name: 'Standard_LRS' });
    expect(storage?.body['tags']).toEqual({
      env: new BicepExpression('env', 'identifier'),
      'cost-center': 'ai',
    });
    expect(Object.keys(storage?.body ?? {})).not.toContain('blobs');
    expect(blobs?.parent).toBe(storage);
    expect(container?.loop?.source).toBe('containers');
    expect(container?.body).toEqual({
      name: new BicepExpression('c', 'identifier'),
      properties: { publicAccess: 'None' },
    });
    expect(secret?.condition).toBe("env == 'prod'");
    expect(site?.body['dependsOn']).toEqual([new BicepExpression('storage', 'identifier')]);
    const props = site?.body['properties'];
    expect(isBicepObject(props) && props['httpsOnly']).toBe(true);
    if (!isBicepObject(props)) throw new Error('properties is not an object');
    expect(locationOf(props, 'httpsOnly')).toEqual({
      file: expect.stringContaining('main.bicep'),
      line: 52,
      column: 5,
    });

    expect(file.modules).toHaveLength(1);
    expect(file.modules[0]?.path).toBe('./modules/monitoring.bicep');
    expect(file.modules[0]?.params).toEqual({
      location: new BicepExpression('location', 'identifier'),
      workspaceName: new BicepExpression("'log-${prefix}'", 'interpolated_string'),
    });
    expect(file.outputs.map((o) => [o.name, o.type, o.value])).toEqual([
      ['storageId', 'string', new BicepExpression('storage.id', 'member_expression')],
    ]);
  });

  it('reads .bicepparam files (using + param assignments)', async () => {
    const file = await parseBicep(join(FIXTURES, 'valid', 'main.bicepparam'));
    expect(file.kind).toBe('bicepparam');
    expect(file.using).toBe('./main.bicep');
    expect(file.paramAssignments.map((p) => [p.name, p.value, p.location.line])).toEqual([
      ['env', 'prod', 3],
      ['containers', ['raw'], 4],
    ]);
  });

  it('rejects a syntax error naming file:line:column', async () => {
    await expect(parseBicep(join(FIXTURES, 'broken', 'syntax-error.bicep'))).rejects.toThrow(
      /syntax-error\.bicep:5:\d+: syntax error/,
    );
    await expect(
      parseBicepSource("resource r 'A.B/c@2020-01-01' = {\n  name: 'x'\n", 'mem.bicep'),
    ).rejects.toThrow(BicepSyntaxError);
  });
});

describe('bicep-types: resource bodies against the vendored Azure type definitions', () => {
  it('vendors the types from Azure/bicep-types-az with their source commit', () => {
    expect(vendored.commit).toMatch(/^[0-9a-f]{40}$/);
    for (const t of [
      'Microsoft.Storage/storageAccounts',
      'Microsoft.Web/sites',
      'Microsoft.ApiManagement/service',
    ]) {
      const entry = vendored.index.get(t.toLowerCase());
      expect(entry?.newestGa).toBeTruthy();
      expect(Object.keys(entry?.vendored ?? {})).toContain(entry?.newestGa);
    }
  });

  it('accepts the valid fixtures', async () => {
    const problems = (await Promise.all(bicepFiles(join(FIXTURES, 'valid')).map(checkFile))).flat();
    expect(problems).toEqual([]);
  });

  it.each([
    [
      'misspelled-property.bicep',
      9,
      /property 'minimumTlsVersin' does not exist .*did you mean 'minimumTlsVersion'/,
    ],
    ['unknown-api-version.bicep', 1, /unknown apiVersion Microsoft\.KeyVault\/vaults@2099-01-01/],
    ['bad-enum.bicep', 6, /sku\.name: 'Standard_XRS' is not one of .*'Standard_LRS'/],
    ['read-only-property.bicep', 5, /properties\.principalId is read-only/],
    ['syntax-error.bicep', 5, /syntax error/],
    ['duplicate-symbol.bicep', 6, /'tier' is declared more than once \(BCP028\)/],
  ])('rejects broken/%s at line %d', async (name, line, message) => {
    const problems = await checkFile(join(FIXTURES, 'broken', name));
    expect(problems).toEqual([
      expect.stringMatching(new RegExp(`^tests/fixtures/bicep/broken/${name}:${line}:\\d+: `)),
    ]);
    expect(problems[0]).toMatch(message);
  });

  it('requires GA apiVersions where the type has one', () => {
    expect(isGaApiVersion('2024-05-01')).toBe(true);
    expect(isGaApiVersion('2024-06-01-preview')).toBe(false);
    const storage = vendored.index.get('microsoft.storage/storageaccounts');
    const preview = storage?.apiVersions.find((v) => !isGaApiVersion(v));
    expect(preview).toBeDefined();
    const issues = checkResource(
      {
        symbolicName: 'sa',
        type: 'Microsoft.Storage/storageAccounts',
        apiVersion: preview,
        typeString: `Microsoft.Storage/storageAccounts@${preview}`,
        existing: false,
        location: { file: 'mem.bicep', line: 1, column: 1 },
        line: 1,
        body: {},
        decorators: [],
        condition: undefined,
        loop: undefined,
        parent: undefined,
        children: [],
      },
      vendored,
    );
    expect(issues.map((i) => i.message)).toContainEqual(
      expect.stringMatching(/is not a GA apiVersion; the newest GA one is/),
    );
  });
});

describe('bicep-types: Microsoft Graph extension resources (msgraph-bicep-types)', () => {
  const source = [
    'extension microsoftGraphV1',
    '',
    "resource app 'Microsoft.Graph/applications@v1.0' = {",
    "  uniqueName: 'ai-chargeback-dev-api'",
    "  displayName: 'AI chargeback API'",
    "  signInAudience: 'AzureADMyOrg'",
    "  identifierUris: ['api://ai-chargeback-dev']",
    '}',
    "resource sp 'Microsoft.Graph/servicePrincipals@v1.0' = {",
    '  appId: app.appId',
    '}',
    '',
  ];

  async function problems(lines: string[]): Promise<string[]> {
    const file = await parseBicepSource(lines.join('\n'), 'mem.bicep');
    return allResources(file).flatMap((r) => checkResource(r, vendored).map(formatIssue));
  }

  it('vendors applications and servicePrincipals at v1.0 (GA), beta is not GA', () => {
    for (const t of ['Microsoft.Graph/applications', 'Microsoft.Graph/servicePrincipals']) {
      const entry = vendored.index.get(t.toLowerCase());
      expect(entry?.newestGa).toBe('v1.0');
      expect(entry?.vendored['v1.0']).toBe('Microsoft.Graph@v1.0.json');
      expect(vendored.resources.get(`${t.toLowerCase()}@v1.0`)?.commit).toMatch(/^[0-9a-f]{40}$/);
    }
    expect(isGaApiVersion('v1.0')).toBe(true);
    expect(isGaApiVersion('beta')).toBe(false);
  });

  it('parses the extension statement and accepts a valid app registration', async () => {
    const file = await parseBicepSource(source.join('\n'), 'mem.bicep');
    expect(file.extensions.map((e) => [e.reference, e.location.line])).toEqual([['microsoftGraphV1', 1]]);
    expect(await problems(source)).toEqual([]);
  });

  it('rejects unknown and read-only Graph properties', async () => {
    const broken = [...source];
    broken[6] = "  identifierUri: ['api://ai-chargeback-dev']";
    broken.splice(7, 0, "  publisherDomain: 'contoso.com'");
    expect(await problems(broken)).toEqual([
      expect.stringMatching(
        /^mem\.bicep:7:\d+: .*'identifierUri' does not exist .*did you mean 'identifierUris'/,
      ),
      expect.stringMatching(/^mem\.bicep:8:\d+: .*publisherDomain is read-only/),
    ]);
  });
});

describe('bicep/: the templates', () => {
  const files = bicepFiles(BICEP_DIR);

  it('bicep/main.bicep exists', () => {
    expect(existsSync(join(BICEP_DIR, 'main.bicep'))).toBe(true);
  });

  it('every template parses and every resource matches its Azure type definition', async () => {
    expect(files.length).toBeGreaterThan(0);
    const problems = (await Promise.all(files.map(checkFile))).flat();
    expect(problems).toEqual([]);
  });
});
