import { WindowAggregator } from '../../../shared/chargeback/aggregate';
import type { ChargebackConfig } from '../../../shared/chargeback/model';
import { checkChargebackConfig } from '../../../shared/chargeback/model';
import { money, sum } from '../../../shared/chargeback/money';
import type { ConfigSource, PriceSource } from '../../../shared/chargeback/ports';
import { priceTableWith } from '../../../shared/chargeback/prices';
import { ApiError } from '../../../shared/contracts/api-errors';
import { BUDGET_EXCEEDED_CODE, BUDGET_HEADERS, parseBudgetWarnings } from '../../../shared/contracts/budget';
import type { UsageEvent } from '../../../shared/contracts/usage-event';
import { windowIdAt } from '../../../shared/contracts/window';
import type { Attribution } from '../../../shared/metering/attribution';
import type {
  Budget,
  BudgetLedger,
  BudgetObserver,
  ReserveOutcome,
  ReserveRequest,
  SettleRequest,
} from '../../../shared/metering/budget';
import {
  BudgetGate,
  budgetsFor,
  CachedPrices,
  chargedDepartment,
  committedSpend,
  crossedThreshold,
  DEFAULT_OUTPUT_TOKENS,
  microsToUsd,
  openAiEstimate,
  percentUsed,
  pricedEvent,
  refusalError,
  secondsUntilNextMonth,
  toMicros,
  usageCost,
} from '../../../shared/metering/budget';
import { parseOpenAiCall } from '../../../shared/metering/openai-request';
import { estimateChatPromptTokens } from '../../../shared/metering/token-estimate';
import { usageEvent } from '../../fixtures/usage';

/** The pure parts of the budgets: money, cost, estimates, thresholds, messages, and the gate's fail-open. */

const defaults = priceTableWith([]);
const priceFor = defaults.priceFor.bind(defaults);

function config(budgets: unknown[], apps: unknown[] = []): ChargebackConfig {
  const state = checkChargebackConfig({
    departments: [
      { id: 'research', name: 'Research' },
      { id: 'finance', name: 'Finance' },
    ],
    apps,
    budgets,
  });
  if (!state.ok) throw new Error(state.problems.join('; '));
  return state.config;
}

function budget(fields: Partial<Budget> = {}): Budget {
  return {
    id: 'research',
    department: 'research',
    monthlyAmount: '10.00',
    warnAtPercent: [80, 95],
    hard: true,
    ...fields,
  };
}

function body(json: unknown): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(JSON.stringify(json));
}

function call(operation: 'chat/completions' | 'embeddings' | 'responses', json: unknown) {
  return parseOpenAiCall({
    operation,
    form: 'deployment',
    deployment: 'gpt-4o',
    apiVersion: '2024-10-21',
    contentType: 'application/json',
    body: body(json),
  });
}

describe('committedSpend', () => {
  it('sums the committed cost per department and per app, charged as configured now, rounded up once', () => {
    const config = checkChargebackConfig({
      departments: [
        { id: 'research', name: 'Research' },
        { id: 'support', name: 'Support' },
      ],
      apps: [{ appId: 'voicebot', department: 'support' }],
    });
    if (!config.ok) throw new Error(config.problems.join('; '));
    const rows = [
      { department: 'research', appId: 'chat', cost: '0.0000101' },
      { department: 'research', appId: 'chat', cost: '0.0000101' },
      { department: 'research', appId: 'voicebot', cost: '0.0003' }, // mapped to support now
    ];
    expect(committedSpend(rows, config.config)).toEqual([
      { scope: { department: 'research' }, micros: 21 },
      { scope: { department: 'research', appId: 'chat' }, micros: 21 },
      { scope: { department: 'support' }, micros: 300 },
      { scope: { department: 'support', appId: 'voicebot' }, micros: 300 },
    ]);
  });
});

describe('money in the ledger', () => {
  it('is whole micro-dollars, each cost rounded up (enforcement never under-counts)', () => {
    expect(toMicros('0')).toBe(0);
    expect(toMicros('0.000001')).toBe(1);
    expect(toMicros('0.0000001')).toBe(1);
    expect(toMicros('0.0000010000001')).toBe(2);
    expect(toMicros('12.345678')).toBe(12_345_678);
    expect(microsToUsd(12_345_678)).toBe('12.345678');
    expect(() => toMicros('-0.5')).toThrow(/negative/);
  });
});

describe('the cost of a usage', () => {
  const at = '2026-12-02T10:15:00.000Z';
  const events: UsageEvent[] = [
    usageEvent({
      recordedAt: at,
      model: 'gpt-4o-2024-11-20',
      promptTokens: 1800,
      cachedTokens: 1024,
      completionTokens: 333,
      reasoningTokens: 0,
    }),
    usageEvent({
      recordedAt: at,
      deployment: 'o3-mini',
      model: 'o3-mini-2025-01-31',
      promptTokens: 17,
      completionTokens: 999,
      reasoningTokens: 640,
    }),
    usageEvent({
      recordedAt: at,
      api: 'embeddings',
      deployment: 'text-embedding-3-small',
      model: 'text-embedding-3-small',
      promptTokens: 7,
    }),
    usageEvent({
      recordedAt: at,
      api: 'stt',
      deployment: 'stt-en-US',
      model: 'azure-speech-stt-standard',
      audioSeconds: 2.345,
    }),
    usageEvent({
      recordedAt: at,
      api: 'tts',
      deployment: 'tts-neural',
      model: 'azure-speech-tts-neural',
      billableCharacters: 32,
      audioSeconds: 2.3,
    }),
    usageEvent({ recordedAt: at, model: 'a-model-nobody-prices', promptTokens: 100, completionTokens: 10 }),
  ];

  it.each(events.map((e) => [e.api, e.model, e] as const))(
    "%s on %s costs exactly what the chargeback's aggregation charges for it",
    (_api, _model, event) => {
      const aggregator = new WindowAggregator(
        { windowId: windowIdAt(new Date(event.window)), batch: 'b' },
        priceFor,
      );
      aggregator.add(JSON.stringify(event));
      const charged = sum(aggregator.aggregates().map((row) => money(row.cost)));
      expect(usageCost(pricedEvent(event), new Date(event.window), priceFor).toFixed()).toBe(
        charged.toFixed(),
      );
    },
  );

  it('prices cached input apart, reasoning within the output, synthesis by characters only', () => {
    const [chat, reasoning, , stt, tts] = events.map((e) =>
      usageCost(pricedEvent(e), new Date(at), priceFor).toFixed(),
    );
    // gpt-4o: 776 input at 2.50, 1024 cached at 1.25, 333 output at 10.00 per 1M tokens.
    expect(chat).toBe('0.00655');
    // o3-mini: 17 input at 1.10, 999 output at 4.40 per 1M tokens.
    expect(reasoning).toBe('0.0044143');
    // 2.345 s at 1.00 per hour.
    expect(stt).toBe(money('2.345').div(3600).toFixed());
    // 32 characters at 15.00 per 1M; the 2.3 s of audio produced are not billed.
    expect(tts).toBe('0.00048');
  });
});

describe('the estimate of an Azure OpenAI request', () => {
  const messages = [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'Summarise the chargeback rules.' },
  ];
  const prompt = estimateChatPromptTokens(messages);

  it('is the prompt plus the output limit the caller set, max_completion_tokens first, times n', () => {
    expect(openAiEstimate(call('chat/completions', { messages, max_tokens: 50 }))).toEqual({
      promptTokens: prompt,
      completionTokens: 50,
    });
    expect(
      openAiEstimate(call('chat/completions', { messages, max_tokens: 50, max_completion_tokens: 70 })),
    ).toEqual({ promptTokens: prompt, completionTokens: 70 });
    expect(openAiEstimate(call('chat/completions', { messages, max_tokens: 50, n: 3 }))).toEqual({
      promptTokens: prompt,
      completionTokens: 150,
    });
  });

  it('reserves the default output cap when the caller set no (usable) limit', () => {
    expect(openAiEstimate(call('chat/completions', { messages })).completionTokens).toBe(
      DEFAULT_OUTPUT_TOKENS,
    );
    expect(openAiEstimate(call('chat/completions', { messages, max_tokens: -1 })).completionTokens).toBe(
      DEFAULT_OUTPUT_TOKENS,
    );
    expect(openAiEstimate(call('chat/completions', { messages }), 100).completionTokens).toBe(100);
  });

  it('counts the tools and a response request’s instructions with the prompt', () => {
    const tools = [
      { type: 'function', function: { name: 'lookup_cost_center', parameters: { type: 'object' } } },
    ];
    const withTools = openAiEstimate(call('chat/completions', { messages, tools, max_tokens: 1 }));
    expect(withTools.promptTokens).toBeGreaterThan(prompt + 5);
    const responses = openAiEstimate(
      call('responses', {
        model: 'gpt-4o',
        input: 'Totals by department, please.',
        instructions: 'Answer in one short sentence, in the tone of a finance controller.',
        max_output_tokens: 64,
      }),
    );
    const plain = openAiEstimate(
      call('responses', { model: 'gpt-4o', input: 'Totals by department, please.', max_output_tokens: 64 }),
    );
    expect(responses.completionTokens).toBe(64);
    expect(responses.promptTokens).toBeGreaterThan((plain.promptTokens ?? 0) + 10);
  });

  it('has no output for embeddings', () => {
    expect(openAiEstimate(call('embeddings', { input: ['one', 'two words'] }))).toEqual({ promptTokens: 3 });
  });
});

describe('which budgets apply, and their thresholds', () => {
  const attribution: Attribution = {
    subscriptionId: 'sub-1',
    appId: 'chat-app',
    department: 'finance',
    unassigned: false,
  };

  it('charges an app the configuration maps to its department, as the reports do', () => {
    const mapped = config([], [{ appId: 'chat-app', department: 'research' }]);
    expect(chargedDepartment(mapped, attribution)).toBe('research');
    expect(chargedDepartment(config([]), attribution)).toBe('finance');
    expect(chargedDepartment(undefined, attribution)).toBe('finance');
  });

  it("applies the department's budget and its app's, not another app's or department's", () => {
    const c = config([
      { id: 'research', department: 'research', monthlyAmount: '100' },
      { id: 'research-chat', department: 'research', appId: 'chat-app', monthlyAmount: '10' },
      { id: 'research-other', department: 'research', appId: 'other-app', monthlyAmount: '10' },
      { id: 'finance', department: 'finance', monthlyAmount: '10' },
    ]);
    expect(budgetsFor(c, 'research', 'chat-app').map((b) => b.id)).toEqual(['research', 'research-chat']);
    expect(budgetsFor(c, 'research', 'notebooks').map((b) => b.id)).toEqual(['research']);
  });

  it('warns at the highest threshold the settled spend reached', () => {
    const b = budget({ monthlyAmount: '10.00', warnAtPercent: [50, 80, 95] });
    expect(percentUsed(7_999_999, 10_000_000)).toBe(79);
    expect(crossedThreshold(b, 4_999_999)).toBeUndefined();
    expect(crossedThreshold(b, 5_000_000)).toBe(50);
    expect(crossedThreshold(b, 8_000_000)).toBe(80);
    expect(crossedThreshold(b, 12_000_000)).toBe(95);
  });
});

describe('a refusal', () => {
  const now = new Date('2026-12-31T23:59:00.000Z');

  it('is a 429 naming the budget, whose it is and its amount, retried only next month when spent', () => {
    const error = refusalError(
      {
        budget: budget({ id: 'research-chat', appId: 'chat-app', monthlyAmount: '10.00' }),
        month: '2026-12',
        settledMicros: 10_000_120,
        reservedMicros: 0,
        estimateMicros: 550,
        spent: true,
      },
      now,
    );
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(429);
    expect(error.code).toBe(BUDGET_EXCEEDED_CODE);
    expect(error.message).toBe(
      "The monthly budget 'research-chat' of app 'chat-app' of department 'research' is spent: 10.00012 USD of 10.00 USD used in 2026-12. Requests are refused until the budget resets at the start of next month (UTC) or is raised.",
    );
    expect(error.headers).toEqual({ 'retry-after': '60', [BUDGET_HEADERS.shouldRetry]: 'false' });
    expect(error.toBody().error.code).toBe(BUDGET_EXCEEDED_CODE);
  });

  it('says when only requests in flight hold the rest, and then asks for a retry in a second', () => {
    const error = refusalError(
      {
        budget: budget(),
        month: '2026-12',
        settledMicros: 9_000_000,
        reservedMicros: 999_900,
        estimateMicros: 550,
        spent: false,
      },
      now,
    );
    expect(error.message).toMatch(/budget 'research' of department 'research' has too little left/);
    expect(error.message).toMatch(
      /9\.00 USD of 10\.00 USD used in 2026-12, 0\.9999 USD held by requests in flight/,
    );
    expect(error.message).toMatch(/may cost up to 0\.00055 USD/);
    expect(error.headers).toEqual({ 'retry-after': '1' });
  });

  it('counts the seconds to the start of the next UTC month', () => {
    expect(secondsUntilNextMonth(new Date('2026-12-31T23:59:59.000Z'))).toBe(1);
    expect(secondsUntilNextMonth(new Date('2026-12-31T23:59:59.999Z'))).toBe(1);
    expect(secondsUntilNextMonth(new Date('2027-02-01T00:00:00.000Z'))).toBe(28 * 24 * 3600);
  });
});

describe('the cached price table', () => {
  const override = {
    id: 'negotiated-gpt-4o-output',
    model: 'gpt-4o',
    meter: 'output-tokens',
    unitPrice: '5.00',
    currency: 'USD',
    effectiveFrom: '2025-01-01T00:00:00.000Z',
    source: 'contract 42',
  };
  const at = new Date('2026-12-02T10:15:00.000Z');

  it("uses the admins' overrides, as the chargeback does", async () => {
    const source: PriceSource = {
      overrides: () => Promise.resolve([{ document: override, writtenAt: new Date('2026-01-01T00:00:00Z') }]),
    };
    const prices = await new CachedPrices(source, { firstLoadTimeoutMs: 1000 }).get();
    expect(prices.priceFor('gpt-4o-2024-11-20', 'output-tokens', at)?.unitPrice).toBe('5.00');
    expect(prices.highest.get('output-tokens')?.unitPrice).toBe('10.00');
  });

  it('falls back to the list prices when the overrides are invalid or unreadable, and says so', async () => {
    const problems: string[] = [];
    const invalid: PriceSource = {
      overrides: () => Promise.resolve([{ document: { ...override, unitPrice: 'cheap' }, writtenAt: at }]),
    };
    const prices = await new CachedPrices(invalid, {
      firstLoadTimeoutMs: 1000,
      onProblem: (p) => problems.push(p),
    }).get();
    expect(prices.priceFor('gpt-4o-2024-11-20', 'output-tokens', at)?.unitPrice).toBe('10.00');
    expect(problems[0]).toMatch(/negotiated-gpt-4o-output.*invalid/);

    const hanging: PriceSource = { overrides: () => new Promise(() => undefined) };
    const cache = new CachedPrices(hanging, { firstLoadTimeoutMs: 20, onProblem: (p) => problems.push(p) });
    const slow = await cache.get();
    expect(slow.priceFor('gpt-4o-2024-11-20', 'output-tokens', at)?.unitPrice).toBe('10.00');
    expect(problems[1]).toMatch(/took too long.*list prices/);
    // Later requests do not wait for the hanging store again: the list prices, at once.
    const started = Date.now();
    expect(await cache.get()).toBe(slow);
    expect(Date.now() - started).toBeLessThan(15);
    expect(problems).toHaveLength(2);
  });
});

describe('the gate fails open', () => {
  const attribution: Attribution = {
    subscriptionId: 's',
    appId: 'a',
    department: 'research',
    unassigned: false,
  };
  const configured: ConfigSource = {
    current: () =>
      Promise.resolve({
        version: 'v',
        state: { ok: true, config: config([{ id: 'research', department: 'research', monthlyAmount: '1' }]) },
      }),
  };
  const noPrices: PriceSource = { overrides: () => Promise.resolve([]) };

  function observed(): { observer: BudgetObserver; seen: string[] } {
    const seen: string[] = [];
    return {
      seen,
      observer: {
        warned: (w) => seen.push(`warned ${w.budgetId}`),
        refused: (r) => seen.push(`refused ${r.budget.id}`),
        unavailable: (stage, problem, first) => seen.push(`unavailable ${stage} ${first} ${problem}`),
      },
    };
  }

  it('when the ledger fails or hangs: the request goes through, reported (logged once a minute)', async () => {
    const calls: string[] = [];
    const broken: BudgetLedger = {
      reserve: (r: ReserveRequest) => {
        calls.push(`reserve ${r.estimateMicros}`);
        return r.department === 'research'
          ? Promise.reject(new Error('Connection is closed.'))
          : new Promise(() => undefined);
      },
      settle: (s: SettleRequest) => {
        calls.push(`settle ${s.costMicros}`);
        return new Promise(() => undefined);
      },
      spend: () => Promise.reject(new Error('unused')),
      raiseSettled: () => Promise.reject(new Error('unused')),
    };
    const gate = new BudgetGate({
      ledger: broken,
      config: configured,
      prices: noPrices,
      ledgerTimeoutMs: 30,
      configTimeoutMs: 500,
      newId: () => 'r1',
    });
    const { observer, seen } = observed();
    const hold = await gate.reserve(
      { attribution, api: 'chat', deployment: 'gpt-4o', figures: { promptTokens: 10, completionTokens: 10 } },
      observer,
    );
    expect(hold.headers).toEqual({});
    await hold.settle(usageEvent({ promptTokens: 10, completionTokens: 5 }));
    await hold.settle(usageEvent({ promptTokens: 10, completionTokens: 5 })); // once only
    const again = await gate.reserve(
      { attribution, api: 'chat', deployment: 'gpt-4o', figures: { promptTokens: 10 } },
      observer,
    );
    expect(again.headers).toEqual({});
    expect(calls).toEqual(['reserve 125', 'settle 75', 'reserve 25']);
    expect(seen).toEqual([
      'unavailable reserve true Connection is closed.',
      'unavailable settle true the budget ledger took too long to answer (30 ms)',
      'unavailable reserve false Connection is closed.',
    ]);
  });

  it('when the ledger answers after the timeout: the request goes through, and its settle still drops the hold', async () => {
    const settles: SettleRequest[] = [];
    let granted: (outcome: ReserveOutcome) => void = () => undefined;
    const slow: BudgetLedger = {
      // Redis runs the script, but its answer comes after the gate stopped waiting: the hold exists.
      reserve: () => new Promise((resolve) => (granted = resolve)),
      settle: (s: SettleRequest) => {
        settles.push(s);
        return Promise.resolve();
      },
      spend: () => Promise.reject(new Error('unused')),
      raiseSettled: () => Promise.reject(new Error('unused')),
    };
    const gate = new BudgetGate({
      ledger: slow,
      config: configured,
      prices: noPrices,
      ledgerTimeoutMs: 30,
      configTimeoutMs: 500,
      newId: () => 'r-late',
    });
    const { observer } = observed();
    const hold = await gate.reserve(
      { attribution, api: 'chat', deployment: 'gpt-4o', figures: { promptTokens: 10, completionTokens: 10 } },
      observer,
    );
    granted({ granted: true, spend: [{ settledMicros: 0, reservedMicros: 0 }] });
    await hold.settle(usageEvent({ promptTokens: 10, completionTokens: 5 }));
    expect(settles).toHaveLength(1);
    expect(settles[0]?.reservation?.id).toBe('r-late');
  });

  it('when the configuration cannot be read or is invalid: no budget is enforced', async () => {
    const ledger: BudgetLedger = {
      reserve: () => Promise.reject(new Error('must not be asked')),
      settle: () => Promise.resolve(),
      spend: () => Promise.reject(new Error('unused')),
      raiseSettled: () => Promise.reject(new Error('unused')),
    };
    for (const source of [
      { current: () => Promise.reject(new Error('Cosmos DB is down')) },
      {
        current: () =>
          Promise.resolve({
            version: 'x',
            state: { ok: false as const, problems: ['departments: required'] },
          }),
      },
    ]) {
      const gate = new BudgetGate({
        ledger,
        config: source,
        prices: noPrices,
        ledgerTimeoutMs: 30,
        configTimeoutMs: 100,
        newId: () => 'r',
      });
      const { observer, seen } = observed();
      const hold = await gate.reserve(
        { attribution, api: 'chat', deployment: 'gpt-4o', figures: { promptTokens: 1 } },
        observer,
      );
      expect(hold.headers).toEqual({});
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatch(
        /^unavailable config true (Cosmos DB is down|the chargeback configuration is invalid: departments: required)$/,
      );
    }
  });

  it('parses its own warning header', () => {
    expect(parseBudgetWarnings('research 85% of 10.00 USD used, research-chat 101% of 2 USD used')).toEqual([
      { budgetId: 'research', percentUsed: 85, amount: '10.00' },
      { budgetId: 'research-chat', percentUsed: 101, amount: '2' },
    ]);
  });
});
