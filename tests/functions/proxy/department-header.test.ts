import { randomUUID } from 'node:crypto';
import { GATEWAY_HEADERS } from '../../../shared/contracts/gateway-headers';
import { gatewayHeaders, recordedEvent, useTestStack } from '../../stack';

/**
 * The department header comes from the gateway. Missing, the subscription has no department; but
 * present and unusable (two values joined, too long, characters outside the id alphabet), the
 * gateway is misconfigured: both are charged to `unassigned`, and the log says which it was.
 */

let warnings: string[] = [];
// The host's log: every function's context.log/warn/error line.
const t = useTestStack({}, { log: (line) => warnings.push(line) });
beforeEach(() => {
  warnings = [];
});

async function chat(id: string, department: string | undefined): Promise<number> {
  const response = await fetch(
    `${t.stack.host.url}/api/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21`,
    {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...gatewayHeaders(t.stack, id, { subscription: 'sub-gateway-check', app: 'app-check' }),
        ...(department === undefined ? {} : { [GATEWAY_HEADERS.department]: department }),
      },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hello' }] }),
    },
  );
  await response.text();
  return response.status;
}

it.each([
  ['two values joined (a duplicated header)', 'research, finance', /more than one value/],
  ['too long', 'd'.repeat(129), /longer than 128/],
  ['outside the id alphabet', 'Zürich', /characters other than/],
  ['blank', '   ', /blank/],
])('logs an unusable department header (%s) as such, and charges unassigned', async (_, value, why) => {
  const id = randomUUID();
  expect(await chat(id, value)).toBe(200);
  expect((await recordedEvent(t.redis, id))?.department).toBe('unassigned');
  const line = warnings.find((w) => w.includes('sub-gateway-check'));
  expect(line).toMatch(/unusable x-chargeback-department header/i);
  expect(line).toMatch(why);
  expect(line).not.toMatch(/has no department/);
  // The value itself is not echoed (it may be anything the gateway was fed).
  if (value.trim()) expect(line).not.toContain(value);
});

it('logs a missing department header as a subscription without a department', async () => {
  const id = randomUUID();
  expect(await chat(id, undefined)).toBe(200);
  expect((await recordedEvent(t.redis, id))?.department).toBe('unassigned');
  expect(warnings.find((w) => w.includes('sub-gateway-check'))).toMatch(/has no department/);
});

it('logs it on the Speech paths too', async () => {
  const id = randomUUID();
  const response = await fetch(`${t.stack.host.url}/api/cognitiveservices/v1`, {
    method: 'POST',
    headers: {
      'content-type': 'text/plain',
      'x-microsoft-outputformat': 'riff-16khz-16bit-mono-pcm',
      ...gatewayHeaders(t.stack, id, { subscription: 'sub-gateway-speech', app: 'app-check' }),
      [GATEWAY_HEADERS.department]: 'research,finance',
    },
    body: 'Hello.',
  });
  await response.arrayBuffer();
  expect(response.status).toBe(200);
  expect((await recordedEvent(t.redis, id))?.department).toBe('unassigned');
  expect(warnings.find((w) => w.includes('sub-gateway-speech'))).toMatch(/more than one value/);
});
