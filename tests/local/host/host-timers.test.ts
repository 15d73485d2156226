import type { LocalFunctionsHost } from '../../../local/host/host';
import { observed } from './fixtures/app';
import { keys, startFixtureHost } from './start-fixture';

let host: LocalFunctionsHost;
beforeAll(async () => {
  host = await startFixtureHost('schedule');
});
afterAll(async () => {
  await host.stop();
});

describe('timer triggers', () => {
  it('fires a timer on its NCRONTAB schedule (six fields, seconds first)', async () => {
    const deadline = Date.now() + 3500;
    while (observed.ticks.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(observed.ticks.length).toBeGreaterThanOrEqual(2);
    const [first] = observed.ticks;
    expect(first?.isPastDue).toBe(false);
    expect(new Date(first?.scheduleStatus?.next ?? 0).getUTCMilliseconds()).toBe(0);
  });

  it('reports the next occurrence of each timer', () => {
    const nightly = host.timerFunctions.find((t) => t.name === 'nightly');
    expect(nightly?.next?.getUTCHours()).toBe(3);
    expect(nightly?.next?.getUTCMinutes()).toBe(0);
  });

  it('runs a timer on demand through the admin API with the master key only', async () => {
    const denied = await fetch(`${host.url}/admin/functions/nightly`, {
      method: 'POST',
      headers: { 'x-functions-key': keys.functionKey, 'content-type': 'application/json' },
      body: '{"input":""}',
    });
    expect(denied.status).toBe(401);
    const res = await fetch(`${host.url}/admin/functions/nightly`, {
      method: 'POST',
      headers: { 'x-functions-key': keys.masterKey, 'content-type': 'application/json' },
      body: '{"input":""}',
    });
    expect(res.status).toBe(202);
    const deadline = Date.now() + 2000;
    while (observed.slowTimerRuns < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(observed.slowTimerRuns).toBe(1);
  });

  it('never runs two invocations of one timer function at once; an overlapping occurrence runs afterwards', async () => {
    await new Promise((r) => setTimeout(r, 100)); // let the previous test's run finish
    const before = observed.slowTimerRuns;
    await Promise.all([host.runTimer('nightly'), host.runTimer('nightly')]);
    const deadline = Date.now() + 2000;
    while (observed.slowTimerRuns < before + 2 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    expect(observed.slowTimerRuns).toBe(before + 2);
  });

  it('answers 404 for an unknown timer', async () => {
    const res = await fetch(`${host.url}/admin/functions/nope`, {
      method: 'POST',
      headers: { 'x-functions-key': keys.masterKey },
    });
    expect(res.status).toBe(404);
  });
});
