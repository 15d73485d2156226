import {
  LAST_RESORT_EVENT,
  lastResortLine,
  parseLastResortRecords,
} from '../../../shared/metering/last-resort';
import { usageEvent } from '../../fixtures/usage';

const event = usageEvent({ id: 'req-7', promptTokens: 10, completionTokens: 5 });

describe('last-resort records', () => {
  it('reads back every form the records are found in', () => {
    const line = lastResortLine(event, 'spool write timed out');
    const text = [
      line,
      `2026-11-22T12:31:01.000Z [Error] ${line}`,
      JSON.stringify({ message: line, severityLevel: 3 }), // a `traces` row
      JSON.stringify({ name: LAST_RESORT_EVENT, customDimensions: { event: JSON.stringify(event) } }),
      JSON.stringify(event),
      '',
    ].join('\r\n');
    expect(parseLastResortRecords(text)).toEqual({ events: Array(5).fill(event), problems: [] });
  });

  it('names every unusable line and why', () => {
    const { events, problems } = parseLastResortRecords(
      ['hello', 'USAGE_EVENT_UNRECORDED {"event":{"id":"x"}}', 'USAGE_EVENT_UNRECORDED {broken'].join('\n'),
    );
    expect(events).toEqual([]);
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^line 1: not a last-resort record/);
    expect(problems[1]).toMatch(/^line 2: not a usage event: /);
    expect(problems[2]).toMatch(/^line 3: not a last-resort record/);
  });
});
