import type { ReportPeriod } from '../contracts/report-period';
import type { ChargebackConfig, UsageRow } from './model';
import { usageRowKey } from './model';
import { PRICING_UNITS } from './model';
import { money } from './money';
import type { Draft } from './draft';
import { compareDrafts, DAY_MS } from './draft';

/**
 * Usage lines: per day × department × subscription × app × deployment × model × meter × price,
 * with the cost frozen in the rows (priced when aggregated). An app the configuration maps to a
 * department is charged to that department, whatever APIM named.
 */
export function usageLines(
  rows: readonly UsageRow[],
  period: ReportPeriod,
  config: ChargebackConfig,
): Draft[] {
  const departmentOf = new Map(config.apps.map((a) => [a.appId, a.department]));
  const usage = new Map<string, Draft>();
  const [first, end] = [period.start.slice(0, 10), period.end.slice(0, 10)];
  for (const row of rows) {
    if (row.day < first || row.day >= end) continue;
    const department = departmentOf.get(row.appId) ?? row.department;
    const key = usageRowKey(row, department);
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
      api: row.api,
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
      ...(row.priceId === null ? { unpriced: true } : { priceId: row.priceId }),
      description: `${row.model} ${row.meter} (${row.deployment})`,
      exact: money(row.cost),
      chargePeriodStart: dayStart,
      chargePeriodEnd: new Date(Date.parse(dayStart) + DAY_MS).toISOString(),
    });
  }
  return [...usage.values()].sort(compareDrafts);
}
