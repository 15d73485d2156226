import { parse } from 'csv-parse/sync';
import type { ChargebackConfig, UsageAggregate } from '../../../shared/chargeback/model';
import { money, sum } from '../../../shared/chargeback/money';
import { PriceTable } from '../../../shared/chargeback/prices';
import { renderCsv, REPORT_COLUMNS, reportRows } from '../../../shared/chargeback/render-csv';
import { renderHtml } from '../../../shared/chargeback/render-html';
import { renderJson } from '../../../shared/chargeback/render-json';
import { buildReport } from '../../../shared/chargeback/report';
import { largestRemainder } from '../../../shared/chargeback/rounding';
import { parsePeriod } from '../../../shared/contracts/report-period';
import { usageAggregate } from '../../fixtures/usage';

describe('largest remainder', () => {
  it('rounds thirds so they add up to the rounded total', () => {
    const third = money(10).div(3);
    expect(largestRemainder([third, third, third]).map((v) => v.toFixed(2))).toEqual([
      '3.34',
      '3.33',
      '3.33',
    ]);
  });

  it('keeps many tiny lines summing exactly to the total', () => {
    const values = Array.from({ length: 1000 }, (_, i) => money('0.004').plus(money(i).div(1e7)));
    const rounded = largestRemainder(values);
    expect(sum(rounded).toFixed(2)).toBe(sum(values).toDecimalPlaces(2).toFixed(2));
    expect(sum(rounded).toFixed(2)).toBe('4.05'); // 4 + 0.04995 → 4.05
  });

  it('gives the missing cents to the largest remainders, ties to the earlier line', () => {
    expect(
      largestRemainder([money('0.005'), money('0.005'), money('0.009')]).map((v) => v.toFixed(2)),
    ).toEqual(['0.01', '0.00', '0.01']);
  });
});

describe('price table', () => {
  const entry = (id: string, model: string, unitPrice: string, effectiveFrom: string) => ({
    entry: {
      id,
      model,
      meter: 'input-tokens' as const,
      unitPrice,
      currency: 'USD' as const,
      effectiveFrom,
      source: 'test',
    },
  });

  it('matches the longest model prefix and the latest effective price', () => {
    const table = new PriceTable([
      entry('a', 'gpt-4o', '2.50', '2025-01-01T00:00:00Z'),
      entry('b', 'gpt-4o-mini', '0.15', '2025-01-01T00:00:00Z'),
      entry('c', 'gpt-4o', '2.00', '2026-06-01T00:00:00Z'),
    ]);
    expect(table.priceFor('gpt-4o-mini-2024-07-18', 'input-tokens', new Date('2026-07-01'))?.id).toBe('b');
    expect(table.priceFor('gpt-4o-2024-11-20', 'input-tokens', new Date('2026-05-31T23:59:59Z'))?.id).toBe(
      'a',
    );
    expect(table.priceFor('gpt-4o-2024-11-20', 'input-tokens', new Date('2026-06-01T00:00:00Z'))?.id).toBe(
      'c',
    );
    expect(table.priceFor('llama', 'input-tokens', new Date())).toBeUndefined();
  });

  it('never lets a backdated override reprice a period before it was published', () => {
    const table = new PriceTable([
      entry('default', 'gpt-4o', '2.50', '2025-01-01T00:00:00Z'),
      {
        ...entry('override', 'gpt-4o', '1.00', '2026-01-01T00:00:00Z'),
        publishedAt: new Date('2026-03-15T12:00:00Z'),
      },
    ]);
    expect(table.priceFor('gpt-4o', 'input-tokens', new Date('2026-02-01'))?.id).toBe('default');
    expect(table.priceFor('gpt-4o', 'input-tokens', new Date('2026-03-15T12:00:00Z'))?.id).toBe('override');
  });

  it('refuses the same id twice', () => {
    expect(
      () =>
        new PriceTable([
          entry('a', 'x', '1', '2025-01-01T00:00:00Z'),
          entry('a', 'y', '1', '2025-01-01T00:00:00Z'),
        ]),
    ).toThrow("price 'a' is defined twice");
  });
});

function row(department: string, cost: string, fields: Partial<UsageAggregate> = {}): UsageAggregate {
  return usageAggregate({ department, cost, windowId: '20260402T1000Z', batch: 'b', ...fields });
}

const base: ChargebackConfig = {
  currency: 'USD',
  departments: [
    { id: 'a', name: 'Alpha' },
    { id: 'b', name: 'Beta' },
    { id: 'c', name: 'Gamma' },
  ],
  apps: [],
  sharedCosts: [],
  markupPercent: '0',
  budgets: [],
};
// April has 30 days: a day with usage accrues 1/30 of each monthly cost (600 → 20.00 a day).
const month = parsePeriod('2026-04');
const through = '2026-04-02T10:15:00.000Z';
const rows = [row('a', '30'), row('b', '10'), row('unassigned', '0', { quantity: '3000000' })];

function shared(config: Partial<ChargebackConfig>): Record<string, string> {
  const report = buildReport({
    period: month,
    aggregates: rows,
    config: { ...base, ...config },
    dataThrough: through,
  });
  expect(sum(report.lines.map((l) => money(l.cost))).toFixed(2)).toBe(report.total);
  return Object.fromEntries(report.departments.map((d) => [d.department, d.shared]));
}

describe('allocation', () => {
  it("accrues shared costs on each day with usage, split by that day's usage", () => {
    const report = buildReport({
      period: month,
      aggregates: [
        row('a', '1', { windowId: '20260401T1000Z' }),
        row('b', '5', { windowId: '20260403T1000Z' }),
      ],
      config: {
        ...base,
        sharedCosts: [{ id: 'x', name: 'X', monthlyAmount: '600', rule: { kind: 'proportional-cost' } }],
      },
      dataThrough: '2026-04-03T10:15:00.000Z',
    });
    // April 2 has no usage and accrues nothing; each other day's 20.00 goes to its only user.
    expect(Object.fromEntries(report.departments.map((d) => [d.department, d.shared]))).toEqual({
      a: '20.00',
      b: '20.00',
      c: '0.00',
      unassigned: '0.00',
    });
  });

  it('proportional to usage cost: 30 : 10 of 2 days × 300/30', () => {
    // One day: 20.00 split 3:1 → 15.00 and 5.00; unassigned has no cost, c has none.
    expect(
      shared({
        sharedCosts: [{ id: 'x', name: 'X', monthlyAmount: '600', rule: { kind: 'proportional-cost' } }],
      }),
    ).toEqual({
      a: '15.00',
      b: '5.00',
      c: '0.00',
      unassigned: '0.00',
    });
  });

  it('proportional to tokens: 1M : 1M : 3M (unassigned takes part and stays visible)', () => {
    // 20.00 × 1/5 = 4.00, 4.00, 12.00
    expect(
      shared({
        sharedCosts: [{ id: 'x', name: 'X', monthlyAmount: '600', rule: { kind: 'proportional-tokens' } }],
      }),
    ).toEqual({
      a: '4.00',
      b: '4.00',
      c: '0.00',
      unassigned: '12.00',
    });
  });

  it('even between configured departments, to the cent', () => {
    // 20.00 / 3 = 6.666… → 6.67, 6.67, 6.66 (largest remainder, earlier first)
    expect(
      shared({ sharedCosts: [{ id: 'x', name: 'X', monthlyAmount: '600', rule: { kind: 'even' } }] }),
    ).toEqual({
      a: '6.67',
      b: '6.67',
      c: '6.66',
      unassigned: '0.00',
    });
  });

  it('fixed percentages (the configuration check makes them add up to 100)', () => {
    const fixed = (percentages: Record<string, string>): ChargebackConfig['sharedCosts'] => [
      { id: 'x', name: 'X', monthlyAmount: '600', rule: { kind: 'fixed', percentages } },
    ];
    expect(shared({ sharedCosts: fixed({ a: '50', b: '25.5', c: '24.5' }) })).toEqual({
      a: '10.00',
      b: '5.10',
      c: '4.90',
      unassigned: '0.00',
    });
  });

  it('markup on usage and shared cost, and apps mapped to another department', () => {
    const report = buildReport({
      period: month,
      aggregates: rows,
      config: { ...base, markupPercent: '10', apps: [{ appId: 'b-app', department: 'a' }] },
      dataThrough: through,
    });
    const a = report.departments.find((d) => d.department === 'a');
    expect(a).toMatchObject({ usage: '40.00', markup: '4.00', total: '44.00' });
    expect(report.total).toBe('44.00');
  });

  it('is deterministic when two prices of the same amount apply on one day (lines ordered by price id too)', () => {
    const twoPrices = [
      row('a', '1.005', { id: 'p1', priceId: 'list-2025', unitPrice: '2.5' }),
      row('a', '2.005', { id: 'p2', priceId: 'override-2026', unitPrice: '2.5', windowId: '20260402T1100Z' }),
      row('a', '3.005', { id: 'p3', priceId: 'list-2025', unitPrice: '2.5', appId: 'other' }),
    ];
    const render = (rows: UsageAggregate[]): string =>
      renderJson(buildReport({ period: month, aggregates: rows, config: base, dataThrough: through }));
    expect(render([...twoPrices].reverse())).toBe(render(twoPrices));
    expect(render([twoPrices[1]!, twoPrices[0]!, twoPrices[2]!])).toBe(render(twoPrices));
  });

  it('is deterministic: shuffled input gives the same report and the same bytes', () => {
    const config: ChargebackConfig = {
      ...base,
      sharedCosts: [{ id: 'x', name: 'X', monthlyAmount: '1000', rule: { kind: 'proportional-cost' } }],
      markupPercent: '2.5',
      budgets: [],
    };
    const many = Array.from({ length: 40 }, (_, i) =>
      row(['a', 'b', 'c'][i % 3] as string, `${i}.333`, {
        id: `r${i}`,
        appId: `app${i % 5}`,
        day: `2026-04-0${1 + (i % 2)}`,
      }),
    );
    const one = buildReport({ period: month, aggregates: many, config, dataThrough: through });
    const two = buildReport({ period: month, aggregates: [...many].reverse(), config, dataThrough: through });
    expect(two).toEqual(one);
    expect(renderCsv(two)).toBe(renderCsv(one));
    expect(renderJson(two)).toBe(renderJson(one));
    expect(renderHtml(two)).toBe(renderHtml(one));
  });
});

describe('report files', () => {
  const hostile: ChargebackConfig = {
    ...base,
    departments: [{ id: 'a', name: '<script>alert("x")</script>, "R&D"' }],
  };
  const report = buildReport({
    period: month,
    aggregates: [row('a', '1'), row('=cmd', '1')],
    config: hostile,
    dataThrough: through,
  });

  it('CSV: FOCUS columns in order, RFC 4180 quoting, no formula injection', () => {
    const csv = renderCsv(report);
    const [header] = csv.replace(/^\uFEFF/, '').split('\r\n');
    expect(header).toBe(REPORT_COLUMNS.map((c) => c.name).join(','));
    expect(csv).toContain('"<script>alert(""x"")</script>, ""R&D"""');
    expect(csv).toContain(',"\'=cmd",');
  });

  it('CSV: a cell that starts like a formula is neutralised with a leading quote, as OWASP recommends', () => {
    const departments = ['=cmd', '+1', '-2-3', '@SUM(A1)', '\tx', '\rx'];
    const csv = renderCsv(
      buildReport({
        period: month,
        aggregates: departments.map((d) => row(d, '1')),
        config: base,
        dataThrough: through,
      }),
    );
    for (const department of departments) {
      expect(csv).toContain(`,"'${department}",`);
      expect(csv).not.toMatch(new RegExp(`,"?${department.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"?,`));
    }
  });

  it("names a shared cost's service by the cost's own name, parentheses and all", () => {
    const named = buildReport({
      period: month,
      aggregates: rows,
      config: {
        ...base,
        sharedCosts: [
          {
            id: 'team',
            name: 'Platform team (share of run costs)',
            monthlyAmount: '600',
            rule: { kind: 'even' },
          },
        ],
      },
      dataThrough: through,
    });
    const services = reportRows(named)
      .filter((r) => r.ChargeCategory === 'Purchase')
      .map((r) => r.ServiceName);
    expect(services.length).toBeGreaterThan(0);
    expect(new Set(services)).toEqual(new Set(['Platform team (share of run costs)']));
  });

  it('CSV: decimals keep at most 15 significant digits (what a spreadsheet holds); JSON keeps them all', () => {
    const thirds = buildReport({
      period: month,
      aggregates: [
        row('a', '1', {
          meter: 'audio-seconds',
          quantity: '1.234',
          pricingQuantity: '0.000342777777777777777777777777777777778',
          cost: '0.000342777777777777777777777777777777778',
        }),
      ],
      config: {
        ...base,
        sharedCosts: [{ id: 'x', name: 'X', monthlyAmount: '100', rule: { kind: 'even' } }],
      },
      dataThrough: through,
    });
    const significant = (value: string): number => value.replace(/^[-0.]+/, '').replace('.', '').length;
    const [header, ...records] = parse(renderCsv(thirds));
    const columns = ['x_ExactCost', 'PricingQuantity', 'ConsumedQuantity', 'ListUnitPrice', 'BilledCost'];
    const cells = records.flatMap((r) => columns.map((c) => r[header?.indexOf(c) ?? -1] ?? ''));
    expect(cells.some((v) => significant(v) === 15)).toBe(true); // long values are cut to 15, not fewer
    for (const value of cells) expect(significant(value)).toBeLessThanOrEqual(15);
    const json = JSON.parse(renderJson(thirds)) as { rows: Array<Record<string, string>> };
    expect(json.rows.some((r) => significant(r.x_ExactCost ?? '') > 15)).toBe(true);
  });

  it('HTML: escaped, self-contained, with the three charts', () => {
    const html = renderHtml(report);
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;');
    expect(html).not.toMatch(/src=|href=/);
    expect(html.match(/<svg/g)).toHaveLength(3);
  });
});
