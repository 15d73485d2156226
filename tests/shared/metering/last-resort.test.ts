import {
  LAST_RESORT_EVENT,
  lastResortLine,
  parseLastResortRecords,
} from '../../../shared/metering/last-resort';
import { usageEvent } from '../../fixtures/usage';

const event = usageEvent({ id: 'req-7', promptTokens: 10, completionTokens: 5 });

describe('last-resort records', () => {
  it('reads back every form the records are found in', () => {
    const refused = lastResortLine(event, 'the spool refused the event (404)', false);
    const timedOut = lastResortLine(event, 'Spool write timed out', true);
    const text = [
      refused,
      `2026-11-22T12:31:01.000Z [Error] ${timedOut}`,
      JSON.stringify({ message: refused, severityLevel: 3 }), // a `traces` row
      JSON.stringify({
        name: LAST_RESORT_EVENT,
        customDimensions: { event: JSON.stringify(event), maybeStored: 'false' },
      }),
      JSON.stringify(event), // says nothing: may be stored
      '',
    ].join('\r\n');
    expect(parseLastResortRecords(text)).toEqual({
      records: [false, true, false, false, true].map((maybeStored) => ({ event, maybeStored })),
      problems: [],
    });
  });

  it('names every unusable line and why', () => {
    const { records, problems } = parseLastResortRecords(
      ['hello', 'USAGE_EVENT_UNRECORDED {"event":{"id":"x"}}', 'USAGE_EVENT_UNRECORDED {broken'].join('\n'),
    );
    expect(records).toEqual([]);
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^line 1: not a last-resort record/);
    expect(problems[1]).toMatch(/^line 2: not a usage event: /);
    expect(problems[2]).toMatch(/^line 3: not a last-resort record/);
  });
});
