import { randomUUID } from 'node:crypto';
import { AzureOpenAI, RateLimitError } from 'openai';
import { pcmTone, wavHeader } from '../../../local/simulators/audio';
import type { OpenAiSimulator } from '../../../local/simulators/openai';
import type { SpeechSimulator } from '../../../local/simulators/speech';
import { RedisBudgetLedger } from '../../../shared/adapters/redis-budget';
import { priceTableWith } from '../../../shared/chargeback/prices';
import { BUDGET_EXCEEDED_CODE, BUDGET_HEADERS, parseBudgetWarnings } from '../../../shared/contracts/budget';
import { GATEWAY_HEADERS } from '../../../shared/contracts/gateway-headers';
import { monthOf } from '../../../shared/contracts/report-period';
import { APP_ROLES } from '../../../shared/contracts/roles';
import type { UsageEvent } from '../../../shared/contracts/usage-event';
import { WINDOW_MS, windowStart } from '../../../shared/contracts/window';
import type { SpendScope } from '../../../shared/metering/budget';
import { openAiEstimate, pricedEvent, toMicros, usageCost } from '../../../shared/metering/budget';
import { parseOpenAiCall } from '../../../shared/metering/openai-request';
import type { Caller } from '../../stack';
import { gatewayHeaders, recordedEvents, recordings, useTestStack } from '../../stack';

/**
 * Monthly budgets through the local Functions host, with the official `openai` client: a hard
 * budget refuses before the provider is called, a soft one warns, concurrent requests at the edge
 * stay within the stated bound, spend survives a window boundary and a chargeback run, and a Redis
 * outage lets requests through (fail-open).
 */

jest.setTimeout(120_000);

const departments = ['dept-over', 'dept-soft', 'dept-edge', 'dept-boundary', 'dept-speech', 'dept-outage'];
const CONFIG = {
  departments: departments.map((id) => ({ id, name: id })),
  budgets: [
    // Five embeddings of a few tokens cost 1 micro-dollar each (rounded up): then it is spent.
    { id: 'over-budget', department: 'dept-over', monthlyAmount: '0.000005', hard: true },
    { id: 'soft-budget', department: 'dept-soft', monthlyAmount: '0.001', warnAtPercent: [50], hard: false },
    { id: 'edge-budget', department: 'dept-edge', monthlyAmount: '0.005', hard: true },
    { id: 'boundary-budget', department: 'dept-boundary', monthlyAmount: '100', hard: true },
    // One second of audio costs 278 micro-dollars: more than the whole budget.
    {
      id: 'voicebot-budget',
      department: 'dept-speech',
      appId: 'voicebot',
      monthlyAmount: '0.0001',
      hard: true,
    },
    { id: 'outage-budget', department: 'dept-outage', monthlyAmount: '100', hard: true },
  ],
};

let log: string[] = [];
let requestLog: string[] = [];
const t = useTestStack(
  { CHARGEBACK_CONFIG: JSON.stringify(CONFIG) },
  { log: (line) => log.push(line), requestLog: (line) => requestLog.push(line) },
);
beforeEach(() => {
  log = [];
  requestLog = [];
});

const prices = priceTableWith([]);
const priceFor = prices.priceFor.bind(prices);

function ledger(): RedisBudgetLedger {
  return new RedisBudgetLedger(() => t.redis, { readyTimeoutMs: 1000 });
}

async function spent(scope: SpendScope): Promise<number> {
  return (await ledger().spend(scope, monthOf(new Date()))).settledMicros;
}

/** What the chargeback charges for an event, in whole micro-dollars rounded up (the ledger's unit). */
function costMicros(event: UsageEvent): number {
  return toMicros(usageCost(pricedEvent(event), new Date(event.window), priceFor));
}

function openAi(): OpenAiSimulator {
  if (!t.stack.openAiSimulator) throw new Error('the test stack runs no Azure OpenAI simulator');
  return t.stack.openAiSimulator;
}

function speech(): SpeechSimulator {
  if (!t.stack.speechSimulator) throw new Error('the test stack runs no Speech simulator');
  return t.stack.speechSimulator;
}

function client(requestId: string, caller: Caller, maxRetries = 0): AzureOpenAI {
  return new AzureOpenAI({
    endpoint: `${t.stack.host.url}/api`,
    apiKey: 'apps-never-see-the-upstream-key',
    apiVersion: '2024-10-21',
    defaultHeaders: gatewayHeaders(t.stack, requestId, caller),
    maxRetries,
  });
}

/** The one usage event recorded for a request id, once it is there (in any window since `since`). */
async function eventually(id: string, since?: Date): Promise<UsageEvent> {
  for (let i = 0; i < 100; i++) {
    const found = await recordings(t.redis, id, since);
    if (found.length > 1) throw new Error(`request ${id} was recorded ${found.length} times`);
    if (found[0]) return found[0].event;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no usage event ${id}`);
}

const question = [{ role: 'user' as const, content: 'How much did my department spend on AI this month?' }];

describe('a hard budget', () => {
  const caller = { subscription: 'sub-over', app: 'ledger-bot', department: 'dept-over' };

  it('refuses a department that spent it with 429 before the upstream sees the request, and records nothing', async () => {
    for (let i = 0; i < 5; i++) {
      const id = randomUUID();
      await client(id, caller).embeddings.create({
        model: 'text-embedding-3-small',
        input: `line ${i} of the ledger`,
      });
      expect(costMicros(await eventually(id))).toBe(1);
    }
    expect(await spent({ department: 'dept-over' })).toBe(5);

    const id = randomUUID();
    const upstreamRequests = openAi().stats.requests;
    // The SDK may retry a 429 twice; the budget's answer tells it not to.
    const refused = await client(id, caller, 2)
      .chat.completions.create({ model: 'gpt-4o', messages: question, max_tokens: 20 })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(refused).toBeInstanceOf(RateLimitError);
    const error = refused as RateLimitError;
    expect(error.status).toBe(429);
    expect(error.code).toBe(BUDGET_EXCEEDED_CODE);
    expect(error.message).toBe(
      "429 The monthly budget 'over-budget' of department 'dept-over' is spent: 0.000005 USD of 0.000005 USD used in " +
        `${monthOf(new Date())}. Requests are refused until the budget resets at the start of next month (UTC) or is raised.`,
    );
    const retryAfter = Number(error.headers?.get('retry-after'));
    const nextMonth = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() + 1, 1);
    expect(Math.abs(Date.now() + retryAfter * 1000 - nextMonth)).toBeLessThan(10_000);
    expect(error.headers?.get(BUDGET_HEADERS.shouldRetry)).toBe('false');

    // The upstream never saw it, the client did not retry it, and nothing was recorded.
    expect(openAi().stats.requests).toBe(upstreamRequests);
    expect(requestLog.filter((line) => line.includes('/chat/completions 429'))).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await recordedEvents(t.redis, id)).toEqual([]);
    expect(await spent({ department: 'dept-over' })).toBe(5);
    expect(
      log.some((line) => line.includes("Refused by budget 'over-budget' of department 'dept-over'")),
    ).toBe(true);
  });
});

describe('a soft budget', () => {
  const caller = { subscription: 'sub-soft', app: 'notebooks', department: 'dept-soft' };

  it('warns past its threshold with a header and a log line, and never refuses', async () => {
    const first = await client(randomUUID(), caller)
      .chat.completions.create({ model: 'gpt-4o', messages: question, max_tokens: 60 })
      .withResponse();
    expect(first.response.headers.get(BUDGET_HEADERS.warning)).toBeNull();
    const before = await spent({ department: 'dept-soft' });
    expect(before).toBeGreaterThanOrEqual(600); // past 50% of 1,000 micro-dollars: 60 output tokens alone cost 600

    const second = await client(randomUUID(), caller)
      .chat.completions.create({ model: 'gpt-4o', messages: question, max_tokens: 60 })
      .withResponse();
    expect(parseBudgetWarnings(second.response.headers.get(BUDGET_HEADERS.warning))).toEqual([
      { budgetId: 'soft-budget', percentUsed: Math.floor(before / 10), amount: '0.001' },
    ]);
    expect(second.data.choices[0]?.message.content).toBeTruthy();
    const warnings = log.filter((line) => line.includes("Budget 'soft-budget' of department 'dept-soft'"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(
      `${Math.floor(before / 10)}% of 0.001 USD used in ${monthOf(new Date())}, past its 50% warning`,
    );

    // Past 100%: still served, still warned (the log line only once per threshold and month).
    const third = await client(randomUUID(), caller)
      .chat.completions.create({ model: 'gpt-4o', messages: question, max_tokens: 60 })
      .withResponse();
    const [warning] = parseBudgetWarnings(third.response.headers.get(BUDGET_HEADERS.warning));
    expect(warning?.percentUsed).toBeGreaterThanOrEqual(100);
    expect(log.filter((line) => line.includes("Budget 'soft-budget'"))).toHaveLength(1);
  });
});

describe('concurrent requests at the edge of a hard budget', () => {
  it('never spend more than the amount plus what served requests cost beyond their reservation', async () => {
    const caller = { subscription: 'sub-edge', app: 'batch', department: 'dept-edge' };
    const amountMicros = 5000;
    const upstreamRequests = openAi().stats.requests;
    const body = (i: number) => ({
      messages: [{ role: 'user' as const, content: `Question ${i}: what is the cost of request ${i}?` }],
      max_tokens: 40,
    });
    const outcomes = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const id = `edge-${i}-${randomUUID()}`;
        try {
          await client(id, caller).chat.completions.create({ model: 'gpt-4o', ...body(i) });
          return { id, i, served: true as const };
        } catch (error) {
          if (!(error instanceof RateLimitError)) throw error;
          expect(error.code).toBe(BUDGET_EXCEEDED_CODE);
          expect(error.message).toMatch(/'edge-budget' of department 'dept-edge' has too little left/);
          return { id, i, served: false as const };
        }
      }),
    );
    const served = outcomes.filter((o) => o.served);
    const refused = outcomes.filter((o) => !o.served);
    expect(served.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    expect(openAi().stats.requests - upstreamRequests).toBe(served.length);

    // The bound (docs/budgets.md): spend ≤ amount + Σ over served requests of (actual − reserved)⁺.
    let actualTotal = 0;
    let overshootBound = 0;
    for (const { id, i } of served) {
      const actual = costMicros(await eventually(id));
      const call = parseOpenAiCall({
        operation: 'chat/completions',
        form: 'deployment',
        deployment: 'gpt-4o',
        apiVersion: '2024-10-21',
        contentType: 'application/json',
        body: new TextEncoder().encode(JSON.stringify(body(i))),
      });
      const reserved = toMicros(
        usageCost({ api: 'chat', model: 'gpt-4o', figures: openAiEstimate(call) }, new Date(), priceFor),
      );
      actualTotal += actual;
      overshootBound += Math.max(0, actual - reserved);
    }
    for (const { id } of refused) expect(await recordedEvents(t.redis, id)).toEqual([]);
    const total = await spent({ department: 'dept-edge' });
    expect(total).toBe(actualTotal); // the ledger counts exactly what the chargeback will charge
    expect(total).toBeLessThanOrEqual(amountMicros + overshootBound);
    expect((await ledger().spend({ department: 'dept-edge' }, monthOf(new Date()))).reservedMicros).toBe(0);
  });
});

describe('spend across a window boundary and a chargeback run', () => {
  const caller = { subscription: 'sub-boundary', app: 'reports', department: 'dept-boundary' };
  /** The window before this file's first: the faked clock below starts in it. */
  const since = new Date(windowStart(new Date()).getTime() - WINDOW_MS);
  const chat = async (): Promise<UsageEvent> => {
    const id = randomUUID();
    await client(id, caller).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: question,
      max_tokens: 30,
    });
    return eventually(id, since);
  };

  async function runChargeback(): Promise<void> {
    const headers = {
      'x-functions-key': t.stack.settings.LOCAL_FUNCTION_KEY,
      'content-type': 'application/json',
      [GATEWAY_HEADERS.gatewayKey]: process.env.GATEWAY_SHARED_SECRET as string,
      [GATEWAY_HEADERS.roles]: APP_ROLES.admin,
    };
    const started = await fetch(`${t.stack.host.url}/api/chargeback/runs`, { method: 'POST', headers });
    expect(started.status).toBe(202);
    const { statusUrl } = (await started.json()) as { statusUrl: string };
    for (let i = 0; i < 600; i++) {
      const run = (await (await fetch(`${t.stack.host.url}${statusUrl}`, { headers })).json()) as {
        status: string;
      };
      if (run.status === 'Completed') return;
      if (['Failed', 'Terminated'].includes(run.status)) throw new Error(`the run ended ${run.status}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('the run did not finish');
  }

  it('neither drops nor doubles', async () => {
    // The app's clock, a second before the start of the current window: the next requests land on
    // both sides of a window boundary. Only Date is faked (timers run for real), and it keeps going.
    const boundary = windowStart(new Date());
    jest.useFakeTimers({
      now: boundary.getTime() - 1000,
      advanceTimers: true,
      doNotFake: [
        'hrtime',
        'nextTick',
        'performance',
        'queueMicrotask',
        'requestAnimationFrame',
        'cancelAnimationFrame',
        'requestIdleCallback',
        'cancelIdleCallback',
        'setImmediate',
        'clearImmediate',
        'setInterval',
        'clearInterval',
        'setTimeout',
        'clearTimeout',
      ],
    });
    let before: UsageEvent;
    let after: UsageEvent;
    try {
      before = await chat();
      while (Date.now() < boundary.getTime() + 50) await new Promise((resolve) => setTimeout(resolve, 50));
      after = await chat();
    } finally {
      jest.useRealTimers();
    }
    expect(new Date(after.window).getTime() - new Date(before.window).getTime()).toBe(WINDOW_MS);
    const twoWindows = costMicros(before) + costMicros(after);
    expect(await spent({ department: 'dept-boundary' })).toBe(twoWindows);
    expect(await spent({ department: 'dept-boundary', appId: 'reports' })).toBe(twoWindows);

    const current = await chat();
    const beforeRun = twoWindows + costMicros(current);
    expect(await spent({ department: 'dept-boundary' })).toBe(beforeRun);

    // The run claims the raw usage out of the live buffer (and releases what is closed).
    await runChargeback();
    for (const event of [before, after, current])
      expect(await recordings(t.redis, event.id, since)).toEqual([]);
    expect(await spent({ department: 'dept-boundary' })).toBe(beforeRun);

    const later = await chat();
    expect(await spent({ department: 'dept-boundary' })).toBe(beforeRun + costMicros(later));
  });

  it('rebuilds lost counters from the committed usage at the next chargeback run, never above the request-time spend', async () => {
    const scope = { department: 'dept-boundary' };
    const app = { department: 'dept-boundary', appId: 'reports' };
    const held = await spent(scope);
    expect(held).toBeGreaterThan(0);
    // Lost: a flush, or a failover to a replica the writes had not reached.
    const keys = await t.redis.keys('budget:{d:dept-boundary}*');
    expect(keys.length).toBeGreaterThan(0);
    await t.redis.del(...keys);
    expect(await spent(scope)).toBe(0);

    await runChargeback();
    // The committed usage, rounded up once (the counter rounded up per request): at most 1 µUSD
    // per request below what the counter held, never above it.
    const rebuilt = await spent(scope);
    expect(rebuilt).toBeLessThanOrEqual(held);
    expect(rebuilt).toBeGreaterThanOrEqual(held - 4);
    expect(await spent(app)).toBe(rebuilt);
    expect(log.some((line) => line.includes('BUDGET_SPEND_RAISED') && line.includes('dept-boundary'))).toBe(
      true,
    );

    // A run finds nothing to raise when the counters are whole.
    log = [];
    await runChargeback();
    expect(await spent(scope)).toBe(rebuilt);
    expect(log.some((line) => line.includes('BUDGET_SPEND_RAISED'))).toBe(false);
  });
});

describe('speech', () => {
  const format = { sampleRate: 16_000, channels: 1, bitsPerSample: 16 };
  const samples = pcmTone(format, 1);
  const wav = Uint8Array.from(Buffer.concat([wavHeader(format, samples.length), samples]));

  it("refuses recognition over an app's hard budget before the Speech service is called", async () => {
    const id = randomUUID();
    const speechRequests = speech().stats.requests;
    const response = await fetch(
      `${t.stack.host.url}/api/speech/recognition/conversation/cognitiveservices/v1?language=en-US`,
      {
        method: 'POST',
        headers: gatewayHeaders(
          t.stack,
          id,
          { subscription: 'sub-voice', app: 'voicebot', department: 'dept-speech' },
          { 'content-type': 'audio/wav; codecs=audio/pcm; samplerate=16000' },
        ),
        body: wav,
      },
    );
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe(BUDGET_EXCEEDED_CODE);
    expect(body.error.message).toMatch(
      /^The monthly budget 'voicebot-budget' of app 'voicebot' of department 'dept-speech' has too little left for this request: 0\.00 USD of 0\.0001 USD used in \d{4}-\d{2}, 0\.00 USD held by requests in flight, and this request may cost up to 0\.000278 USD\./,
    );
    expect(speech().stats.requests).toBe(speechRequests);
    expect(await recordedEvents(t.redis, id)).toEqual([]);

    // Another app of the department has no budget: served, and counted in the department's spend.
    const other = randomUUID();
    const served = await fetch(
      `${t.stack.host.url}/api/speech/recognition/conversation/cognitiveservices/v1?language=en-US`,
      {
        method: 'POST',
        headers: gatewayHeaders(
          t.stack,
          other,
          { subscription: 'sub-voice', app: 'ivr', department: 'dept-speech' },
          { 'content-type': 'audio/wav; codecs=audio/pcm; samplerate=16000' },
        ),
        body: wav,
      },
    );
    expect(served.status).toBe(200);
    expect(speech().stats.requests).toBe(speechRequests + 1);
    expect(await spent({ department: 'dept-speech' })).toBe(costMicros(await eventually(other)));
    expect(await spent({ department: 'dept-speech', appId: 'voicebot' })).toBe(0);
  });
});

describe('Redis down', () => {
  it('serves the request all the same (fail-open), and logs it', async () => {
    const redis = t.stack.standIns.find((s) => s.name === 'Redis');
    if (!redis?.restart) throw new Error('the test stack has no restartable Redis');
    await redis.stop();
    try {
      const id = randomUUID();
      const completion = await client(id, {
        subscription: 'sub-outage',
        app: 'ops',
        department: 'dept-outage',
      }).chat.completions.create({ model: 'gpt-4o-mini', messages: question, max_tokens: 20 });
      expect(completion.choices[0]?.message.content).toBeTruthy();
      expect(log.find((line) => line.includes('BUDGET_UNAVAILABLE reserve'))).toMatch(
        /budgets not enforced for this request, served regardless/,
      );
      expect(log.find((line) => line.includes('BUDGET_UNAVAILABLE settle'))).toMatch(
        /cost was not added to its budgets' spend/,
      );
    } finally {
      await redis.restart();
      // The test's own client reconnects too, before the stack's teardown closes it.
      for (let i = 0; i < 100; i++) {
        const pong = await t.redis.ping().catch(() => undefined);
        if (pong === 'PONG') break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    // Once Redis is back, the app's connection is too, and spend is counted again.
    const outage = { subscription: 'sub-outage', app: 'ops', department: 'dept-outage' };
    for (let i = 0; i < 50 && (await spent({ department: 'dept-outage' })) === 0; i++) {
      await client(randomUUID(), outage).chat.completions.create({
        model: 'gpt-4o-mini',
        messages: question,
        max_tokens: 20,
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await spent({ department: 'dept-outage' })).toBeGreaterThan(0);
  });
});
