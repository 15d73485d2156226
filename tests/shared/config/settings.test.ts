import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LOCAL_SETTING_NAMES } from '../../../local/settings';
import { DEFAULT_CHARGEBACK_CONFIG } from '../../../shared/chargeback/default-config';
import { checkChargebackConfig } from '../../../shared/chargeback/model';
import { APP_SETTING_NAMES, ConfigError, loadConfig, parseConfig } from '../../../shared/config/settings';

const valid = {
  REDIS_URL: 'redis://127.0.0.1:6379',
  STORAGE_CONNECTION_STRING: 'UseDevelopmentStorage=true',
  COSMOS_ENDPOINT: 'https://127.0.0.1:8081/',
  COSMOS_KEY: 'emulator-key',
  COSMOS_ALLOW_SELF_SIGNED_CERT: 'true',
  AZURE_OPENAI_ENDPOINT: 'http://127.0.0.1:9000',
  AZURE_OPENAI_API_KEY: 'sim-key',
  SPEECH_ENDPOINT: 'http://127.0.0.1:9001',
  GATEWAY_SHARED_SECRET: 'a-local-gateway-secret',
};

function problems(env: NodeJS.ProcessEnv): string[] {
  try {
    parseConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  it('accepts a complete local environment and applies defaults', async () => {
    const config = await loadConfig(valid);
    expect(config).toMatchObject({
      redis: { url: 'redis://127.0.0.1:6379' },
      storage: { connectionString: 'UseDevelopmentStorage=true', reportsContainer: 'reports' },
      cosmos: {
        endpoint: 'https://127.0.0.1:8081',
        key: 'emulator-key',
        database: 'chargeback',
        allowSelfSignedCert: true,
      },
      openai: { endpoint: 'http://127.0.0.1:9000', apiKey: 'sim-key', apiVersion: '2024-10-21' },
      speech: { endpoint: 'http://127.0.0.1:9001' },
      healthCheckTimeoutMs: 2000,
    });
  });

  it('accepts an identity-based Azure environment with no keys at all', async () => {
    const config = await loadConfig(
      {
        REDIS_URL: 'rediss://redis-x.redis.cache.windows.net:6380',
        STORAGE_BLOB_URL: 'https://stx.blob.core.windows.net',
        COSMOS_ENDPOINT: 'https://cosmos-x.documents.azure.com:443/',
        AZURE_OPENAI_ENDPOINT: 'https://aoai-x.openai.azure.com',
        SPEECH_REGION: 'swedencentral',
        KEY_VAULT_URI: 'https://kv-x.vault.azure.net',
        GATEWAY_SHARED_SECRET: 'keyvault:gateway-key',
      },
      () => Promise.resolve('secret-from-the-vault'),
    );
    expect(config.proxy.gatewaySecret).toBe('secret-from-the-vault');
    expect(config.cosmos.key).toBeUndefined();
    expect(config.openai.apiKey).toBeUndefined();
    expect(config.storage.blobUrl).toBe('https://stx.blob.core.windows.net');
  });

  it('names every missing required setting at once', () => {
    expect(problems({})).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^REDIS_URL: required/),
        expect.stringMatching(/^COSMOS_ENDPOINT: required/),
        expect.stringMatching(/^AZURE_OPENAI_ENDPOINT: required/),
        expect.stringMatching(/^STORAGE_BLOB_URL: set STORAGE_BLOB_URL/),
        expect.stringMatching(/^SPEECH_REGION: set SPEECH_REGION or SPEECH_ENDPOINT/),
        expect.stringMatching(/^GATEWAY_SHARED_SECRET: required/),
      ]),
    );
  });

  it('treats blank values as unset and trims the others', () => {
    expect(problems({ ...valid, REDIS_URL: '   ' })).toEqual([expect.stringMatching(/^REDIS_URL: required/)]);
    expect(parseConfig({ ...valid, COSMOS_DATABASE: '  finance  ' }).COSMOS_DATABASE).toBe('finance');
  });

  it('rejects values of the wrong form with a message naming the setting', () => {
    expect(problems({ ...valid, REDIS_URL: 'http://127.0.0.1:6379' })).toEqual([
      expect.stringMatching(/^REDIS_URL: must be a redis: or rediss: URL/),
    ]);
    expect(problems({ ...valid, COSMOS_ENDPOINT: 'not a url' })).toEqual([
      expect.stringMatching(/^COSMOS_ENDPOINT: must be a https: URL/),
    ]);
    expect(problems({ ...valid, HEALTH_CHECK_TIMEOUT_MS: '-5' })[0]).toMatch(/^HEALTH_CHECK_TIMEOUT_MS:/);
    expect(problems({ ...valid, REPORTS_CONTAINER: 'Bad_Name' })[0]).toMatch(
      /^REPORTS_CONTAINER: must be a valid/,
    );
    expect(problems({ ...valid, AZURE_OPENAI_API_VERSION: 'latest' })[0]).toMatch(
      /^AZURE_OPENAI_API_VERSION:/,
    );
  });

  it('checks CHARGEBACK_CONFIG and defaults to the shipped example; a bad one is reported, never fatal', () => {
    const state = (value: unknown) =>
      parseConfig({ ...valid, CHARGEBACK_CONFIG: typeof value === 'string' ? value : JSON.stringify(value) })
        .CHARGEBACK_CONFIG;
    expect(parseConfig(valid).CHARGEBACK_CONFIG).toEqual({ ok: true, config: DEFAULT_CHARGEBACK_CONFIG });
    expect(state('{not json')).toEqual({ ok: false, problems: ['must be JSON'] });
    expect(
      state({
        departments: [],
        sharedCosts: [{ id: 'Bad Id', name: 'x', monthlyAmount: '-5', rule: { kind: 'weird' } }],
      }),
    ).toEqual({
      ok: false,
      problems: [
        expect.stringContaining('departments:'),
        expect.stringContaining('sharedCosts.0.id:'),
        expect.stringContaining('sharedCosts.0.monthlyAmount: must be a non-negative decimal'),
        expect.stringContaining('sharedCosts.0.rule.kind:'),
      ],
    });
  });

  it('checks CHARGEBACK_CONFIG cross-references, naming each entry', () => {
    const departments = [
      { id: 'research', name: 'Research' },
      { id: 'finance', name: 'Finance' },
    ];
    const fixed = (percentages: Record<string, string>) => [
      { id: 'platform', name: 'Platform', monthlyAmount: '100', rule: { kind: 'fixed', percentages } },
    ];
    const problemsOf = (config: object): string[] => {
      const state = checkChargebackConfig(config);
      return state.ok ? [] : state.problems;
    };
    expect(problemsOf({ departments, apps: [{ appId: 'bot', department: 'ops' }] })).toEqual([
      "apps.0.department: app 'bot' names department 'ops', which is not configured",
    ]);
    expect(problemsOf({ departments, sharedCosts: fixed({ research: '60', finance: '30' }) })).toEqual([
      "sharedCosts.0.rule.percentages: shared cost 'platform': fixed percentages add up to 90, not 100",
    ]);
    expect(problemsOf({ departments, sharedCosts: fixed({ research: '75', ops: '25' }) })).toEqual([
      "sharedCosts.0.rule.percentages.ops: shared cost 'platform' gives a percentage to department 'ops', which is not configured",
    ]);
    // An app's budget under a department its usage is not charged to could never apply.
    expect(
      problemsOf({
        departments,
        apps: [{ appId: 'bot', department: 'finance' }],
        budgets: [{ id: 'bot-budget', department: 'research', appId: 'bot', monthlyAmount: '10' }],
      }),
    ).toEqual([
      "budgets.0.appId: budget 'bot-budget' is for app 'bot' in department 'research', but the app is charged to department 'finance'",
    ]);
    expect(
      problemsOf({ departments, budgets: [{ id: 'ops-budget', department: 'ops', monthlyAmount: '10' }] }),
    ).toEqual(["budgets.0.department: budget 'ops-budget' names department 'ops', which is not configured"]);
    expect(problemsOf({ departments: [...departments, { id: 'R&D', name: 'R&D' }] })).toEqual([
      expect.stringMatching(/^departments\.2\.id: must be a department id/),
    ]);
    expect(
      problemsOf({
        departments: [...departments, { id: 'research', name: 'Again' }],
        apps: [
          { appId: 'bot', department: 'research' },
          { appId: 'bot', department: 'finance' },
        ],
        sharedCosts: [...fixed({ research: '100' }), ...fixed({ finance: '100' })],
      }),
    ).toEqual([
      "departments.2.id: department 'research' is listed twice",
      "apps.1.appId: app 'bot' is mapped twice",
      "sharedCosts.1.id: shared cost 'platform' is listed twice",
    ]);
    expect(problemsOf(DEFAULT_CHARGEBACK_CONFIG)).toEqual([]);
  });

  it('checks the durable-write settings: a replica count, and a wait that fits in the wait for Redis', () => {
    expect(() => parseConfig({ ...valid, REDIS_WAIT_REPLICAS: '1' })).not.toThrow();
    expect(problems({ ...valid, REDIS_WAIT_REPLICAS: '-1' })[0]).toMatch(/^REDIS_WAIT_REPLICAS:/);
    expect(problems({ ...valid, REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '250' })).toEqual([
      expect.stringMatching(/^REDIS_WAIT_TIMEOUT_MS: must be shorter than REDIS_WRITE_TIMEOUT_MS \(250 ms\)/),
    ]);
    // Without durable writes the wait is not used.
    expect(() => parseConfig({ ...valid, REDIS_WAIT_TIMEOUT_MS: '900' })).not.toThrow();
    expect(problems({ ...valid, SPOOL_WRITE_TIMEOUT_MS: '0' })[0]).toMatch(/^SPOOL_WRITE_TIMEOUT_MS:/);
    expect(problems({ ...valid, SPEECH_RESOURCE_ID: 'speech-account' })[0]).toMatch(
      /^SPEECH_RESOURCE_ID: must be a Cognitive Services account id/,
    );
  });

  it('allows a self-signed certificate only for an emulator on loopback', () => {
    expect(
      problems({
        ...valid,
        COSMOS_ENDPOINT: 'https://cosmos-x.documents.azure.com',
        COSMOS_ALLOW_SELF_SIGNED_CERT: 'true',
      }),
    ).toEqual([expect.stringMatching(/^COSMOS_ALLOW_SELF_SIGNED_CERT: is only allowed/)]);
  });

  it('takes Redis Entra ID authentication (the identity object id) instead of a key, not both', async () => {
    const objectId = '6f1c2d3e-0000-4000-8000-0000000000a1';
    expect((await loadConfig({ ...valid, REDIS_ENTRA_OBJECT_ID: objectId })).redis).toEqual({
      url: valid.REDIS_URL,
      password: undefined,
      entraObjectId: objectId,
      cluster: false,
    });
    expect(problems({ ...valid, REDIS_ENTRA_OBJECT_ID: objectId, REDIS_PASSWORD: 'a-key' })).toEqual([
      expect.stringMatching(/^REDIS_ENTRA_OBJECT_ID: set REDIS_PASSWORD .* not both/),
    ]);
    expect(problems({ ...valid, REDIS_ENTRA_OBJECT_ID: 'app-identity' })).toEqual([
      expect.stringMatching(/^REDIS_ENTRA_OBJECT_ID: must be the object \(principal\) id/),
    ]);
  });

  it('uses a cluster-aware Redis client with REDIS_CLUSTER=true, not together with Entra ID sign-in', async () => {
    expect((await loadConfig(valid)).redis.cluster).toBe(false);
    expect((await loadConfig({ ...valid, REDIS_CLUSTER: 'TRUE' })).redis.cluster).toBe(true);
    expect(problems({ ...valid, REDIS_CLUSTER: 'yes' })).toEqual([expect.stringMatching(/^REDIS_CLUSTER: /)]);
    expect(
      problems({
        ...valid,
        REDIS_CLUSTER: 'true',
        REDIS_ENTRA_OBJECT_ID: '6f1c2d3e-0000-4000-8000-0000000000a1',
      }),
    ).toEqual([expect.stringMatching(/^REDIS_CLUSTER: Entra ID sign-in .* single endpoint/)]);
  });

  it('resolves keyvault: references through the secret reader', async () => {
    const read: string[] = [];
    const config = await loadConfig(
      { ...valid, KEY_VAULT_URI: 'https://kv-x.vault.azure.net', REDIS_PASSWORD: 'keyvault:redis-key' },
      (name) => {
        read.push(name);
        return Promise.resolve(`secret-of-${name}`);
      },
    );
    expect(config.redis.password).toBe('secret-of-redis-key');
    expect(read).toEqual(['redis-key']);
  });

  it('requires KEY_VAULT_URI for keyvault: references', () => {
    expect(problems({ ...valid, AZURE_OPENAI_API_KEY: 'keyvault:aoai-key' })).toEqual([
      'AZURE_OPENAI_API_KEY: refers to Key Vault but KEY_VAULT_URI is not set',
    ]);
  });

  it('names the setting and the secret when Key Vault cannot be read', async () => {
    await expect(
      loadConfig(
        { ...valid, KEY_VAULT_URI: 'https://kv-x.vault.azure.net', COSMOS_KEY: 'keyvault:cosmos-key' },
        () => Promise.reject(new Error('Forbidden')),
      ),
    ).rejects.toThrow(
      /COSMOS_KEY: cannot read secret 'cosmos-key' from https:\/\/kv-x\.vault\.azure\.net: Forbidden/,
    );
  });

  it('accepts a Key Vault reference for the gateway secret and checks the secret it resolves to', async () => {
    const env = {
      ...valid,
      KEY_VAULT_URI: 'https://kv-x.vault.azure.net',
      GATEWAY_SHARED_SECRET: 'keyvault:gw-key',
    };
    expect(
      (await loadConfig(env, () => Promise.resolve('a-long-enough-gateway-secret'))).proxy.gatewaySecret,
    ).toBe('a-long-enough-gateway-secret');
    await expect(loadConfig(env, () => Promise.resolve('short'))).rejects.toThrow(
      /GATEWAY_SHARED_SECRET: must be at least 16 characters/,
    );
  });

  it('refuses an App Service Key Vault reference the platform could not resolve', () => {
    expect(
      problems({
        ...valid,
        COSMOS_KEY: '@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/k/)',
      }),
    ).toEqual([expect.stringMatching(/^COSMOS_KEY: the App Service Key Vault reference was not resolved/)]);
  });

  it('local.settings.example.json lists every setting the app and the local runtime read', () => {
    const example = JSON.parse(
      readFileSync(join(__dirname, '..', '..', '..', 'local.settings.example.json'), 'utf8'),
    ) as {
      Values: Record<string, string>;
    };
    const listed = Object.keys(example.Values).filter(
      (name) => !['FUNCTIONS_WORKER_RUNTIME', 'AzureWebJobsStorage'].includes(name),
    );
    expect([...listed].sort()).toEqual([...APP_SETTING_NAMES, ...LOCAL_SETTING_NAMES].sort());
  });
});
