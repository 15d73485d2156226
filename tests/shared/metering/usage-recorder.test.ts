import { ZodError } from 'zod';
import type { UsageEvent } from '../../../shared/contracts/usage-event';
import type { ServedRequest } from '../../../shared/metering/served-usage';
import { usageEventFor } from '../../../shared/metering/served-usage';
import type { LiveUsageBuffer, UsageSpool } from '../../../shared/metering/usage-recorder';
import { NotStoredError, UsageRecorder } from '../../../shared/metering/usage-recorder';

const served: ServedRequest = {
  attribution: {
    subscriptionId: 'sub-research',
    appId: 'app-notebooks',
    department: 'research',
    userId: 'alice@contoso.com',
    unassigned: false,
  },
  correlationId: 'req-0001',
  startedAt: Date.parse('2026-03-15T12:34:55.750Z'),
};

function event(id = 'req-0001'): UsageEvent {
  return usageEventFor(
    { ...served, correlationId: id },
    {
      api: 'chat',
      deployment: 'gpt-4o',
      model: 'gpt-4o-2024-11-20',
      figures: { promptTokens: 120, cachedTokens: 20, completionTokens: 35 },
      status: 200,
      streamed: false,
      estimated: false,
    },
    new Date('2026-03-15T12:34:56.000Z'),
  );
}

/** A Redis stand-in: keyed by event id, optionally failing or slow. */
class MemoryBuffer implements LiveUsageBuffer {
  readonly events = new Map<string, UsageEvent>();
  readonly signals: AbortSignal[] = [];
  calls = 0;
  constructor(private readonly behaviour: (signal: AbortSignal) => Promise<void> = () => Promise.resolve()) {}

  async write(event: UsageEvent, deadline: AbortSignal): Promise<void> {
    this.calls++;
    this.signals.push(deadline);
    await this.behaviour(deadline);
    this.events.set(event.id, event);
  }
}

/** A spool stand-in that fails its first `failures` writes. */
class MemorySpool implements UsageSpool {
  readonly events = new Map<string, UsageEvent>();
  calls = 0;
  constructor(private readonly failures = 0) {}

  write(event: UsageEvent): Promise<void> {
    this.calls++;
    if (this.calls <= this.failures) return Promise.reject(new Error(`spool down (${this.calls})`));
    this.events.set(event.id, event);
    return Promise.resolve();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Never settles until the deadline aborts, then rejects with the abort reason (as a Redis client does). */
const hangUntilAborted = (signal: AbortSignal): Promise<void> =>
  new Promise((_, reject) => {
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });

/** Never settles at all (a client that ignores the deadline). */
const hangForever = (): Promise<void> => new Promise(() => undefined);

describe('UsageRecorder', () => {
  it('writes the event to the buffer and answers redis', async () => {
    const buffer = new MemoryBuffer();
    const spool = new MemorySpool();
    const onSpooled = jest.fn();
    const recorder = new UsageRecorder(buffer, spool, { redisTimeoutMs: 500, onSpooled });

    await expect(recorder.record(event())).resolves.toBe('redis');

    expect(buffer.events.get('req-0001')).toEqual(event());
    expect(spool.calls).toBe(0);
    expect(onSpooled).not.toHaveBeenCalled();
  });

  it('waits for a buffer that is slow but within the timeout', async () => {
    const buffer = new MemoryBuffer(() => sleep(30));
    const spool = new MemorySpool();
    const recorder = new UsageRecorder(buffer, spool, { redisTimeoutMs: 1_000 });

    await expect(recorder.record(event())).resolves.toBe('redis');
    expect(spool.calls).toBe(0);
    expect(buffer.signals[0]?.aborted).toBe(false);
  });

  it('spools the event when the buffer rejects, and reports why', async () => {
    const down = new Error('ECONNREFUSED');
    const buffer = new MemoryBuffer(() => Promise.reject(down));
    const spool = new MemorySpool();
    const onSpooled = jest.fn();
    const recorder = new UsageRecorder(buffer, spool, { redisTimeoutMs: 500, onSpooled });

    await expect(recorder.record(event())).resolves.toBe('spool');

    expect(buffer.events.size).toBe(0);
    expect(spool.events.get('req-0001')).toEqual(event());
    expect(spool.calls).toBe(1);
    expect(onSpooled).toHaveBeenCalledTimes(1);
    expect(onSpooled).toHaveBeenCalledWith(event(), down);
  });

  it('spools the event when the buffer throws synchronously', async () => {
    const buffer: LiveUsageBuffer = {
      write: () => {
        throw new Error('client not initialised');
      },
    };
    const spool = new MemorySpool();
    const recorder = new UsageRecorder(buffer, spool, { redisTimeoutMs: 500 });

    await expect(recorder.record(event())).resolves.toBe('spool');
    expect(spool.events.has('req-0001')).toBe(true);
  });

  it('spools within a bounded time when the buffer hangs, and aborts the buffer write', async () => {
    const buffer = new MemoryBuffer(hangUntilAborted);
    const spool = new MemorySpool();
    const onSpooled = jest.fn();
    const recorder = new UsageRecorder(buffer, spool, { redisTimeoutMs: 80, onSpooled });

    const started = Date.now();
    await expect(recorder.record(event())).resolves.toBe('spool');
    const elapsed = Date.now() - started;

    expect(elapsed).toBeGreaterThanOrEqual(70);
    expect(elapsed).toBeLessThan(1_000);
    expect(spool.events.get('req-0001')).toEqual(event());
    expect(onSpooled).toHaveBeenCalledTimes(1);
    // The reason is the deadline's TimeoutError (the buffer gave up) or the recorder's own timeout.
    const [spooledEvent, reason] = onSpooled.mock.calls[0] as [UsageEvent, { name: string; message: string }];
    expect(spooledEvent).toEqual(event());
    expect(
      reason.name === 'TimeoutError' ||
        (reason.name === 'Error' && reason.message === 'Redis write timed out'),
    ).toBe(true);

    const signal = buffer.signals[0];
    expect(signal).toBeDefined();
    // The deadline handed to the buffer fires (or has fired) at the timeout.
    if (!signal?.aborted) {
      await new Promise((resolve) => signal?.addEventListener('abort', resolve, { once: true }));
    }
    expect(signal?.aborted).toBe(true);
    expect((signal?.reason as Error).name).toBe('TimeoutError');
  });

  it('does not wait for a buffer that ignores its deadline', async () => {
    const buffer = new MemoryBuffer(hangForever);
    const spool = new MemorySpool();
    const onSpooled = jest.fn();
    const recorder = new UsageRecorder(buffer, spool, { redisTimeoutMs: 60, onSpooled });

    const started = Date.now();
    await expect(recorder.record(event())).resolves.toBe('spool');
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(spool.events.has('req-0001')).toBe(true);
    expect(onSpooled).toHaveBeenCalledWith(
      event(),
      expect.objectContaining({ message: 'Redis write timed out' }),
    );
  });

  it('does not surface a buffer failure that arrives after the timeout', async () => {
    const unhandled: unknown[] = [];
    const listener = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', listener);
    try {
      const buffer = new MemoryBuffer(async () => {
        await sleep(120);
        throw new Error('late failure');
      });
      const spool = new MemorySpool();
      const recorder = new UsageRecorder(buffer, spool, { redisTimeoutMs: 30 });

      await expect(recorder.record(event())).resolves.toBe('spool');
      await sleep(200); // let the late rejection happen
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', listener);
    }
  });

  it('retries the spool and answers spool when the last allowed attempt succeeds', async () => {
    const buffer = new MemoryBuffer(() => Promise.reject(new Error('down')));
    const spool = new MemorySpool(3);
    const onUnrecorded = jest.fn();
    const recorder = new UsageRecorder(buffer, spool, {
      redisTimeoutMs: 500,
      spoolAttempts: 4,
      onUnrecorded,
    });

    await expect(recorder.record(event())).resolves.toBe('spool');

    expect(spool.calls).toBe(4);
    expect(spool.events.get('req-0001')).toEqual(event());
    expect(onUnrecorded).not.toHaveBeenCalled();
  });

  it('makes three spool attempts by default', async () => {
    const buffer = new MemoryBuffer(() => Promise.reject(new Error('down')));
    const spool = new MemorySpool(2);
    const recorder = new UsageRecorder(buffer, spool, { redisTimeoutMs: 500 });

    await expect(recorder.record(event())).resolves.toBe('spool');
    expect(spool.calls).toBe(3);
  });

  it('answers last-resort when neither store takes it, and hands over the full event', async () => {
    const buffer = new MemoryBuffer(() => Promise.reject(new Error('redis down')));
    const spool = new MemorySpool(Number.POSITIVE_INFINITY);
    const onUnrecorded = jest.fn();
    const recorder = new UsageRecorder(buffer, spool, {
      redisTimeoutMs: 500,
      spoolAttempts: 2,
      onUnrecorded,
    });

    await expect(recorder.record(event('req-lost'))).resolves.toBe('last-resort');

    expect(spool.calls).toBe(2);
    expect(onUnrecorded).toHaveBeenCalledTimes(1);
    // Failures that do not prove the event was not stored: it may be, after all.
    expect(onUnrecorded).toHaveBeenCalledWith(
      event('req-lost'),
      expect.objectContaining({ message: 'spool down (2)' }),
      true,
    );
    // The logged event is complete: every figure needed to bill the request by hand.
    const [logged] = onUnrecorded.mock.calls[0] as [UsageEvent, unknown];
    expect(logged).toMatchObject({
      id: 'req-lost',
      department: 'research',
      subscriptionId: 'sub-research',
      appId: 'app-notebooks',
      userId: 'alice@contoso.com',
      model: 'gpt-4o-2024-11-20',
      promptTokens: 120,
      cachedTokens: 20,
      completionTokens: 35,
      window: '2026-03-15T12:30:00.000Z',
      latencyMs: 250,
    });
  });

  it('gives up on a hung spool within its time limit, every attempt included', async () => {
    const buffer = new MemoryBuffer(() => Promise.reject(new Error('redis down')));
    const hung: UsageSpool = { write: () => new Promise<void>(() => undefined) };
    const onUnrecorded = jest.fn();
    const recorder = new UsageRecorder(buffer, hung, {
      redisTimeoutMs: 100,
      spoolTimeoutMs: 300,
      spoolAttempts: 5,
      onUnrecorded,
    });
    const began = Date.now();
    await expect(recorder.record(event('req-hung'))).resolves.toBe('last-resort');
    expect(Date.now() - began).toBeLessThan(100 + 300 + 250);
    expect(onUnrecorded).toHaveBeenCalledWith(
      event('req-hung'),
      expect.objectContaining({ message: expect.stringMatching(/Spool write timed out/) as unknown }),
      true, // a timed-out upload may have completed
    );
  });

  it('says the event is certainly not stored only when every store refused it outright', async () => {
    const refused = (message: string) => () => Promise.reject(new NotStoredError(message));
    const onUnrecorded = jest.fn();
    const spool: UsageSpool = { write: refused('spool refused (404)') };
    const recorder = new UsageRecorder(new MemoryBuffer(refused('not connected')), spool, {
      redisTimeoutMs: 100,
      onUnrecorded,
    });
    await expect(recorder.record(event('req-refused'))).resolves.toBe('last-resort');
    expect(onUnrecorded).toHaveBeenCalledWith(event('req-refused'), expect.any(NotStoredError), false);

    // One attempt that timed out is enough to make it "maybe stored".
    let calls = 0;
    const flaky: UsageSpool = {
      write: () => (++calls === 1 ? new Promise<void>(() => undefined) : refused('refused')()),
    };
    const second = new UsageRecorder(new MemoryBuffer(refused('not connected')), flaky, {
      redisTimeoutMs: 100,
      spoolTimeoutMs: 400,
      onUnrecorded,
    });
    await second.record(event('req-mixed'));
    expect(onUnrecorded).toHaveBeenLastCalledWith(event('req-mixed'), expect.anything(), true);
  });

  it.each([
    ['an empty id', { id: '' }],
    ['an unknown api', { api: 'images' }],
    ['negative tokens', { promptTokens: -1 }],
    ['fractional tokens', { completionTokens: 1.5 }],
    ['a bad timestamp', { recordedAt: 'yesterday' }],
    ['an impossible status', { status: 99 }],
  ])('rejects an event with %s before writing anything', async (_, change) => {
    const buffer = new MemoryBuffer();
    const spool = new MemorySpool();
    const onSpooled = jest.fn();
    const onUnrecorded = jest.fn();
    const recorder = new UsageRecorder(buffer, spool, { redisTimeoutMs: 500, onSpooled, onUnrecorded });
    const invalid = { ...event(), ...change } as unknown as UsageEvent;

    await expect(recorder.record(invalid)).rejects.toBeInstanceOf(ZodError);

    expect(buffer.calls).toBe(0);
    expect(spool.calls).toBe(0);
    expect(onSpooled).not.toHaveBeenCalled();
    expect(onUnrecorded).not.toHaveBeenCalled();
  });

  it('writes the validated event, without properties the schema does not know', async () => {
    const buffer = new MemoryBuffer();
    const recorder = new UsageRecorder(buffer, new MemorySpool(), { redisTimeoutMs: 500 });
    const extra = { ...event(), prompt: 'secret text' } as UsageEvent;

    await recorder.record(extra);

    expect(buffer.events.get('req-0001')).toEqual(event());
    expect(buffer.events.get('req-0001')).not.toHaveProperty('prompt');
  });
});
