import type { LocalFunctionsHost } from '../../../local/host/host';
import { observed } from './fixtures/app';
import { keys, startFixtureHost } from './start-fixture';

let host: LocalFunctionsHost;
beforeAll(async () => {
  host = await startFixtureHost();
});
afterAll(async () => {
  await host.stop();
});

async function start(
  name: string,
  input: unknown,
  instanceId?: string,
): Promise<{ id: string; statusQueryGetUri: string }> {
  const res = await fetch(`${host.url}/api/orchestrators/${name}${instanceId ? `/${instanceId}` : ''}`, {
    method: 'POST',
    headers: { 'x-functions-key': keys.functionKey, 'content-type': 'application/json' },
    body: JSON.stringify(input),
  });
  expect(res.status).toBe(202);
  return (await res.json()) as { id: string; statusQueryGetUri: string };
}

describe('durable orchestrations', () => {
  it('starts an instance with a chosen id through the durable client, fans out, and reports status', async () => {
    const { id, statusQueryGetUri } = await start('fanOut', [1, 2, 3, 4, 5], 'fan-1');
    expect(id).toBe('fan-1');
    expect(statusQueryGetUri).toContain(`${host.url}/runtime/webhooks/durabletask/instances/fan-1`);
    const final = await host.durable.waitForCompletion('fan-1');
    expect(final.runtimeStatus).toBe('Completed');
    expect(final.output).toBe(30);
    expect(final.customStatus).toEqual({ phase: 'done' });

    const viaClient = await fetch(`${host.url}/api/status/fan-1`);
    const status = (await viaClient.json()) as { runtimeStatus: string; output: number; input: number[] };
    expect(status).toMatchObject({ runtimeStatus: 'Completed', output: 30, input: [1, 2, 3, 4, 5] });

    const viaWebhook = await fetch(statusQueryGetUri);
    expect(viaWebhook.status).toBe(200);
    expect(await viaWebhook.json()).toMatchObject({ instanceId: 'fan-1', runtimeStatus: 'Completed' });
  });

  it('protects the management webhooks with the master key', async () => {
    const res = await fetch(`${host.url}/runtime/webhooks/durabletask/instances/fan-1`);
    expect(res.status).toBe(401);
  });

  it('refuses to start a second instance with the id of one still running', async () => {
    await start('sleeper', null, 'sleepy');
    const again = await fetch(`${host.url}/api/orchestrators/sleeper/sleepy`, {
      method: 'POST',
      headers: { 'x-functions-key': keys.functionKey },
      body: 'null',
    });
    expect(again.status).toBe(500); // the durable client throws on the host's 409
    const done = await host.durable.waitForCompletion('sleepy');
    expect(done.runtimeStatus).toBe('Completed');
    expect(done.output as number).toBeGreaterThanOrEqual(100);
    // Once finished, the id can be reused.
    await start('sleeper', null, 'sleepy');
    expect((await host.durable.waitForCompletion('sleepy')).runtimeStatus).toBe('Completed');
  });

  it('retries an activity that fails once under RetryOptions, including inside Task.all', async () => {
    const keysIn = ['a', 'b', 'c'];
    await start('retrying', keysIn, 'retry-1');
    const final = await host.durable.waitForCompletion('retry-1');
    expect(final.runtimeStatus).toBe('Completed');
    expect(final.output).toEqual(['a ok after 2 attempts', 'b ok after 2 attempts', 'c ok after 2 attempts']);
    expect([...observed.flakyAttempts.entries()]).toEqual([
      ['a', 2],
      ['b', 2],
      ['c', 2],
    ]);
  });

  it('fails the instance with the activity error once the retries are used up', async () => {
    await start('doomed', null, 'doomed-1');
    const final = await host.durable.waitForCompletion('doomed-1');
    expect(final.runtimeStatus).toBe('Failed');
    expect(String(final.output)).toContain('the ledger is unavailable');
    expect(observed.alwaysFailsAttempts).toBe(2);
  });

  it('runs sub-orchestrations and delivers external events', async () => {
    await start('parent', null, 'parent-1');
    await waitFor(() => host.durable.getStatus('parent-1-child')?.runtimeStatus === 'Completed');
    expect(host.durable.getStatus('parent-1')?.runtimeStatus).toBe('Running');
    expect(host.durable.raiseEvent('parent-1', 'approval', { ok: true })).toBe(true);
    const final = await host.durable.waitForCompletion('parent-1');
    expect(final).toMatchObject({ runtimeStatus: 'Completed', output: { sum: 12, approved: true } });
  });

  it('keeps the ids of a task yielded again inside Task.all', async () => {
    host.durable.startNew('reyield', { instanceId: 'reyield-1' });
    const final = await host.durable.waitForCompletion('reyield-1', 5000);
    expect(final).toMatchObject({
      runtimeStatus: 'Completed',
      output: { first: 'a', both: ['a', 'b'], c: 'c' },
    });
  });

  it('races the same task against fresh timers in Task.any until it wins', async () => {
    host.durable.startNew('anyLoop', { instanceId: 'poll-1' });
    const final = await host.durable.waitForCompletion('poll-1', 5000);
    expect(final.runtimeStatus).toBe('Completed');
    expect(final.output).toMatchObject({ result: 'work' });
    expect((final.output as { polls: number }).polls).toBeGreaterThan(1);
  });

  it('does not let a child from before continueAsNew answer the next generation', async () => {
    host.durable.startNew('restarting', { instanceId: 'restart-1', input: 1 });
    await waitFor(() => host.durable.getStatus('restart-1-child')?.runtimeStatus === 'Completed');
    const final = await host.durable.waitForCompletion('restart-1', 5000);
    expect(final).toMatchObject({ runtimeStatus: 'Completed', output: { generation: 2, first: 'first' } });
  });

  it('passes a string input to a sub-orchestration as a string', async () => {
    host.durable.startNew('typedParent', { instanceId: 'typed-1' });
    expect((await host.durable.waitForCompletion('typed-1', 5000)).output).toBe('string');
  });

  it('shows the history of an instance on request', () => {
    const status = host.durable.getStatus('retry-1', { showHistory: true });
    const types = (status?.history ?? []).map((e) => (e as { EventType: string }).EventType);
    expect(types.filter((t) => t === 'TaskFailed')).toHaveLength(3);
    expect(types.filter((t) => t === 'TaskCompleted')).toHaveLength(3);
    expect(types.filter((t) => t === 'TimerFired')).toHaveLength(3);
  });

  it('answers 404 for an unknown instance and 400 for an unknown orchestrator', async () => {
    const unknown = await fetch(`${host.url}/api/status/nope`);
    expect(unknown.status).toBe(500); // getStatus throws on the host's 404
    expect(() => host.durable.startNew('noSuchOrchestrator')).toThrow(/doesn't exist/);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
