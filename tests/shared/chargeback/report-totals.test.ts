import type Decimal from 'decimal.js';
import type { ChargebackConfig, ChargebackReport, UsageAggregate } from '../../../shared/chargeback/model';
import { money, sum } from '../../../shared/chargeback/money';
import { buildReport } from '../../../shared/chargeback/report';
import { parsePeriod } from '../../../shared/contracts/report-period';
import { windowId } from '../../../shared/contracts/window';
import { usageAggregate } from '../../fixtures/usage';

/**
 * The report's totals, recomputed independently from the report's own lines: every department's
 * exact amount is the sum of its lines' exact amounts (x_ExactCost), nothing else.
 */

/** A small deterministic generator (no Math.random: a failure must be reproducible). */
function generator(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

const DEPARTMENTS = Array.from({ length: 36 }, (_, i) => `dept-${String(i).padStart(2, '0')}`);

export const manyDepartments: ChargebackConfig = {
  currency: 'USD',
  departments: DEPARTMENTS.map((id) => ({ id, name: id.toUpperCase() })),
  apps: [],
  sharedCosts: [
    { id: 'apim', name: 'API Management', monthlyAmount: '700.00', rule: { kind: 'proportional-cost' } },
    { id: 'redis', name: 'Redis', monthlyAmount: '100.74', rule: { kind: 'even' } },
    { id: 'tokens', name: 'PTU', monthlyAmount: '333.33', rule: { kind: 'proportional-tokens' } },
  ],
  markupPercent: '2.5',
  budgets: [],
};

/** Usage over `days` days of December 2026: a few windows a day, many departments and meters. */
export function usageRows(days: number, seed = 7): UsageAggregate[] {
  const next = generator(seed);
  const rows: UsageAggregate[] = [];
  for (let day = 1; day <= days; day++) {
    for (const hour of [3, 11, 17]) {
      const id = windowId(new Date(Date.UTC(2026, 11, day, hour, 15)));
      for (const department of DEPARTMENTS) {
        for (const meter of ['input-tokens', 'output-tokens'] as const) {
          if (next() < 0.3) continue;
          const tokens = Math.floor(next() * 40_000);
          const unitPrice = meter === 'input-tokens' ? '2.50' : '10.00';
          rows.push(
            usageAggregate({
              id: `${id}-${department}-${meter}`,
              windowId: id,
              department,
              meter,
              quantity: String(tokens),
              pricingQuantity: money(tokens).div(1_000_000).toFixed(),
              unitPrice,
              cost: money(tokens).div(1_000_000).times(unitPrice).toFixed(),
              requests: 1 + Math.floor(next() * 9),
            }),
          );
        }
      }
    }
  }
  return rows;
}

function exactByDepartment(report: ChargebackReport): Map<string, Decimal> {
  const exact = new Map<string, Decimal>();
  for (const line of report.lines) {
    exact.set(line.department, (exact.get(line.department) ?? money(0)).plus(line.exactCost));
  }
  return exact;
}

export function expectTotalsHold(report: ChargebackReport): void {
  const exact = exactByDepartment(report);
  const far = report.departments.filter((d) => {
    const gap = money(d.total)
      .minus(exact.get(d.department) ?? 0)
      .abs();
    return gap.greaterThan('0.01');
  });
  expect(
    far.map((d) => `${d.department}: billed ${d.total}, exact ${exact.get(d.department)?.toFixed()}`),
  ).toEqual([]);
  for (const d of report.departments) {
    const own = report.lines.filter((l) => l.department === d.department);
    expect(sum(own.map((l) => money(l.cost))).toFixed(2)).toBe(d.total);
    expect(money(d.usage).plus(d.shared).plus(d.markup).toFixed(2)).toBe(d.total);
  }
  expect(sum(report.departments.map((d) => money(d.total))).toFixed(2)).toBe(report.total);
  expect(sum(report.lines.map((l) => money(l.cost))).toFixed(2)).toBe(report.total);
}

describe('report totals, recomputed from the report’s own lines', () => {
  it('bills every department within one cent of its exact amount; lines and departments add up exactly', () => {
    const report = buildReport({
      period: parsePeriod('2026-12'),
      aggregates: usageRows(3),
      config: manyDepartments,
      dataThrough: '2026-12-03T17:30:00.000Z',
    });
    expect(report.departments.length).toBeGreaterThanOrEqual(36);
    expectTotalsHold(report);
  });

  it('reconciles days and the month: per department, the month is the sum of its days’ exact amounts', () => {
    const rows = usageRows(5, 11);
    const report = (period: string) =>
      buildReport({
        period: parsePeriod(period),
        aggregates: rows,
        config: manyDepartments,
        dataThrough: '2026-12-05T17:30:00.000Z',
      });
    const month = report('2026-12');
    const days = ['2026-12-01', '2026-12-02', '2026-12-03', '2026-12-04', '2026-12-05'].map(report);
    for (const r of [month, ...days]) expectTotalsHold(r);

    const monthExact = exactByDepartment(month);
    const daysExact = new Map<string, Decimal>();
    for (const day of days) {
      for (const [department, exact] of exactByDepartment(day)) {
        daysExact.set(department, (daysExact.get(department) ?? money(0)).plus(exact));
      }
    }
    expect([...daysExact.keys()].sort()).toEqual([...monthExact.keys()].sort());
    // Exact amounts carry 40 significant digits (a day's share of a monthly cost is a repeating
    // decimal): the month and the sum of its days agree far below a millionth of a cent.
    for (const [department, exact] of monthExact) {
      const gap = (daysExact.get(department) ?? money(0)).minus(exact).abs();
      expect(`${department} ${gap.lessThan('1e-30')}`).toBe(`${department} true`);
    }
    // Each rounds once: the month's total is within half a cent of the days' exact sum.
    const exactSum = sum([...daysExact.values()]);
    expect(money(month.total).minus(exactSum).abs().lessThanOrEqualTo('0.005')).toBe(true);
    // Every day that accrues shared cost is a day with usage (so it has its own report).
    const usageDays = new Set(rows.map((r) => r.day));
    for (const line of month.lines.filter((l) => l.category === 'shared')) {
      expect(usageDays.has(line.chargePeriodStart.slice(0, 10))).toBe(true);
    }
  });
});
