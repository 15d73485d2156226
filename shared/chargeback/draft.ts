import type Decimal from 'decimal.js';
import type { ReportLine } from './model';

/** A report line before rounding: its exact amount, not yet in cents. */
export interface Draft extends Omit<ReportLine, 'cost' | 'exactCost'> {
  exact: Decimal;
}

export { DAY_MS } from '../contracts/report-period';

/** The order lines appear in (deterministic whatever order the rows came in). */
export function compareDrafts(a: Draft, b: Draft): number {
  const ka = [
    a.chargePeriodStart,
    a.department,
    a.sharedCostId ?? '',
    a.subscriptionId ?? '',
    a.appId ?? '',
    a.deployment ?? '',
    a.model ?? '',
    a.api ?? '',
    a.meter ?? '',
    a.unitPrice ?? '',
    a.priceId ?? '',
  ].join('\u0000');
  const kb = [
    b.chargePeriodStart,
    b.department,
    b.sharedCostId ?? '',
    b.subscriptionId ?? '',
    b.appId ?? '',
    b.deployment ?? '',
    b.model ?? '',
    b.api ?? '',
    b.meter ?? '',
    b.unitPrice ?? '',
    b.priceId ?? '',
  ].join('\u0000');
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
