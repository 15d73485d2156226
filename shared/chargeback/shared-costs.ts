import type { ReportPeriod } from '../contracts/report-period';
import type Decimal from 'decimal.js';
import { daysInMonth } from '../contracts/report-period';
import type { AllocationRule, ChargebackConfig, Meter } from './model';
import { money, sum } from './money';
import type { Draft } from './draft';
import { compareDrafts, DAY_MS } from './draft';

const TOKEN_METERS: ReadonlySet<Meter> = new Set(['input-tokens', 'cached-input-tokens', 'output-tokens']);

/**
 * Shared lines: each fixed monthly cost accrues monthlyAmount ÷ days-in-month per day, for every
 * day of the period up to the end of the data (`dataThrough`), and is split by its rule.
 * Proportional rules use the period's usage (the `unassigned` department included, so it stays
 * visible); a zero basis falls back to an even split; even and fixed splits go to the configured
 * departments.
 */
export function sharedCostLines(input: {
  period: ReportPeriod;
  dataThrough: string;
  config: ChargebackConfig;
  departments: readonly string[];
  usage: readonly Draft[];
}): Draft[] {
  const { period, config, departments } = input;
  const usageLines = input.usage;
  const usageBy = (department: string): Decimal[] =>
    usageLines.filter((l) => l.department === department).map((l) => l.exact);
  const accrued = accruedDays(period, input.dataThrough);
  const sharedLines: Draft[] = [];
  for (const shared of config.sharedCosts) {
    const amount = sum(accrued.map((day) => money(shared.monthlyAmount).div(daysInMonth(day))));
    if (amount.isZero()) continue;
    const weights = splitWeights(shared.rule, departments, config, (department, basis) =>
      basis === 'cost'
        ? sum(usageBy(department))
        : sum(
            usageLines
              .filter(
                (l) => l.department === department && l.meter !== undefined && TOKEN_METERS.has(l.meter),
              )
              .map((l) => money(l.quantity ?? 0)),
          ),
    );
    const totalWeight = sum(weights.values());
    const lastDay = accrued[accrued.length - 1] as string;
    for (const [department, weight] of weights) {
      if (weight.isZero()) continue;
      sharedLines.push({
        category: 'shared',
        department,
        sharedCostId: shared.id,
        sharedCostName: shared.name,
        description: `${shared.name} (${describeRule(shared.rule)})`,
        exact: amount.times(weight).div(totalWeight),
        chargePeriodStart: `${accrued[0]}T00:00:00.000Z`,
        chargePeriodEnd: new Date(Date.parse(`${lastDay}T00:00:00.000Z`) + DAY_MS).toISOString(),
      });
    }
  }

  return sharedLines.sort(compareDrafts);
}

/** Days of the period (YYYY-MM-DD) that have started before the end of the data. */
export function accruedDays(period: ReportPeriod, dataThrough: string): string[] {
  const days: string[] = [];
  const through = Date.parse(dataThrough);
  for (let t = Date.parse(period.start); t < Date.parse(period.end) && t < through; t += DAY_MS) {
    days.push(new Date(t).toISOString().slice(0, 10));
  }
  return days;
}

function splitWeights(
  rule: AllocationRule,
  departments: readonly string[],
  config: ChargebackConfig,
  basis: (department: string, kind: 'cost' | 'tokens') => Decimal,
): Map<string, Decimal> {
  const configured = config.departments.map((d) => d.id).sort();
  const even = new Map(configured.map((d) => [d, money(1)]));
  if (rule.kind === 'even') return even;
  if (rule.kind === 'fixed') {
    const total = sum(Object.values(rule.percentages).map((p) => money(p)));
    if (!total.equals(100)) {
      throw new Error(`Fixed allocation percentages add up to ${total.toFixed()}, not 100.`);
    }
    return new Map(
      Object.entries(rule.percentages)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([d, p]) => [d, money(p)]),
    );
  }
  const weights = new Map(
    [...departments].sort().map((d) => [d, basis(d, rule.kind === 'proportional-cost' ? 'cost' : 'tokens')]),
  );
  return sum(weights.values()).isZero() ? even : weights;
}

function describeRule(rule: AllocationRule): string {
  switch (rule.kind) {
    case 'proportional-cost':
      return 'allocated by usage cost';
    case 'proportional-tokens':
      return 'allocated by tokens';
    case 'even':
      return 'split evenly';
    case 'fixed':
      return 'fixed percentages';
  }
}
