import Decimal from 'decimal.js';
import type { ReportLine } from './model';
import { Money, sum } from './money';
import type { Draft } from './draft';

/**
 * Rounds each value to `places` so that the rounded values add up exactly to `target` (largest
 * remainder): every value is floored, and the units still missing go to the largest remainders,
 * ties to the earlier value. The target must lie between the sum of the floors and that sum plus
 * one unit per value, so every rounded value is within one unit of its exact value. Values must be
 * non-negative.
 */
export function apportion(values: readonly Decimal[], target: Decimal, places = 2): Decimal[] {
  const floors = values.map((v) => {
    if (v.isNegative()) throw new Error('apportion takes non-negative values');
    return v.toDecimalPlaces(places, Decimal.ROUND_FLOOR);
  });
  const unit = new Money(10).pow(-places);
  let missing = target.minus(sum(floors)).div(unit).round().toNumber();
  if (missing < 0 || missing > values.length) {
    throw new Error(`cannot apportion ${target.toFixed()} over values that sum to ${sum(values).toFixed()}`);
  }
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

/** Rounds values so they add up exactly to their own rounded total (half to even). */
export function largestRemainder(values: readonly Decimal[], places = 2): Decimal[] {
  return apportion(values, sum(values).toDecimalPlaces(places, Decimal.ROUND_HALF_EVEN), places);
}

/**
 * The report's lines in cents, rounded hierarchically. Every amount is exact until here. Then:
 * - the report total is the exact grand total rounded once (half to even);
 * - each department's billed total is its exact total apportioned from the report total by
 *   largest remainder, so departments add up exactly to the report total and each is within one
 *   cent of its exact amount;
 * - each department's lines are apportioned from its billed total, so they add up exactly to it
 *   and each is within one cent of its exact amount.
 */
export function roundLines(drafts: readonly Draft[]): ReportLine[] {
  const departments = [...new Set(drafts.map((d) => d.department))].sort();
  const exactOf = (department: string): Decimal =>
    sum(drafts.filter((d) => d.department === department).map((d) => d.exact));
  const billed = new Map(
    largestRemainder(departments.map(exactOf)).map((total, i) => [departments[i] as string, total]),
  );
  const cents = new Map<Draft, Decimal>();
  for (const department of departments) {
    const own = drafts.filter((d) => d.department === department);
    const rounded = apportion(
      own.map((d) => d.exact),
      billed.get(department) as Decimal,
    );
    own.forEach((draft, i) => cents.set(draft, rounded[i] as Decimal));
  }
  return drafts.map((draft) => {
    const { exact, ...line } = draft;
    return { ...line, exactCost: exact.toFixed(), cost: (cents.get(draft) as Decimal).toFixed(2) };
  });
}
