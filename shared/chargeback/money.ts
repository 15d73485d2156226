import Decimal from 'decimal.js';

/**
 * Money and quantities: exact decimals with 40 significant digits (a division by 3 600 or by a
 * day count is the only source of non-terminating values, carried far beyond a cent), rounded
 * half-to-even only at the report's edge.
 */
export const Money = Decimal.clone({ precision: 40, rounding: Decimal.ROUND_HALF_EVEN });
export type Money = Decimal;

export function money(value: Decimal.Value): Decimal {
  return new Money(value);
}

export function sum(values: Iterable<Decimal>): Decimal {
  let total = new Money(0);
  for (const value of values) total = total.plus(value);
  return total;
}

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
