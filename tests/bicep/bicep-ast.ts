// A Bicep syntax tree for tests: parses .bicep/.bicepparam files with the real Bicep grammar
// (tree-sitter-bicep's WebAssembly build, run by web-tree-sitter: no native module, no compiler)
// and exposes declarations as plain data.
//
// Values are a plain tree: objects are plain JS objects (property name -> value), arrays are
// arrays, literal strings/numbers/booleans/null are JS values, and anything else (references,
// function calls, interpolated strings, ternaries...) is a BicepExpression holding its source
// text. Where a property or value sits in the file is kept on the side: see `locationOf`.
//
// Limitations of the grammar (tree-sitter-bicep 1.1.0), handled here:
//  - `.bicepparam` parameter assignments (`param name = value`) are not in the grammar: in
//    .bicepparam files a statement-leading `param` keyword is read as `var  ` (same width, so
//    lines and columns are unchanged) and reported back as `paramAssignments`.
//  - `extension` statements (Bicep's extensions, e.g. `extension microsoftGraphV1`) are newer
//    than the grammar, which only knows the old `provider 'string'`: a single-line `extension`
//    statement is read as a comment of the same width and reported back as `extensions`.
//  - Syntax errors come back as ERROR nodes that may span a whole declaration; `parseBicep`
//    names the place the parse broke down (see `syntaxErrors`) and the enclosing span.

import { readFile } from 'node:fs/promises';
import { Language, Parser, type Node } from 'web-tree-sitter';

export interface SourceLocation {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly column: number;
}

/** A non-literal expression, kept as source text (`kind` is the grammar's node type). */
export class BicepExpression {
  constructor(
    readonly text: string,
    readonly kind: string,
  ) {}
  toString(): string {
    return this.text;
  }
}

export type BicepValue = string | number | boolean | null | BicepExpression | BicepValue[] | BicepObject;
export interface BicepObject {
  [property: string]: BicepValue;
}

export interface BicepDecorator {
  readonly name: string;
  /** Argument values (literals as JS values, others as BicepExpression). */
  readonly args: BicepValue[];
  readonly location: SourceLocation;
}

/** `[for ... in <source>: ...]` around a resource or module body. */
export interface BicepLoop {
  /** The loop header as written, e.g. `for (name, i) in names`. */
  readonly header: string;
  readonly source: string;
}

export interface BicepResource {
  readonly symbolicName: string;
  /** Full resource type, composed from the parents for nested declarations. */
  readonly type: string;
  /** Explicit or (for nested declarations without @version) inherited from the parent. */
  readonly apiVersion: string | undefined;
  /** The type string as written: `'Microsoft.Web/sites@2024-04-01'` or `'config'`. */
  readonly typeString: string;
  readonly existing: boolean;
  readonly location: SourceLocation;
  /** Shortcut for location.line. */
  readonly line: number;
  /** The body object without nested `resource` declarations (those are in `children`). */
  readonly body: BicepObject;
  readonly decorators: BicepDecorator[];
  /** Text of the `if (...)` condition, when the declaration is conditional. */
  readonly condition: string | undefined;
  readonly loop: BicepLoop | undefined;
  /** Lexically enclosing resource for nested declarations. */
  readonly parent: BicepResource | undefined;
  readonly children: BicepResource[];
}

export interface BicepParam {
  readonly name: string;
  /** Type as written (`string`, `int?`, `'a' | 'b'`, a user type name, `resource '...'`). */
  readonly type: string;
  readonly defaultValue: BicepValue | undefined;
  readonly decorators: BicepDecorator[];
  readonly location: SourceLocation;
}

export interface BicepOutput {
  readonly name: string;
  readonly type: string;
  readonly value: BicepValue;
  readonly decorators: BicepDecorator[];
  readonly location: SourceLocation;
}

export interface BicepVariable {
  readonly name: string;
  readonly value: BicepValue;
  readonly location: SourceLocation;
}

export interface BicepModule {
  readonly symbolicName: string;
  /** The module path as written (`./modules/storage.bicep`, `br/public:...`). */
  readonly path: string;
  readonly body: BicepObject;
  /** `params` of the body ({} when absent; a BicepExpression body value is reported as {}). */
  readonly params: BicepObject;
  readonly decorators: BicepDecorator[];
  readonly condition: string | undefined;
  readonly loop: BicepLoop | undefined;
  readonly location: SourceLocation;
  readonly line: number;
}

/** `param name = value` in a .bicepparam file. */
export interface BicepParamAssignment {
  readonly name: string;
  readonly value: BicepValue;
  readonly location: SourceLocation;
}

export interface BicepFile {
  readonly path: string;
  readonly kind: 'bicep' | 'bicepparam';
  readonly source: string;
  readonly targetScope: string | undefined;
  /** `.bicepparam`: the `using` target. */
  readonly using: string | undefined;
  readonly params: BicepParam[];
  readonly paramAssignments: BicepParamAssignment[];
  readonly variables: BicepVariable[];
  readonly outputs: BicepOutput[];
  readonly modules: BicepModule[];
  /** Top-level resource declarations; nested ones are in their parent's `children`. */
  readonly resources: BicepResource[];
  /** `extension` statements. */
  readonly extensions: BicepExtension[];
}

/** `extension <name or 'registry reference'> [as <alias>]`. */
export interface BicepExtension {
  /** The bicepconfig.json alias (`microsoftGraphV1`) or the reference (`br:...`), unquoted. */
  readonly reference: string;
  readonly alias: string | undefined;
  readonly location: SourceLocation;
}

export class BicepSyntaxError extends Error {
  constructor(
    readonly errors: readonly string[],
    readonly file: string,
  ) {
    super(`Bicep syntax errors in ${file}:\n${errors.join('\n')}`);
    this.name = 'BicepSyntaxError';
  }
}

let parserPromise: Promise<Parser> | undefined;

function bicepParser(): Promise<Parser> {
  parserPromise ??= (async () => {
    await Parser.init();
    // Bytes, not a path: given a path, web-tree-sitter reads it with a dynamic import(), which
    // jest's CommonJS sandbox refuses.
    const wasm = await readFile(require.resolve('tree-sitter-bicep/tree-sitter-bicep.wasm'));
    const language = await Language.load(new Uint8Array(wasm));
    const parser = new Parser();
    parser.setLanguage(language);
    return parser;
  })();
  return parserPromise;
}

const locations = new WeakMap<object, Map<string | number, SourceLocation>>();

/**
 * Where a property of a parsed object (or an element of a parsed array) is written: the
 * location of its key (objects) or of the element (arrays).
 */
export function locationOf(
  container: BicepObject | BicepValue[],
  key: string | number,
): SourceLocation | undefined {
  return locations.get(container)?.get(key);
}

function loc(file: string, node: Node): SourceLocation {
  return { file, line: node.startPosition.row + 1, column: node.startPosition.column + 1 };
}

export function formatLocation(l: SourceLocation): string {
  return `${l.file}:${l.line}:${l.column}`;
}

/** Every ERROR/MISSING node as `file:line:column: message`, pointing where the parse broke. */
export function syntaxErrors(file: string, root: Node): string[] {
  const out: string[] = [];
  const visit = (n: Node): void => {
    if (n.isMissing) {
      out.push(`${formatLocation(loc(file, n))}: syntax error: missing ${JSON.stringify(n.type)}`);
      return;
    }
    if (n.type === 'ERROR') {
      out.push(describeError(file, n));
      return;
    }
    if (n.hasError) for (const c of n.children) visit(c);
  };
  visit(root);
  return out;
}

function describeError(file: string, n: Node): string {
  const span = `${n.startPosition.row + 1}-${n.endPosition.row + 1}`;
  // The first stray token (a string body outside quotes, a nested ERROR or MISSING) is where the
  // parse went wrong; failing that, the parse broke right after the last complete construct.
  const kids = n.children;
  const stray = kids.find((c) => c.type === 'ERROR' || c.isMissing || c.type === 'string_content');
  const complete = [...kids].reverse().find((c) => c.isNamed && c.childCount > 0);
  let at: Node = n;
  let what = `unexpected ${JSON.stringify(n.text.split('\n')[0]?.slice(0, 40) ?? '')}`;
  if (stray) {
    at = stray;
    what = `unexpected ${JSON.stringify(stray.text.split('\n')[0]?.slice(0, 40) ?? '')}`;
  } else if (complete && kids.length > 1) {
    at = complete;
    what = `cannot continue after ${JSON.stringify(complete.text.split('\n')[0]?.slice(0, 40) ?? '')}`;
  }
  return `${formatLocation(loc(file, at))}: syntax error: ${what} (unparsable lines ${span})`;
}

/** Source of a .bicepparam file made readable by the grammar (see the header). */
function bicepparamToGrammar(source: string): string {
  return source.replace(/^(\s*)param(\s+[A-Za-z_][A-Za-z0-9_]*\s*=)/gm, '$1var  $2');
}

export async function parseBicep(path: string): Promise<BicepFile> {
  const source = await readFile(path, 'utf8');
  return parseBicepSource(source, path);
}

const EXTENSION_STATEMENT =
  /^([ \t]*)extension([ \t]+)([A-Za-z_][A-Za-z0-9_]*|'[^'\r\n]*')(?:[ \t]+as[ \t]+([A-Za-z_][A-Za-z0-9_]*))?[ \t]*(?=\r?$|[ \t]*\/\/)/gm;

/** `extension` statements, and the source with each one turned into a comment (see the header). */
function extensionsToGrammar(source: string, path: string): { source: string; extensions: BicepExtension[] } {
  const extensions: BicepExtension[] = [];
  const out = source.replace(
    EXTENSION_STATEMENT,
    (match, indent: string, _sp: string, ref: string, alias: string | undefined, offset: number) => {
      const line = source.slice(0, offset).split('\n').length;
      extensions.push({
        reference: ref.replace(/^'|'$/g, ''),
        alias,
        location: { file: path, line, column: indent.length + 1 },
      });
      return `${indent}//${match.slice(indent.length + 2)}`;
    },
  );
  return { source: out, extensions };
}

export async function parseBicepSource(source: string, path: string): Promise<BicepFile> {
  const parser = await bicepParser();
  const kind = path.endsWith('.bicepparam') ? 'bicepparam' : 'bicep';
  const { source: grammarSource, extensions } =
    kind === 'bicep' ? extensionsToGrammar(source, path) : { source, extensions: [] };
  const tree = parser.parse(kind === 'bicepparam' ? bicepparamToGrammar(source) : grammarSource);
  if (!tree) throw new Error(`${path}: tree-sitter returned no tree`);
  try {
    const root = tree.rootNode;
    if (root.hasError) throw new BicepSyntaxError(syntaxErrors(path, root), path);
    return { ...fileFromTree(root, path, kind, source), extensions };
  } finally {
    tree.delete();
  }
}

function stringValue(n: Node): string | undefined {
  if (n.type !== 'string') return undefined;
  let out = '';
  for (const c of n.namedChildren) {
    if (c.type === 'interpolation') return undefined;
    if (c.type === 'escape_sequence') out += unescape(c.text);
    else out += c.text;
  }
  if (n.namedChildCount === 0) {
    // ''' multi-line ''' strings have no string_content children
    const t = n.text;
    if (t.startsWith("'''")) return t.slice(3, -3).replace(/^\r?\n/, '');
  }
  return out;
}

function unescape(seq: string): string {
  switch (seq) {
    case "\\'":
      return "'";
    case '\\\\':
      return '\\';
    case '\\n':
      return '\n';
    case '\\r':
      return '\r';
    case '\\t':
      return '\t';
    case '\\$':
      return '$';
    default: {
      const m = /^\\u\{([0-9a-fA-F]+)\}$/.exec(seq);
      return m?.[1] ? String.fromCodePoint(parseInt(m[1], 16)) : seq;
    }
  }
}

function propertyKey(n: Node): string {
  const s = stringValue(n);
  if (s !== undefined) return s;
  return n.text; // identifier, or a keyword used as a key
}

function readValue(file: string, n: Node, onResource?: (decl: Node) => void): BicepValue {
  switch (n.type) {
    case 'object': {
      const obj: BicepObject = {};
      const where = new Map<string | number, SourceLocation>();
      for (const p of n.namedChildren) {
        if (p.type !== 'object_property') continue;
        const first = p.namedChildren[0];
        if (!first) continue;
        if (first.type === 'resource_declaration') {
          if (onResource) onResource(first);
          continue;
        }
        const valueNode = p.namedChildren[p.namedChildCount - 1];
        if (!valueNode || valueNode === first) continue;
        const key = propertyKey(first);
        obj[key] = readValue(file, valueNode, undefined);
        where.set(key, loc(file, first));
      }
      locations.set(obj, where);
      return obj;
    }
    case 'array': {
      const arr: BicepValue[] = [];
      const where = new Map<string | number, SourceLocation>();
      for (const c of n.namedChildren) {
        if (c.type === 'comment' || c.type === 'diagnostic_comment') continue;
        where.set(arr.length, loc(file, c));
        arr.push(readValue(file, c));
      }
      locations.set(arr, where);
      return arr;
    }
    case 'string': {
      const s = stringValue(n);
      return s ?? new BicepExpression(n.text, 'interpolated_string');
    }
    case 'number':
      return Number(n.text);
    case 'boolean':
      return n.text === 'true';
    case 'null':
      return null;
    default:
      return new BicepExpression(n.text, n.type);
  }
}

function decoratorsBefore(file: string, decl: Node): BicepDecorator[] {
  const prev = decl.previousNamedSibling;
  if (!prev || prev.type !== 'decorators') return [];
  return prev.namedChildren
    .filter((d) => d.type === 'decorator')
    .map((d) => {
      const expr = d.namedChildren[0];
      const fn = expr?.type === 'call_expression' ? expr.childForFieldName('function') : expr;
      const args = expr?.type === 'call_expression' ? expr.childForFieldName('arguments') : null;
      return {
        name: fn?.text ?? '',
        args: args ? args.namedChildren.map((a) => readValue(file, a)) : [],
        location: loc(file, d),
      };
    });
}

interface UnwrappedBody {
  body: Node | undefined;
  condition: string | undefined;
  loop: BicepLoop | undefined;
}

/** `{...}`, `if (c) {...}`, `[for x in xs: {...}]`, `[for x in xs: if (c) {...}]`. */
function unwrapBody(n: Node | undefined): UnwrappedBody {
  let condition: string | undefined;
  let loop: BicepLoop | undefined;
  let cur = n;
  while (cur && cur.type !== 'object') {
    if (cur.type === 'for_statement') {
      const body = cur.childForFieldName('body');
      const named = cur.namedChildren.filter((c) => c.id !== body?.id);
      const source = named[named.length - 1];
      const headerEnd = source?.endIndex ?? cur.startIndex;
      loop = {
        header: cur.text.slice(0, headerEnd - cur.startIndex).replace(/^\[\s*/, ''),
        source: source?.text ?? '',
      };
      cur = body ?? undefined;
    } else if (cur.type === 'if_statement') {
      const cond = cur.namedChildren.find((c) => c.type === 'parenthesized_expression');
      condition = cond?.text.replace(/^\(\s*|\s*\)$/g, '');
      cur = cur.namedChildren.find((c) => c.type === 'object');
    } else {
      cur = undefined;
    }
  }
  return { body: cur, condition, loop };
}

function splitType(typeString: string): { type: string; apiVersion: string | undefined } {
  const at = typeString.indexOf('@');
  return at < 0
    ? { type: typeString, apiVersion: undefined }
    : { type: typeString.slice(0, at), apiVersion: typeString.slice(at + 1) };
}

function readResource(
  file: string,
  decl: Node,
  parent: BicepResource | undefined,
  decorators: BicepDecorator[],
): BicepResource {
  const named = decl.namedChildren;
  const nameNode = named[0];
  const typeNode = named[1];
  if (!nameNode || !typeNode)
    throw new Error(`${formatLocation(loc(file, decl))}: malformed resource declaration`);
  const typeString = stringValue(typeNode);
  if (typeString === undefined) {
    throw new Error(`${formatLocation(loc(file, typeNode))}: resource type must be a plain string literal`);
  }
  const existing = decl.children.some((c) => !c.isNamed && c.type === 'existing');
  const written = splitType(typeString);
  const type = parent && !written.type.includes('/') ? `${parent.type}/${written.type}` : written.type;
  const apiVersion =
    written.apiVersion ?? (parent && !written.type.includes('/') ? parent.apiVersion : undefined);
  const valueNode = named[named.length - 1];
  const { body, condition, loop } = unwrapBody(valueNode === typeNode ? undefined : valueNode);
  const childDecls: Node[] = [];
  const bodyValue = body ? readValue(file, body, (d) => childDecls.push(d)) : {};
  const children: BicepResource[] = [];
  const resource: BicepResource = {
    symbolicName: nameNode.text,
    type,
    apiVersion,
    typeString,
    existing,
    location: loc(file, decl),
    line: decl.startPosition.row + 1,
    body: bodyValue as BicepObject,
    decorators,
    condition,
    loop,
    parent,
    children,
  };
  for (const d of childDecls) children.push(readResource(file, d, resource, decoratorsBefore(file, d)));
  return resource;
}

function fileFromTree(
  root: Node,
  path: string,
  kind: 'bicep' | 'bicepparam',
  source: string,
): Omit<BicepFile, 'extensions'> {
  const params: BicepParam[] = [];
  const paramAssignments: BicepParamAssignment[] = [];
  const variables: BicepVariable[] = [];
  const outputs: BicepOutput[] = [];
  const modules: BicepModule[] = [];
  const resources: BicepResource[] = [];
  let targetScope: string | undefined;
  let using: string | undefined;
  const paramAssignmentLines = new Set<number>();
  if (kind === 'bicepparam') {
    source.split('\n').forEach((l, i) => {
      if (/^\s*param\s+[A-Za-z_][A-Za-z0-9_]*\s*=/.test(l)) paramAssignmentLines.add(i);
    });
  }
  for (const n of root.namedChildren) {
    const named = n.namedChildren;
    switch (n.type) {
      case 'target_scope_assignment': {
        const v = named[0];
        targetScope = v ? (stringValue(v) ?? v.text) : undefined;
        break;
      }
      case 'using_statement': {
        const v = named[0];
        using = v ? (stringValue(v) ?? v.text) : undefined;
        break;
      }
      case 'parameter_declaration': {
        const [name, type, value] = named;
        if (!name || !type) break;
        params.push({
          name: name.text,
          type: type.text,
          defaultValue: value ? readValue(path, value) : undefined,
          decorators: decoratorsBefore(path, n),
          location: loc(path, n),
        });
        break;
      }
      case 'variable_declaration': {
        const name = named[0];
        const value = named[named.length - 1];
        if (!name || !value || value === name) break;
        const entry = { name: name.text, value: readValue(path, value), location: loc(path, n) };
        if (paramAssignmentLines.has(n.startPosition.row)) paramAssignments.push(entry);
        else variables.push(entry);
        break;
      }
      case 'output_declaration': {
        const [name, type] = named;
        const value = named[named.length - 1];
        if (!name || !type || !value) break;
        outputs.push({
          name: name.text,
          type: type.text,
          value: readValue(path, value),
          decorators: decoratorsBefore(path, n),
          location: loc(path, n),
        });
        break;
      }
      case 'module_declaration': {
        const [name, pathNode] = named;
        if (!name || !pathNode) break;
        const { body, condition, loop } = unwrapBody(named[named.length - 1]);
        const bodyValue = (body ? readValue(path, body) : {}) as BicepObject;
        const p = bodyValue['params'];
        const isObject =
          typeof p === 'object' && p !== null && !Array.isArray(p) && !(p instanceof BicepExpression);
        modules.push({
          symbolicName: name.text,
          path: stringValue(pathNode) ?? pathNode.text,
          body: bodyValue,
          params: isObject ? p : {},
          decorators: decoratorsBefore(path, n),
          condition,
          loop,
          location: loc(path, n),
          line: n.startPosition.row + 1,
        });
        break;
      }
      case 'resource_declaration':
        resources.push(readResource(path, n, undefined, decoratorsBefore(path, n)));
        break;
      default:
        break;
    }
  }
  return {
    path,
    kind,
    source,
    targetScope,
    using,
    params,
    paramAssignments,
    variables,
    outputs,
    modules,
    resources,
  };
}

/** Every resource declaration of the file, nested ones included (depth-first, in source order). */
export function allResources(file: BicepFile): BicepResource[] {
  const out: BicepResource[] = [];
  const walk = (r: BicepResource): void => {
    out.push(r);
    r.children.forEach(walk);
  };
  file.resources.forEach(walk);
  return out;
}

/** True for a parsed object value (not an array, expression or literal). */
export function isBicepObject(v: BicepValue | undefined): v is BicepObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof BicepExpression);
}

/**
 * A value as text: literals as themselves (strings unquoted), expressions as their source text,
 * objects/arrays as JSON-like text. Use instead of String(value), which prints [object Object].
 */
export function bicepText(v: BicepValue | undefined): string {
  if (v === undefined) return '';
  if (v instanceof BicepExpression) return v.text;
  if (typeof v === 'string') return v;
  if (v === null || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v))
    return `[${v.map((x) => (typeof x === 'string' ? `'${x}'` : bicepText(x))).join(', ')}]`;
  return `{ ${Object.entries(v)
    .map(([k, x]) => `${k}: ${typeof x === 'string' ? `'${x}'` : bicepText(x)}`)
    .join(', ')} }`;
}
