import Decimal from 'decimal.js';
import type { ReportLine } from './model';
import { Money, sum } from './money';
import type { Draft } from './draft';

/**
 * Rounds each value to `places` so that the rounded values add up exactly to the rounded total
 * (largest remainder): every value is floored, and the units still missing go to the largest
 * remainders, ties to the earlier value. Values must be non-negative.
 */
export function largestRemainder(values: readonly Decimal[], places = 2): Decimal[] {
  const total = sum(values).toDecimalPlaces(places, Decimal.ROUND_HALF_EVEN);
  const floors = values.map((v) => {
    if (v.isNegative()) throw new Error('largestRemainder takes non-negative values');
    return v.toDecimalPlaces(places, Decimal.ROUND_FLOOR);
  });
  const unit = new Money(10).pow(-places);
  let missing = total.minus(sum(floors)).div(unit).round().toNumber();
  const order = values
    .map((v, index) => ({ index, remainder: v.minus(floors[index] as Decimal) }))
    .sort((a, b) => b.remainder.comparedTo(a.remainder) || a.index - b.index);
  const result = [...floors];
  for (const { index } of order) {
    if (missing <= 0) break;
    result[index] = (result[index] as Decimal).plus(unit);
    missing--;
  }
  return result;
}

/**
 * The report's lines in cents: every amount is exact until here; then all lines are rounded
 * together by largest remainder, so they add up exactly to the rounded grand total, and every
 * department total is the sum of its own rounded lines.
 */
export function roundLines(drafts: readonly Draft[]): ReportLine[] {
  const rounded = largestRemainder(drafts.map((d) => d.exact));
  return drafts.map(({ exact, ...draft }, i) => ({
    ...draft,
    exactCost: exact.toFixed(),
    cost: (rounded[i] as Decimal).toFixed(2),
  }));
}
