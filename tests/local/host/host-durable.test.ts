import { ActivityFaults } from '../../../local/host/activity-faults';
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
    // Long enough that the second start always finds it running, even on a loaded machine.
    await start('sleeper', 2_000, 'sleepy');
    const again = await fetch(`${host.url}/api/orchestrators/sleeper/sleepy`, {
      method: 'POST',
      headers: { 'x-functions-key': keys.functionKey },
      body: 'null',
    });
    expect(again.status).toBe(500); // the durable client throws on the host's 409
    const done = await host.durable.waitForCompletion('sleepy');
    expect(done.runtimeStatus).toBe('Completed');
    expect(done.output as number).toBeGreaterThanOrEqual(2_000);
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

describe('instance queries of the durable client', () => {
  const ids = ['query-completed', 'query-failed', 'query-running', 'query-terminated'];
  let since: Date;

  beforeAll(async () => {
    host.durable.startNew('failsSoon', { instanceId: 'query-earlier' });
    await new Promise((r) => setTimeout(r, 5));
    since = new Date();
    for (const id of ['query-running', 'query-completed', 'query-terminated']) {
      host.durable.startNew('awaitSignal', { instanceId: id });
    }
    host.durable.startNew('failsSoon', { instanceId: 'query-failed' });
    await waitFor(() =>
      ['query-running', 'query-completed', 'query-terminated'].every(
        (id) => host.durable.getStatus(id)?.runtimeStatus === 'Running',
      ),
    );
    host.durable.raiseEvent('query-completed', 'go', 'done');
    host.durable.terminate('query-terminated', 'not needed');
    expect((await host.durable.waitForCompletion('query-completed', 5000)).runtimeStatus).toBe('Completed');
    expect((await host.durable.waitForCompletion('query-failed', 5000)).runtimeStatus).toBe('Failed');
    await host.durable.waitForCompletion('query-earlier', 5000);
  });

  afterAll(async () => {
    host.durable.raiseEvent('query-running', 'go', 'done');
    await host.durable.waitForCompletion('query-running', 5000);
  });

  type Listed = { instanceId: string; runtimeStatus: string };
  async function viaClient(params: Record<string, string> = {}): Promise<Listed[]> {
    const res = await fetch(`${host.url}/api/instances?${new URLSearchParams(params).toString()}`);
    expect(res.status).toBe(200);
    return (await res.json()) as Listed[];
  }
  const idsOf = (listed: Listed[]): string[] => listed.map((s) => s.instanceId).sort();

  it('returns only the instances in the runtime statuses asked for (getStatusBy runtimeStatus)', async () => {
    const listed = await viaClient({ runtimeStatus: 'Running,Terminated' });
    expect(new Set(listed.map((s) => s.runtimeStatus))).toEqual(new Set(['Running', 'Terminated']));
    expect(idsOf(listed)).toEqual(expect.arrayContaining(['query-running', 'query-terminated']));
    expect(idsOf(listed)).not.toContain('query-completed');
    expect(idsOf(listed)).not.toContain('query-failed');

    const ended = await viaClient({
      runtimeStatus: 'Completed,Failed',
      createdTimeFrom: since.toISOString(),
    });
    expect(ended).toEqual([
      { instanceId: 'query-completed', runtimeStatus: 'Completed' },
      { instanceId: 'query-failed', runtimeStatus: 'Failed' },
    ]);
  });

  it('filters on the creation time, both bounds inclusive, and returns everything without filters', async () => {
    expect(idsOf(await viaClient({ createdTimeFrom: since.toISOString() }))).toEqual(ids);
    const before = await viaClient({ createdTimeTo: new Date(since.getTime() - 1).toISOString() });
    expect(idsOf(before)).toContain('query-earlier');
    expect(idsOf(before).filter((id) => ids.includes(id))).toEqual([]);
    const created = host.durable.getStatus('query-failed')?.createdTime as string;
    expect(
      idsOf(await viaClient({ createdTimeFrom: created, createdTimeTo: created, runtimeStatus: 'Failed' })),
    ).toEqual(['query-failed']);

    const all = await viaClient();
    expect(all.length).toBe(before.length + ids.length);
  });

  it('reads the filters on the management webhook as the extension does', async () => {
    const list = async (query: string): Promise<string[]> => {
      const res = await fetch(
        `${host.url}/runtime/webhooks/durabletask/instances?code=${keys.masterKey}&createdTimeFrom=${since.toISOString()}&${query}`,
      );
      expect(res.status).toBe(200);
      return idsOf((await res.json()) as Listed[]);
    };
    expect(await list('runtimeStatus=Failed')).toEqual(['query-failed']);
    // Repeated parameters add up; enum values count like names (Running = 0, Terminated = 5).
    expect(await list('runtimeStatus=Completed&runtimeStatus=0,5')).toEqual([
      'query-completed',
      'query-running',
      'query-terminated',
    ]);
    // A status this host never reaches still filters; names that are not statuses are skipped.
    expect(await list('runtimeStatus=Suspended')).toEqual([]);
    expect(await list('runtimeStatus=running,Bogus')).toEqual(ids);
    expect(await list('runtimeStatus=Bogus,Failed')).toEqual(['query-failed']);
  });
});

describe('injected activity faults', () => {
  const faults = new ActivityFaults();
  beforeAll(() => host.durable.interceptActivities(faults));
  afterEach(() => faults.reset());
  afterAll(() => host.durable.interceptActivities(undefined));

  function historyTypes(instanceId: string): string[] {
    const status = host.durable.getStatus(instanceId, { showHistory: true });
    return (status?.history ?? []).map((e) => (e as { EventType: string }).EventType);
  }

  it('fails an attempt before the activity runs; the retry runs it and the orchestration completes', async () => {
    faults.arm('commit', 'before');
    host.durable.startNew('committing', { instanceId: 'fault-before', input: 'k-before' });
    const final = await host.durable.waitForCompletion('fault-before', 5000);
    expect(final).toMatchObject({ runtimeStatus: 'Completed', output: 'k-before committed' });
    expect(observed.commits.get('k-before')).toBe(1);
    expect(faults.passes('commit')).toBe(2);
    expect(faults.passes('commit', 'before')).toBe(2);
    expect(faults.passes('commit', 'after')).toBe(1);
    const history = host.durable.getStatus('fault-before', { showHistory: true })?.history ?? [];
    const failed = history.filter((e) => (e as { EventType: string }).EventType === 'TaskFailed');
    expect(failed).toEqual([expect.objectContaining({ Reason: "injected fault before activity 'commit'" })]);
    expect(historyTypes('fault-before').filter((t) => t === 'TaskCompleted')).toHaveLength(1);
  });

  it('fails an attempt after the activity committed: its side effect stays, and the retry repeats it', async () => {
    faults.arm('commit', 'after');
    host.durable.startNew('committing', { instanceId: 'fault-after', input: 'k-after' });
    const final = await host.durable.waitForCompletion('fault-after', 5000);
    expect(final).toMatchObject({ runtimeStatus: 'Completed', output: 'k-after committed' });
    expect(observed.commits.get('k-after')).toBe(2);
    expect(faults.passes('commit', 'before')).toBe(2);
    expect(faults.passes('commit', 'after')).toBe(2);
    const types = historyTypes('fault-after');
    expect(types.filter((t) => t === 'TaskFailed')).toHaveLength(1);
    expect(types.filter((t) => t === 'TaskCompleted')).toHaveLength(1);
  });

  it('fails the orchestration like any activity failure once the retries are used up', async () => {
    faults.arm('Commit', 'before', 3); // function names are case-insensitive
    host.durable.startNew('committing', { instanceId: 'fault-doomed', input: 'k-doomed' });
    const final = await host.durable.waitForCompletion('fault-doomed', 5000);
    expect(final.runtimeStatus).toBe('Failed');
    expect(String(final.output)).toContain("injected fault before activity 'commit'");
    expect(observed.commits.has('k-doomed')).toBe(false);
    expect(faults.passes('commit')).toBe(3);
    expect(faults.passes('commit', 'after')).toBe(0);
    expect(historyTypes('fault-doomed').filter((t) => t === 'TaskFailed')).toHaveLength(3);
  });

  it('only counts unarmed passes, and sees nothing once removed', async () => {
    host.durable.startNew('committing', { instanceId: 'fault-none', input: 'k-none' });
    expect((await host.durable.waitForCompletion('fault-none', 5000)).runtimeStatus).toBe('Completed');
    expect([faults.passes('commit', 'before'), faults.passes('commit', 'after')]).toEqual([1, 1]);
    expect(historyTypes('fault-none')).not.toContain('TaskFailed');

    host.durable.interceptActivities(undefined);
    faults.arm('commit', 'before');
    host.durable.startNew('committing', { instanceId: 'fault-removed', input: 'k-removed' });
    expect((await host.durable.waitForCompletion('fault-removed', 5000)).runtimeStatus).toBe('Completed');
    expect(faults.passes('commit')).toBe(1);
    host.durable.interceptActivities(faults);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
