import type { UsageEvent } from '../contracts/usage-event';
import { usageEventSchema } from '../contracts/usage-event';

/**
 * The last-resort record of a usage event that neither Redis nor the spool took: one log line
 * carrying the whole event (the Functions host sends it to Application Insights as a trace; the
 * app also sends it as the custom event LAST_RESORT_EVENT), and how an admin's re-import reads
 * such records back. This module is the one home of the record's format.
 */

/** The log line's first word. */
export const LAST_RESORT_MARKER = 'USAGE_EVENT_UNRECORDED';
/**
 * The log line of a served request's usage event that fails the usage schema (a defect, not an
 * outage): kept for an admin to read, but with its own marker, as no re-import could take it.
 */
export const UNUSABLE_MARKER = 'USAGE_EVENT_UNUSABLE';

/** The Application Insights custom event's name; its `event` property holds the event as JSON. */
export const LAST_RESORT_EVENT = 'UsageEventUnrecorded';

/** One last-resort record: the event, and whether a store may hold it after all. */
export interface LastResortRecord {
  event: UsageEvent;
  /**
   * A store failed in a way that may hide a write that landed (a timeout), rather than refusing
   * it outright: the event may already be counted. A re-import imports such an event only when
   * the buffer does not hold it and the admin says so.
   */
  maybeStored: boolean;
}

/**
 * The log line: the marker, then one JSON object with the event, why it was not recorded, and
 * whether a store may hold it after all.
 */
export function lastResortLine(event: UsageEvent, reason: string, maybeStored: boolean): string {
  return `${LAST_RESORT_MARKER} ${JSON.stringify({ event, reason, maybeStored })}`;
}

export interface ParsedRecords {
  records: LastResortRecord[];
  /** One entry per unusable line: `line <n>: <why>`. */
  problems: string[];
}

/**
 * Reads last-resort records back, one per line, in any of the forms they are found in:
 * - the log line (`USAGE_EVENT_UNRECORDED {"event":…,"reason":…}`), with anything before the
 *   marker (a timestamp, a log prefix);
 * - a row exported from Application Insights (`customEvents` or `traces`) as JSON, whose
 *   `customDimensions.event` (or `event`) holds the event, as an object or as a JSON string, or
 *   whose `message` is the log line;
 * - a bare usage event as JSON.
 * Blank lines are skipped. Every event must pass the usage schema. A record that does not say
 * whether a store may hold its event (a bare event) is taken to say it may.
 */
export function parseLastResortRecords(text: string): ParsedRecords {
  const records: LastResortRecord[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '') return;
    const where = `line ${index + 1}`;
    const found = recordIn(line);
    if (found === undefined) {
      problems.push(`${where}: not a last-resort record (expected ${LAST_RESORT_MARKER} and a JSON object)`);
      return;
    }
    const parsed = usageEventSchema.safeParse(found.event);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      problems.push(
        `${where}: not a usage event: ${issue?.path.join('.') || 'event'} ${issue?.message ?? ''}`,
      );
      return;
    }
    records.push({ event: parsed.data, maybeStored: found.maybeStored });
  });
  return { records, problems };
}

interface Found {
  event: unknown;
  maybeStored: boolean;
}

function recordIn(line: string): Found | undefined {
  // An exported row is JSON as a whole (its message may hold a log line); a log line is not.
  const marker = line.startsWith('{') ? -1 : line.indexOf(LAST_RESORT_MARKER);
  const json = marker >= 0 ? line.slice(marker + LAST_RESORT_MARKER.length).trim() : line;
  if (!json.startsWith('{')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  return unwrap(value, 0);
}

/**
 * The event inside a record and whether a store may hold it: `{event, maybeStored}`,
 * `{customDimensions: {event, maybeStored}}` (strings, as Application Insights keeps them),
 * `{message: <log line>}`, or a bare event (which may be stored: nothing says otherwise).
 */
function unwrap(value: unknown, depth: number): Found | undefined {
  if (typeof value !== 'object' || value === null || depth > 3) return { event: value, maybeStored: true };
  const record = value as Record<string, unknown>;
  if (typeof record.message === 'string' && record.message.includes(LAST_RESORT_MARKER)) {
    return recordIn(record.message);
  }
  const holder =
    record.event !== undefined ? record : (record.customDimensions as Record<string, unknown> | undefined);
  const inner = holder?.event;
  if (inner === undefined) return { event: value, maybeStored: true };
  const maybeStored = !(holder?.maybeStored === false || holder?.maybeStored === 'false');
  let event: unknown = inner;
  if (typeof inner === 'string') {
    try {
      event = JSON.parse(inner);
    } catch {
      return undefined;
    }
  }
  return { event, maybeStored };
}
