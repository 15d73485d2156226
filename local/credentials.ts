import { FUNCTION_KEY_HEADER, GATEWAY_HEADERS } from '../shared/contracts/gateway-headers';
import { APP_ROLES } from '../shared/contracts/roles';
import type { LocalSettings } from './settings';

/**
 * The credentials of the local stack, and what a caller that goes straight to the functions (the
 * demo, tests) sends in place of API Management: the function key, the gateway secret and the
 * caller's attribution. Apps go through the local gateway (local/gateway/) instead, which adds them
 * from the policies as APIM does in Azure.
 */

export interface LocalCredentials {
  /** `x-functions-key` for the app's `function` level routes. */
  functionKey: string;
  /** `x-functions-key` for the admin API and the durable webhooks. */
  masterKey: string;
  /** The gateway secret the app expects (GATEWAY_SHARED_SECRET, else the local default). */
  gatewaySecret: string;
  /**
   * True when the gateway secret is the local stack's own (LOCAL_GATEWAY_KEY): safe to print.
   * False when GATEWAY_SHARED_SECRET or a Key Vault supplies it: it may be a real one.
   */
  gatewaySecretIsLocal: boolean;
}

/** The credentials of a stack started with these settings and this environment (as `npm start` does). */
export function localCredentials(
  settings: LocalSettings,
  env: NodeJS.ProcessEnv = process.env,
): LocalCredentials {
  const gatewaySecret = env.GATEWAY_SHARED_SECRET || settings.LOCAL_GATEWAY_KEY;
  return {
    functionKey: settings.LOCAL_FUNCTION_KEY,
    masterKey: settings.LOCAL_MASTER_KEY,
    gatewaySecret,
    gatewaySecretIsLocal: !env.KEY_VAULT_URI?.trim() && gatewaySecret === settings.LOCAL_GATEWAY_KEY,
  };
}

export interface LocalCaller {
  /** The APIM subscription (required: the proxy refuses a request without one). */
  subscription: string;
  /** Defaults to the subscription. */
  app?: string;
  /** Without one the usage is charged to `unassigned`. */
  department?: string;
}

/** The caller the banner and the README use in their examples. */
export const EXAMPLE_CALLER = { subscription: 'sub-research', department: 'research', app: 'chat-app' };

/** The headers APIM would add for this caller: function key, gateway secret, attribution. */
export function proxyHeaders(credentials: LocalCredentials, caller: LocalCaller): Record<string, string> {
  return {
    [FUNCTION_KEY_HEADER]: credentials.functionKey,
    [GATEWAY_HEADERS.gatewayKey]: credentials.gatewaySecret,
    [GATEWAY_HEADERS.subscription]: caller.subscription,
    ...(caller.app ? { [GATEWAY_HEADERS.app]: caller.app } : {}),
    ...(caller.department ? { [GATEWAY_HEADERS.department]: caller.department } : {}),
  };
}

/** The headers APIM would add for a finance user: function key, gateway secret, the finance role. */
export function financeHeaders(credentials: LocalCredentials): Record<string, string> {
  return {
    [FUNCTION_KEY_HEADER]: credentials.functionKey,
    [GATEWAY_HEADERS.gatewayKey]: credentials.gatewaySecret,
    [GATEWAY_HEADERS.roles]: APP_ROLES.finance,
  };
}
