import { z } from 'zod';
import { departmentIdSchema } from '../contracts/department';
import type { ReportPeriod } from '../contracts/report-period';
import type { UsageApi } from '../contracts/usage-event';
import { money } from './money';

/**
 * The chargeback's contracts, in one place: meters, aggregated usage rows (Cosmos DB), prices,
 * the allocation configuration and the report lines. Money is always an exact decimal string
 * (decimal.js); rounding to cents happens only when report lines are produced.
 */

export const CURRENCY = 'USD';

/** What is billed. Reasoning tokens are part of output tokens and billed as output. */
export const METERS = [
  'input-tokens',
  'cached-input-tokens',
  'output-tokens',
  'audio-seconds',
  'tts-characters',
] as const;
export type Meter = (typeof METERS)[number];

/**
 * The meter a call is counted on: every request of a call counts on its API's primary meter (so
 * adding a department's primary-meter lines counts each request once); the other meters count the
 * requests that consumed them.
 */
export function primaryMeter(api: UsageApi): Meter {
  return api === 'stt' ? 'audio-seconds' : api === 'tts' ? 'tts-characters' : 'input-tokens';
}

/** The unit a price is quoted in, and how many consumed units make one. */
export const PRICING_UNITS = {
  'input-tokens': { unit: '1M Tokens', size: 1_000_000, consumedUnit: 'Tokens' },
  'cached-input-tokens': { unit: '1M Tokens', size: 1_000_000, consumedUnit: 'Tokens' },
  'output-tokens': { unit: '1M Tokens', size: 1_000_000, consumedUnit: 'Tokens' },
  'audio-seconds': { unit: 'Hours', size: 3_600, consumedUnit: 'Seconds' },
  'tts-characters': { unit: '1M Characters', size: 1_000_000, consumedUnit: 'Characters' },
} as const satisfies Record<Meter, { unit: string; size: number; consumedUnit: string }>;

const nonNegativeDecimal = z.string().regex(/^\d+(\.\d+)?$/, 'must be a non-negative decimal, e.g. "2.50"');
const positiveDecimal = nonNegativeDecimal.refine((value) => !money(value).isZero(), 'must be more than 0');

/**
 * One price: per model (matched as a prefix of the model the upstream reports, longest first:
 * `gpt-4o-mini` prices `gpt-4o-mini-2024-07-18`) and meter, effective from an instant. A price
 * never changes in place: a new price is a new entry with a later `effectiveFrom`.
 */
export const priceEntrySchema = z.object({
  id: z.string().min(1),
  model: z.string().min(1),
  meter: z.enum(METERS),
  /** Price of one pricing unit (see PRICING_UNITS), in CURRENCY. */
  unitPrice: nonNegativeDecimal,
  currency: z.literal(CURRENCY),
  effectiveFrom: z.iso.datetime(),
  /** Where the figure comes from (a price page and the date it was read, or the admin who set it). */
  source: z.string().min(1),
});
export type PriceEntry = z.infer<typeof priceEntrySchema>;

/**
 * One aggregated usage row in Cosmos DB: a window's batch × department × app × deployment ×
 * model × meter. Ids are deterministic (see aggregateId), so reprocessing a batch overwrites
 * the same documents with the same content. Cost is frozen when the row is written, with the
 * price effective at the window's start: a later price change never rewrites it.
 */
export interface UsageAggregate {
  id: string;
  /** Partition key: contracts/storage.ts usagePartitionKey. */
  pk: string;
  type: 'usage';
  /** YYYY-MM and YYYY-MM-DD of the window's start (UTC). */
  month: string;
  day: string;
  windowId: string;
  windowStart: string;
  windowEnd: string;
  /** The claimed batch of the window's raw events this row was computed from. */
  batch: string;
  department: string;
  subscriptionId: string;
  appId: string;
  deployment: string;
  model: string;
  api: UsageApi;
  meter: Meter;
  /** Consumed quantity in the meter's consumed unit (exact decimal: audio seconds are fractional). */
  quantity: string;
  requests: number;
  /** Requests whose figures were estimated (interrupted streams). */
  estimatedRequests: number;
  /** The price entry applied, or null when no price matched (cost is then 0 and the row is flagged). */
  priceId: string | null;
  unitPrice: string;
  pricingUnit: string;
  /** quantity / unit size, exact. */
  pricingQuantity: string;
  /** pricingQuantity × unitPrice, exact and unrounded. */
  cost: string;
  currency: typeof CURRENCY;
  /**
   * Set while the row is unpriced: it was committed while the price table was unusable (an invalid
   * override). It is priced, and this flag removed, before any report uses it.
   */
  pricePending?: true;
}

/** What a report line is built from: a window's row, or a day's roll-up of them. */
export type UsageRow = Pick<
  UsageAggregate,
  | 'month'
  | 'day'
  | 'department'
  | 'subscriptionId'
  | 'appId'
  | 'deployment'
  | 'model'
  | 'api'
  | 'meter'
  | 'quantity'
  | 'requests'
  | 'estimatedRequests'
  | 'priceId'
  | 'unitPrice'
  | 'pricingUnit'
  | 'pricingQuantity'
  | 'cost'
  | 'currency'
>;

/**
 * The key a day's usage is summed by: day × department × subscription × app × deployment × model
 * × API × meter × price. `department` is the one charged (a report may map the app elsewhere).
 */
export function usageRowKey(row: UsageRow, department: string = row.department): string {
  return [
    row.day,
    department,
    row.subscriptionId,
    row.appId,
    row.deployment,
    row.model,
    row.api,
    row.meter,
    row.priceId ?? '',
    row.unitPrice,
  ].join('\u0000');
}

/**
 * A day's usage roll-up in Cosmos DB: the day's priced window rows summed per department ×
 * subscription × app × deployment × model × API × meter × price. Reports read these, so a month's
 * report reads days × keys documents, never every window's rows.
 */
export interface DailyUsage extends UsageRow {
  id: string;
  /** Partition key: contracts/storage.ts usagePartitionKey (the same partition as the day's window rows). */
  pk: string;
  type: 'daily';
}

/** How a shared cost is split between departments. */
export const allocationRuleSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('proportional-cost') }),
  z.object({ kind: z.literal('proportional-tokens') }),
  z.object({ kind: z.literal('even') }),
  z.object({
    kind: z.literal('fixed'),
    /** Department → percentage; they must add up to exactly 100. */
    percentages: z.record(departmentIdSchema, nonNegativeDecimal),
  }),
]);
export type AllocationRule = z.infer<typeof allocationRuleSchema>;

const chargebackConfigShape = z.object({
  currency: z.literal(CURRENCY).default(CURRENCY),
  departments: z
    .array(
      z.object({
        id: departmentIdSchema,
        name: z.string().min(1),
        costCenter: z.string().min(1).optional(),
      }),
    )
    .min(1),
  /** App → department: overrides the department APIM named (e.g. for shared subscriptions). */
  apps: z.array(z.object({ appId: z.string().min(1), department: departmentIdSchema })).default([]),
  /** Fixed monthly platform costs (APIM, Redis, PTUs...), accrued per day of the month. */
  sharedCosts: z
    .array(
      z.object({
        id: z.string().regex(/^[a-z0-9-]+$/),
        name: z.string().min(1),
        monthlyAmount: nonNegativeDecimal,
        rule: allocationRuleSchema,
      }),
    )
    .default([]),
  /** Optional markup on each department's direct and shared cost, in percent. */
  markupPercent: nonNegativeDecimal.default('0'),
  /**
   * Monthly budgets per department, or per app within a department. Spend is month to date
   * (UTC calendar month) of the department's (or app's) usage cost at request time. Each soft
   * threshold crossed warns (a response header and a metric); `hard` refuses requests once the
   * budget is spent, before the provider is called.
   */
  budgets: z
    .array(
      z.object({
        id: z.string().regex(/^[a-z0-9-]+$/, 'lower-case letters, digits and - only'),
        department: departmentIdSchema,
        /** Present: the budget of one app of the department; absent: the whole department's. */
        appId: z.string().min(1).max(128).optional(),
        monthlyAmount: positiveDecimal,
        /** Percentages of the amount at which to warn, ascending. */
        warnAtPercent: z.array(z.number().int().min(1).max(100)).max(5).default([80]),
        /** True: refuse requests once the budget is spent; false: warn only. */
        hard: z.boolean().default(true),
      }),
    )
    .default([]),
});

/**
 * The allocation configuration, checked in full: the shape, then every cross-reference, each
 * problem naming its entry. Department ids are unique; apps and fixed percentages name configured
 * departments; fixed percentages add up to exactly 100; shared cost ids and app ids are unique.
 */
export const chargebackConfigSchema = chargebackConfigShape.superRefine((config, ctx) => {
  const problem = (path: Array<string | number>, message: string): void => {
    ctx.addIssue({ code: 'custom', path, message });
  };
  const known = new Set<string>();
  config.departments.forEach((d, i) => {
    if (known.has(d.id)) problem(['departments', i, 'id'], `department '${d.id}' is listed twice`);
    known.add(d.id);
  });
  const apps = new Set<string>();
  config.apps.forEach((a, i) => {
    if (apps.has(a.appId)) problem(['apps', i, 'appId'], `app '${a.appId}' is mapped twice`);
    apps.add(a.appId);
    if (!known.has(a.department)) {
      problem(
        ['apps', i, 'department'],
        `app '${a.appId}' names department '${a.department}', which is not configured`,
      );
    }
  });
  const budgetIds = new Set<string>();
  const budgetScopes = new Set<string>();
  config.budgets.forEach((b, i) => {
    if (budgetIds.has(b.id)) problem(['budgets', i, 'id'], `budget '${b.id}' is listed twice`);
    budgetIds.add(b.id);
    const scope = b.appId === undefined ? b.department : `${b.department}/${b.appId}`;
    if (budgetScopes.has(scope)) problem(['budgets', i], `budget '${b.id}': '${scope}' already has a budget`);
    budgetScopes.add(scope);
    if (!known.has(b.department)) {
      problem(
        ['budgets', i, 'department'],
        `budget '${b.id}' names department '${b.department}', which is not configured`,
      );
    }
    const charged = config.apps.find((a) => a.appId === b.appId)?.department;
    if (b.appId !== undefined && charged !== undefined && charged !== b.department) {
      problem(
        ['budgets', i, 'appId'],
        `budget '${b.id}' is for app '${b.appId}' in department '${b.department}', but the app is charged to department '${charged}'`,
      );
    }
    if (b.warnAtPercent.some((p, j) => j > 0 && p <= (b.warnAtPercent[j - 1] ?? 0))) {
      problem(['budgets', i, 'warnAtPercent'], `budget '${b.id}': warning thresholds must ascend`);
    }
  });
  const sharedIds = new Set<string>();
  config.sharedCosts.forEach((c, i) => {
    if (sharedIds.has(c.id)) problem(['sharedCosts', i, 'id'], `shared cost '${c.id}' is listed twice`);
    sharedIds.add(c.id);
    if (c.rule.kind !== 'fixed') return;
    let total = money(0);
    for (const [department, percent] of Object.entries(c.rule.percentages)) {
      total = total.plus(percent);
      if (!known.has(department)) {
        problem(
          ['sharedCosts', i, 'rule', 'percentages', department],
          `shared cost '${c.id}' gives a percentage to department '${department}', which is not configured`,
        );
      }
    }
    if (!total.equals(100)) {
      problem(
        ['sharedCosts', i, 'rule', 'percentages'],
        `shared cost '${c.id}': fixed percentages add up to ${total.toFixed()}, not 100`,
      );
    }
  });
});
export type ChargebackConfig = z.infer<typeof chargebackConfigSchema>;

/**
 * CHARGEBACK_CONFIG as read at start: a checked configuration, or the problems that keep it from
 * being used. A bad configuration never stops the app: metering, aggregation, commit and release
 * go on without it; only report writing waits until it is fixed.
 */
export type ChargebackConfigState =
  { ok: true; config: ChargebackConfig } | { ok: false; problems: string[] };

/** Checks a configuration (parsed JSON) in full; every problem names its entry. */
export function checkChargebackConfig(value: unknown): ChargebackConfigState {
  const parsed = chargebackConfigSchema.safeParse(value);
  if (parsed.success) return { ok: true, config: parsed.data };
  return {
    ok: false,
    problems: parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`),
  };
}

export type ReportLineCategory = 'usage' | 'shared' | 'markup';

/** One line of a report: what a CSV row, a JSON row and the summary are made of. */
export interface ReportLine {
  category: ReportLineCategory;
  department: string;
  /** Usage lines only: */
  api?: UsageApi;
  appId?: string;
  subscriptionId?: string;
  deployment?: string;
  model?: string;
  meter?: Meter;
  quantity?: string;
  consumedUnit?: string;
  pricingQuantity?: string;
  pricingUnit?: string;
  unitPrice?: string;
  /** The price entry applied (usage lines that matched a price). */
  priceId?: string;
  requests?: number;
  estimatedRequests?: number;
  unpriced?: boolean;
  /** Shared lines: the shared cost and rule; markup lines: the percentage. */
  sharedCostId?: string;
  /** Shared lines: the shared cost's name, as configured. */
  sharedCostName?: string;
  description: string;
  /** Exact amount before rounding. */
  exactCost: string;
  /** Rounded to cents; the cents of all lines add up exactly to the report total (largest remainder). */
  cost: string;
  /** Start of the day the line's usage was consumed (day-level granularity in month reports). */
  chargePeriodStart: string;
  chargePeriodEnd: string;
}

export interface DepartmentTotal {
  department: string;
  name: string;
  costCenter?: string;
  usage: string;
  shared: string;
  markup: string;
  total: string;
}

/** Everything a report is rendered from; a pure function of Cosmos contents and config. */
export interface ChargebackReport {
  period: ReportPeriod;
  currency: typeof CURRENCY;
  /** End of the last window included (data-derived, so reruns render identical bytes). */
  dataThrough: string;
  lines: ReportLine[];
  departments: DepartmentTotal[];
  total: string;
  /** Cost per model and per day, for the summary's charts. */
  byModel: Array<{ model: string; cost: string }>;
  byDay: Array<{ day: string; cost: string }>;
}
