import type { ChargebackConfig } from './model';

/**
 * The chargeback configuration used when CHARGEBACK_CONFIG is not set: an example organisation
 * (the local demo's departments) with the platform's typical fixed monthly costs. In Azure, set
 * CHARGEBACK_CONFIG to your own (same shape, validated at start-up).
 */
export const DEFAULT_CHARGEBACK_CONFIG: ChargebackConfig = {
  currency: 'USD',
  departments: [
    { id: 'research', name: 'Research', costCenter: 'CC-1100' },
    { id: 'marketing', name: 'Marketing', costCenter: 'CC-2100' },
    { id: 'customer-support', name: 'Customer Support', costCenter: 'CC-3100' },
    { id: 'finance', name: 'Finance', costCenter: 'CC-4100' },
    { id: 'engineering', name: 'Engineering', costCenter: 'CC-5100' },
  ],
  apps: [{ appId: 'support-voicebot', department: 'customer-support' }],
  sharedCosts: [
    // API Management Standard v2, one unit.
    { id: 'apim', name: 'API Management', monthlyAmount: '700.00', rule: { kind: 'proportional-cost' } },
    // Azure Cache for Redis Standard C1.
    { id: 'redis', name: 'Azure Cache for Redis', monthlyAmount: '100.74', rule: { kind: 'even' } },
    {
      id: 'platform-team',
      name: 'Platform team (share of run costs)',
      monthlyAmount: '1500.00',
      rule: {
        kind: 'fixed',
        percentages: {
          research: '30',
          marketing: '15',
          'customer-support': '25',
          finance: '10',
          engineering: '20',
        },
      },
    },
  ],
  markupPercent: '0',
  budgets: [
    { id: 'research', department: 'research', monthlyAmount: '5000.00', warnAtPercent: [80, 95], hard: true },
    { id: 'marketing', department: 'marketing', monthlyAmount: '1500.00', warnAtPercent: [80], hard: false },
  ],
};
