import type Decimal from 'decimal.js';
import type { ChargebackConfig, Meter, PriceEntry } from '../chargeback/model';
import { PRICING_UNITS, priceEntrySchema } from '../chargeback/model';
import { money, Money } from '../chargeback/money';
import type { ConfigSource, PriceSource } from '../chargeback/ports';
import { DEFAULT_PRICES, priceTableWith } from '../chargeback/prices';
import { ApiError, ensureError } from '../contracts/api-errors';
import type { BudgetWarning } from '../contracts/budget';
import { BUDGET_EXCEEDED_CODE, BUDGET_HEADERS, budgetWarningValue } from '../contracts/budget';
import { monthOf } from '../contracts/report-period';
import type { UsageApi, UsageEvent, UsageFigures } from '../contracts/usage-event';
import { NO_USAGE } from '../contracts/usage-event';
import type { Attribution } from './attribution';
import type { OpenAiCall } from './openai-request';
import { estimatePromptTokens } from './openai-request';
import { countTextTokens } from './token-estimate';

/**
 * Monthly budgets per department (or per app of a department), enforced before the provider is
 * called. See docs/budgets.md for the design and the bound it guarantees.
 *
 * Spend is the month-to-date (UTC calendar month) usage cost of every served request, priced as the
 * chargeback prices it (the same price table, the same meters, the price in effect at the start of
 * the request's usage window). It is kept in counters of the ledger (Redis, adapters/redis-budget.ts)
 * in whole micro-dollars, each request's cost rounded up: enforcement is conservative.
 *
 * Per request: `reserve` checks every hard budget of the request, `settled + reserved + estimate ≤
 * amount`, and holds the estimate (atomically, for all of them); after the call `settle` replaces
 * the hold by the actual cost of what was recorded (nothing, when the upstream served nothing). A
 * hold that is never settled (a crashed instance) expires. Budgets never stop metering: when the
 * ledger, the configuration or the prices cannot be read, the request is served (fail-open), and
 * the observer is told.
 */

/** The ledger's unit: one millionth of a USD. */
export const MICROS_PER_USD = 1_000_000;

/** How long a reservation holds budget when its request never settles (a crashed instance). */
export const HOLD_MS = 10 * 60_000;

/**
 * The output tokens an Azure OpenAI request is reserved for when the caller set no limit
 * (max_tokens, max_completion_tokens, max_output_tokens): 4,096, far more than a typical chat
 * answer, though models can write more (GPT-4o up to 16,384). A caller that sets no limit and gets
 * a longer answer can overshoot its budgets by the difference (docs/budgets.md states the bound).
 */
export const DEFAULT_OUTPUT_TOKENS = 4096;

/** How long the admins' price overrides are cached before they are read again (in the background). */
export const PRICE_REFRESH_MS = 60_000;

/** A cost in whole micro-dollars, rounded up: the ledger never under-counts a request. */
export function toMicros(cost: Decimal.Value): number {
  const micros = money(cost).times(MICROS_PER_USD).ceil();
  if (micros.isNegative()) throw new Error(`a cost cannot be negative: ${money(cost).toFixed()}`);
  return micros.toNumber();
}

/**
 * A budget amount in whole micro-dollars, rounded down: enforcement is never more lenient than the
 * configured amount (costs round up, amounts down).
 */
export function budgetMicros(amount: Decimal.Value): number {
  return Math.min(money(amount).times(MICROS_PER_USD).floor().toNumber(), Number.MAX_SAFE_INTEGER);
}

/** Micro-dollars as an exact USD decimal string. */
export function microsToUsd(micros: number): string {
  return money(micros).div(MICROS_PER_USD).toFixed();
}

// ---- cost of a usage -------------------------------------------------------------------------------

export type PriceFor = (model: string, meter: Meter, at: Date) => PriceEntry | undefined;

export interface PricedUsage {
  api: UsageApi;
  model: string;
  figures: Partial<UsageFigures>;
}

/**
 * What each meter consumes, as the chargeback's aggregation counts a usage event
 * (chargeback/aggregate.ts): cached input apart from the rest of the prompt, reasoning within the
 * output, audio only where it is the input (speech-to-text), synthesis by characters.
 */
export function meterQuantities(usage: PricedUsage): Array<[Meter, number]> {
  const figures = { ...NO_USAGE, ...usage.figures };
  const cached = Math.min(figures.cachedTokens, figures.promptTokens);
  return [
    ['input-tokens', figures.promptTokens - cached],
    ['cached-input-tokens', cached],
    ['output-tokens', figures.completionTokens],
    ['audio-seconds', usage.api !== 'tts' ? figures.audioSeconds : 0],
    ['tts-characters', figures.billableCharacters],
  ];
}

/**
 * The exact cost of a usage at the prices in effect at `at`: Σ quantity × unit price / unit size. A
 * meter no price matches costs 0, as in the chargeback (which flags it).
 */
export function usageCost(usage: PricedUsage, at: Date, priceFor: PriceFor): Decimal {
  let cost = new Money(0);
  for (const [meter, quantity] of meterQuantities(usage)) {
    if (quantity === 0) continue;
    const price = priceFor(usage.model, meter, at);
    if (!price) continue;
    cost = cost.plus(new Money(String(quantity)).times(price.unitPrice).div(PRICING_UNITS[meter].size));
  }
  return cost;
}

/** A usage event as the chargeback prices it: its API, the model the upstream reported, its figures. */
export function pricedEvent(event: UsageEvent): PricedUsage {
  return { api: event.api, model: event.model, figures: event };
}

// ---- estimates ------------------------------------------------------------------------------------

/** A positive integer token limit a caller sent, else undefined (the upstream refuses anything else). */
function tokenLimit(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}

/**
 * The most an Azure OpenAI request can consume, estimated before the call: the prompt's tokens
 * (token-estimate.ts, plus a Responses API request's `instructions` and the tools' definitions),
 * and as output the limit the caller set (`max_completion_tokens`, `max_tokens`,
 * `max_output_tokens`; times `n` choices), or `defaultOutputTokens` when it set none. Embeddings
 * have no output. Every prompt token is priced as uncached input (cached input is cheaper).
 */
export function openAiEstimate(
  call: Pick<OpenAiCall, 'api' | 'body'>,
  defaultOutputTokens: number = DEFAULT_OUTPUT_TOKENS,
): Partial<UsageFigures> {
  const body = call.body as Record<string, unknown>;
  let promptTokens = estimatePromptTokens(call);
  if (call.api === 'embeddings') return { promptTokens };
  if (typeof body.instructions === 'string') promptTokens += countTextTokens(body.instructions);
  for (const field of ['tools', 'functions'] as const) {
    if (Array.isArray(body[field])) promptTokens += countTextTokens(JSON.stringify(body[field]));
  }
  if (call.api === 'responses') {
    return { promptTokens, completionTokens: tokenLimit(body.max_output_tokens) ?? defaultOutputTokens };
  }
  const perChoice =
    tokenLimit(body.max_completion_tokens) ?? tokenLimit(body.max_tokens) ?? defaultOutputTokens;
  const choices = Math.min(tokenLimit(body.n) ?? 1, 128);
  return { promptTokens, completionTokens: perChoice * choices };
}

// ---- budgets of a request -------------------------------------------------------------------------

export type Budget = ChargebackConfig['budgets'][number];

/** Where spend is counted: a department, or one app of it. */
export interface SpendScope {
  department: string;
  appId?: string;
}

/**
 * The department a request is charged to, as the reports charge it: the department the
 * configuration maps the app to, else the one the gateway named.
 */
export function chargedDepartment(
  config: ChargebackConfig | undefined,
  attribution: Pick<Attribution, 'department' | 'appId'>,
): string {
  return config?.apps.find((a) => a.appId === attribution.appId)?.department ?? attribution.department;
}

/** The budgets that apply to a request of `appId` charged to `department`: the department's, the app's. */
export function budgetsFor(config: ChargebackConfig, department: string, appId: string): Budget[] {
  return config.budgets.filter(
    (b) => b.department === department && (b.appId === undefined || b.appId === appId),
  );
}

/** Whole percent of the amount used, floored. */
export function percentUsed(spentMicros: number, amountMicros: number): number {
  return Math.floor((spentMicros * 100) / amountMicros);
}

/**
 * The highest warning threshold of a budget that its month-to-date spend (settled, before this
 * request) has reached, or undefined.
 */
export function crossedThreshold(budget: Budget, settledMicros: number): number | undefined {
  const used = percentUsed(settledMicros, budgetMicros(budget.monthlyAmount));
  let crossed: number | undefined;
  for (const threshold of budget.warnAtPercent) if (used >= threshold) crossed = threshold;
  return crossed;
}

/** Seconds from `now` to the start of the next UTC calendar month (at least 1). */
export function secondsUntilNextMonth(now: Date): number {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
  return Math.max(1, Math.ceil((next - now.getTime()) / 1000));
}

/** How a budget is named in messages: its id and whose it is. */
export function budgetOwner(budget: Budget): string {
  return budget.appId === undefined
    ? `department '${budget.department}'`
    : `app '${budget.appId}' of department '${budget.department}'`;
}

/** USD amounts in messages: exact to the micro-dollar, with at least two decimals. */
function usd(micros: number): string {
  const [units = '0', fraction = ''] = microsToUsd(micros).split('.');
  return `${units}.${fraction.padEnd(2, '0')}`;
}

export interface Refusal {
  budget: Budget;
  month: string;
  settledMicros: number;
  reservedMicros: number;
  estimateMicros: number;
  /** The budget is spent (settled spend alone reaches the amount), or this request's estimate does not fit. */
  spent: boolean;
}

/**
 * The answer to a request a hard budget refused: 429 in the Azure OpenAI error shape, naming the
 * budget, whose it is and its amount. When the settled spend alone leaves no room for the request,
 * only the next month (or a larger budget) can lift the refusal: `retry-after` runs to the start of
 * the next UTC month and the OpenAI SDKs are told not to retry. When only requests in flight hold
 * the rest, a retry in a second may fit.
 */
export function refusalError(refusal: Refusal, now: Date): ApiError {
  const { budget, month, settledMicros, reservedMicros, estimateMicros } = refusal;
  const amount = `${budget.monthlyAmount} USD`;
  const whose = `The monthly budget '${budget.id}' of ${budgetOwner(budget)}`;
  const untilNextMonth = refusal.spent || settledMicros + estimateMicros > budgetMicros(budget.monthlyAmount);
  const message = refusal.spent
    ? `${whose} is spent: ${usd(settledMicros)} USD of ${amount} used in ${month}. Requests are refused until the budget resets at the start of next month (UTC) or is raised.`
    : `${whose} has too little left for this request: ${usd(settledMicros)} USD of ${amount} used in ${month}, ${usd(reservedMicros)} USD held by requests in flight, and this request may cost up to ${usd(estimateMicros)} USD. Send a smaller request (a lower output token limit such as max_tokens, a shorter input)${untilNextMonth ? '' : ', or retry once requests in flight have finished'}.`;
  const headers: Record<string, string> = untilNextMonth
    ? { 'retry-after': String(secondsUntilNextMonth(now)), [BUDGET_HEADERS.shouldRetry]: 'false' }
    : { 'retry-after': '1' };
  return new ApiError(429, BUDGET_EXCEEDED_CODE, message, null, headers);
}

// ---- the ledger (port) ----------------------------------------------------------------------------

export interface ReserveRequest {
  /** The charged department: every scope of a request is one of its department's. */
  department: string;
  /** YYYY-MM (UTC) of the reservation. */
  month: string;
  /** Unique per request. */
  reservationId: string;
  estimateMicros: number;
  holdMs: number;
  /** One per budget of the request: its scope (no appId: the department's), amount, and whether it refuses. */
  limits: Array<{ appId?: string; amountMicros: number; hard: boolean }>;
}

export interface ScopeSpend {
  settledMicros: number;
  /** Live reservations (expired ones are dropped first). */
  reservedMicros: number;
}

/** Granted: each limit's spend before this reservation; refused: the first hard limit that refused, and its spend. */
export type ReserveOutcome =
  { granted: true; spend: ScopeSpend[] } | { granted: false; refusedBy: number; spend: ScopeSpend };

export interface SettleRequest {
  department: string;
  appId: string;
  /** The month the cost counts in: the month of the usage event's window (as the chargeback counts it). */
  month: string;
  costMicros: number;
  /** The reservation to drop, when one was made. */
  reservation?: { id: string; month: string };
}

/**
 * The spend counters (Redis). Counters are per month and scope; every served request's cost is
 * added to its department's and its app's counter, whether or not a budget names them, so a budget
 * added mid-month starts from the month's spend so far.
 */
export interface BudgetLedger {
  /** Atomically: checks every hard limit (settled + reserved + estimate ≤ amount) and, if all pass, holds the estimate on them. */
  reserve(request: ReserveRequest): Promise<ReserveOutcome>;
  /** Adds the cost to the department's and the app's counters and drops the reservation, atomically. */
  settle(request: SettleRequest): Promise<void>;
  spend(scope: SpendScope, month: string): Promise<ScopeSpend>;
  /** Raises a scope's settled spend of a month to `committedMicros` when lower; returns it as it was. */
  raiseSettled(scope: SpendScope, month: string, committedMicros: number): Promise<number>;
}

/** One row of committed usage, as the chargeback stored it (a day's roll-up). */
export interface CommittedCost {
  department: string;
  appId: string;
  /** Exact decimal. */
  cost: string;
}

/**
 * The month's committed spend per budget scope (each department, and each app of a department), in
 * whole micro-dollars rounded up: what the ledger's counters must hold at least. Departments are
 * the ones usage is charged to now (the configuration's app mapping), as at request time and in
 * the month's report.
 */
export function committedSpend(
  rows: readonly CommittedCost[],
  config: ChargebackConfig | undefined,
): Array<{ scope: SpendScope; micros: number }> {
  const totals = new Map<string, { scope: SpendScope; cost: Decimal }>();
  const add = (key: string, scope: SpendScope, cost: string): void => {
    const entry = totals.get(key) ?? { scope, cost: money(0) };
    entry.cost = entry.cost.plus(cost);
    totals.set(key, entry);
  };
  for (const row of rows) {
    const department = chargedDepartment(config, row);
    add(`d|${department}`, { department }, row.cost);
    add(`a|${department}|${row.appId}`, { department, appId: row.appId }, row.cost);
  }
  return [...totals.values()].map(({ scope, cost }) => ({ scope, micros: toMicros(cost) }));
}

// ---- prices ---------------------------------------------------------------------------------------

interface LoadedPrices {
  priceFor: PriceFor;
  /** The highest unit price of each meter in the table: what an unknown model is estimated at. */
  highest: Map<Meter, PriceEntry>;
  problem?: string;
}

function loadedPrices(entries: readonly PriceEntry[], priceFor: PriceFor, problem?: string): LoadedPrices {
  const highest = new Map<Meter, PriceEntry>();
  for (const entry of entries) {
    const current = highest.get(entry.meter);
    if (!current || money(entry.unitPrice).greaterThan(current.unitPrice)) highest.set(entry.meter, entry);
  }
  return { priceFor, highest, ...(problem === undefined ? {} : { problem }) };
}

const DEFAULT_TABLE = priceTableWith([]);
const DEFAULTS_ONLY = loadedPrices(DEFAULT_PRICES, (model, meter, at) =>
  DEFAULT_TABLE.priceFor(model, meter, at),
);

/**
 * The chargeback's price table (defaults plus the admins' overrides), cached for PRICE_REFRESH_MS
 * and then refreshed in the background, so a slow price store never slows a request down after the
 * first load. An invalid override (which makes the chargeback wait) or an unreadable store leaves
 * the last table in use, else the defaults; the problem is reported.
 */
export class CachedPrices {
  #current: { prices: LoadedPrices; at: number } | undefined;
  #loading: Promise<LoadedPrices> | undefined;

  constructor(
    private readonly source: PriceSource,
    private readonly options: {
      refreshMs?: number;
      firstLoadTimeoutMs: number;
      onProblem?: (problem: string) => void;
    },
  ) {}

  async get(): Promise<LoadedPrices> {
    const current = this.#current;
    if (current && Date.now() - current.at < (this.options.refreshMs ?? PRICE_REFRESH_MS))
      return current.prices;
    const loading = (this.#loading ??= this.#load().finally(() => (this.#loading = undefined)));
    if (current) {
      loading.catch(() => undefined);
      return current.prices; // stale while the refresh runs
    }
    try {
      return await withTimeout(
        loading,
        this.options.firstLoadTimeoutMs,
        'the price overrides took too long to read',
      );
    } catch (error) {
      this.options.onProblem?.(`${ensureError(error).message}; list prices are used until they load`);
      // Later requests use the list prices at once (stale: the load goes on in the background).
      this.#current ??= { prices: DEFAULTS_ONLY, at: 0 };
      return DEFAULTS_ONLY;
    }
  }

  async #load(): Promise<LoadedPrices> {
    let prices: LoadedPrices;
    try {
      const overrides = await this.source.overrides();
      const table = priceTableWith(overrides);
      const entries = [
        ...DEFAULT_PRICES,
        ...overrides.flatMap(({ document }) => {
          const parsed = priceEntrySchema.safeParse(document);
          return parsed.success ? [parsed.data] : [];
        }),
      ];
      prices = loadedPrices(entries, (model, meter, at) => table.priceFor(model, meter, at));
    } catch (error) {
      const problem = ensureError(error).message;
      this.options.onProblem?.(`${problem}; budgets keep the ${this.#current ? 'last' : 'list'} prices`);
      prices = this.#current?.prices ?? DEFAULTS_ONLY;
    }
    this.#current = { prices, at: Date.now() };
    return prices;
  }
}

// ---- the gate -------------------------------------------------------------------------------------

export interface BudgetCheck {
  attribution: Attribution;
  api: UsageApi;
  /** The deployment (Azure OpenAI) or the speech deployment: what the estimate is priced as until a model is known. */
  deployment: string;
  /** The model, when known before the call (speech). */
  model?: string;
  /** The usage the request may consume at most (the estimate). */
  figures: Partial<UsageFigures>;
}

/** A request's budgets, checked and held: the headers to answer with, then the settlement. */
export interface BudgetHold {
  /** The warning header, when a threshold is crossed. */
  readonly headers: Record<string, string>;
  /**
   * Replaces the hold by the cost of the usage event recorded for the request, or releases it when
   * nothing was recorded. Runs once (later calls do nothing); never rejects.
   */
  settle(event: UsageEvent | undefined): Promise<void>;
}

/** What a request's budgets did, for the log and the metrics. */
export interface BudgetObserver {
  warned(warning: BudgetWarning & { budget: Budget; threshold: number; month: string; first: boolean }): void;
  refused(refusal: Refusal): void;
  /**
   * A part of the budget check failed and the request was let through (fail-open), or a served
   * request's cost could not be counted. `first`: the first such report in a minute (log it).
   */
  unavailable(stage: 'config' | 'reserve' | 'settle' | 'price-table', problem: string, first: boolean): void;
}

/** The proxies' view of the budgets: check a request before the call. */
export interface RequestBudget {
  /** Throws the refusal (an ApiError, 429) when a hard budget refuses the request; otherwise holds its estimate. */
  reserve(check: BudgetCheck): Promise<BudgetHold>;
}

export interface BudgetGateDeps {
  ledger: BudgetLedger;
  config: ConfigSource;
  prices: PriceSource;
  /** Longest wait for the ledger, per call, before failing open. */
  ledgerTimeoutMs: number;
  /** Longest wait for the configuration (and for the first load of the prices) before failing open. */
  configTimeoutMs: number;
  holdMs?: number;
  priceRefreshMs?: number;
  now?: () => Date;
  newId: () => string;
}

const MODEL_MEMORY = 1000;
const UNAVAILABLE_LOG_MS = 60_000;

export class BudgetGate {
  readonly #prices: CachedPrices;
  /** deployment → the model the upstream last reported for it: what an estimate is priced as. */
  readonly #models = new Map<string, string>();
  /** `month budget threshold` warned about on this instance (each is logged once). */
  readonly #warned = new Set<string>();
  readonly #lastUnavailable = new Map<string, number>();
  #priceProblem: string | undefined;

  constructor(private readonly deps: BudgetGateDeps) {
    this.#prices = new CachedPrices(deps.prices, {
      refreshMs: deps.priceRefreshMs,
      firstLoadTimeoutMs: deps.configTimeoutMs,
      onProblem: (problem) => {
        this.#priceProblem = problem;
      },
    });
  }

  /**
   * Raises each scope's spend of a month to what the chargeback has committed for it (its day
   * roll-ups), where the counters hold less: counters lost to a flush or failover, or spend from
   * before the counters existed. Never lowers a counter. Returns the scopes it raised.
   */
  async reconcile(
    month: string,
    rows: readonly CommittedCost[],
  ): Promise<Array<{ scope: SpendScope; fromMicros: number; toMicros: number }>> {
    const snapshot = await this.deps.config.current();
    const committed = committedSpend(rows, snapshot.state.ok ? snapshot.state.config : undefined);
    const raised: Array<{ scope: SpendScope; fromMicros: number; toMicros: number }> = [];
    for (const { scope, micros } of committed) {
      const before = await this.deps.ledger.raiseSettled(scope, month, micros);
      if (before < micros) raised.push({ scope, fromMicros: before, toMicros: micros });
    }
    return raised;
  }

  /** A request's view of the gate, reporting to `observer`. */
  forRequest(observer: BudgetObserver): RequestBudget {
    return { reserve: (check) => this.reserve(check, observer) };
  }

  async reserve(check: BudgetCheck, observer: BudgetObserver): Promise<BudgetHold> {
    const now = this.deps.now?.() ?? new Date();
    const month = monthOf(now);
    const unavailable = (stage: Parameters<BudgetObserver['unavailable']>[0], problem: string): void =>
      observer.unavailable(stage, problem, this.#firstInMinute(stage));

    let config: ChargebackConfig | undefined;
    try {
      const snapshot = await withTimeout(
        this.deps.config.current(),
        this.deps.configTimeoutMs,
        'the chargeback configuration took too long to read',
      );
      if (snapshot.state.ok) config = snapshot.state.config;
      else
        unavailable(
          'config',
          `the chargeback configuration is invalid: ${snapshot.state.problems.join('; ')}`,
        );
    } catch (error) {
      unavailable('config', ensureError(error).message);
    }
    const department = chargedDepartment(config, check.attribution);
    const appId = check.attribution.appId;
    const budgets = config ? budgetsFor(config, department, appId) : [];
    const settleScope = { department, appId };
    if (budgets.length === 0) return this.#hold(settleScope, undefined, {}, observer);

    const prices = await this.#pricesReporting(unavailable);
    const model = check.model ?? this.#models.get(check.deployment) ?? check.deployment;
    const estimatePrice: PriceFor = (m, meter, at) =>
      prices.priceFor(m, meter, at) ?? prices.highest.get(meter);
    // Capped where Redis integers stay exact: an estimate that large exceeds any budget anyway.
    const estimateMicros = Math.min(
      toMicros(usageCost({ api: check.api, model, figures: check.figures }, now, estimatePrice)),
      Number.MAX_SAFE_INTEGER,
    );
    const reservationId = this.deps.newId();
    let outcome: ReserveOutcome;
    try {
      outcome = await withTimeout(
        this.deps.ledger.reserve({
          department,
          month,
          reservationId,
          estimateMicros,
          holdMs: this.deps.holdMs ?? HOLD_MS,
          limits: budgets.map((b) => ({
            ...(b.appId === undefined ? {} : { appId: b.appId }),
            amountMicros: budgetMicros(b.monthlyAmount),
            hard: b.hard,
          })),
        }),
        this.deps.ledgerTimeoutMs,
        'the budget ledger took too long to answer',
      );
    } catch (error) {
      // Fail-open: a request is never refused because its budgets cannot be read. The script may
      // still have run (an answer after the timeout): settle drops the hold if it exists.
      unavailable('reserve', ensureError(error).message);
      const maybeHeld = budgets.some((b) => b.hard) ? { id: reservationId, month } : undefined;
      return this.#hold(settleScope, maybeHeld, {}, observer);
    }
    if (!outcome.granted) {
      const budget = budgets[outcome.refusedBy];
      if (!budget) throw new Error(`the ledger refused with limit ${outcome.refusedBy} of ${budgets.length}`);
      const refusal: Refusal = {
        budget,
        month,
        settledMicros: outcome.spend.settledMicros,
        reservedMicros: outcome.spend.reservedMicros,
        estimateMicros,
        spent: outcome.spend.settledMicros >= budgetMicros(budget.monthlyAmount),
      };
      observer.refused(refusal);
      throw refusalError(refusal, now);
    }
    const warnings: BudgetWarning[] = [];
    budgets.forEach((budget, i) => {
      const settled = outcome.spend[i]?.settledMicros ?? 0;
      const threshold = crossedThreshold(budget, settled);
      if (threshold === undefined) return;
      const warning: BudgetWarning = {
        budgetId: budget.id,
        percentUsed: percentUsed(settled, budgetMicros(budget.monthlyAmount)),
        amount: budget.monthlyAmount,
      };
      warnings.push(warning);
      const key = `${month} ${budget.id} ${threshold}`;
      const first = !this.#warned.has(key);
      if (first) {
        if (this.#warned.size > 10_000) this.#warned.clear();
        this.#warned.add(key);
      }
      observer.warned({ ...warning, budget, threshold, month, first });
    });
    const headers: Record<string, string> =
      warnings.length > 0 ? { [BUDGET_HEADERS.warning]: warnings.map(budgetWarningValue).join(', ') } : {};
    const held = budgets.some((b) => b.hard) ? { id: reservationId, month } : undefined;
    return this.#hold(settleScope, held, headers, observer);
  }

  #hold(
    scope: { department: string; appId: string },
    reservation: { id: string; month: string } | undefined,
    headers: Record<string, string>,
    observer: BudgetObserver,
  ): BudgetHold {
    let settled = false;
    return {
      headers,
      settle: async (event) => {
        if (settled) return;
        settled = true;
        try {
          let costMicros = 0;
          let month = reservation?.month ?? monthOf(this.deps.now?.() ?? new Date());
          if (event) {
            this.#remember(event.deployment, event.model);
            const prices = await this.#pricesReporting((stage, problem) =>
              observer.unavailable(stage, problem, this.#firstInMinute(stage)),
            );
            costMicros = toMicros(usageCost(pricedEvent(event), new Date(event.window), prices.priceFor));
            month = monthOf(event.window);
          }
          if (costMicros === 0 && !reservation) return;
          await withTimeout(
            this.deps.ledger.settle({
              ...scope,
              month,
              costMicros,
              ...(reservation ? { reservation } : {}),
            }),
            this.deps.ledgerTimeoutMs,
            'the budget ledger took too long to answer',
          );
        } catch (error) {
          observer.unavailable('settle', ensureError(error).message, this.#firstInMinute('settle'));
        }
      },
    };
  }

  async #pricesReporting(
    unavailable: (stage: 'price-table', problem: string) => void,
  ): Promise<LoadedPrices> {
    const prices = await this.#prices.get();
    const problem = this.#priceProblem;
    if (problem !== undefined) {
      this.#priceProblem = undefined;
      unavailable('price-table', problem);
    }
    return prices;
  }

  #remember(deployment: string, model: string): void {
    if (this.#models.get(deployment) === model) return;
    if (this.#models.size >= MODEL_MEMORY) this.#models.clear();
    this.#models.set(deployment, model);
  }

  #firstInMinute(stage: string): boolean {
    const now = Date.now();
    const last = this.#lastUnavailable.get(stage);
    if (last !== undefined && now - last < UNAVAILABLE_LOG_MS) return false;
    this.#lastUnavailable.set(stage, now);
    return true;
  }
}

function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} (${ms} ms)`)), ms);
  });
  work.catch(() => undefined);
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
