import type { GatewayContext, Jwt } from './context';

/**
 * The C# policy expressions the policy files use, each with what it does, matched by its text
 * (runs of whitespace count as one space, so re-indenting a policy changes nothing). C# is not
 * emulated in general: an expression that is not listed here stops the gateway at start, naming
 * its file and line, so a policy change that the gateway cannot honour is noticed at once and
 * the gateway is taught the new expression here, next to its C#.
 */

export type Expression = (context: GatewayContext) => unknown;

/** The text an expression is looked up by. */
export function expressionKey(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function variable<T>(context: GatewayContext, name: string, fallback: T): T {
  return context.variables.has(name) ? (context.variables.get(name) as T) : fallback;
}

/** `((Jwt)context.Variables[name]).Claims.GetValueOrDefault(claim, "")`: the claim's values, comma-joined. */
function claim(context: GatewayContext, variableName: string, name: string): string {
  const token = context.variables.get(variableName) as Jwt | undefined;
  if (!token) throw new Error(`the variable '${variableName}' holds no token`);
  return (token.claims[name] ?? []).join(',');
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is null`);
  return value;
}

/** The status an error answer carries: the failing step's, else 500. */
function errorStatus(context: GatewayContext): number {
  return context.response.statusCode >= 400 ? context.response.statusCode : 500;
}

/** The global policy's on-error body: the Azure OpenAI error shape. */
function errorBody(context: GatewayContext): string {
  const status = errorStatus(context);
  const error = required(context.lastError, 'context.LastError');
  let message: string;
  if (error.reason === 'SubscriptionKeyNotFound') {
    message =
      'Access denied due to missing subscription key. Send your subscription key in the api-key header (Ocp-Apim-Subscription-Key for Speech).';
  } else if (error.reason === 'SubscriptionKeyInvalid') {
    message =
      'Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.';
  } else if (status === 429) {
    message = `Rate limit is exceeded. Try again in ${variable(context, 'retry-after', 60)} seconds.`;
  } else if (status === 403) {
    message = "The subscription's token quota is used up. It renews at the start of the next month.";
  } else if (status === 401) {
    message = 'An Entra ID token valid for this API, with a role that allows the request, is required.';
  } else if (status === 404) {
    message = 'Resource not found.';
  } else {
    message = `The gateway could not complete the request. Quote request id ${context.requestId} when reporting it.`;
  }
  return JSON.stringify({ error: { code: String(status), message } });
}

const TABLE: Record<string, Expression> = {
  '@(context.RequestId.ToString())': (c) => c.requestId,
  '@(context.Subscription.Id)': (c) => required(c.subscription, 'context.Subscription').id,
  '@(context.Subscription.Name)': (c) => required(c.subscription, 'context.Subscription').name,
  '@(context.Product.Id)': (c) => required(c.product, 'context.Product').id,
  '@(context.Request.Headers.ContainsKey("Authorization"))': (c) => c.request.headers.has('Authorization'),
  '@(context.Request.MatchedParameters.GetValueOrDefault("deployment-id", ""))': (c) =>
    c.request.matchedParameters.get('deployment-id') ?? '',
  '@(((Jwt)context.Variables["caller-token"]).Claims.GetValueOrDefault("oid", ""))': (c) =>
    claim(c, 'caller-token', 'oid'),
  '@(((Jwt)context.Variables["caller-token"]).Claims.GetValueOrDefault("roles", ""))': (c) =>
    claim(c, 'caller-token', 'roles'),
  '@((string)context.Variables["error-body"])': (c) => {
    const body = c.variables.get('error-body');
    return typeof body === 'string' ? body : '';
  },
  '@(context.Variables.ContainsKey("retry-after"))': (c) => c.variables.has('retry-after'),
  '@(context.Variables.GetValueOrDefault<int>("retry-after", 60).ToString())': (c) =>
    String(variable(c, 'retry-after', 60)),
  '@(context.Response.StatusCode >= 400 ? context.Response.StatusCode : 500)': errorStatus,
  '@(context.Response.StatusCode >= 400 ? context.Response.StatusReason : "Internal Server Error")': (c) =>
    c.response.statusCode >= 400 ? c.response.statusReason : 'Internal Server Error',
  [`@{
        var status = context.Response.StatusCode >= 400 ? context.Response.StatusCode : 500;
        var reason = context.LastError.Reason;
        string message;
        if (reason == "SubscriptionKeyNotFound") {
          message = "Access denied due to missing subscription key. Send your subscription key in the api-key header (Ocp-Apim-Subscription-Key for Speech).";
        } else if (reason == "SubscriptionKeyInvalid") {
          message = "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.";
        } else if (status == 429) {
          message = "Rate limit is exceeded. Try again in " + context.Variables.GetValueOrDefault<int>("retry-after", 60) + " seconds.";
        } else if (status == 403) {
          message = "The subscription's token quota is used up. It renews at the start of the next month.";
        } else if (status == 401) {
          message = "An Entra ID token valid for this API, with a role that allows the request, is required.";
        } else if (status == 404) {
          message = "Resource not found.";
        } else {
          message = "The gateway could not complete the request. Quote request id " + context.RequestId + " when reporting it.";
        }
        return new JObject(new JProperty("error", new JObject(new JProperty("code", status.ToString()), new JProperty("message", message)))).ToString();
      }`]: errorBody,
};

const EXPRESSIONS = new Map(Object.entries(TABLE).map(([text, run]) => [expressionKey(text), run]));

/** The implementation of an expression as written in a policy, or undefined when it has none. */
export function expressionFor(text: string): Expression | undefined {
  return EXPRESSIONS.get(expressionKey(text));
}
