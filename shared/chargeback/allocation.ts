import type Decimal from 'decimal.js';
import type {
  AllocationRule,
  ChargebackConfig,
  ChargebackReport,
  DepartmentTotal,
  Meter,
  ReportLine,
  ReportPeriod,
  UsageAggregate,
} from './model';
import { CURRENCY, PRICING_UNITS } from './model';
import { largestRemainder, money, sum } from './money';
import { UNASSIGNED_DEPARTMENT } from '../usage';

const DAY_MS = 86_400_000;
const TOKEN_METERS: ReadonlySet<Meter> = new Set(['input-tokens', 'cached-input-tokens', 'output-tokens']);

interface Draft extends Omit<ReportLine, 'cost' | 'exactCost'> {
  exact: Decimal;
}

/**
 * A period's chargeback, from the committed usage rows and the configuration: a pure,
 * deterministic function (the same rows in any order give the same report).
 *
 * - Usage lines: per day × department × subscription × app × deployment × model × meter × price,
 *   with the cost frozen in the rows (priced when aggregated).
 * - Shared lines: each fixed monthly cost accrues monthlyAmount ÷ days-in-month per day, for
 *   every day of the period up to the end of the data (`dataThrough`), and is split by its rule.
 *   Proportional rules use the period's usage (the `unassigned` department included, so it stays
 *   visible); a zero basis falls back to an even split; even and fixed splits go to the
 *   configured departments.
 * - Markup lines: markupPercent of each department's usage and shared cost.
 * - Every amount is exact until the end; then all lines are rounded to cents together by largest
 *   remainder, so they add up exactly to the rounded grand total, and every department total is
 *   the sum of its own rounded lines.
 */
export function buildReport(input: {
  period: ReportPeriod;
  aggregates: readonly UsageAggregate[];
  config: ChargebackConfig;
  dataThrough: string;
}): ChargebackReport {
  const { period, config } = input;
  const departmentOf = new Map(config.apps.map((a) => [a.appId, a.department]));
  const usage = new Map<string, Draft>();
  for (const row of input.aggregates) {
    if (row.windowStart < period.start || row.windowStart >= period.end) continue;
    const department = departmentOf.get(row.appId) ?? row.department;
    const key = [
      row.day,
      department,
      row.subscriptionId,
      row.appId,
      row.deployment,
      row.model,
      row.meter,
      row.priceId ?? '',
      row.unitPrice,
    ].join('\u0000');
    const existing = usage.get(key);
    if (existing) {
      existing.quantity = money(existing.quantity ?? 0)
        .plus(row.quantity)
        .toFixed();
      existing.pricingQuantity = money(existing.pricingQuantity ?? 0)
        .plus(row.pricingQuantity)
        .toFixed();
      existing.requests = (existing.requests ?? 0) + row.requests;
      existing.estimatedRequests = (existing.estimatedRequests ?? 0) + row.estimatedRequests;
      existing.exact = existing.exact.plus(row.cost);
      continue;
    }
    const dayStart = `${row.day}T00:00:00.000Z`;
    usage.set(key, {
      category: 'usage',
      department,
      appId: row.appId,
      subscriptionId: row.subscriptionId,
      deployment: row.deployment,
      model: row.model,
      meter: row.meter,
      quantity: row.quantity,
      consumedUnit: PRICING_UNITS[row.meter].consumedUnit,
      pricingQuantity: row.pricingQuantity,
      pricingUnit: row.pricingUnit,
      unitPrice: row.unitPrice,
      requests: row.requests,
      estimatedRequests: row.estimatedRequests,
      ...(row.priceId === null ? { unpriced: true } : {}),
      description: `${row.model} ${row.meter} (${row.deployment})`,
      exact: money(row.cost),
      chargePeriodStart: dayStart,
      chargePeriodEnd: new Date(Date.parse(dayStart) + DAY_MS).toISOString(),
    });
  }
  const usageLines = [...usage.values()].sort(compareDrafts);

  // Departments: every configured one, plus any other (unassigned, unknown) that has usage.
  const names = new Map(config.departments.map((d) => [d.id, d]));
  const departments = [
    ...new Set([...config.departments.map((d) => d.id), ...usageLines.map((l) => l.department)]),
  ];
  if (!departments.includes(UNASSIGNED_DEPARTMENT)) departments.push(UNASSIGNED_DEPARTMENT);
  const usageBy = (department: string, filter: (line: Draft) => boolean = () => true): Decimal[] =>
    usageLines.filter((l) => l.department === department && filter(l)).map((l) => l.exact);

  // Shared costs accrue per day of the period that the data has reached.
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
        description: `${shared.name} (${describeRule(shared.rule)})`,
        exact: amount.times(weight).div(totalWeight),
        chargePeriodStart: `${accrued[0]}T00:00:00.000Z`,
        chargePeriodEnd: new Date(Date.parse(`${lastDay}T00:00:00.000Z`) + DAY_MS).toISOString(),
      });
    }
  }

  const markupLines: Draft[] = [];
  const markup = money(config.markupPercent).div(100);
  if (!markup.isZero()) {
    for (const department of departments) {
      const base = sum([
        ...usageBy(department),
        ...sharedLines.filter((l) => l.department === department).map((l) => l.exact),
      ]);
      if (base.isZero()) continue;
      markupLines.push({
        category: 'markup',
        department,
        description: `Markup ${config.markupPercent}%`,
        exact: base.times(markup),
        chargePeriodStart: period.start,
        chargePeriodEnd: period.end,
      });
    }
  }

  const drafts = [...usageLines, ...sharedLines.sort(compareDrafts), ...markupLines.sort(compareDrafts)];
  const rounded = largestRemainder(drafts.map((d) => d.exact));
  const lines: ReportLine[] = drafts.map(({ exact, ...draft }, i) => ({
    ...draft,
    exactCost: exact.toFixed(),
    cost: (rounded[i] as Decimal).toFixed(2),
  }));

  const totals: DepartmentTotal[] = departments.sort().map((department) => {
    const of = (category: ReportLine['category']): Decimal =>
      sum(
        lines.filter((l) => l.department === department && l.category === category).map((l) => money(l.cost)),
      );
    const [u, s, m] = [of('usage'), of('shared'), of('markup')];
    const info = names.get(department);
    return {
      department,
      name: info?.name ?? (department === UNASSIGNED_DEPARTMENT ? 'Unassigned' : department),
      ...(info?.costCenter ? { costCenter: info.costCenter } : {}),
      usage: u.toFixed(2),
      shared: s.toFixed(2),
      markup: m.toFixed(2),
      total: u.plus(s).plus(m).toFixed(2),
    };
  });

  const byKey = (key: (l: ReportLine) => string | undefined): Array<[string, string]> => {
    const acc = new Map<string, Decimal>();
    for (const line of lines) {
      const k = key(line);
      if (k === undefined) continue;
      acc.set(k, (acc.get(k) ?? money(0)).plus(line.cost));
    }
    return [...acc.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => [k, v.toFixed(2)]);
  };

  return {
    period,
    currency: CURRENCY,
    dataThrough: input.dataThrough,
    lines,
    departments: totals,
    total: sum(lines.map((l) => money(l.cost))).toFixed(2),
    byModel: byKey((l) => (l.category === 'usage' ? l.model : undefined)).map(([model, cost]) => ({
      model,
      cost,
    })),
    // Usage per day of consumption (shared and markup lines span the period, not a day).
    byDay: byKey((l) => (l.category === 'usage' ? l.chargePeriodStart.slice(0, 10) : undefined)).map(
      ([day, cost]) => ({ day, cost }),
    ),
  };
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

function daysInMonth(day: string): number {
  const [y, m] = day.split('-').map(Number) as [number, number];
  return new Date(Date.UTC(y, m, 0)).getUTCDate();
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

function compareDrafts(a: Draft, b: Draft): number {
  const ka = [
    a.chargePeriodStart,
    a.department,
    a.sharedCostId ?? '',
    a.subscriptionId ?? '',
    a.appId ?? '',
    a.deployment ?? '',
    a.model ?? '',
    a.meter ?? '',
    a.unitPrice ?? '',
  ].join('\u0000');
  const kb = [
    b.chargePeriodStart,
    b.department,
    b.sharedCostId ?? '',
    b.subscriptionId ?? '',
    b.appId ?? '',
    b.deployment ?? '',
    b.model ?? '',
    b.meter ?? '',
    b.unitPrice ?? '',
  ].join('\u0000');
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
