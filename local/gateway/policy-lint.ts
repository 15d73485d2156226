import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { z } from 'zod';
import {
  APIM_APIS,
  APIM_NAMED_VALUE_NAMES,
  GLOBAL_POLICY_FILE,
  MAX_METRIC_DIMENSIONS,
  TOKEN_METRIC,
} from '../../shared/contracts/apim';
import { GATEWAY_HEADER_NAMES, GATEWAY_HEADER_PREFIX } from '../../shared/contracts/gateway-headers';
import { LineMap, walkPolicy } from './policy-xml';
import type { PolicyDocument, PolicyElement } from './policy-xml';

/**
 * Checks an API Management policy file (parsed by policy-xml.ts) against the policy reference
 * (tests/fixtures/apim/policy-reference.json, extracted from Microsoft's documentation) and
 * against the contract in shared/contracts/apim.ts and gateway-headers.ts:
 *
 * (a) the root is `<policies>`, holding only the sections inbound, backend, outbound, on-error,
 *     each at most once and in that order, and no text;
 * (b) every section present holds exactly one `<base />`, directly, and `<base />` is nowhere
 *     else. This includes the global policy (GLOBAL_POLICY_FILE): APIM accepts `<base />` there
 *     (it is a no-op at the outermost scope), and keeping it everywhere means a section never
 *     silently drops an enclosing scope when a policy is moved, and one rule fits every file;
 * (c) every element and attribute is in the reference. The structural elements (policies, the
 *     four sections, base) are allowed by definition. A policy (an element the reference marks
 *     `policy: true`) may stand directly in a section or in an element that holds policy
 *     statements (POLICY_CONTAINERS), and then only in a section its reference page allows
 *     (`policies[name].sections`), at most once per section when the page says so; it may also
 *     be a child of an element the reference lists among its `parents` (set-header inside
 *     send-request). Any other element must be inside one of its `parents`. An attribute must be
 *     among the element's `attributes`, and where the reference documents it only under certain
 *     parents (`attributeDetails[a][*].parents`), under one of those;
 * (d) every `{{name}}` is one of APIM_NAMED_VALUE_NAMES (except inside a Liquid `set-body`
 *     template, where `{{ }}` is Liquid's own syntax);
 * (e) every header named by a set-header or check-header `name`, by a `…header-name` attribute
 *     (validate-jwt / validate-azure-ad-token `header-name`, the limits' response headers) or by
 *     a cors `<header>` that starts with `x-chargeback-` is one of GATEWAY_HEADER_NAMES;
 * (f) llm-emit-token-metric, azure-openai-emit-token-metric and emit-metric carry at most
 *     MAX_METRIC_DIMENSIONS dimensions (every `<dimension>` counts, default ones included: the
 *     contract's 5, though the reference says 10 for some of them), no name twice, and the OpenAI
 *     API's file emits a token metric in TOKEN_METRIC.namespace with exactly
 *     TOKEN_METRIC.dimensions;
 * (g) no attribute value or text (expressions included, comments not) holds a literal that is a
 *     secret or depends on the environment: a URL, a GUID, an Azure resource host name, a
 *     connection-string secret or a key-like token. Those belong in named values.
 *
 * Expression values (`@(…)`, `@{…}`) are not evaluated: checks on names (e, f) skip names that
 * are expressions.
 */

export interface PolicyProblem {
  file: string;
  line: number;
  column: number;
  message: string;
}

const attributeDetailSchema = z.object({ parents: z.array(z.string()).optional() }).passthrough();

const referenceSchema = z.object({
  sections: z.array(z.string()),
  policies: z.record(
    z.string(),
    z.object({
      sections: z.array(z.string()).nullable(),
      limits: z.array(
        z.object({ kind: z.string().optional(), value: z.number().optional(), quote: z.string() }),
      ),
    }),
  ),
  elements: z.record(
    z.string(),
    z.object({
      attributes: z.array(z.string()),
      children: z.array(z.string()),
      parents: z.array(z.string()),
      policy: z.boolean().optional(),
      attributeDetails: z.record(z.string(), z.array(attributeDetailSchema)),
    }),
  ),
});

/** The parts of policy-reference.json the lint reads. */
export type PolicyReference = z.infer<typeof referenceSchema>;

/** Validates parsed policy-reference.json. */
export function policyReference(json: unknown): PolicyReference {
  return referenceSchema.parse(json);
}

/** Reads and validates a policy-reference.json file. */
export function loadPolicyReference(path: string): PolicyReference {
  return policyReference(JSON.parse(readFileSync(path, 'utf8')));
}

export const POLICY_SECTIONS = ['inbound', 'backend', 'outbound', 'on-error'] as const;
const STRUCTURAL = new Set<string>(['policies', ...POLICY_SECTIONS, 'base']);

/**
 * Elements whose content is policy statements. The reference's tables list no children for them
 * because any policy may go there: choose-policy.md (`when`/`otherwise`: "one or more policy
 * statements"), retry-policy.md ("One or more child policies. No restrictions.").
 */
export const POLICY_CONTAINERS: ReadonlySet<string> = new Set(['when', 'otherwise', 'retry']);

const METRIC_POLICIES = new Set(['llm-emit-token-metric', 'azure-openai-emit-token-metric', 'emit-metric']);
const TOKEN_METRIC_POLICIES = new Set(['llm-emit-token-metric', 'azure-openai-emit-token-metric']);

const isSection = (name: string): boolean => (POLICY_SECTIONS as readonly string[]).includes(name);
const isExpression = (value: string): boolean => /@[({]/.test(value);
const list = (names: readonly string[]): string => (names.length ? names.join(', ') : '(none)');

/** Literals that must be named values, each with what to call it. */
const LITERALS: ReadonlyArray<{ pattern: RegExp; what: string; accept?: (match: string) => boolean }> = [
  { pattern: /\b(?:https?|wss?|ftps?):\/\/[^\s"'<>`]*/gi, what: 'a literal URL' },
  {
    pattern: /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi,
    what: 'a literal GUID (an id of a tenant, subscription or application)',
  },
  {
    pattern:
      /\b[a-z\d][a-z\d-]*\.(?:azurewebsites\.net|azure-api\.net|openai\.azure\.com|cognitiveservices\.azure\.com|vault\.azure\.net|(?:blob|queue|table|file)\.core\.windows\.net|documents\.azure\.com|redis\.cache\.windows\.net|servicebus\.windows\.net|azurecr\.io)\b/gi,
    what: 'an Azure resource host name',
  },
  {
    pattern: /\b(?:AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd|sig|code)=[^\s;&"'<>]+/gi,
    what: 'a connection-string or URL secret',
  },
  {
    // 20+ characters of base64 with upper case, lower case and digits, or 32+ hex digits.
    pattern: /(?<![A-Za-z0-9+=])[A-Za-z0-9+=]{20,}(?![A-Za-z0-9+=])/g,
    what: 'a key-like string',
    accept: (m) => !(/^[0-9a-fA-F]{32,}$/.test(m) || (/[A-Z]/.test(m) && /[a-z]/.test(m) && /[0-9]/.test(m))),
  },
];

export function lintPolicy(doc: PolicyDocument, reference: PolicyReference): PolicyProblem[] {
  const lines = new LineMap(doc.source);
  const problems: PolicyProblem[] = [];
  const at = (where: { line: number; column: number }, message: string): void => {
    problems.push({ file: doc.file, line: where.line, column: where.column, message });
  };
  const atOffset = (offset: number, message: string): void => at(lines.position(offset), message);
  const attr = (el: PolicyElement, name: string) => el.attributeList.find((a) => a.name === name);
  const textOf = (el: PolicyElement): string => el.text.trim();
  const root = doc.root;

  // (a) the document's shape.
  if (root.name !== 'policies')
    at(root, `the root element is <${root.name}>: a policy file's root is <policies>`);
  for (const a of root.attributeList) at(a, `<${root.name}> takes no attributes (found ${a.name})`);
  const seen = new Map<string, PolicyElement>();
  let last = -1;
  for (const child of root.children) {
    const index = (POLICY_SECTIONS as readonly string[]).indexOf(child.name);
    if (index < 0) {
      at(
        child,
        `<${child.name}> is not a policy section: <policies> holds only ${POLICY_SECTIONS.join(', ')}`,
      );
      continue;
    }
    const first = seen.get(child.name);
    if (first) {
      at(
        child,
        `a second <${child.name}> section (the first is on line ${first.line}): each section at most once`,
      );
      continue;
    }
    seen.set(child.name, child);
    if (index < last) {
      at(
        child,
        `<${child.name}> comes after <${POLICY_SECTIONS[last] ?? ''}>: sections go in the order ${POLICY_SECTIONS.join(', ')}`,
      );
    }
    last = Math.max(last, index);
  }
  for (const { element } of walkPolicy(root)) {
    if (element !== root && !isSection(element.name)) continue;
    if (element !== root)
      for (const a of element.attributeList) at(a, `<${element.name}> takes no attributes (found ${a.name})`);
    for (const span of element.textSpans) {
      const raw = doc.source.slice(span.start, span.end);
      const offset = raw.search(/\S/);
      if (offset >= 0)
        atOffset(span.start + offset, `text directly inside <${element.name}>: only policies go there`);
    }
  }

  // (b) <base /> in every section, and nowhere else.
  for (const section of seen.values()) {
    const bases = section.children.filter((c) => c.name === 'base');
    if (bases.length === 0) {
      at(
        section,
        `<${section.name}> has no <base />: every section keeps exactly one, to run the enclosing scope's policies` +
          (basename(doc.file) === GLOBAL_POLICY_FILE ? ' (the global policy too, where it is a no-op)' : ''),
      );
    }
    for (const extra of bases.slice(1)) {
      at(
        extra,
        `a second <base /> in <${section.name}> (the first is on line ${bases[0]?.line ?? 0}): exactly one per section`,
      );
    }
  }
  for (const { element, ancestors } of walkPolicy(root)) {
    if (element.name !== 'base') continue;
    const parent = ancestors[ancestors.length - 1];
    if (!parent || !isSection(parent.name) || ancestors.length !== 2) {
      at(element, `<base /> inside <${parent?.name ?? '(nothing)'}>: it belongs directly in a section`);
    }
    for (const a of element.attributeList) at(a, `<base /> takes no attributes (found ${a.name})`);
    if (element.children.length > 0 || textOf(element)) at(element, '<base /> must be empty');
  }

  // (c) elements, attributes and placement against the reference.
  const perSection = new Map<string, number>();
  const visit = (element: PolicyElement, parent: PolicyElement, section: PolicyElement): void => {
    if (STRUCTURAL.has(element.name)) return; // (a) and (b) judge those
    const ref = reference.elements[element.name];
    if (!ref) {
      at(element, `unknown element <${element.name}>: not in the APIM policy reference`);
      return;
    }
    const asStatement = isSection(parent.name) || POLICY_CONTAINERS.has(parent.name);
    if (ref.policy && asStatement) {
      const allowed = reference.policies[element.name]?.sections;
      if (allowed && !allowed.includes(section.name)) {
        at(
          element,
          `<${element.name}> is not allowed in the ${section.name} section: the reference allows it in ${list(allowed)}`,
        );
      }
      const once = reference.policies[element.name]?.limits.some((l) => l.kind === 'once-per-section');
      if (once) {
        const key = `${section.start}:${element.name}`;
        const count = (perSection.get(key) ?? 0) + 1;
        perSection.set(key, count);
        if (count > 1)
          at(element, `<${element.name}> may be used only once in a policy section (${section.name})`);
      }
    } else if (!ref.parents.includes(parent.name)) {
      const where = [...(ref.policy ? ['a section', ...POLICY_CONTAINERS] : []), ...ref.parents].map((p) =>
        p === 'a section' ? p : `<${p}>`,
      );
      at(
        element,
        `<${element.name}> is not allowed inside <${parent.name}>: the reference allows it in ${list(where)}`,
      );
    }
    for (const a of element.attributeList) {
      if (!ref.attributes.includes(a.name)) {
        at(
          a,
          `unknown attribute ${a.name} on <${element.name}>: the reference lists ${list(ref.attributes)}`,
        );
        continue;
      }
      const details = ref.attributeDetails[a.name] ?? [];
      if (details.length > 0 && !details.some((d) => !d.parents || d.parents.includes(parent.name))) {
        const parents = [...new Set(details.flatMap((d) => d.parents ?? []))];
        at(
          a,
          `attribute ${a.name} of <${element.name}> is documented only inside ${list(parents.map((p) => `<${p}>`))}, not inside <${parent.name}>`,
        );
      }
    }
    for (const child of element.children) visit(child, element, section);
  };
  for (const section of seen.values()) {
    for (const child of section.children) if (child.name !== 'base') visit(child, section, section);
  }
  for (const { element, ancestors } of walkPolicy(root)) {
    // Structural elements nested below a section (a section inside a policy, say).
    if (STRUCTURAL.has(element.name) && element.name !== 'base' && ancestors.length >= 2) {
      at(
        element,
        `<${element.name}> inside <${ancestors[ancestors.length - 1]?.name ?? ''}>: it belongs directly in <policies>`,
      );
    }
  }

  // (d) named values.
  const liquid = [...walkPolicy(root)]
    .map(({ element }) => element)
    .filter((el) => el.name === 'set-body' && el.attributes.template?.toLowerCase() === 'liquid')
    .flatMap((el) => el.textSpans);
  for (const ref of doc.namedValues) {
    if (liquid.some((s) => ref.start >= s.start && ref.end <= s.end)) continue;
    if (!(APIM_NAMED_VALUE_NAMES as readonly string[]).includes(ref.name)) {
      at(ref, `unknown named value ${ref.text}: the policies use only ${list(APIM_NAMED_VALUE_NAMES)}`);
    }
  }

  // (e) the gateway's own headers.
  const checkHeader = (name: string, where: { line: number; column: number }, what: string): void => {
    const header = name.trim().toLowerCase();
    if (isExpression(header) || !header.startsWith(GATEWAY_HEADER_PREFIX)) return;
    if (!(GATEWAY_HEADER_NAMES as readonly string[]).includes(header)) {
      at(
        where,
        `${what} names the header ${name.trim()}, which is not a gateway header: use one of ${list(GATEWAY_HEADER_NAMES)}`,
      );
    }
  };
  for (const { element } of walkPolicy(root)) {
    for (const a of element.attributeList) {
      if (
        (a.name === 'name' && (element.name === 'set-header' || element.name === 'check-header')) ||
        a.name.endsWith('header-name')
      ) {
        checkHeader(a.value, a, `<${element.name} ${a.name}>`);
      }
    }
    if (element.name === 'header') checkHeader(element.text, element, '<header>');
  }

  // (f) metric dimensions.
  for (const { element } of walkPolicy(root)) {
    if (!METRIC_POLICIES.has(element.name)) continue;
    const dimensions = element.children.filter((c) => c.name === 'dimension');
    if (dimensions.length > MAX_METRIC_DIMENSIONS) {
      at(
        element,
        `<${element.name}> has ${dimensions.length} dimensions: at most ${MAX_METRIC_DIMENSIONS} (MAX_METRIC_DIMENSIONS)`,
      );
    }
    const names = new Map<string, PolicyElement>();
    for (const d of dimensions) {
      const name = d.attributes.name;
      if (name === undefined || isExpression(name)) continue;
      const first = names.get(name);
      if (first) at(d, `<${element.name}> has the dimension "${name}" twice (first on line ${first.line})`);
      else names.set(name, d);
    }
  }
  if (basename(doc.file) === APIM_APIS.openai.policyFile) {
    const metrics = [...walkPolicy(root)]
      .map(({ element }) => element)
      .filter((el) => TOKEN_METRIC_POLICIES.has(el.name));
    if (metrics.length === 0) {
      at(
        root,
        `the OpenAI API emits no token metric: add <llm-emit-token-metric namespace="${TOKEN_METRIC.namespace}">`,
      );
    }
    for (const metric of metrics) {
      const namespace = attr(metric, 'namespace');
      if (namespace?.value !== TOKEN_METRIC.namespace) {
        at(
          namespace ?? metric,
          `<${metric.name}> namespace must be "${TOKEN_METRIC.namespace}" (TOKEN_METRIC.namespace)`,
        );
      }
      const names = metric.children.filter((c) => c.name === 'dimension').map((d) => d.attributes.name ?? '');
      const expected: readonly string[] = TOKEN_METRIC.dimensions;
      const missing = expected.filter((n) => !names.includes(n));
      const extra = names.filter((n) => !expected.includes(n));
      if (missing.length > 0 || extra.length > 0) {
        at(
          metric,
          `<${metric.name}> dimensions must be exactly ${list(expected)} (TOKEN_METRIC.dimensions)` +
            (missing.length ? `; missing ${list(missing)}` : '') +
            (extra.length ? `; not in the contract ${list(extra)}` : ''),
        );
      }
    }
  }

  // (g) literals that belong in named values.
  const ranges: Array<{ start: number; end: number; what: string }> = [];
  for (const { element } of walkPolicy(root)) {
    for (const a of element.attributeList) {
      ranges.push({ start: a.valueStart, end: a.valueEnd, what: `attribute ${a.name} of <${element.name}>` });
    }
    for (const s of element.textSpans)
      ranges.push({ start: s.start, end: s.end, what: `the text of <${element.name}>` });
  }
  for (const range of ranges) {
    // Named value references are not literals: blank them out, keeping offsets.
    const raw = doc.source
      .slice(range.start, range.end)
      .replace(/\{\{[^{}]*\}\}/g, (m) => ' '.repeat(m.length));
    const found: Array<{ start: number; end: number }> = [];
    for (const { pattern, what, accept } of LITERALS) {
      for (const m of raw.matchAll(pattern)) {
        if (accept?.(m[0])) continue;
        const end = m.index + m[0].length;
        if (found.some((f) => m.index < f.end && end > f.start)) continue; // already reported
        found.push({ start: m.index, end });
        const shown = m[0].length > 60 ? `${m[0].slice(0, 57)}...` : m[0];
        atOffset(
          range.start + m.index,
          `${range.what} holds ${what} "${shown}": make it a named value ({{…}})`,
        );
      }
    }
  }

  return problems.sort((x, y) => x.line - y.line || x.column - y.column);
}
