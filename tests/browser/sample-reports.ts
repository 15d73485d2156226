import { DEFAULT_CHARGEBACK_CONFIG } from '../../shared/chargeback/default-config';
import type {
  ChargebackConfig,
  ChargebackReport,
  Meter,
  UsageAggregate,
} from '../../shared/chargeback/model';
import { PRICING_UNITS } from '../../shared/chargeback/model';
import { money } from '../../shared/chargeback/money';
import { DEFAULT_PRICES, PriceTable } from '../../shared/chargeback/prices';
import { buildReport } from '../../shared/chargeback/report';
import { parsePeriod } from '../../shared/contracts/report-period';
import { windowId } from '../../shared/contracts/window';
import { usageAggregate } from '../fixtures/usage';

/**
 * Reports of every kind the HTML page must render well, built the way the chargeback builds them
 * (buildReport over priced usage rows): a month with several days of usage, a day, a month with
 * usage on one day only, a month with shared costs and no usage, a day with nothing at all, and a
 * month whose names are hostile. Deterministic, so that the screenshots are too.
 */

export const CONFIG: ChargebackConfig = {
  currency: 'USD',
  // The example organisation's departments and app mapping; shared costs of every rule below.
  departments: DEFAULT_CHARGEBACK_CONFIG.departments,
  apps: DEFAULT_CHARGEBACK_CONFIG.apps,
  sharedCosts: [
    { id: 'apim', name: 'API Management', monthlyAmount: '700.00', rule: { kind: 'proportional-cost' } },
    {
      id: 'ptu',
      name: 'Provisioned throughput (gpt-4o)',
      monthlyAmount: '2000.00',
      rule: { kind: 'proportional-tokens' },
    },
    { id: 'redis', name: 'Azure Cache for Redis', monthlyAmount: '100.74', rule: { kind: 'even' } },
    {
      id: 'platform-team',
      name: 'Platform team',
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
  markupPercent: '5',
  budgets: [],
};

const prices = new PriceTable(DEFAULT_PRICES.map((entry) => ({ entry })));

interface Use {
  department: string;
  app: string;
  model: string;
  meter: Meter;
  quantity: number;
}

/** One priced usage row, as the chargeback commits it (cost frozen with the list price). */
function priced(use: Use, at: Date): UsageAggregate {
  const price = prices.priceFor(use.model, use.meter, at);
  if (!price) throw new Error(`no price for ${use.model} ${use.meter}`);
  const unit = PRICING_UNITS[use.meter];
  const quantity = money(use.quantity);
  const pricingQuantity = quantity.div(unit.size);
  return usageAggregate({
    id: `${use.department}-${windowId(at)}-${use.app}-${use.model}-${use.meter}`,
    department: use.department,
    windowId: windowId(at),
    appId: use.app,
    subscriptionId: `sub-${use.department}`,
    deployment: use.model.replace(/-\d{4}-\d{2}-\d{2}$/, ''),
    model: use.model,
    api: use.meter === 'audio-seconds' ? 'stt' : use.meter === 'tts-characters' ? 'tts' : 'chat',
    meter: use.meter,
    quantity: quantity.toFixed(),
    requests: Math.max(1, Math.round(use.quantity / 2_000)),
    priceId: price.id,
    unitPrice: price.unitPrice,
    pricingUnit: unit.unit,
    pricingQuantity: pricingQuantity.toFixed(),
    cost: pricingQuantity.times(price.unitPrice).toFixed(),
  });
}

/** A day's usage across the organisation; `scale` follows the week (quieter at weekends). */
function dayOfUsage(day: string, scale: number): UsageAggregate[] {
  const at = new Date(`${day}T10:00:00.000Z`);
  const n = (base: number): number => Math.round(base * scale);
  const uses: Use[] = [
    {
      department: 'research',
      app: 'research-copilot',
      model: 'gpt-4o-2024-11-20',
      meter: 'input-tokens',
      quantity: n(9_400_000),
    },
    {
      department: 'research',
      app: 'research-copilot',
      model: 'gpt-4o-2024-11-20',
      meter: 'cached-input-tokens',
      quantity: n(2_100_000),
    },
    {
      department: 'research',
      app: 'research-copilot',
      model: 'gpt-4o-2024-11-20',
      meter: 'output-tokens',
      quantity: n(1_350_000),
    },
    {
      department: 'marketing',
      app: 'campaign-writer',
      model: 'gpt-4o-mini-2024-07-18',
      meter: 'input-tokens',
      quantity: n(6_800_000),
    },
    {
      department: 'marketing',
      app: 'campaign-writer',
      model: 'gpt-4o-mini-2024-07-18',
      meter: 'output-tokens',
      quantity: n(2_900_000),
    },
    {
      department: 'customer-support',
      app: 'support-voicebot',
      model: 'azure-speech-stt-standard',
      meter: 'audio-seconds',
      quantity: n(41_000) + 0.4,
    },
    {
      department: 'customer-support',
      app: 'support-voicebot',
      model: 'azure-speech-tts-neural',
      meter: 'tts-characters',
      quantity: n(820_000),
    },
    {
      department: 'customer-support',
      app: 'support-voicebot',
      model: 'gpt-4o-mini-2024-07-18',
      meter: 'input-tokens',
      quantity: n(3_300_000),
    },
    {
      department: 'customer-support',
      app: 'support-voicebot',
      model: 'gpt-4o-mini-2024-07-18',
      meter: 'output-tokens',
      quantity: n(640_000),
    },
    {
      department: 'engineering',
      app: 'code-review',
      model: 'o4-mini',
      meter: 'input-tokens',
      quantity: n(1_200_000),
    },
    {
      department: 'engineering',
      app: 'code-review',
      model: 'o4-mini',
      meter: 'output-tokens',
      quantity: n(310_000),
    },
    {
      department: 'engineering',
      app: 'docs-search',
      model: 'text-embedding-3-small',
      meter: 'input-tokens',
      quantity: n(4_700),
    },
    {
      department: 'unassigned',
      app: 'unknown-app',
      model: 'gpt-4o-mini-2024-07-18',
      meter: 'input-tokens',
      quantity: n(12_000),
    },
  ];
  return uses.filter((u) => u.quantity > 0).map((u) => priced(u, at));
}

const WEEK_SHAPE = [0.35, 1, 1.08, 0.97, 1.12, 0.9, 0.3]; // Sunday first

function daysOfUsage(days: readonly string[]): UsageAggregate[] {
  return days.flatMap((day) => dayOfUsage(day, WEEK_SHAPE[new Date(`${day}T00:00:00Z`).getUTCDay()] ?? 1));
}

const DECEMBER_DAYS = Array.from({ length: 9 }, (_, i) => `2026-12-${String(i + 1).padStart(2, '0')}`);

export type SampleName = 'monthly' | 'daily' | 'one-day-month' | 'shared-only' | 'all-zero' | 'hostile';

export const HOSTILE_NAME = `<script>alert("x")</script> R&D 'Labs' </svg><b>`;
export const HOSTILE_DEPARTMENT = `"><img src=x onerror=alert(1)>`;

export function sampleReports(): Record<SampleName, ChargebackReport> {
  return {
    // December 2026 to date: nine days of usage, data through the 9th at 14:30.
    monthly: buildReport({
      period: parsePeriod('2026-12'),
      aggregates: daysOfUsage(DECEMBER_DAYS),
      config: CONFIG,
      dataThrough: '2026-12-09T14:30:00.000Z',
    }),
    // Wednesday 2 December 2026, the whole day.
    daily: buildReport({
      period: parsePeriod('2026-12-02'),
      aggregates: daysOfUsage(['2026-12-02']),
      config: CONFIG,
      dataThrough: '2026-12-03T00:00:00.000Z',
    }),
    // A month with usage on its first day only (data through the 1st at 23:45).
    'one-day-month': buildReport({
      period: parsePeriod('2026-11'),
      aggregates: daysOfUsage(['2026-11-01']),
      config: { ...CONFIG, markupPercent: '0' },
      dataThrough: '2026-11-01T23:45:00.000Z',
    }),
    // A complete month whose only usage is worth less than a cent: the charges are shared costs.
    'shared-only': buildReport({
      period: parsePeriod('2026-10'),
      aggregates: [
        priced(
          {
            department: 'engineering',
            app: 'docs-search',
            model: 'text-embedding-3-small',
            meter: 'input-tokens',
            quantity: 2_350,
          },
          new Date('2026-10-14T09:30:00.000Z'),
        ),
      ],
      config: CONFIG,
      dataThrough: '2026-11-01T00:00:00.000Z',
    }),
    // A day with nothing to charge: no usage and no shared costs.
    'all-zero': buildReport({
      period: parsePeriod('2026-10-14'),
      aggregates: [],
      config: { ...CONFIG, sharedCosts: [], markupPercent: '0' },
      dataThrough: '2026-10-14T08:15:00.000Z',
    }),
    // Names that are markup: a configured department, an attributed one, a shared cost and a model.
    hostile: buildReport({
      period: parsePeriod('2026-12'),
      aggregates: [
        ...daysOfUsage(['2026-12-01', '2026-12-02']).map((row) =>
          row.department === 'research' ? { ...row, model: `${row.model} <i>&amp;</i>` } : row,
        ),
        priced(
          {
            department: HOSTILE_DEPARTMENT,
            app: 'x',
            model: 'gpt-4o-mini-2024-07-18',
            meter: 'input-tokens',
            quantity: 1_000,
          },
          new Date('2026-12-02T10:00:00.000Z'),
        ),
      ],
      config: {
        ...CONFIG,
        departments: CONFIG.departments.map((d) =>
          d.id === 'research' ? { ...d, name: HOSTILE_NAME, costCenter: 'CC-<1100>&"' } : d,
        ),
        sharedCosts: CONFIG.sharedCosts.map((s) =>
          s.id === 'redis' ? { ...s, name: `Redis </th></table><h1>"&'` } : s,
        ),
      },
      dataThrough: '2026-12-02T18:00:00.000Z',
    }),
  };
}
