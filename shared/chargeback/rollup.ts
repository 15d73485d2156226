import { createHash } from 'node:crypto';
import { usagePartitionKey } from '../contracts/storage';
import type { DailyUsage, UsageAggregate } from './model';
import { usageRowKey } from './model';
import { money } from './money';

/**
 * A day's roll-up: its priced window rows summed per department × subscription × app × deployment
 * × model × API × meter × price. Pure and deterministic: the same rows in any order give the same
 * documents (ids are derived from the key), so a rerun overwrites them with the same content.
 */
export function rollUpDay(rows: readonly UsageAggregate[]): DailyUsage[] {
  const byKey = new Map<string, DailyUsage>();
  for (const row of rows) {
    if (row.pricePending) throw new Error(`row ${row.id} is not priced yet`);
    const key = usageRowKey(row);
    const existing = byKey.get(key);
    if (existing) {
      existing.quantity = money(existing.quantity).plus(row.quantity).toFixed();
      existing.pricingQuantity = money(existing.pricingQuantity).plus(row.pricingQuantity).toFixed();
      existing.cost = money(existing.cost).plus(row.cost).toFixed();
      existing.requests += row.requests;
      existing.estimatedRequests += row.estimatedRequests;
      continue;
    }
    byKey.set(key, {
      id: `daily|${row.day}|${createHash('sha256').update(key).digest('hex').slice(0, 40)}`,
      pk: usagePartitionKey(row.month, row.department),
      type: 'daily',
      month: row.month,
      day: row.day,
      department: row.department,
      subscriptionId: row.subscriptionId,
      appId: row.appId,
      deployment: row.deployment,
      model: row.model,
      api: row.api,
      meter: row.meter,
      quantity: row.quantity,
      requests: row.requests,
      estimatedRequests: row.estimatedRequests,
      priceId: row.priceId,
      unitPrice: row.unitPrice,
      pricingUnit: row.pricingUnit,
      pricingQuantity: row.pricingQuantity,
      cost: row.cost,
      currency: row.currency,
    });
  }
  return [...byKey.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** A version naming a set of inputs (batch ids, day versions): the same set, the same version. */
export function versionOf(parts: readonly string[]): string {
  return createHash('sha256')
    .update([...parts].sort().join('\n'))
    .digest('hex')
    .slice(0, 32);
}
