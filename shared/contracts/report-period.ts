import { z } from 'zod';

/**
 * Report periods: a calendar month (`YYYY-MM`, month to date) or a calendar day (`YYYY-MM-DD`), in
 * UTC. One vocabulary everywhere: the kind is `monthly` or `daily`, as in report paths, the
 * finance API and report metadata; the kind follows from the id's form and nothing else.
 */

export const REPORT_KINDS = ['monthly', 'daily'] as const;
export type ReportKind = (typeof REPORT_KINDS)[number];

export interface ReportPeriod {
  kind: ReportKind;
  /** YYYY-MM (monthly) or YYYY-MM-DD (daily). */
  id: string;
  /** Inclusive start and exclusive end of the period (ISO 8601, UTC). */
  start: string;
  end: string;
}

/** One UTC day. */
export const DAY_MS = 86_400_000;

const MONTH_ID = /^(\d{4})-(\d{2})$/;
const DAY_ID = /^(\d{4})-(\d{2})-(\d{2})$/;
export const PERIOD_RULE = "a calendar month 'YYYY-MM' or day 'YYYY-MM-DD'";

export class InvalidPeriodError extends Error {
  constructor(value: string) {
    super(`'${value}' is not ${PERIOD_RULE}`);
    this.name = 'InvalidPeriodError';
  }
}

/** The kind a period id names, or undefined when it is not a real calendar month or day. */
export function periodKindOf(id: string): ReportKind | undefined {
  const day = DAY_ID.exec(id);
  const month = day ? undefined : MONTH_ID.exec(id);
  const m = day ?? month;
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), day ? Number(m[3]) : 1];
  const date = new Date(Date.UTC(y, mo - 1, d));
  const real = date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
  return real ? (day ? 'daily' : 'monthly') : undefined;
}

/** The period an id names, with its bounds; throws InvalidPeriodError otherwise. */
export function parsePeriod(id: string): ReportPeriod {
  const kind = periodKindOf(id);
  if (!kind) throw new InvalidPeriodError(id);
  const start = new Date(kind === 'monthly' ? `${id}-01T00:00:00.000Z` : `${id}T00:00:00.000Z`);
  const end =
    kind === 'monthly'
      ? new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1))
      : new Date(start.getTime() + DAY_MS);
  return { kind, id, start: start.toISOString(), end: end.toISOString() };
}

/** The month (YYYY-MM) and day (YYYY-MM-DD) of an instant, in UTC. */
export function monthOf(at: Date | string): string {
  return (typeof at === 'string' ? at : at.toISOString()).slice(0, 7);
}
export function dayOf(at: Date | string): string {
  return (typeof at === 'string' ? at : at.toISOString()).slice(0, 10);
}

/** The number of days in the month of a YYYY-MM or YYYY-MM-DD id. */
export function daysInMonth(id: string): number {
  const { start } = parsePeriod(id.slice(0, 7));
  const date = new Date(start);
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 0)).getUTCDate();
}

/** A zod schema for a period id taken from outside (the finance API's query and paths). */
export const periodIdSchema = z
  .string()
  .refine((value) => periodKindOf(value) !== undefined, `must be ${PERIOD_RULE}`);
