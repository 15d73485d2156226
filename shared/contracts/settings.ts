/**
 * The app settings the Function App reads: their names, which are required, and which may hold a
 * secret (and so a Key Vault reference). The config schema (config/settings.ts) is typed against
 * this list; the deployment templates are to be checked against it by tests.
 */

export interface SettingSpec {
  /**
   * `true`: must be set. A string names a group of which at least one member must be set (for
   * example `storage`: STORAGE_BLOB_URL in Azure, STORAGE_CONNECTION_STRING for local stand-ins).
   */
  required: boolean | 'storage' | 'speech';
  /** May hold a secret: accepts `keyvault:<name>` and App Service Key Vault references. */
  secret: boolean;
}

export const SETTINGS = {
  KEY_VAULT_URI: { required: false, secret: false },
  REDIS_URL: { required: true, secret: false },
  REDIS_PASSWORD: { required: false, secret: true },
  REDIS_ENTRA_OBJECT_ID: { required: false, secret: false },
  REDIS_CLUSTER: { required: false, secret: false },
  STORAGE_CONNECTION_STRING: { required: 'storage', secret: true },
  STORAGE_BLOB_URL: { required: 'storage', secret: false },
  REPORTS_CONTAINER: { required: false, secret: false },
  COSMOS_ENDPOINT: { required: true, secret: false },
  COSMOS_KEY: { required: false, secret: true },
  COSMOS_DATABASE: { required: false, secret: false },
  COSMOS_ALLOW_SELF_SIGNED_CERT: { required: false, secret: false },
  AZURE_OPENAI_ENDPOINT: { required: true, secret: false },
  AZURE_OPENAI_API_KEY: { required: false, secret: true },
  AZURE_OPENAI_API_VERSION: { required: false, secret: false },
  SPEECH_REGION: { required: 'speech', secret: false },
  SPEECH_ENDPOINT: { required: 'speech', secret: false },
  SPEECH_KEY: { required: false, secret: true },
  SPEECH_RESOURCE_ID: { required: false, secret: false },
  GATEWAY_SHARED_SECRET: { required: true, secret: true },
  MAX_REQUEST_BYTES: { required: false, secret: false },
  UPSTREAM_TIMEOUT_MS: { required: false, secret: false },
  REDIS_WRITE_TIMEOUT_MS: { required: false, secret: false },
  REDIS_WAIT_REPLICAS: { required: false, secret: false },
  REDIS_WAIT_TIMEOUT_MS: { required: false, secret: false },
  SPOOL_WRITE_TIMEOUT_MS: { required: false, secret: false },
  MAX_AUDIO_BYTES: { required: false, secret: false },
  MAX_AUDIO_SECONDS: { required: false, secret: false },
  MAX_TTS_CHARACTERS: { required: false, secret: false },
  APPLICATIONINSIGHTS_CONNECTION_STRING: { required: false, secret: true },
  HEALTH_CHECK_TIMEOUT_MS: { required: false, secret: false },
  CHARGEBACK_CONFIG: { required: false, secret: false },
  CHARGEBACK_GRACE_SECONDS: { required: false, secret: false },
  CONFIG_REFRESH_SECONDS: { required: false, secret: false },
} as const satisfies Record<string, SettingSpec>;

export type SettingName = keyof typeof SETTINGS;

export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

export const SECRET_SETTING_NAMES = SETTING_NAMES.filter((name) => SETTINGS[name].secret);

/** Settings that must always be set. */
export const REQUIRED_SETTING_NAMES = SETTING_NAMES.filter((name) => SETTINGS[name].required === true);

/** Groups of settings of which at least one must be set. */
export const REQUIRED_SETTING_GROUPS: Record<'storage' | 'speech', SettingName[]> = {
  storage: SETTING_NAMES.filter((name) => SETTINGS[name].required === 'storage'),
  speech: SETTING_NAMES.filter((name) => SETTINGS[name].required === 'speech'),
};
