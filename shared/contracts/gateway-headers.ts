/**
 * The headers API Management sets on every call it forwards to the functions. APIM is their only
 * writer: it deletes any a client sends and sets them from the subscription, the product and the
 * token's claims. The functions trust them only on requests that carry the gateway credential,
 * which apps never see. The APIM policies are to be checked against this module by tests.
 */
export const GATEWAY_HEADERS = {
  /** The gateway credential: the shared secret APIM holds in a Key Vault–backed named value. */
  gatewayKey: 'x-chargeback-gateway-key',
  subscription: 'x-chargeback-subscription',
  app: 'x-chargeback-app',
  department: 'x-chargeback-department',
  user: 'x-chargeback-user',
  /** The correlation id APIM generates: the idempotency key of the request's usage event. */
  requestId: 'x-chargeback-request-id',
  /** App roles from the caller's Entra token (the JWT's `roles` claim), comma-separated. */
  roles: 'x-chargeback-roles',
} as const;

export type GatewayHeader = (typeof GATEWAY_HEADERS)[keyof typeof GATEWAY_HEADERS];

/** What every gateway header's name starts with (policy checks refuse unknown ones). */
export const GATEWAY_HEADER_PREFIX = 'x-chargeback-';

/** Every header the gateway owns; a client-sent one is deleted at the gateway. */
export const GATEWAY_HEADER_NAMES: readonly GatewayHeader[] = Object.values(GATEWAY_HEADERS);

/** The Functions host's key header, for `authLevel: 'function'` routes. */
export const FUNCTION_KEY_HEADER = 'x-functions-key';
