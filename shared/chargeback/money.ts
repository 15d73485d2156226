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
