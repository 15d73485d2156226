/**
 * The API Management side of the contract: the APIs the gateway publishes (their paths, how a
 * caller presents its subscription key, which policy file is theirs), the named values the
 * policies reference and the custom metric they emit. The policy files in `apim-policies/`, the
 * local gateway that executes them and the Bicep templates all follow this module; tests check
 * the policies against it.
 */

/** Where the policy files live, relative to the repository root. */
export const APIM_POLICY_FOLDER = 'apim-policies';

/**
 * The all-APIs (global) policy: the scope every API's `<base />` resolves to. Its own `<base />`
 * elements have no effect: nothing encloses the global scope.
 */
export const GLOBAL_POLICY_FILE = 'global.xml';

export interface ApimApi {
  /** The API's id in API Management. */
  id: string;
  displayName: string;
  /** The API's URL suffix: callers reach it under `https://<apim>/<path>/…`. */
  path: string;
  /** Its policy file in APIM_POLICY_FOLDER (its `<base />` resolves to GLOBAL_POLICY_FILE). */
  policyFile: string;
  /**
   * The header (and query parameter) a caller presents its subscription key in, or null when the
   * API takes no subscription key (Entra ID tokens with app roles only).
   */
  subscriptionKey: { header: string; query: string } | null;
  /**
   * The path under the Function App's `/api` the gateway forwards to: the caller's path below the
   * API's own path is appended to it.
   */
  backendPath: string;
  /**
   * The API's operations: method and URL template below the API's path (APIM's `urlTemplate`;
   * `{name}` matches one path segment, `{*name}` the rest). A request matching none is a 404.
   */
  operations: ReadonlyArray<{ id: string; method: string; urlTemplate: string }>;
}

/**
 * The APIs. Azure OpenAI clients send their key in `api-key`; the Speech SDK and Speech REST
 * clients in `Ocp-Apim-Subscription-Key` (APIM's default name). The finance and admin APIs take
 * Entra ID tokens only: the caller's app roles decide what it may do.
 */
export const APIM_APIS = {
  openai: {
    id: 'azure-openai',
    displayName: 'Azure OpenAI (metered)',
    path: 'openai',
    policyFile: 'openai-api.xml',
    subscriptionKey: { header: 'api-key', query: 'api-key' },
    backendPath: 'openai',
    operations: [
      {
        id: 'chat-completions',
        method: 'POST',
        urlTemplate: '/deployments/{deployment-id}/chat/completions',
      },
      { id: 'embeddings', method: 'POST', urlTemplate: '/deployments/{deployment-id}/embeddings' },
      { id: 'responses', method: 'POST', urlTemplate: '/responses' },
      { id: 'v1-chat-completions', method: 'POST', urlTemplate: '/v1/chat/completions' },
      { id: 'v1-embeddings', method: 'POST', urlTemplate: '/v1/embeddings' },
      { id: 'v1-responses', method: 'POST', urlTemplate: '/v1/responses' },
    ],
  },
  speech: {
    id: 'azure-speech',
    displayName: 'Azure Speech (metered)',
    path: 'speech',
    policyFile: 'speech-api.xml',
    subscriptionKey: { header: 'Ocp-Apim-Subscription-Key', query: 'subscription-key' },
    backendPath: '',
    operations: [
      {
        id: 'recognize-short-audio',
        method: 'POST',
        urlTemplate: '/speech/recognition/conversation/cognitiveservices/v1',
      },
      { id: 'synthesize', method: 'POST', urlTemplate: '/cognitiveservices/v1' },
    ],
  },
  chargeback: {
    id: 'chargeback',
    displayName: 'Chargeback reports and administration',
    path: 'chargeback',
    policyFile: 'chargeback-api.xml',
    subscriptionKey: null,
    backendPath: '',
    operations: [
      { id: 'list-reports', method: 'GET', urlTemplate: '/reports' },
      { id: 'get-report', method: 'GET', urlTemplate: '/reports/{*path}' },
      { id: 'start-run', method: 'POST', urlTemplate: '/chargeback/runs' },
      { id: 'get-run', method: 'GET', urlTemplate: '/chargeback/runs/{id}' },
      { id: 'import-usage', method: 'POST', urlTemplate: '/usage/imports' },
      { id: 'admin-get', method: 'GET', urlTemplate: '/chargeback/admin/{*path}' },
      { id: 'admin-post', method: 'POST', urlTemplate: '/chargeback/admin/{*path}' },
      { id: 'admin-put', method: 'PUT', urlTemplate: '/chargeback/admin/{*path}' },
      { id: 'admin-delete', method: 'DELETE', urlTemplate: '/chargeback/admin/{*path}' },
    ],
  },
} as const satisfies Record<string, ApimApi>;

export type ApimApiName = keyof typeof APIM_APIS;

/**
 * The named values the policies reference as `{{name}}`. Secrets are Key Vault–backed named
 * values (the deployment creates the secret and grants APIM's identity read access); nothing in
 * a policy file is a secret or environment-specific.
 */
export const APIM_NAMED_VALUES = {
  /** The Function App's base URL, e.g. `https://func-chargeback.azurewebsites.net/api`. */
  functionsBaseUrl: { name: 'chargeback-functions-url', secret: false },
  /** A function-scoped key of the proxy functions (never the master key); Key Vault. */
  functionKey: { name: 'chargeback-function-key', secret: true },
  /** The gateway credential the functions check (GATEWAY_SHARED_SECRET); Key Vault. */
  gatewaySecret: { name: 'chargeback-gateway-secret', secret: true },
  /** The Entra ID tenant that issues callers' tokens. */
  tenantId: { name: 'entra-tenant-id', secret: false },
  /** The application ID URI (or client id) callers request tokens for. */
  audience: { name: 'chargeback-api-audience', secret: false },
  /**
   * The client application (its app id) allowed to call with Entra ID tokens: the `azp`/`appid`
   * claim APIM checks. Add an `<application-id>` per further client.
   */
  clientAppId: { name: 'entra-client-app-id', secret: false },
  /** Requests per subscription per minute, all APIs together. */
  requestsPerMinute: { name: 'requests-per-minute', secret: false },
  /** Azure OpenAI tokens per subscription per minute. */
  tokensPerMinute: { name: 'openai-tokens-per-minute', secret: false },
  /** Azure OpenAI tokens per subscription per month (the token quota). */
  tokensPerMonth: { name: 'openai-tokens-per-month', secret: false },
} as const;

export type ApimNamedValue = (typeof APIM_NAMED_VALUES)[keyof typeof APIM_NAMED_VALUES]['name'];

export const APIM_NAMED_VALUE_NAMES: readonly ApimNamedValue[] = Object.values(APIM_NAMED_VALUES).map(
  (v) => v.name,
);

/**
 * The custom metric the OpenAI API's `llm-emit-token-metric` emits (to Application Insights), and
 * its dimensions: at most five custom ones, as APIM allows.
 */
export const TOKEN_METRIC = {
  namespace: 'ai-chargeback',
  dimensions: ['Department', 'App', 'Subscription ID', 'Deployment'],
} as const;

/** The most custom dimensions an APIM metric policy may carry. */
export const MAX_METRIC_DIMENSIONS = 5;

/** The response header `llm-token-limit` reports the tokens left in the current minute in. */
export const REMAINING_TOKENS_HEADER = 'x-ratelimit-remaining-tokens';

/** The response header `rate-limit-by-key` reports the requests left in the current period in. */
export const REMAINING_REQUESTS_HEADER = 'x-ratelimit-remaining-requests';

/**
 * Client-sent headers the gateway deletes besides its own (GATEWAY_HEADER_NAMES): request ids a
 * caller could choose, which must never become the idempotency key of its usage.
 */
export const SPOOFABLE_REQUEST_ID_HEADERS = ['x-request-id', 'x-ms-client-request-id', 'request-id'] as const;
