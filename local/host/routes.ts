/**
 * Azure Functions (ASP.NET Core) route templates: `{name}`, `{name?}`, `{name:constraint}`,
 * `{*rest}`; literal segments match case-insensitively, as on the real host.
 */
export interface CompiledRoute {
  template: string;
  match(path: string): Record<string, string> | undefined;
}

const CONSTRAINTS: Record<string, RegExp> = {
  int: /^-?\d+$/,
  long: /^-?\d+$/,
  bool: /^(true|false)$/i,
  guid: /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i,
  alpha: /^[a-z]+$/i,
  double: /^-?\d+(\.\d+)?$/,
};

export function compileRoute(template: string): CompiledRoute {
  const names: string[] = [];
  const checks: Array<[string, RegExp]> = [];
  const segments = template
    .replace(/^\/+|\/+$/g, '')
    .split('/')
    .filter(Boolean);
  let pattern = '';
  for (const segment of segments) {
    const param = /^\{(\*)?([A-Za-z_][\w]*)(?::([^}?=]+))?(\?)?\}$/.exec(segment);
    if (!param) {
      pattern += '/' + segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      continue;
    }
    const [, catchAll, name = '', constraint, optional] = param;
    names.push(name);
    if (constraint) {
      const check = CONSTRAINTS[constraint.toLowerCase()];
      if (!check) throw new Error(`Unsupported route constraint '${constraint}' in route '${template}'.`);
      checks.push([name, check]);
    }
    if (catchAll) pattern += '(?:/(.*))?';
    else if (optional) pattern += '(?:/([^/]+))?';
    else pattern += '/([^/]+)';
  }
  const regex = new RegExp(`^${pattern}/?$`, 'i');
  return {
    template,
    match(path: string): Record<string, string> | undefined {
      const found = regex.exec(path);
      if (!found) return undefined;
      const params: Record<string, string> = {};
      names.forEach((name, i) => {
        const value = found[i + 1];
        if (value !== undefined) params[name] = decodeURIComponent(value);
      });
      for (const [name, check] of checks) {
        const value = params[name];
        if (value !== undefined && !check.test(value)) return undefined;
      }
      return params;
    },
  };
}
