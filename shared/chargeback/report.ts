import type Decimal from 'decimal.js';
import { UNASSIGNED_DEPARTMENT } from '../contracts/department';
import type { ReportPeriod } from '../contracts/report-period';
import { markupLines } from './markup';
import type { ChargebackConfig, ChargebackReport, DepartmentTotal, ReportLine, UsageRow } from './model';
import { CURRENCY } from './model';
import { money, sum } from './money';
import { roundLines } from './rounding';
import { sharedCostLines } from './shared-costs';
import { usageLines } from './usage-lines';

/**
 * A period's chargeback, from the committed usage rows and the configuration: a pure,
 * deterministic function (the same rows in any order give the same report). Usage lines
 * (usage-lines.ts), shared costs (shared-costs.ts) and markup (markup.ts) are exact; rounding
 * (rounding.ts) happens at the end, hierarchically: report total, then departments, then lines.
 */
export function buildReport(input: {
  period: ReportPeriod;
  /** The period's usage: day roll-ups (or window rows: the result is the same). */
  aggregates: readonly UsageRow[];
  config: ChargebackConfig;
  dataThrough: string;
}): ChargebackReport {
  const { period, config } = input;
  const usage = usageLines(input.aggregates, period, config);

  // Departments: every configured one, plus any other (unassigned, unknown) that has usage.
  const names = new Map(config.departments.map((d) => [d.id, d]));
  const departments = [
    ...new Set([...config.departments.map((d) => d.id), ...usage.map((l) => l.department)]),
  ];
  if (!departments.includes(UNASSIGNED_DEPARTMENT)) departments.push(UNASSIGNED_DEPARTMENT);

  const shared = sharedCostLines({ config, departments, usage });
  const markup = markupLines({ period, config, departments, lines: [...usage, ...shared] });
  const lines = roundLines([...usage, ...shared, ...markup]);

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
