import type { UsageEvent } from '../../../shared/contracts/usage-event';
import {
  LAST_RESORT_EVENT,
  lastResortLine,
  parseLastResortRecords,
} from '../../../shared/metering/last-resort';

const event: UsageEvent = {
  id: 'req-7',
  recordedAt: '2026-11-22T12:31:00.000Z',
  window: '2026-11-22T12:30:00.000Z',
  subscriptionId: 'sub-1',
  appId: 'app-1',
  department: 'finance',
  api: 'chat',
  deployment: 'gpt-4o',
  model: 'gpt-4o-2024-11-20',
  promptTokens: 10,
  cachedTokens: 0,
  completionTokens: 5,
  reasoningTokens: 0,
  audioSeconds: 0,
  billableCharacters: 0,
  status: 200,
  latencyMs: 12,
  streamed: false,
  estimated: false,
};

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
