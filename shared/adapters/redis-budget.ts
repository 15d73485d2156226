import type { Cluster, Redis } from 'ioredis';
import type {
  BudgetLedger,
  ReserveOutcome,
  ReserveRequest,
  ScopeSpend,
  SettleRequest,
  SpendScope,
} from '../metering/budget';
import { whenRedisReady } from './redis-ready';

/**
 * The budget ledger in Redis: month-to-date spend per department and per app, in whole
 * micro-dollars, with the reservations of requests in flight. The counters are independent of the
 * usage windows and of the chargeback runs (which claim and release the usage buffer's keys, never
 * these), so neither a window boundary nor a run changes them.
 *
 * Keys: every key of a department carries the hash tag `{d:<department>}`, so all of a request's
 * scopes (its department's and its app's, in any month) live in one Redis Cluster slot and one
 * script updates them atomically.
 *
 *   budget:{d:<department>}:<YYYY-MM>:dept            hash: settled, reserved, since, hold:<id> → amount
 *   budget:{d:<department>}:<YYYY-MM>:dept:holds      sorted set: reservation id → expiry (ms, Redis time)
 *   budget:{d:<department>}:<YYYY-MM>:app:<app id>    the same, for one app of the department
 *   budget:{d:<department>}:<YYYY-MM>:app:<app id>:holds
 *
 * `settled` is the sum of the settled costs; `reserved` the sum of the live holds (`hold:<id>`);
 * `since` when the counter started (Redis time, ms). Department and app ids are URI-encoded in keys.
 * Every key expires 40 days after the end of its month. Expiries of holds use Redis's own clock
 * (TIME), so instances with skewed clocks agree.
 */

const BUDGET_KEY_PREFIX = 'budget';
const KEEP_AFTER_MONTH_MS = 40 * 24 * 3600 * 1000;

function scopeKey(department: string, month: string, appId?: string): string {
  const scope = appId === undefined ? 'dept' : `app:${encodeURIComponent(appId)}`;
  return `${BUDGET_KEY_PREFIX}:{d:${encodeURIComponent(department)}}:${month}:${scope}`;
}

export const budgetKeys = {
  /** The counter hash of a department (no appId) or of one of its apps, for a month. */
  scope: (scope: SpendScope, month: string): string => scopeKey(scope.department, month, scope.appId),
  /** Its reservations' expiries. */
  holds: (scope: SpendScope, month: string): string =>
    `${scopeKey(scope.department, month, scope.appId)}:holds`,
  /** Every budget key, for SCAN. */
  pattern: `${BUDGET_KEY_PREFIX}:{d:*}:*`,
};

/** When a month's keys expire (ms since the epoch): 40 days after the month ends. */
export function expiryOf(month: string): number {
  const [year, monthNumber] = month.split('-').map(Number);
  if (!year || !monthNumber) throw new Error(`not a month: ${month}`);
  return Date.UTC(year, monthNumber, 1) + KEEP_AFTER_MONTH_MS;
}

/** Redis's clock, and dropping the expired reservations of a scope. */
const COMMON = `
if redis.replicate_commands then redis.replicate_commands() end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function release(h, z, id)
  local amount = redis.call('HGET', h, 'hold:' .. id)
  if amount then
    redis.call('HDEL', h, 'hold:' .. id)
    redis.call('HINCRBY', h, 'reserved', -tonumber(amount))
  end
  redis.call('ZREM', z, id)
end
local function purge(h, z, now)
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, 1000)
  for _, id in ipairs(expired) do release(h, z, id) end
end
local function spend(h)
  local v = redis.call('HMGET', h, 'settled', 'reserved')
  return tonumber(v[1] or '0'), tonumber(v[2] or '0')
end
`;

/**
 * KEYS: per limit, its hash and holds. ARGV: reservation id, estimate, hold (ms), expiry of the
 * keys (ms), then per limit its amount and 1 (hard) or 0. Refuses, without writing anything, when
 * any hard limit is spent or `settled + reserved + estimate > amount`: {0, limit index, settled,
 * reserved}. Otherwise holds the estimate on every hard limit: {1, settled, reserved, ...} per
 * limit, as they were before this reservation.
 */
const RESERVE = `${COMMON}
local now = now_ms()
local id, estimate, hold, expire_at = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local n = #KEYS / 2
local result = {1}
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  purge(h, z, now)
  local settled, reserved = spend(h)
  local amount, hard = tonumber(ARGV[3 + 2 * i]), ARGV[4 + 2 * i] == '1'
  if hard and (settled >= amount or settled + reserved + estimate > amount) then
    return {0, i - 1, settled, reserved}
  end
  result[2 * i] = settled
  result[2 * i + 1] = reserved
end
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('HSETNX', h, 'since', now)
  if ARGV[4 + 2 * i] == '1' then
    redis.call('HSET', h, 'hold:' .. id, estimate)
    redis.call('HINCRBY', h, 'reserved', estimate)
    redis.call('ZADD', z, now + hold, id)
    redis.call('PEXPIREAT', z, expire_at)
  end
  redis.call('PEXPIREAT', h, expire_at)
end
return result`;

/**
 * KEYS: the department's and the app's hashes of the month the cost counts in, then (when a
 * reservation is dropped) the department's hash and holds and the app's hash and holds of the
 * reservation's month. ARGV: reservation id (or ''), cost, expiry of the first two keys (ms).
 * Drops the reservation wherever it is held (an expired one is already gone), then adds the cost.
 */
const SETTLE = `${COMMON}
local id, cost, expire_at = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if id ~= '' then
  for i = 3, #KEYS, 2 do release(KEYS[i], KEYS[i + 1], id) end
end
if cost > 0 then
  local now = now_ms()
  for i = 1, 2 do
    redis.call('HSETNX', KEYS[i], 'since', now)
    redis.call('HINCRBY', KEYS[i], 'settled', cost)
    redis.call('PEXPIREAT', KEYS[i], expire_at)
  end
end
return 1`;

/** KEYS: a scope's hash and holds. Drops expired reservations, then returns {settled, reserved}. */
/**
 * KEYS: a scope's hash. ARGV: the month's committed spend (µUSD), expiry (ms). Raises `settled` to
 * it when it is lower (counters lost to a flush or a failover, or spend from before budgets were
 * counted); never lowers it. Returns the settled amount before.
 */
const RAISE = `${COMMON}
local before = tonumber(redis.call('HGET', KEYS[1], 'settled') or '0')
local committed = tonumber(ARGV[1])
if committed > before then
  redis.call('HSETNX', KEYS[1], 'since', now_ms())
  redis.call('HSET', KEYS[1], 'settled', committed)
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
return before`;

const SPEND = `${COMMON}
purge(KEYS[1], KEYS[2], now_ms())
local settled, reserved = spend(KEYS[1])
return {settled, reserved}`;

type RedisLike = Redis | Cluster;

export interface RedisBudgetLedgerOptions {
  /** Longest wait for a (re)connecting client before a call fails (the gate then fails open). */
  readyTimeoutMs: number;
}

function micros(value: string | number): string {
  if (!Number.isSafeInteger(Number(value)) || Number(value) < 0) {
    throw new Error(`not a whole non-negative micro-dollar amount: ${value}`);
  }
  return String(value);
}

export class RedisBudgetLedger implements BudgetLedger {
  constructor(
    private readonly redis: () => RedisLike,
    private readonly options: RedisBudgetLedgerOptions,
  ) {}

  async reserve(request: ReserveRequest): Promise<ReserveOutcome> {
    const { department, month } = request;
    const keys = request.limits.flatMap((limit) => {
      const scope = { department, ...(limit.appId === undefined ? {} : { appId: limit.appId }) };
      return [budgetKeys.scope(scope, month), budgetKeys.holds(scope, month)];
    });
    const args = [
      request.reservationId,
      micros(request.estimateMicros),
      String(Math.ceil(request.holdMs)),
      String(expiryOf(month)),
      ...request.limits.flatMap((limit) => [micros(limit.amountMicros), limit.hard ? '1' : '0']),
    ];
    const reply = (await (await this.#connected()).eval(RESERVE, keys.length, ...keys, ...args)) as number[];
    if (reply[0] === 1) {
      return {
        granted: true,
        spend: request.limits.map((_, i) => ({
          settledMicros: Number(reply[2 * i + 1] ?? 0),
          reservedMicros: Number(reply[2 * i + 2] ?? 0),
        })),
      };
    }
    return {
      granted: false,
      refusedBy: Number(reply[1]),
      spend: { settledMicros: Number(reply[2] ?? 0), reservedMicros: Number(reply[3] ?? 0) },
    };
  }

  async settle(request: SettleRequest): Promise<void> {
    const department = { department: request.department };
    const app = { department: request.department, appId: request.appId };
    const keys = [budgetKeys.scope(department, request.month), budgetKeys.scope(app, request.month)];
    const reservation = request.reservation;
    if (reservation) {
      keys.push(
        budgetKeys.scope(department, reservation.month),
        budgetKeys.holds(department, reservation.month),
        budgetKeys.scope(app, reservation.month),
        budgetKeys.holds(app, reservation.month),
      );
    }
    await (
      await this.#connected()
    ).eval(
      SETTLE,
      keys.length,
      ...keys,
      reservation?.id ?? '',
      micros(request.costMicros),
      String(expiryOf(request.month)),
    );
  }

  async raiseSettled(scope: SpendScope, month: string, committedMicros: number): Promise<number> {
    const reply = await (
      await this.#connected()
    ).eval(RAISE, 1, budgetKeys.scope(scope, month), micros(committedMicros), String(expiryOf(month)));
    return Number(reply);
  }

  async spend(scope: SpendScope, month: string): Promise<ScopeSpend> {
    const reply = (await (
      await this.#connected()
    ).eval(SPEND, 2, budgetKeys.scope(scope, month), budgetKeys.holds(scope, month))) as number[];
    return { settledMicros: Number(reply[0] ?? 0), reservedMicros: Number(reply[1] ?? 0) };
  }

  async #connected(): Promise<RedisLike> {
    const redis = this.redis();
    // The app's client does not queue commands while it connects: wait, within the limit.
    if (redis.status !== 'ready')
      await whenRedisReady(redis, AbortSignal.timeout(this.options.readyTimeoutMs));
    return redis;
  }
}
