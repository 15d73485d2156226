/**
 * The usage window: a 15-minute UTC bucket keyed by the time an event was recorded. A late event
 * lands in a later window, never in one already closed. Its id (e.g. `20261122T1230Z`) names Redis
 * keys, spool folders, batch records and chargeback instance ids; this module is the only place
 * that builds or reads it.
 */

export const WINDOW_MINUTES = 15;
export const WINDOW_MS = WINDOW_MINUTES * 60_000;

/** `YYYYMMDDTHHMMZ`, the window's start in UTC; the capture group is the whole id. */
export const WINDOW_ID_PATTERN = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})Z$/;
/** The same shape, unanchored, for ids embedded in longer names (keys, blob paths). */
export const WINDOW_ID_SOURCE = String.raw`\d{8}T\d{4}Z`;

export function windowStart(at: Date): Date {
  return new Date(Math.floor(at.getTime() / WINDOW_MS) * WINDOW_MS);
}

export function windowEnd(window: Date): Date {
  return new Date(window.getTime() + WINDOW_MS);
}

/** The compact id of the window that starts at `window`. */
export function windowId(window: Date): string {
  const iso = window.toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}Z`;
}

/** The id of the window `at` falls in. */
export function windowIdAt(at: Date): string {
  return windowId(windowStart(at));
}

export class InvalidWindowIdError extends Error {
  constructor(value: string) {
    super(`'${value}' is not a window id (expected YYYYMMDDTHHMMZ on a ${WINDOW_MINUTES}-minute boundary)`);
    this.name = 'InvalidWindowIdError';
  }
}

export function isWindowId(value: string): boolean {
  const match = WINDOW_ID_PATTERN.exec(value);
  if (!match) return false;
  const start = Date.UTC(
    Number(match[1]),
    Number(match[2]) - 1,
    Number(match[3]),
    Number(match[4]),
    Number(match[5]),
  );
  return windowId(new Date(start)) === value && start % WINDOW_MS === 0;
}

/** The start of the window an id names; throws on anything that is not a window id. */
export function parseWindowId(value: string): Date {
  if (!isWindowId(value)) throw new InvalidWindowIdError(value);
  const m = WINDOW_ID_PATTERN.exec(value) as RegExpExecArray;
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5])));
}
