import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  APIM_APIS,
  APIM_NAMED_VALUES,
  APIM_POLICY_FOLDER,
  GLOBAL_POLICY_FILE,
} from '../../shared/contracts/apim';
import { REQUIRED_SETTING_GROUPS, REQUIRED_SETTING_NAMES, SETTINGS } from '../../shared/contracts/settings';
import { BLOB_CONTAINERS, COSMOS_CONTAINERS, COSMOS_DATABASE } from '../../shared/contracts/storage';
import type { BicepFile, BicepObject, BicepResource, BicepValue } from './bicep-ast';
import { BicepExpression, parseBicep } from './bicep-ast';

/**
 * The Bicep templates against the contracts: app settings, APIM APIs, policies and named values,
 * storage and Cosmos DB names, and the roles the code needs. Read from the templates' syntax
 * trees (bicep-ast.ts); no literal of a contract is restated here.
 */

const root = join(__dirname, '..', '..');
const bicepDir = join(root, 'bicep');
const modules = join(bicepDir, 'modules');

let files: Map<string, BicepFile>;

beforeAll(async () => {
  const paths = [
    ...readdirSync(bicepDir)
      .filter((f) => f.endsWith('.bicep'))
      .map((f) => join(bicepDir, f)),
    ...readdirSync(modules)
      .filter((f) => f.endsWith('.bicep'))
      .map((f) => join(modules, f)),
  ];
  files = new Map(await Promise.all(paths.map(async (p) => [p, await parseBicep(p)] as const)));
});

function module(name: string): BicepFile {
  const file = files.get(join(modules, name));
  if (!file) throw new Error(`bicep/modules/${name} is missing`);
  return file;
}

function variable(file: BicepFile, name: string): BicepValue {
  const found = file.variables.find((v) => v.name === name);
  if (!found) throw new Error(`${file.path}: no variable ${name}`);
  return found.value;
}

function isObject(value: BicepValue | undefined): value is BicepObject {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof BicepExpression)
  );
}

function objectVariable(file: BicepFile, name: string): BicepObject {
  const value = variable(file, name);
  if (!isObject(value)) throw new Error(`${file.path}: ${name} is not an object literal`);
  return value;
}

/** A literal value as plain JSON; expressions become their source text. */
function plain(value: BicepValue): unknown {
  return JSON.parse(
    JSON.stringify(value, (_k, v: unknown) => (v instanceof BicepExpression ? `\${${v.text}}` : v)),
  ) as unknown;
}

/** An expression's source text, a string as is, anything else as JSON. */
function text(value: BicepValue | undefined): string {
  if (value instanceof BicepExpression) return value.text;
  if (typeof value === 'string') return value;
  return JSON.stringify(plain(value ?? null));
}

function allResources(file: BicepFile): BicepResource[] {
  const out: BicepResource[] = [];
  const walk = (r: BicepResource) => {
    out.push(r);
    r.children.forEach(walk);
  };
  file.resources.forEach(walk);
  return out;
}

function resourcesOfType(file: BicepFile, type: string): BicepResource[] {
  return allResources(file).filter((r) => r.type.toLowerCase() === type.toLowerCase() && !r.existing);
}

function stringList(value: BicepValue): string[] {
  if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string')) {
    throw new Error(`not a list of strings: ${JSON.stringify(plain(value))}`);
  }
  return value;
}

describe('Function App settings', () => {
  const settingNames = Object.keys(SETTINGS);
  let appSettings: BicepObject;
  let optional: string[];

  beforeAll(() => {
    const file = module('functionapp.bicep');
    appSettings = objectVariable(file, 'appSettings');
    const optionalValue = variable(file, 'optionalAppSettings');
    optional = [
      ...(optionalValue instanceof BicepExpression ? optionalValue.text : '').matchAll(
        /\b([A-Z][A-Z0-9_]+)\s*:/g,
      ),
    ].map((m) => m[1] as string);
  });

  it('sets every required setting', () => {
    expect(REQUIRED_SETTING_NAMES.filter((name) => !(name in appSettings))).toEqual([]);
  });

  it('sets one of each group of settings of which one is required', () => {
    for (const group of Object.values(REQUIRED_SETTING_GROUPS)) {
      expect(group.filter((name) => name in appSettings)).not.toEqual([]);
    }
  });

  it('sets no setting the config schema does not know', () => {
    expect([...Object.keys(appSettings), ...optional].filter((name) => !settingNames.includes(name))).toEqual(
      [],
    );
  });

  it('identity-based: no key, connection string or local-only setting', () => {
    const keyed = settingNames.filter(
      (name) =>
        SETTINGS[name as keyof typeof SETTINGS].secret && /KEY|PASSWORD|CONNECTION_STRING$/.test(name),
    );
    expect(
      keyed.filter((name) => name in appSettings && name !== 'APPLICATIONINSIGHTS_CONNECTION_STRING'),
    ).toEqual([]);
    expect(Object.keys(appSettings).filter((name) => /SELF_SIGNED/.test(name))).toEqual([]);
  });

  it('takes every secret setting it sets from Key Vault', () => {
    for (const [name, value] of Object.entries(appSettings)) {
      if (!SETTINGS[name as keyof typeof SETTINGS]?.secret) continue;
      expect(text(value)).toMatch(/^keyVaultReference\(/);
    }
    const source = module('functionapp.bicep').source;
    expect(source).toMatch(/func keyVaultReference\([^)]*\) string =>\s*'@Microsoft\.KeyVault\(VaultName=/);
  });

  it('uses identity-based AzureWebJobsStorage and the Flex Consumption plan', () => {
    const file = module('functionapp.bicep');
    const runtime = objectVariable(file, 'runtimeSettings');
    expect(Object.keys(runtime)).toEqual(expect.arrayContaining(['AzureWebJobsStorage__accountName']));
    expect(Object.keys(runtime).filter((k) => k === 'AzureWebJobsStorage')).toEqual([]);
    const [plan] = resourcesOfType(file, 'Microsoft.Web/serverfarms');
    expect(plain((plan?.body.sku as BicepObject).name as BicepValue)).toBe('FC1');
  });
});

describe('Blob Storage and Cosmos DB', () => {
  it('creates the Blob containers of the contract', () => {
    expect(plain(objectVariable(module('storage.bicep'), 'blobContainers'))).toEqual(BLOB_CONTAINERS);
  });

  it('expires the spool and the quarantine, never the reports', () => {
    const [policy] = resourcesOfType(
      module('storage.bicep'),
      'Microsoft.Storage/storageAccounts/managementPolicies',
    );
    const rules = JSON.stringify(plain(policy?.body ?? {}));
    expect(rules).toContain('${blobContainers.usageSpool}/');
    expect(rules).toContain('${blobContainers.usageQuarantine}/');
    expect(rules).not.toContain('blobContainers.reports');
  });

  it('disables shared key access', () => {
    const [account] = resourcesOfType(module('storage.bicep'), 'Microsoft.Storage/storageAccounts');
    expect((account?.body.properties as BicepObject).allowSharedKeyAccess).toBe(false);
  });

  it("creates the Cosmos DB database and containers with the contract's partition keys", () => {
    const file = module('cosmos.bicep');
    expect(variable(file, 'databaseName')).toBe(COSMOS_DATABASE);
    expect(plain(objectVariable(file, 'containers'))).toEqual(COSMOS_CONTAINERS);
    const [containers] = resourcesOfType(
      file,
      'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers',
    );
    expect(containers?.loop?.source).toBe('items(containers)');
    expect(file.source).toMatch(/paths:\s*\[\s*container\.value\.partitionKeyPath\s*\]/);
    const [account] = resourcesOfType(file, 'Microsoft.DocumentDB/databaseAccounts');
    expect((account?.body.properties as BicepObject).disableLocalAuth).toBe(true);
  });
});

describe('API Management', () => {
  let apim: BicepFile;
  beforeAll(() => {
    apim = module('apim.bicep');
  });

  it("publishes the contract's APIs: ids, paths, subscription key names, operations", () => {
    const apis = plain(objectVariable(apim, 'apis'));
    const expected = Object.fromEntries(
      Object.entries(APIM_APIS).map(([key, { policyFile: _policyFile, ...api }]) => [key, api]),
    );
    expect(apis).toEqual(expected);
    // The API resource takes them from there.
    const api = resourcesOfType(module('apim-api.bicep'), 'Microsoft.ApiManagement/service/apis')[0];
    const properties = api?.body.properties as BicepObject;
    expect(text(properties.path)).toBe('api.path');
    expect(text(properties.subscriptionKeyParameterNames)).toBe('api.subscriptionKey');
  });

  it('loads every policy file as raw XML, the global one at service scope', () => {
    const policyDir = join(root, APIM_POLICY_FOLDER);
    const policyFiles = readdirSync(policyDir).filter((f) => f.endsWith('.xml'));
    const loaded = [
      ...[...files.values()].flatMap((f) =>
        [...f.source.matchAll(/loadTextContent\('\.\.\/\.\.\/([^']+)'\)/g)].map((m) => m[1]),
      ),
    ];
    expect(loaded.sort()).toEqual(policyFiles.map((f) => `${APIM_POLICY_FOLDER}/${f}`).sort());
    const apiPolicies = objectVariable(apim, 'apiPolicies');
    for (const [key, api] of Object.entries(APIM_APIS)) {
      expect(text(apiPolicies[key])).toContain(`/${api.policyFile}'`);
    }
    expect(text(variable(apim, 'globalPolicy'))).toContain(`/${GLOBAL_POLICY_FILE}'`);
    const [service] = resourcesOfType(apim, 'Microsoft.ApiManagement/service/policies');
    expect((service?.body.properties as BicepObject).format).toBe('rawxml');
    expect(text((service?.body.properties as BicepObject).value)).toBe('globalPolicy');
    const [api] = resourcesOfType(module('apim-api.bicep'), 'Microsoft.ApiManagement/service/apis/policies');
    expect((api?.body.properties as BicepObject).format).toBe('rawxml');
  });

  it('defines every named value the policies reference, the secret ones from Key Vault', () => {
    const names = objectVariable(apim, 'namedValueNames');
    expect(plain(names)).toEqual(
      Object.fromEntries(Object.entries(APIM_NAMED_VALUES).map(([k, v]) => [k, v.name])),
    );
    const plainKeys = Object.keys(objectVariable(apim, 'plainNamedValues'));
    const vaultKeys = Object.keys(objectVariable(apim, 'keyVaultNamedValues'));
    const secretKeys = Object.entries(APIM_NAMED_VALUES)
      .filter(([, v]) => v.secret)
      .map(([k]) => k);
    expect(vaultKeys.sort()).toEqual(secretKeys.sort());
    expect([...plainKeys, ...vaultKeys].sort()).toEqual(Object.keys(APIM_NAMED_VALUES).sort());

    const defined = new Set(Object.values(names).map(text));
    const policyDir = join(root, APIM_POLICY_FOLDER);
    for (const file of readdirSync(policyDir).filter((f) => f.endsWith('.xml'))) {
      const referenced = [...readFileSync(join(policyDir, file), 'utf8').matchAll(/\{\{([^}]+)\}\}/g)].map(
        (m) => m[1],
      );
      expect(referenced.filter((name) => !defined.has(name as string))).toEqual([]);
    }
    const [secretValues] = resourcesOfType(apim, 'Microsoft.ApiManagement/service/namedValues').filter(
      (r) => r.loop?.source === 'items(keyVaultNamedValues)',
    );
    expect(isObject((secretValues?.body.properties as BicepObject).keyVault)).toBe(true);
  });
});

describe('roles of the Function App identity', () => {
  // Azure's built-in role definition ids (not project contracts).
  const builtIn = {
    storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe',
    storageBlobDelegator: 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a',
    storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
    storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
    keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6',
    cognitiveServicesOpenAIUser: '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd',
    cognitiveServicesSpeechUser: 'f2dc8367-1007-4938-bd23-fe263f013447',
  };
  const needed: Record<string, Array<keyof typeof builtIn>> = {
    storageRoles: [
      'storageBlobDataContributor',
      'storageBlobDelegator',
      'storageQueueDataContributor',
      'storageTableDataContributor',
    ],
    keyVaultRoles: ['keyVaultSecretsUser'],
    openAiRoles: ['cognitiveServicesOpenAIUser'],
    speechRoles: ['cognitiveServicesSpeechUser'],
  };

  it('maps role names to the built-in role ids in one place', () => {
    const ids = objectVariable(module('role-ids.bicep'), 'roleDefinitionIds');
    for (const [name, id] of Object.entries(builtIn)) expect(ids[name]).toBe(id);
    const cosmos = objectVariable(module('role-ids.bicep'), 'cosmosRoleDefinitionIds');
    expect(cosmos.cosmosDataContributor).toBe('00000000-0000-0000-0000-000000000002');
    const elsewhere = [...files.values()].filter(
      (f) => !f.path.endsWith('role-ids.bicep') && Object.values(builtIn).some((id) => f.source.includes(id)),
    );
    expect(elsewhere.map((f) => f.path)).toEqual([]);
  });

  it('assigns every role the code needs, on the right resource, named guid(scope, principal, role)', () => {
    const rbac = module('rbac.bicep');
    for (const [list, roles] of Object.entries(needed)) {
      expect(stringList(variable(rbac, list))).toEqual(expect.arrayContaining(roles));
      const assignment = resourcesOfType(rbac, 'Microsoft.Authorization/roleAssignments').find((r) =>
        r.loop?.header.includes(` in ${list}`),
      );
      expect(assignment).toBeDefined();
      const scope = text(assignment?.body.scope);
      expect(text(assignment?.body.name)).toBe(`guid(${scope}.id, principalId, roleDefinitionIds[role])`);
      expect(text((assignment?.body.properties as BicepObject).principalId)).toBe('principalId');
    }
  });

  it('grants Cosmos DB data access and Redis data access to the same identity', () => {
    const rbac = module('rbac.bicep');
    const [cosmos] = resourcesOfType(rbac, 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments');
    expect(text((cosmos?.body.properties as BicepObject).roleDefinitionId)).toContain(
      'cosmosRoleDefinitionIds.cosmosDataContributor',
    );
    expect(text((cosmos?.body.properties as BicepObject).principalId)).toBe('principalId');
    const [redis] = resourcesOfType(
      rbac,
      'Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments',
    );
    expect(plain(((redis?.body.properties as BicepObject).user as BicepObject).objectId as BicepValue)).toBe(
      '${principalId}',
    );
    // The identity the grants go to is the one the Function App runs as and names for Redis.
    const main = files.get(join(bicepDir, 'main.bicep'));
    const rbacModule = main?.modules.find((m) => m.path.endsWith('rbac.bicep'));
    const appModule = main?.modules.find((m) => m.path.endsWith('functionapp.bicep'));
    expect(text(rbacModule?.params.principalId)).toBe('identity.outputs.principalId');
    expect(text(appModule?.params.identityPrincipalId)).toBe('identity.outputs.principalId');
    expect(text(objectVariable(module('functionapp.bicep'), 'appSettings').REDIS_ENTRA_OBJECT_ID)).toBe(
      'identityPrincipalId',
    );
  });
});

describe('alerts', () => {
  it('watch log markers the app still writes', () => {
    const alerts = variable(module('alerts.bicep'), 'alerts');
    const code = ['shared', 'functions']
      .flatMap((folder) =>
        readdirSync(join(root, folder), { recursive: true, withFileTypes: true })
          .filter((e) => e.isFile() && e.name.endsWith('.ts'))
          .map((e) => readFileSync(join(e.parentPath, e.name), 'utf8')),
      )
      .join('\n');
    const markers = (Array.isArray(alerts) ? alerts : []).flatMap((alert) =>
      [...text((alert as BicepObject).query).matchAll(/(?:has|==) "([^"]+)"/g)].map((m) => m[1] as string),
    );
    expect(markers.length).toBeGreaterThan(3);
    expect(markers.filter((marker) => !code.includes(marker))).toEqual([]);
  });
});
