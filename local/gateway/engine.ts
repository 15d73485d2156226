import type { GatewayContext } from './context';
import type { HeaderMap } from './context';
import { expressionFor } from './expressions';

/**
 * Compiles APIM policy documents into steps and runs them in APIM's order: inbound, backend,
 * outbound, and on-error when a step raises an error; `<base />` runs the enclosing scope's
 * section. Every element and attribute the policies use is compiled at start: one the gateway
 * does not know, an expression without an implementation or an unknown named value stops it,
 * naming the file and line.
 */

export const SECTIONS = ['inbound', 'backend', 'outbound', 'on-error'] as const;
export type Section = (typeof SECTIONS)[number];

/** An element of a policy document, as the gateway compiles it. */
export interface PolicyNode {
  name: string;
  attributes: ReadonlyMap<string, { value: string; line: number }>;
  children: readonly PolicyNode[];
  /** The element's text content (with expressions and named values as written). */
  text: string;
  file: string;
  line: number;
}

/** A policy the gateway cannot run as written: the gateway does not start. */
export class PolicyConfigError extends Error {
  constructor(node: { file: string; line: number }, message: string) {
    super(`${node.file}:${node.line}: ${message}`);
    this.name = 'PolicyConfigError';
  }
}

/** An error a step raises (APIM's predefined errors): the on-error section runs. */
export class PolicyError extends Error {
  constructor(
    readonly status: number,
    readonly statusReason: string,
    readonly source: string,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'PolicyError';
  }
}

/** What `return-response` answers with: thrown to end the pipeline there. */
export class ReturnResponse extends Error {
  constructor(
    readonly status: number,
    readonly statusReason: string,
    readonly headers: HeaderMap,
    readonly body: string | undefined,
  ) {
    super(`return-response ${status}`);
    this.name = 'ReturnResponse';
  }
}

/** A request in flight: its context and what the steps attach to it. */
export interface Run {
  context: GatewayContext;
  /** Where the request goes (set-backend-service). */
  backendUrl?: string;
  /** Calls the backend (forward-request); the response is in context.response afterwards. */
  forward(options: { timeoutSeconds: number }): Promise<void>;
  /** Called with the response's token usage once its body has been sent (token limits, metrics). */
  onUsage(observer: (usage: TokenUsage) => void): void;
  /** The request body, parsed as JSON (undefined when it is not JSON). */
  jsonBody(): Promise<unknown>;
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** True when the response carried no usage and completion tokens were counted from its text. */
  estimated: boolean;
}

export type Step = (run: Run) => Promise<void>;
export type Value = (context: GatewayContext) => string;

/** What a policy element's compiler gets: its node and the means to compile values and children. */
export interface CompileScope {
  node: PolicyNode;
  section: Section;
  /** The attribute's value (named values substituted, an expression evaluated per request). */
  attribute(name: string): Value | undefined;
  requiredAttribute(name: string): Value;
  /** The attribute's value, which must be a literal once named values are substituted. */
  literal(name: string): string | undefined;
  /** The element's text as a value. */
  text(): Value;
  /** The child elements with this name (each must be allowed by the element's definition). */
  children(name: string): PolicyNode[];
  /** A scope for one of the element's own child elements (a `<value>`, an `<audience>`). */
  child(node: PolicyNode): CompileScope;
  /** Compiles a list of policy elements (choose branches, return-response's children). */
  steps(nodes: readonly PolicyNode[]): Step[];
  fail(message: string, line?: number): never;
}

export interface ElementDefinition {
  attributes: readonly string[];
  /** The child elements it may have (its own parts, or policies for `choose` branches). */
  children?: readonly string[];
  /** The sections the element may appear in (as APIM's reference says). */
  sections: readonly Section[];
  compile(scope: CompileScope): Step;
}

export interface EngineOptions {
  elements: Readonly<Record<string, ElementDefinition>>;
  namedValues: ReadonlyMap<string, string>;
}

const NAMED_VALUE = /\{\{([^{}]*)\}\}/g;

/** Compiles a whole document: its sections' steps, `base` marking where the enclosing scope runs. */
export interface CompiledPolicy {
  file: string;
  sections: Record<Section, Array<Step | 'base'>>;
}

export function compilePolicy(root: PolicyNode, options: EngineOptions, isGlobal: boolean): CompiledPolicy {
  if (root.name !== 'policies') {
    throw new PolicyConfigError(root, `the root element is <${root.name}>, not <policies>`);
  }
  const sections = {} as Record<Section, Array<Step | 'base'>>;
  for (const section of SECTIONS) sections[section] = isGlobal ? [] : ['base'];
  const seen = new Set<string>();
  for (const child of root.children) {
    if (!(SECTIONS as readonly string[]).includes(child.name)) {
      throw new PolicyConfigError(child, `<${child.name}> is not a policy section`);
    }
    if (seen.has(child.name)) throw new PolicyConfigError(child, `<${child.name}> appears twice`);
    seen.add(child.name);
    const section = child.name as Section;
    if (child.attributes.size > 0) {
      const [name, at] = [...child.attributes.entries()][0] as [string, { line: number }];
      throw new PolicyConfigError(
        { file: child.file, line: at.line },
        `<${section}> takes no attribute '${name}'`,
      );
    }
    sections[section] = child.children.map((node) => {
      // In the global scope <base /> has no effect (nothing encloses it): resolved to nothing.
      if (node.name === 'base') return 'base';
      return compileElement(node, section, options);
    });
  }
  return { file: root.file, sections };
}

function compileValue(raw: string, node: PolicyNode, line: number, options: EngineOptions): Value {
  const substituted = raw.replace(NAMED_VALUE, (_m, name: string) => {
    const value = options.namedValues.get(name.trim());
    if (value === undefined) {
      throw new PolicyConfigError({ file: node.file, line }, `the named value '{{${name}}}' is not defined`);
    }
    return value;
  });
  const trimmed = substituted.trim();
  if (trimmed.startsWith('@(') || trimmed.startsWith('@{')) {
    const expression = expressionFor(trimmed);
    if (!expression) {
      throw new PolicyConfigError(
        { file: node.file, line },
        `the expression ${trimmed.length > 80 ? `${trimmed.slice(0, 77)}...` : trimmed} has no implementation in local/gateway/expressions.ts`,
      );
    }
    return (context) => {
      const value = expression(context);
      return typeof value === 'boolean' ? (value ? 'true' : 'false') : String(value);
    };
  }
  return () => substituted;
}

function compileElement(node: PolicyNode, section: Section, options: EngineOptions): Step {
  const definition = options.elements[node.name];
  if (!definition) {
    throw new PolicyConfigError(node, `<${node.name}> is not an element the local gateway runs`);
  }
  if (!definition.sections.includes(section)) {
    throw new PolicyConfigError(node, `<${node.name}> is not allowed in <${section}>`);
  }
  return definition.compile(scopeFor(node, section, options, definition));
}

/** The attributes and children an element's own parts may have (`<value>`, `<claim>`, ...). */
interface Shape {
  attributes: readonly string[];
  children?: readonly string[];
  /** Its children are policies (a `choose` branch), compiled by the element with steps(). */
  policies?: boolean;
}

const PARTS: Readonly<Record<string, Shape>> = {
  value: { attributes: [] },
  'client-application-ids': { attributes: [], children: ['application-id'] },
  'application-id': { attributes: [] },
  audiences: { attributes: [], children: ['audience'] },
  audience: { attributes: [] },
  'required-claims': { attributes: [], children: ['claim'] },
  claim: { attributes: ['name', 'match'], children: ['value'] },
  dimension: { attributes: ['name', 'value'] },
  when: { attributes: ['condition'], policies: true },
  otherwise: { attributes: [], policies: true },
  'set-status': { attributes: ['code', 'reason'] },
  'set-header': { attributes: ['name', 'exists-action'], children: ['value'] },
  'set-body': { attributes: [] },
};

function scopeFor(node: PolicyNode, section: Section, options: EngineOptions, shape: Shape): CompileScope {
  for (const [name, { line }] of node.attributes) {
    if (!shape.attributes.includes(name)) {
      throw new PolicyConfigError(
        { file: node.file, line },
        `<${node.name}> has no attribute '${name}' the local gateway knows`,
      );
    }
  }
  const allowed = new Set(shape.children ?? []);
  for (const child of shape.policies ? [] : node.children) {
    if (!allowed.has(child.name)) {
      throw new PolicyConfigError(child, `<${child.name}> is not allowed inside <${node.name}>`);
    }
  }
  const scope: CompileScope = {
    node,
    section,
    attribute(name) {
      const attribute = node.attributes.get(name);
      return attribute === undefined
        ? undefined
        : compileValue(attribute.value, node, attribute.line, options);
    },
    requiredAttribute(name) {
      const value = scope.attribute(name);
      if (!value) throw new PolicyConfigError(node, `<${node.name}> needs the attribute '${name}'`);
      return value;
    },
    literal(name) {
      const attribute = node.attributes.get(name);
      if (attribute === undefined) return undefined;
      if (/^\s*@[({]/.test(attribute.value)) {
        throw new PolicyConfigError(
          { file: node.file, line: attribute.line },
          `'${name}' takes no expression here`,
        );
      }
      return compileValue(attribute.value, node, attribute.line, options)({} as GatewayContext);
    },
    text: () => compileValue(node.text, node, node.line, options),
    children: (name) => node.children.filter((c) => c.name === name),
    child(child) {
      const part = PARTS[child.name];
      // A policy nested in a part (a `choose` branch's body) is compiled by steps(), not here.
      if (!part) throw new PolicyConfigError(child, `<${child.name}> is not allowed inside <${node.name}>`);
      return scopeFor(child, section, options, part);
    },
    steps: (nodes) => nodes.map((child) => compileElement(child, section, options)),
    fail(message, line) {
      throw new PolicyConfigError({ file: node.file, line: line ?? node.line }, message);
    },
  };
  return scope;
}

/** The steps of a section with `base` resolved against the enclosing (global) policy. */
export function resolveSection(api: CompiledPolicy, global: CompiledPolicy, section: Section): Step[] {
  const outer = global.sections[section].filter((s): s is Step => s !== 'base');
  return api.sections[section].flatMap((step) => (step === 'base' ? outer : [step]));
}
