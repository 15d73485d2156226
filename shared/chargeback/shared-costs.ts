import type Decimal from 'decimal.js';
import { daysInMonth } from '../contracts/report-period';
import type { AllocationRule, ChargebackConfig, Meter } from './model';
import { money, sum } from './money';
import type { Draft } from './draft';
import { compareDrafts, DAY_MS } from './draft';

const TOKEN_METERS: ReadonlySet<Meter> = new Set(['input-tokens', 'cached-input-tokens', 'output-tokens']);

/**
 * Shared lines. Each fixed monthly cost accrues monthlyAmount ÷ days-in-month on every day that
 * has metered usage, and each day's amount is split by the rule over that day's usage:
 * proportional rules by the day's usage cost or tokens (the `unassigned` department included, so
 * it stays visible); a day whose basis is zero falls back to an even split; even and fixed splits
 * go to the configured departments. A period's shared line per cost and department is the sum of
 * its days' shares, so a month is exactly the sum of its days.
 */
export function sharedCostLines(input: {
  config: ChargebackConfig;
  departments: readonly string[];
  usage: readonly Draft[];
}): Draft[] {
  const { config, departments, usage } = input;
  const days = [...new Set(usage.map((l) => l.chargePeriodStart.slice(0, 10)))].sort();
  if (days.length === 0) return [];
  const onDay = new Map(days.map((day) => [day, usage.filter((l) => l.chargePeriodStart.startsWith(day))]));
  const sharedLines: Draft[] = [];
  for (const shared of config.sharedCosts) {
    const byDepartment = new Map<string, Decimal>();
    for (const day of days) {
      const lines = onDay.get(day) ?? [];
      const amount = money(shared.monthlyAmount).div(daysInMonth(day));
      const weights = splitWeights(shared.rule, departments, config, (department, basis) => {
        const own = lines.filter((l) => l.department === department);
        return basis === 'cost'
          ? sum(own.map((l) => l.exact))
          : sum(
              own
                .filter((l) => l.meter !== undefined && TOKEN_METERS.has(l.meter))
                .map((l) => money(l.quantity ?? 0)),
            );
      });
      const totalWeight = sum(weights.values());
      for (const [department, weight] of weights) {
        const share = amount.times(weight).div(totalWeight);
        byDepartment.set(department, (byDepartment.get(department) ?? money(0)).plus(share));
      }
    }
    const lastDay = days[days.length - 1] as string;
    for (const [department, exact] of [...byDepartment].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (exact.isZero()) continue;
      sharedLines.push({
        category: 'shared',
        department,
        sharedCostId: shared.id,
        sharedCostName: shared.name,
        description: `${shared.name} (${describeRule(shared.rule)})`,
        exact,
        chargePeriodStart: `${days[0]}T00:00:00.000Z`,
        chargePeriodEnd: new Date(Date.parse(`${lastDay}T00:00:00.000Z`) + DAY_MS).toISOString(),
      });
    }
  }
  return sharedLines.sort(compareDrafts);
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
    // The configuration check (model.ts) guarantees known departments adding up to 100.
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

/** How a rule reads in a shared line's description. */
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
