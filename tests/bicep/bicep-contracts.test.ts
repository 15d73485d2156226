import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  APIM_APIS,
  APIM_NAMED_VALUES,
  APIM_POLICY_FOLDER,
  GLOBAL_POLICY_FILE,
  TOKEN_METRIC,
} from '../../shared/contracts/apim';
import { METRICS } from '../../shared/adapters/telemetry';
import { APP_ROLE_NAMES } from '../../shared/contracts/roles';
import { REQUIRED_SETTING_GROUPS, REQUIRED_SETTING_NAMES, SETTINGS } from '../../shared/contracts/settings';
import { BLOB_CONTAINERS, COSMOS_CONTAINERS, COSMOS_DATABASE } from '../../shared/contracts/storage';
import type { BicepFile, BicepObject, BicepResource, BicepValue } from './bicep-ast';
import { allResources, BicepExpression, bicepText, parseBicep } from './bicep-ast';
import { loadVendoredTypes } from './bicep-types';

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

describe('workbook', () => {
  it('reads the metrics the app and the gateway emit, by their contract names and dimensions', () => {
    const workbook = module('workbook.bicep');
    const billed = text(variable(workbook, 'billedByDepartment'));
    expect(billed).toContain(`"${METRICS.reportDepartmentTotal}"`);
    for (const property of ['period', 'kind', 'department', 'currency']) {
      expect(billed).toContain(`customDimensions["${property}"]`);
    }
    const tokens = text(variable(workbook, 'tokensByDepartment'));
    expect(TOKEN_METRIC.dimensions).toContain('Department');
    expect(tokens).toContain('customDimensions["Department"]');
    const usage = text(variable(workbook, 'appUsage'));
    for (const name of [METRICS.tokens, METRICS.audioSeconds, METRICS.characters])
      expect(usage).toContain(`"${name}"`);
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

// ---------------------------------------------------------------------------------------------
// Diagnostic settings, tags, private networking.

/** Every resource declared (not `existing`) in any template, with the file it is in. */
function declaredResources(): Array<{ file: BicepFile; resource: BicepResource }> {
  return [...files.values()].flatMap((file) =>
    allResources(file)
      .filter((r) => !r.existing)
      .map((resource) => ({ file, resource })),
  );
}

const lower = (s: string): string => s.toLowerCase();

/**
 * Resource log categories per resource type, as Azure Monitor documents them ("Supported logs
 * for <type>", learn.microsoft.com/azure/azure-monitor/reference/supported-logs/): `required`
 * must be sent, `documented` are the categories that exist (anything else is a typo the
 * diagnostic settings API would reject).
 */
const RESOURCE_LOGS: Record<string, { required: string[]; documented: string[] }> = {
  'Microsoft.Web/sites': {
    required: ['FunctionAppLogs'],
    documented: [
      'FunctionAppLogs',
      'AppServiceAuthenticationLogs',
      'AppServiceHTTPLogs',
      'AppServiceConsoleLogs',
      'AppServiceAppLogs',
      'AppServiceAuditLogs',
      'AppServiceIPSecAuditLogs',
      'AppServicePlatformLogs',
    ],
  },
  'Microsoft.ApiManagement/service': {
    required: ['GatewayLogs', 'GatewayLlmLogs'],
    documented: [
      'GatewayLogs',
      'GatewayLlmLogs',
      'GatewayMCPLogs',
      'WebSocketConnectionLogs',
      'DeveloperPortalAuditLogs',
    ],
  },
  'Microsoft.DocumentDB/databaseAccounts': {
    required: ['DataPlaneRequests', 'ControlPlaneRequests'],
    documented: [
      'DataPlaneRequests',
      'ControlPlaneRequests',
      'QueryRuntimeStatistics',
      'PartitionKeyStatistics',
      'PartitionKeyRUConsumption',
      'DataPlaneRequests5M',
      'DataPlaneRequests15M',
    ],
  },
  'Microsoft.KeyVault/vaults': {
    required: ['AuditEvent'],
    documented: ['AuditEvent', 'AzurePolicyEvaluationDetails'],
  },
  'Microsoft.Storage/storageAccounts/blobServices': {
    required: ['StorageWrite', 'StorageDelete'],
    documented: ['StorageRead', 'StorageWrite', 'StorageDelete'],
  },
  'Microsoft.CognitiveServices/accounts': {
    required: ['Audit', 'RequestResponse'],
    documented: ['Audit', 'RequestResponse', 'Trace', 'AzureOpenAIRequestUsage'],
  },
  'Microsoft.Cache/redisEnterprise/databases': {
    required: ['ConnectionEvents'],
    documented: ['ConnectionEvents'],
  },
};

/** Types of the deployment without a diagnostic setting, each with the reason. */
const NO_RESOURCE_LOGS: Record<string, string> = {
  'Microsoft.OperationalInsights/workspaces': 'the destination itself',
  'Microsoft.Insights/components': 'workspace-based: its telemetry is in the workspace already',
  'Microsoft.Web/serverfarms': "Flex Consumption plan: the app's logs are collected on the site",
  'Microsoft.Storage/storageAccounts': 'no resource logs at account level (they are per service)',
  'Microsoft.Cache/redisEnterprise': 'resource logs are on the database',
  'Microsoft.Network/virtualNetworks': 'only VM protection alerts (no VMs here)',
  'Microsoft.Network/privateEndpoints': 'metrics only',
  'Microsoft.Network/privateDnsZones': 'no resource logs',
  'Microsoft.ManagedIdentity/userAssignedIdentities': 'no resource logs',
  'Microsoft.Insights/actionGroups': 'no resource logs',
  'Microsoft.Insights/scheduledQueryRules': 'alert history is in the activity log',
  'Microsoft.Insights/workbooks': 'no resource logs',
  'Microsoft.Insights/diagnosticSettings': 'the settings themselves',
  'Microsoft.Authorization/roleAssignments': 'in the activity log',
  'Microsoft.Graph/applications': "Entra ID object: changes are in the tenant's audit logs",
  'Microsoft.Graph/servicePrincipals': "Entra ID object: sign-ins and changes are in the tenant's logs",
};

/** Child resource types (a `/` past the first segment) have no diagnostic settings of their own unless listed. */
function isChildType(type: string): boolean {
  return type.split('/').length > 2;
}

describe('diagnostic settings', () => {
  const isDiagnosticSetting = (r: BicepResource): boolean =>
    lower(r.type) === lower('Microsoft.Insights/diagnosticSettings');

  it('every resource type of the deployment is classified: resource logs sent, or why not', () => {
    const known = new Set([...Object.keys(RESOURCE_LOGS), ...Object.keys(NO_RESOURCE_LOGS)].map(lower));
    const unclassified = declaredResources()
      .map(({ resource }) => resource.type)
      .filter((type) => !known.has(lower(type)) && (!isChildType(type) || /\/blobServices$/i.test(type)));
    expect([...new Set(unclassified)]).toEqual([]);
  });

  it('every resource with resource logs has a diagnostic setting to the workspace with documented categories', () => {
    const main = files.get(join(bicepDir, 'main.bicep'));
    const monitoring = module('monitoring.bicep');
    const workspaceOutput = monitoring.outputs.find((o) => o.name === 'workspaceId');
    expect(bicepText(workspaceOutput?.value)).toBe('workspace.id');

    const covered = declaredResources().filter(
      ({ resource }) => lower(resource.type) in lowerKeys(RESOURCE_LOGS),
    );
    // Function App, APIM, Cosmos DB, Key Vault, blob service, OpenAI + Speech, Redis database.
    expect(covered.length).toBeGreaterThanOrEqual(8);
    for (const { file, resource } of covered) {
      const where = `${file.path}: ${resource.symbolicName}`;
      const settings = allResources(file).filter(
        (r) => isDiagnosticSetting(r) && bicepText(r.body.scope) === resource.symbolicName,
      );
      expect({ where, settings: settings.length }).toEqual({ where, settings: 1 });
      const setting = settings[0] as BicepResource;
      // The GA API (2016-09-01) names the setting 'service'.
      expect(setting.body.name).toBe('service');
      const properties = setting.body.properties as BicepObject;
      expect({ where, workspaceId: bicepText(properties.workspaceId) }).toEqual({
        where,
        workspaceId: 'workspaceId',
      });
      const logs = properties.logs;
      if (!Array.isArray(logs)) throw new Error(`${where}: logs is not a literal list`);
      const categories = logs.map((l) => (isObject(l) ? l.category : undefined));
      expect(logs.every((l) => isObject(l) && l.enabled === true)).toBe(true);
      const expected = lowerKeys(RESOURCE_LOGS)[lower(resource.type)];
      expect({ where, missing: expected?.required.filter((c) => !categories.includes(c)) }).toEqual({
        where,
        missing: [],
      });
      expect({
        where,
        undocumented: categories.filter((c) => typeof c !== 'string' || !expected?.documented.includes(c)),
      }).toEqual({ where, undocumented: [] });

      // The module's workspaceId is the monitoring module's workspace.
      const call = main?.modules.find((m) => file.path.endsWith(m.path.replace(/^\.\//, '')));
      expect({ where, workspaceId: bicepText(call?.params.workspaceId) }).toEqual({
        where,
        workspaceId: 'monitoring.outputs.workspaceId',
      });
    }
  });
});

function lowerKeys<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [lower(k), v]));
}

describe('tags', () => {
  const vendored = loadVendoredTypes();

  /**
   * True when Azure's type definition of the resource has a writable `tags` property (an object:
   * Microsoft Graph's `tags` is a list of strings, not Azure tags).
   */
  function taggable(resource: BicepResource): boolean | undefined {
    const def = vendored.resources.get(lower(`${resource.type}@${resource.apiVersion ?? ''}`));
    if (!def) return undefined;
    const node = def.types[def.body];
    const writableTags = (
      props: Record<string, { flags: number; type: { $ref: string } }> | undefined,
    ): boolean => {
      const tags = props?.tags;
      if (tags === undefined || (tags.flags & 2) !== 0) return false;
      return def.types[Number(tags.type.$ref.slice(2))]?.$type === 'ObjectType';
    };
    if (node?.$type === 'ObjectType') return writableTags(node.properties);
    if (node?.$type === 'DiscriminatedObjectType') {
      if (writableTags(node.baseProperties)) return true;
      return Object.values(node.elements).some((ref) => {
        const variant = def.types[Number(ref.$ref.slice(2))];
        return variant?.$type === 'ObjectType' && writableTags(variant.properties);
      });
    }
    return false;
  }

  it('every taggable resource sets the tags it is given', () => {
    const untagged: string[] = [];
    let checked = 0;
    for (const { file, resource } of declaredResources()) {
      if (!taggable(resource)) continue;
      checked++;
      if (bicepText(resource.body.tags) !== 'tags') untagged.push(`${file.path}: ${resource.symbolicName}`);
    }
    expect(checked).toBeGreaterThan(20);
    expect(untagged).toEqual([]);
  });

  it("main.bicep passes its tags to every module that takes them, with the deployment's own", () => {
    const main = files.get(join(bicepDir, 'main.bicep'));
    expect(main).toBeDefined();
    expect(bicepText(variable(main as BicepFile, 'allTags'))).toMatch(/^union\(tags, \{[\s\S]*application:/);
    const wrong = (main?.modules ?? [])
      .filter((m) => {
        const target = files.get(join(bicepDir, m.path));
        return target?.params.some((p) => p.name === 'tags');
      })
      .filter((m) => bicepText(m.params.tags) !== 'allTags')
      .map((m) => m.symbolicName);
    expect(wrong).toEqual([]);
  });
});

describe('private networking', () => {
  /**
   * Data-plane dependencies of the Function App: resource type -> the private link group ids
   * (sub-resources) it needs an endpoint for, and the private DNS zone of each.
   */
  const PRIVATE_LINK: Record<string, Record<string, RegExp[]>> = {
    'Microsoft.Storage/storageAccounts': {
      blob: [/^privatelink\.blob\.\$\{environment\(\)\.suffixes\.storage\}$/],
      queue: [/^privatelink\.queue\.\$\{environment\(\)\.suffixes\.storage\}$/],
      table: [/^privatelink\.table\.\$\{environment\(\)\.suffixes\.storage\}$/],
    },
    'Microsoft.DocumentDB/databaseAccounts': { Sql: [/^privatelink\.documents\.azure\.com$/] },
    'Microsoft.Cache/redisEnterprise': { redisEnterprise: [/^privatelink\.redis\.azure\.net$/] },
    'Microsoft.KeyVault/vaults': { vault: [/^privatelink\.vaultcore\.azure\.net$/] },
    'Microsoft.CognitiveServices/accounts': { account: [/^privatelink\.cognitiveservices\.azure\.com$/] },
  };

  let main: BicepFile;
  let network: BicepFile;
  let endpoints: BicepObject[];
  let zones: Record<string, string>;

  beforeAll(() => {
    main = files.get(join(bicepDir, 'main.bicep')) as BicepFile;
    network = module('network.bicep');
    const call = main.modules.find((m) => m.path.endsWith('network.bicep'));
    expect(call?.condition).toBe('privateNetworking');
    const list = call?.params.privateEndpoints;
    if (!Array.isArray(list) || !list.every(isObject))
      throw new Error('privateEndpoints is not a literal list');
    endpoints = list;
    zones = Object.fromEntries(
      // Interpolated names come back as their source text, quotes included.
      Object.entries(objectVariable(network, 'dnsZones')).map(([k, v]) => [
        k,
        bicepText(v).replace(/^'|'$/g, ''),
      ]),
    );
  });

  it('is an option, off by default', () => {
    const param = main.params.find((p) => p.name === 'privateNetworking');
    expect(param?.type).toBe('bool');
    expect(param?.defaultValue).toBe(false);
  });

  it('every data-plane dependency has a private endpoint per sub-resource, with its DNS zone', () => {
    const missing: string[] = [];
    let targets = 0;
    for (const call of main.modules) {
      const file = files.get(join(bicepDir, call.path));
      if (!file) continue;
      for (const resource of allResources(file).filter((r) => !r.existing)) {
        const groups = lowerKeys(PRIVATE_LINK)[lower(resource.type)];
        if (!groups) continue;
        targets++;
        const output = file.outputs.find((o) => bicepText(o.value) === `${resource.symbolicName}.id`);
        const ref = `${call.symbolicName}.outputs.${output?.name ?? '?'}`;
        for (const [groupId, zonePatterns] of Object.entries(groups)) {
          const endpoint = endpoints.find((e) => bicepText(e.resourceId) === ref && e.groupId === groupId);
          if (!endpoint) {
            missing.push(`${ref} (${groupId}): no private endpoint`);
            continue;
          }
          const names = stringList(endpoint.zones as BicepValue).map((z) => zones[z] ?? `unknown zone ${z}`);
          for (const pattern of zonePatterns) {
            if (!names.some((n) => pattern.test(n))) missing.push(`${ref} (${groupId}): no zone ${pattern}`);
          }
        }
      }
    }
    // Storage, Cosmos DB, Redis, Key Vault, Azure OpenAI, Speech.
    expect(targets).toBe(6);
    expect(missing).toEqual([]);
    // Azure OpenAI's endpoint host (*.openai.azure.com) needs its own zone too.
    const openAi = endpoints.find((e) => bicepText(e.resourceId) === 'ai.outputs.openAiId');
    expect(stringList(openAi?.zones as BicepValue).map((z) => zones[z])).toContain(
      'privatelink.openai.azure.com',
    );
  });

  it('every endpoint registers in its zones (privateDnsZoneGroups) and every zone is linked to the VNet', () => {
    const [peResource] = resourcesOfType(network, 'Microsoft.Network/privateEndpoints');
    expect(peResource?.loop?.source).toBe('privateEndpoints');
    const [groups] = resourcesOfType(network, 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups');
    expect(groups?.loop?.source).toBe('privateEndpoints');
    expect(bicepText(groups?.body.parent)).toBe('endpoints[i]');
    expect(bicepText((groups?.body.properties as BicepObject).privateDnsZoneConfigs)).toMatch(
      /map\(endpoint\.zones,[\s\S]*privateDnsZoneId: resourceId\('Microsoft\.Network\/privateDnsZones', dnsZones\[zone\]\)/,
    );
    const [dnsZones] = resourcesOfType(network, 'Microsoft.Network/privateDnsZones');
    expect(dnsZones?.loop?.source).toBe('items(dnsZones)');
    const [links] = resourcesOfType(network, 'Microsoft.Network/privateDnsZones/virtualNetworkLinks');
    expect(links?.loop?.source).toBe('items(dnsZones)');
    expect(bicepText(((links?.body.properties as BicepObject).virtualNetwork as BicepObject).id)).toBe(
      'vnet.id',
    );
  });

  it('disables public network access on those resources when the option is on', () => {
    expect(bicepText(variable(main, 'dataPublicNetworkAccess'))).toBe(
      "privateNetworking ? 'Disabled' : 'Enabled'",
    );
    const wrong: string[] = [];
    for (const call of main.modules) {
      const file = files.get(join(bicepDir, call.path));
      if (!file) continue;
      const targets = allResources(file).filter(
        (r) => !r.existing && lower(r.type) in lowerKeys(PRIVATE_LINK),
      );
      if (targets.length === 0) continue;
      if (bicepText(call.params.publicNetworkAccess) !== 'dataPublicNetworkAccess') {
        wrong.push(`${call.symbolicName}: publicNetworkAccess not passed`);
      }
      for (const r of targets) {
        const value = (r.body.properties as BicepObject).publicNetworkAccess;
        if (bicepText(value) !== 'publicNetworkAccess') wrong.push(`${file.path}: ${r.symbolicName}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('integrates the Function App with the VNet (Flex Consumption: delegated subnet)', () => {
    const call = main.modules.find((m) => m.path.endsWith('functionapp.bicep'));
    expect(bicepText(call?.params.virtualNetworkSubnetId)).toBe(
      "privateNetworking ? network.outputs.functionsSubnetId : ''",
    );
    const [site] = resourcesOfType(module('functionapp.bicep'), 'Microsoft.Web/sites');
    expect(bicepText((site?.body.properties as BicepObject).virtualNetworkSubnetId)).toContain(
      'virtualNetworkSubnetId',
    );
    const [vnet] = resourcesOfType(network, 'Microsoft.Network/virtualNetworks');
    const subnets = (vnet?.body.properties as BicepObject).subnets;
    expect(JSON.stringify(plain(subnets ?? null))).toContain('"serviceName":"Microsoft.App/environments"');
  });
});

describe('Entra ID app registration (Microsoft Graph extension)', () => {
  let main: BicepFile;
  let entraApp: BicepFile;
  beforeAll(() => {
    main = files.get(join(bicepDir, 'main.bicep')) as BicepFile;
    entraApp = module('entra-app.bicep');
  });

  it('is an option, off by default, deployed by modules/entra-app.bicep with the Graph extension', () => {
    const param = main.params.find((p) => p.name === 'createAppRegistration');
    expect(param?.type).toBe('bool');
    expect(param?.defaultValue).toBe(false);
    const call = main.modules.find((m) => m.path === 'modules/entra-app.bicep');
    expect(call?.condition).toBe('createAppRegistration');
    expect(entraApp.extensions.map((e) => e.reference)).toEqual(['microsoftGraphV1']);
    const config = JSON.parse(readFileSync(join(bicepDir, 'bicepconfig.json'), 'utf8')) as {
      extensions: Record<string, string>;
    };
    expect(config.extensions.microsoftGraphV1).toMatch(
      /^br:mcr\.microsoft\.com\/bicep\/extensions\/microsoftgraph\/v1\.0:\d+\.\d+\.\d+$/,
    );
  });

  it("declares the contract's app roles, for users and applications, with deterministic ids", () => {
    const roles = variable(entraApp, 'appRoleDefinitions');
    if (!Array.isArray(roles) || !roles.every(isObject)) throw new Error('appRoleDefinitions is not a list');
    expect(roles.map((r) => r.value)).toEqual([...APP_ROLE_NAMES]);
    const [app] = resourcesOfType(entraApp, 'Microsoft.Graph/applications');
    expect(text(app?.body.uniqueName)).toBe('uniqueName');
    expect(bicepText(app?.body.identifierUris)).toBe('[identifierUri]');
    const appRoles = text(app?.body.appRoles);
    expect(appRoles).toMatch(/^\[\s*for role in appRoleDefinitions:/);
    expect(appRoles).toMatch(/\bid: guid\(/);
    expect(appRoles).toMatch(/\bvalue: role\.value\b/);
    expect(appRoles).toMatch(/allowedMemberTypes: \[\s*'User'\s*'Application'\s*\]/);
    const [sp] = resourcesOfType(entraApp, 'Microsoft.Graph/servicePrincipals');
    expect(text(sp?.body.appId)).toBe('app.appId');
  });

  it(`its audience output feeds the APIM named value ${APIM_NAMED_VALUES.audience.name} when the option is on`, () => {
    const audienceOutput = entraApp.outputs.find((o) => o.name === 'audience');
    expect(text(audienceOutput?.value)).toBe('app.identifierUris[0]');
    const call = main.modules.find((m) => m.path === 'modules/entra-app.bicep');
    expect(text(call?.params.identifierUri)).toBe('entra.audience');

    // main.bicep: the entra settings APIM gets take the audience from the module when the option is on.
    const apimCall = main.modules.find((m) => m.path === 'modules/apim.bicep');
    const passed = text(apimCall?.params.entra);
    const settings = objectVariable(main, passed);
    expect(text(settings.audience)).toBe(
      `createAppRegistration ? ${call?.symbolicName ?? '?'}.outputs.audience : entra.audience`,
    );

    // apim.bicep: the named value of that name is the audience of the entra settings it is given.
    const apim = module('apim.bicep');
    const names = objectVariable(apim, 'namedValueNames');
    const key = Object.keys(names).find((k) => names[k] === APIM_NAMED_VALUES.audience.name);
    expect(key).toBeDefined();
    expect(text(objectVariable(apim, 'plainNamedValues')[key as string])).toBe('entra.audience');
  });
});
