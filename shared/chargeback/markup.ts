import type { ReportPeriod } from '../contracts/report-period';
import type { ChargebackConfig } from './model';
import { money, sum } from './money';
import type { Draft } from './draft';
import { compareDrafts } from './draft';

/** Markup lines: markupPercent of each department's usage and shared cost. */
export function markupLines(input: {
  period: ReportPeriod;
  config: ChargebackConfig;
  departments: readonly string[];
  lines: readonly Draft[];
}): Draft[] {
  const { period, config, departments } = input;
  const markupLines: Draft[] = [];
  const markup = money(config.markupPercent).div(100);
  if (!markup.isZero()) {
    for (const department of departments) {
      const base = sum(input.lines.filter((l) => l.department === department).map((l) => l.exact));
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

  return markupLines.sort(compareDrafts);
}
