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
/** The Application Insights custom event's name; its `event` property holds the event as JSON. */
export const LAST_RESORT_EVENT = 'UsageEventUnrecorded';

/** The log line: the marker, then one JSON object with the event and why it was not recorded. */
export function lastResortLine(event: UsageEvent, reason: string): string {
  return `${LAST_RESORT_MARKER} ${JSON.stringify({ event, reason })}`;
}

export interface ParsedRecords {
  events: UsageEvent[];
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
 * Blank lines are skipped. Every event must pass the usage schema.
 */
export function parseLastResortRecords(text: string): ParsedRecords {
  const events: UsageEvent[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '') return;
    const where = `line ${index + 1}`;
    const candidate = eventIn(line);
    if (candidate === undefined) {
      problems.push(`${where}: not a last-resort record (expected ${LAST_RESORT_MARKER} and a JSON object)`);
      return;
    }
    const parsed = usageEventSchema.safeParse(candidate);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      problems.push(
        `${where}: not a usage event: ${issue?.path.join('.') || 'event'} ${issue?.message ?? ''}`,
      );
      return;
    }
    events.push(parsed.data);
  });
  return { events, problems };
}

function eventIn(line: string): unknown {
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

/** The event inside a record: `{event}`, `{customDimensions: {event}}`, `{message: <log line>}`, or the event itself. */
function unwrap(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null || depth > 3) return value;
  const record = value as Record<string, unknown>;
  if (typeof record.message === 'string' && record.message.includes(LAST_RESORT_MARKER)) {
    return eventIn(record.message);
  }
  const inner = record.event ?? (record.customDimensions as Record<string, unknown> | undefined)?.event;
  if (inner === undefined) return value;
  if (typeof inner === 'string') {
    try {
      return unwrap(JSON.parse(inner), depth + 1);
    } catch {
      return undefined;
    }
  }
  return unwrap(inner, depth + 1);
}
