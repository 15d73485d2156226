/**
 * Monthly budgets, as callers see them: the response header that warns when a soft threshold of a
 * budget is crossed, and the error a request gets when a hard budget refuses it (429, in the Azure
 * OpenAI error shape of api-errors.ts, with `retry-after`).
 *
 * The header is a response header the functions set and the gateway passes back to the caller. It
 * is deliberately not an `x-chargeback-*` name: that prefix belongs to the request headers the
 * gateway owns and deletes from callers (gateway-headers.ts).
 */

export const BUDGET_HEADERS = {
  /**
   * One value per budget of the request whose warning threshold is crossed, comma-separated:
   * `<budget id> <percent>% of <amount> USD used` (see budgetWarningValue).
   */
  warning: 'x-budget-warning',
  /**
   * Tells the official OpenAI SDKs not to retry a refusal that only the next month (or a larger
   * budget) lifts; they honour `x-should-retry: false` before any retry-after.
   */
  shouldRetry: 'x-should-retry',
} as const;

/** The error code of a request a hard budget refused. */
export const BUDGET_EXCEEDED_CODE = 'BudgetExceeded';

/** A soft threshold crossed: the budget, how much of it is used (whole percent, floored), its amount. */
export interface BudgetWarning {
  budgetId: string;
  percentUsed: number;
  /** The monthly amount, a decimal string in USD as configured (e.g. `"10.00"`). */
  amount: string;
}

/** `<budget id> <percent>% of <amount> USD used` */
export function budgetWarningValue(warning: BudgetWarning): string {
  return `${warning.budgetId} ${warning.percentUsed}% of ${warning.amount} USD used`;
}

const WARNING_VALUE = /^([a-z0-9-]+) (\d+)% of (\d+(?:\.\d+)?) USD used$/;

/** The warnings one header value carries (the inverse of budgetWarningValue, comma-joined). */
export function parseBudgetWarnings(header: string | null | undefined): BudgetWarning[] {
  if (!header) return [];
  return header.split(',').flatMap((part) => {
    const match = WARNING_VALUE.exec(part.trim());
    if (!match?.[1] || !match[2] || !match[3]) return [];
    return [{ budgetId: match[1], percentUsed: Number(match[2]), amount: match[3] }];
  });
}
