/**
 * The contracts, for whatever checks the code against the outside: the APIM policies, the Bicep
 * templates and their tests import from here.
 */
export * from './api-errors';
export * from './budget';
export * from './department';
export * from './gateway-headers';
export * from './report-paths';
export * from './report-period';
export * from './roles';
export * from './settings';
export * from './storage';
export * from './usage-event';
export * from './window';
