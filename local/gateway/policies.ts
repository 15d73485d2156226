import { HeaderMap } from './context';
import type { GatewayContext } from './context';
import type { CompileScope, ElementDefinition, Run, Section, Step, Value } from './engine';
import { PolicyError, ReturnResponse } from './engine';
import { countPromptTokens } from './token-usage';

/**
 * The policy elements the local gateway runs, as APIM's policy reference documents them, for the
 * attributes listed with each: any other element or attribute stops the gateway at start.
 */

/** A counter per key over fixed periods (APIM's limits renew per period). */
export class PeriodCounters {
  private readonly counters = new Map<string, { start: number; count: number; periodMs: number }>();

  constructor(
    private readonly now: () => number = Date.now,
    /** Past this many counters, those whose period is over are dropped. */
    private readonly evictAbove = 10_000,
  ) {}

  /** The key's count in the current period (of `periodMs` from its first use) and when it renews. */
  read(key: string, periodMs: number): { count: number; renewsInMs: number } {
    const time = this.now();
    const counter = this.counters.get(key);
    if (!counter || time - counter.start >= periodMs) return { count: 0, renewsInMs: periodMs };
    return { count: counter.count, renewsInMs: counter.start + periodMs - time };
  }

  add(key: string, periodMs: number, amount: number): void {
    const time = this.now();
    const counter = this.counters.get(key);
    if (counter && time - counter.start < periodMs) {
      counter.count += amount;
      return;
    }
    if (this.counters.size >= this.evictAbove) {
      for (const [k, c] of this.counters) if (time - c.start >= c.periodMs) this.counters.delete(k);
    }
    this.counters.set(key, { start: time, count: amount, periodMs });
  }

  get size(): number {
    return this.counters.size;
  }
}

/** One emitted metric value (what APIM sends to Application Insights as a custom metric). */
export interface EmittedMetric {
  namespace: string;
  name: 'Prompt Tokens' | 'Completion Tokens' | 'Total Tokens';
  value: number;
  dimensions: Record<string, string>;
}

export interface ValidatedToken {
  claims: Record<string, string[]>;
}

export interface PolicyServices {
  counters: PeriodCounters;
  emitMetric(metric: EmittedMetric): void;
  /** Validates an Entra ID token of a tenant for one of the audiences; throws when it is not valid. */
  validateToken(token: string, tenantId: string, audiences: readonly string[]): Promise<ValidatedToken>;
  now(): number;
}

const ALL: readonly Section[] = ['inbound', 'backend', 'outbound', 'on-error'];
const QUOTA_PERIODS = ['Hourly', 'Daily', 'Weekly', 'Monthly', 'Yearly'] as const;
const MINUTE_MS = 60_000;

const wholeSeconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));

function count(scope: CompileScope, value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) scope.fail(`'${name}' must be a whole number, not '${value}'`);
  return n;
}

function flag(scope: CompileScope, name: string, fallback: boolean): boolean {
  const value = scope.literal(name);
  if (value === undefined) return fallback;
  if (value !== 'true' && value !== 'false') scope.fail(`'${name}' must be true or false`);
  return value === 'true';
}

/** The start (ms) of the calendar period (UTC) an instant is in: token quotas renew at its end. */
export function quotaPeriodStart(period: (typeof QUOTA_PERIODS)[number], at: Date): number {
  const y = at.getUTCFullYear();
  const m = at.getUTCMonth();
  const d = at.getUTCDate();
  switch (period) {
    case 'Hourly':
      return Date.UTC(y, m, d, at.getUTCHours());
    case 'Daily':
      return Date.UTC(y, m, d);
    case 'Weekly':
      return Date.UTC(y, m, d - ((at.getUTCDay() + 6) % 7));
    case 'Monthly':
      return Date.UTC(y, m, 1);
    case 'Yearly':
      return Date.UTC(y, 0, 1);
  }
}

const EXISTS_ACTIONS = ['override', 'skip', 'append', 'delete'] as const;

/** An exists-action attribute (set-header, set-query-parameter), checked at start. */
function existsAction(scope: CompileScope): (typeof EXISTS_ACTIONS)[number] {
  const action = scope.literal('exists-action') ?? 'override';
  const known = EXISTS_ACTIONS.find((a) => a === action);
  return known ?? scope.fail(`exists-action '${action}' is not ${EXISTS_ACTIONS.join(', ')}`);
}

/**
 * set-header: on the request in inbound and backend, on the response in outbound and on-error,
 * or on the headers given (inside return-response).
 */
function setHeader(scope: CompileScope, target?: (run: Run) => HeaderMap): Step {
  const name = scope.requiredAttribute('name');
  const action = existsAction(scope);
  const values = scope.children('value').map((node) => scope.child(node).text());
  if (action !== 'delete' && values.length === 0) scope.fail('<set-header> needs a <value>');
  const onRequest = scope.section === 'inbound' || scope.section === 'backend';
  return (run) => {
    const headers = target
      ? target(run)
      : onRequest
        ? run.context.request.headers
        : run.context.response.headers;
    const header = name(run.context);
    const current = (): string[] => values.map((v) => v(run.context));
    if (action === 'delete') headers.delete(header);
    else if (action === 'append') for (const value of current()) headers.append(header, value);
    else if (action === 'override' || !headers.has(header)) headers.set(header, current());
    return Promise.resolve();
  };
}

/** The claims of a validated token a `<required-claims>` list asks for. */
function requiredClaims(
  scope: CompileScope,
): Array<(context: GatewayContext, claims: ValidatedToken['claims']) => boolean> {
  return scope.children('required-claims').flatMap((list) =>
    scope
      .child(list)
      .children('claim')
      .map((node) => {
        const claim = scope.child(list).child(node);
        const name = claim.requiredAttribute('name');
        const match = claim.literal('match') ?? 'all';
        if (match !== 'all' && match !== 'any') claim.fail(`match '${match}' is not all or any`);
        const wanted = claim.children('value').map((v) => claim.child(v).text());
        return (context: GatewayContext, claims: ValidatedToken['claims']) => {
          const held = claims[name(context)] ?? [];
          const values = wanted.map((v) => v(context));
          return match === 'any'
            ? values.some((v) => held.includes(v))
            : values.every((v) => held.includes(v));
        };
      }),
  );
}

/** The names a limit reports its retry-after in: a response header and, if named, a variable. */
function retryNames(scope: CompileScope): { header: string; variable: string | undefined } {
  return {
    header: scope.literal('retry-after-header-name') ?? 'Retry-After',
    variable: scope.literal('retry-after-variable-name'),
  };
}

/** Sets a limit's retry-after header and variable and raises its error (the on-error section runs). */
function limitExceeded(
  run: Run,
  renewsInMs: number,
  names: { header: string; variable: string | undefined },
  error: PolicyError,
): never {
  const retryAfter = wholeSeconds(renewsInMs);
  if (names.variable) run.context.variables.set(names.variable, retryAfter);
  run.context.response.headers.set(names.header, [String(retryAfter)]);
  throw error;
}

export function policyElements(services: PolicyServices): Record<string, ElementDefinition> {
  return {
    'set-header': {
      attributes: ['name', 'exists-action'],
      children: ['value'],
      sections: ALL,
      compile: (scope) => setHeader(scope),
    },

    'set-query-parameter': {
      attributes: ['name', 'exists-action'],
      children: ['value'],
      sections: ['inbound', 'backend'],
      compile(scope) {
        const name = scope.requiredAttribute('name');
        const action = existsAction(scope);
        const values = scope.children('value').map((node) => scope.child(node).text());
        if (action !== 'delete' && values.length === 0) scope.fail('<set-query-parameter> needs a <value>');
        return (run) => {
          const query = run.context.request.query;
          const parameter = name(run.context);
          if (action === 'delete') query.delete(parameter);
          else if (action === 'append') for (const v of values) query.append(parameter, v(run.context));
          else if (action === 'override' || !query.has(parameter)) {
            query.delete(parameter);
            for (const v of values) query.append(parameter, v(run.context));
          }
          return Promise.resolve();
        };
      },
    },

    'set-variable': {
      attributes: ['name', 'value'],
      sections: ALL,
      compile(scope) {
        const name = scope.literal('name') || scope.fail('<set-variable> needs a name');
        const value = scope.requiredAttribute('value');
        return (run) => {
          run.context.variables.set(name, value(run.context));
          return Promise.resolve();
        };
      },
    },

    choose: {
      attributes: [],
      children: ['when', 'otherwise'],
      sections: ALL,
      compile(scope) {
        const branches = scope.node.children.map((node) => {
          const branch = scope.child(node);
          return {
            condition: node.name === 'when' ? branch.requiredAttribute('condition') : undefined,
            steps: branch.steps(node.children),
          };
        });
        return async (run) => {
          const taken = branches.find((b) => !b.condition || b.condition(run.context) === 'true');
          for (const step of taken?.steps ?? []) await step(run);
        };
      },
    },

    'validate-azure-ad-token': {
      attributes: [
        'tenant-id',
        'header-name',
        'failed-validation-httpcode',
        'failed-validation-error-message',
        'output-token-variable-name',
      ],
      children: ['client-application-ids', 'audiences', 'required-claims'],
      sections: ['inbound'],
      compile(scope) {
        const tenant = scope.requiredAttribute('tenant-id');
        // APIM refuses the policy without it: the client apps whose tokens are accepted.
        const clients =
          scope.children('client-application-ids')[0] ??
          scope.fail('<validate-azure-ad-token> needs <client-application-ids> (APIM requires it)');
        const clientIds = scope
          .child(clients)
          .children('application-id')
          .map((node) => scope.child(clients).child(node).text());
        const headerName = scope.literal('header-name') ?? 'Authorization';
        const status = count(
          scope,
          scope.literal('failed-validation-httpcode') ?? '401',
          'failed-validation-httpcode',
        );
        const message =
          scope.literal('failed-validation-error-message') ??
          'Unauthorized. Access token is missing or invalid.';
        const output = scope.literal('output-token-variable-name');
        const audiences = scope.children('audiences').flatMap((list) =>
          scope
            .child(list)
            .children('audience')
            .map((a) => scope.child(list).child(a).text()),
        );
        const claims = requiredClaims(scope);
        const refuse = (reason: string): PolicyError =>
          new PolicyError(
            status,
            status === 401 ? 'Unauthorized' : 'Forbidden',
            'validate-azure-ad-token',
            reason,
            message,
          );
        return async (run) => {
          const presented = /^Bearer\s+(\S+)$/i.exec(run.context.request.headers.get(headerName) ?? '')?.[1];
          if (!presented) throw refuse('TokenNotPresent');
          let token: ValidatedToken;
          try {
            token = await services.validateToken(
              presented,
              tenant(run.context),
              audiences.map((a) => a(run.context)),
            );
          } catch {
            throw refuse('TokenInvalid');
          }
          const client = token.claims.azp?.[0] ?? token.claims.appid?.[0];
          if (!client || !clientIds.some((id) => id(run.context) === client)) {
            throw refuse('TokenClientAppIdNotAllowed');
          }
          if (!claims.every((holds) => holds(run.context, token.claims))) throw refuse('TokenClaimNotFound');
          if (output) run.context.variables.set(output, token);
        };
      },
    },

    'rate-limit-by-key': {
      attributes: [
        'calls',
        'renewal-period',
        'counter-key',
        'retry-after-header-name',
        'retry-after-variable-name',
        'remaining-calls-header-name',
      ],
      sections: ['inbound'],
      compile(scope) {
        const calls = scope.requiredAttribute('calls');
        const period = scope.requiredAttribute('renewal-period');
        const key = scope.requiredAttribute('counter-key');
        const retry = retryNames(scope);
        const remainingHeader = scope.literal('remaining-calls-header-name');
        return (run) => {
          const limit = count(scope, calls(run.context), 'calls');
          const periodMs = count(scope, period(run.context), 'renewal-period') * 1000;
          // One counter per key, whichever policy (API) counts it: APIM's rule.
          const counter = `rate:${key(run.context)}`;
          const used = services.counters.read(counter, periodMs);
          if (used.count >= limit) {
            limitExceeded(
              run,
              used.renewsInMs,
              retry,
              new PolicyError(
                429,
                'Too Many Requests',
                'rate-limit-by-key',
                'RateLimitExceeded',
                'Rate limit is exceeded',
              ),
            );
          }
          services.counters.add(counter, periodMs, 1);
          if (remainingHeader)
            run.context.response.headers.set(remainingHeader, [String(limit - used.count - 1)]);
          return Promise.resolve();
        };
      },
    },

    'llm-token-limit': {
      attributes: [
        'counter-key',
        'tokens-per-minute',
        'token-quota',
        'token-quota-period',
        'estimate-prompt-tokens',
        'remaining-tokens-header-name',
        'retry-after-header-name',
        'retry-after-variable-name',
      ],
      sections: ['inbound'],
      compile(scope) {
        const key = scope.requiredAttribute('counter-key');
        const perMinute = scope.attribute('tokens-per-minute');
        const quota = scope.attribute('token-quota');
        const quotaPeriod = scope.literal('token-quota-period');
        if (!perMinute && !quota) scope.fail('<llm-token-limit> needs tokens-per-minute or token-quota');
        const period = QUOTA_PERIODS.find((p) => p === quotaPeriod);
        if (quota && !period) {
          scope.fail(`token-quota-period '${quotaPeriod ?? ''}' is not one of ${QUOTA_PERIODS.join(', ')}`);
        }
        const estimate = flag(scope, 'estimate-prompt-tokens', false);
        const remainingHeader = scope.literal('remaining-tokens-header-name');
        const retry = retryNames(scope);
        return async (run) => {
          const counterKey = key(run.context);
          const prompt = estimate ? countPromptTokens(await run.jsonBody()) : 0;
          // Token quota: per calendar period; its key changes when the period does.
          const quotaKey =
            quota && period
              ? `quota:${counterKey}:${quotaPeriodStart(period, new Date(services.now()))}`
              : '';
          // The key changes with the period; the counter outlives any period (a year and more).
          const forever = 400 * 24 * 3600 * 1000;
          if (
            quota &&
            services.counters.read(quotaKey, forever).count + prompt >
              count(scope, quota(run.context), 'token-quota')
          ) {
            throw new PolicyError(
              403,
              'Forbidden',
              'llm-token-limit',
              'QuotaExceeded',
              'Token quota is exceeded',
            );
          }
          const minuteKey = `tpm:${counterKey}`;
          if (perMinute) {
            const limit = count(scope, perMinute(run.context), 'tokens-per-minute');
            const used = services.counters.read(minuteKey, MINUTE_MS);
            if (used.count >= limit || used.count + prompt > limit) {
              limitExceeded(
                run,
                used.renewsInMs,
                retry,
                new PolicyError(
                  429,
                  'Too Many Requests',
                  'llm-token-limit',
                  'TokenLimitExceeded',
                  'Token limit is exceeded',
                ),
              );
            }
            services.counters.add(minuteKey, MINUTE_MS, prompt);
            if (remainingHeader) {
              run.context.response.headers.set(remainingHeader, [
                String(Math.max(0, limit - used.count - prompt)),
              ]);
            }
          }
          if (quota) services.counters.add(quotaKey, forever, prompt);
          // Once the answer is complete, the estimate is replaced by the tokens it reports.
          run.onUsage((usage) => {
            const more = usage.totalTokens - prompt;
            if (perMinute) services.counters.add(minuteKey, MINUTE_MS, more);
            if (quota) services.counters.add(quotaKey, forever, more);
          });
        };
      },
    },

    'llm-emit-token-metric': {
      attributes: ['namespace'],
      children: ['dimension'],
      sections: ['inbound'],
      compile(scope) {
        const namespace = scope.literal('namespace') ?? 'API Management';
        const dimensions = scope.children('dimension').map((node) => {
          const dimension = scope.child(node);
          const name = dimension.literal('name') || dimension.fail('a <dimension> needs a name');
          return { name, value: dimension.attribute('value') ?? builtInDimension(dimension, name) };
        });
        if (dimensions.length > 5)
          scope.fail(`${dimensions.length} dimensions: APIM allows at most 5 custom ones`);
        return (run) => {
          const values = Object.fromEntries(dimensions.map((d) => [d.name, d.value(run.context)]));
          run.onUsage((usage) => {
            const emit = (name: EmittedMetric['name'], value: number): void =>
              services.emitMetric({ namespace, name, value, dimensions: values });
            emit('Prompt Tokens', usage.promptTokens);
            emit('Completion Tokens', usage.completionTokens);
            emit('Total Tokens', usage.totalTokens);
          });
          return Promise.resolve();
        };
      },
    },

    'set-backend-service': {
      attributes: ['base-url'],
      sections: ['inbound', 'backend'],
      compile(scope) {
        const url = scope.requiredAttribute('base-url');
        return (run) => {
          run.backendUrl = url(run.context);
          return Promise.resolve();
        };
      },
    },

    'forward-request': {
      attributes: ['timeout', 'buffer-response'],
      sections: ['backend'],
      compile(scope) {
        const timeout = count(scope, scope.literal('timeout') ?? '300', 'timeout');
        if (flag(scope, 'buffer-response', true)) {
          scope.fail('the local gateway streams responses: set buffer-response="false"');
        }
        return (run) => run.forward({ timeoutSeconds: timeout });
      },
    },

    'return-response': {
      attributes: [],
      children: ['set-status', 'set-header', 'set-body'],
      sections: ALL,
      compile(scope) {
        const [statusNode] = scope.children('set-status');
        const [bodyNode] = scope.children('set-body');
        const status = statusNode && scope.child(statusNode);
        const code = status?.requiredAttribute('code');
        const reason = status?.requiredAttribute('reason');
        const body = bodyNode && scope.child(bodyNode).text();
        const answers = new WeakMap<Run, HeaderMap>();
        const headerSteps = scope
          .children('set-header')
          .map((node) => setHeader(scope.child(node), (run) => answers.get(run) ?? new HeaderMap()));
        return async (run) => {
          const headers = new HeaderMap();
          answers.set(run, headers);
          for (const step of headerSteps) await step(run);
          const answer = new ReturnResponse(
            code ? Number(code(run.context)) : 200,
            reason ? reason(run.context) : 'OK',
            headers,
            body?.(run.context),
          );
          throw answer;
        };
      },
    },
  };
}

function builtInDimension(scope: CompileScope, name: string): Value {
  switch (name) {
    case 'Subscription ID':
      return (c) => c.subscription?.id ?? '';
    case 'Product ID':
      return (c) => c.product?.id ?? '';
    default:
      return scope.fail(`'${name}' is not a built-in dimension the local gateway knows: give it a value`);
  }
}
