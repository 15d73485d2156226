/**
 * The Entra ID app roles the code checks. APIM forwards the caller's `roles` claim in the
 * gateway's roles header; Bicep declares these roles on the app registration.
 */
export const APP_ROLES = {
  /** May list and download chargeback reports. */
  finance: 'Chargeback.Finance',
  /** May start a chargeback run now and read runs' status. */
  admin: 'Chargeback.Admin',
} as const;

export type AppRole = (typeof APP_ROLES)[keyof typeof APP_ROLES];

export const APP_ROLE_NAMES: readonly AppRole[] = Object.values(APP_ROLES);
