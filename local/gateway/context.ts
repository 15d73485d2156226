/**
 * What a policy expression can read while the local gateway runs a request through the policies:
 * the parts of APIM's `context` the policy files use (see expressions.ts).
 */

/** A validated token (APIM's `Jwt`): claims by name, each with its values. */
export interface Jwt {
  claims: Record<string, string[]>;
}

/** Headers as APIM keeps them: names case-insensitive, each with its values. */
export class HeaderMap {
  private readonly values = new Map<string, { name: string; values: string[] }>();

  constructor(entries: Iterable<[string, string | string[] | undefined]> = []) {
    for (const [name, value] of entries) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) this.append(name, v);
    }
  }

  has(name: string): boolean {
    return this.values.has(name.toLowerCase());
  }

  /** The header's values joined as one (APIM's `GetValueOrDefault`), or undefined. */
  get(name: string): string | undefined {
    return this.values.get(name.toLowerCase())?.values.join(',');
  }

  set(name: string, values: string[]): void {
    this.values.set(name.toLowerCase(), { name, values });
  }

  append(name: string, value: string): void {
    const entry = this.values.get(name.toLowerCase());
    if (entry) entry.values.push(value);
    else this.set(name, [value]);
  }

  delete(name: string): void {
    this.values.delete(name.toLowerCase());
  }

  /** Every header as Node's http module takes them (one entry per name, repeated values kept). */
  toOutgoing(): Record<string, string[]> {
    return Object.fromEntries([...this.values.values()].map((e) => [e.name, e.values]));
  }
}

export interface LastError {
  source: string;
  reason: string;
  message: string;
}

export interface GatewayContext {
  /** The id this gateway gave the request (APIM's `context.RequestId`), a GUID. */
  requestId: string;
  subscription?: { id: string; name: string };
  product?: { id: string; name: string };
  request: {
    method: string;
    headers: HeaderMap;
    /** The query string the backend gets (set-query-parameter edits it). */
    query: URLSearchParams;
    /** The operation's URL template parameters. */
    matchedParameters: Map<string, string>;
  };
  response: { statusCode: number; statusReason: string; headers: HeaderMap };
  variables: Map<string, unknown>;
  lastError?: LastError;
}
