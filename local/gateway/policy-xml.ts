import { SaxesParser } from 'saxes';

/**
 * A reader for API Management policy XML.
 *
 * Policy files are not well-formed XML as written: attribute values and element text may hold C#
 * policy expressions, `@(...)` (one expression) and `@{...}` (a block of statements), with raw
 * `"`, `<`, `>` and `&` in them. This module finds every expression (balancing `()`, `{}` and `[]`
 * and skipping C# string, verbatim string, interpolated string and character literals and
 * comments), replaces it by a placeholder of the same length that keeps its line breaks, lets the
 * strict `saxes` parser check the result, and puts the expressions back into the tree. Offsets,
 * lines and columns therefore all refer to the original text.
 *
 * Lines and columns are 1-based; a column counts UTF-16 code units from the start of the line.
 * `\n`, `\r\n` and a lone `\r` each end a line (as XML treats them).
 *
 * Choices:
 * - An expression starts at `@(` or `@{` anywhere in an attribute value or in text: one that is
 *   not the whole value would break the XML all the same.
 * - XML character and entity references in an expression (`&quot;`, `&lt;`, `&amp;`, `&#34;`…) are
 *   read as the character they stand for (the escaped form a policy takes in the ARM `xml`
 *   format): `@(x.Get(&quot;a)&quot;))` is balanced.
 *   `PolicyExpression.text` is the expression as written, `code` with those references decoded;
 *   the tree holds `code`.
 * - Comments, processing instructions and CDATA sections are literal: no expressions are looked
 *   for in them. A DOCTYPE is refused (APIM accepts none).
 * - `{{name}}` references are listed wherever they occur, expressions and comments included: named
 *   values are substituted in the policy text before any expression is compiled.
 * - saxes reports XML errors at the character where it noticed them (for an unclosed element, the
 *   end of the file); a bare `&` outside expressions is reported where it is.
 */

export class PolicyXmlError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    reason: string,
  ) {
    super(`${file}:${line}:${column}: ${reason}`);
    this.name = 'PolicyXmlError';
  }
}

export interface SourcePosition {
  /** 1-based. */
  line: number;
  /** 1-based, in UTF-16 code units. */
  column: number;
}

export interface PolicyExpression extends SourcePosition {
  kind: '@(' | '@{';
  /** Exactly as written in the file, from `@` to the closing bracket. */
  text: string;
  /** The C# the gateway compiles: `text` with XML character/entity references decoded. */
  code: string;
  /** Offsets in the file: [start, end). */
  start: number;
  end: number;
}

export interface NamedValueReference extends SourcePosition {
  /** What is between the braces, as written. */
  name: string;
  /** `{{name}}` as written. */
  text: string;
  start: number;
  end: number;
}

export interface PolicyAttribute extends SourcePosition {
  name: string;
  /** The attribute's value as XML defines it, with every expression restored (as `code`). */
  value: string;
  /** Offsets of the raw value in the file (between the quotes): [valueStart, valueEnd). */
  valueStart: number;
  valueEnd: number;
}

/** A stretch of character data directly inside an element (text or a CDATA section's content). */
export interface PolicyTextSpan {
  /** Offsets of the raw text in the file: [start, end). */
  start: number;
  end: number;
  cdata: boolean;
}

export interface PolicyElement extends SourcePosition {
  name: string;
  /** Attribute name → value (expressions restored). */
  attributes: Readonly<Record<string, string>>;
  /** The same attributes in document order, with their positions. */
  attributeList: readonly PolicyAttribute[];
  children: readonly PolicyElement[];
  /** All character data directly inside the element, concatenated (expressions restored). */
  text: string;
  /** Where that character data is in the file. */
  textSpans: readonly PolicyTextSpan[];
  /** Offset of the element's `<` in the file. */
  start: number;
}

export interface PolicyDocument {
  file: string;
  source: string;
  root: PolicyElement;
  expressions: readonly PolicyExpression[];
  namedValues: readonly NamedValueReference[];
  /** Offsets of every comment in the file, `<!--` to `-->`. */
  comments: ReadonlyArray<{ start: number; end: number }>;
}

// Placeholders: an expression becomes START FILL… END (line breaks kept), all private-use
// characters that XML accepts in attribute values and text.
const MASK_START = '\uE000';
const MASK_FILL = '\uE001';
const MASK_END = '\uE002';
const MASK_CHARS = /[\uE000-\uE002]/;
const MASKED_EXPRESSION = /\uE000[^\uE002]*\uE002/g;

const NAMED_VALUE = /\{\{([^{}]*)\}\}/g;
const XML_REFERENCE = /&(?:(quot|apos|lt|gt|amp)|#([0-9]+)|#x([0-9a-fA-F]+));/y;
const XML_REFERENCE_GLOBAL = /&(?:(quot|apos|lt|gt|amp)|#([0-9]+)|#x([0-9a-fA-F]+));/g;
const ENTITY_REFERENCE = /&(?:[A-Za-z_:][\w.:-]*|#[0-9]+|#x[0-9a-fA-F]+);/y;
const PREDEFINED: Record<string, string> = { quot: '"', apos: "'", lt: '<', gt: '>', amp: '&' };

function referenceChar(named: string | undefined, dec: string | undefined, hex: string | undefined): string {
  if (named !== undefined) return PREDEFINED[named] ?? '';
  const code = dec !== undefined ? Number.parseInt(dec, 10) : Number.parseInt(hex ?? '', 16);
  return code <= 0x10ffff ? String.fromCodePoint(code) : '\uFFFD';
}

/** `text` with XML character and predefined entity references replaced by their characters. */
function decodeXmlReferences(text: string): string {
  return text.replace(
    XML_REFERENCE_GLOBAL,
    (_m, named: string | undefined, dec: string | undefined, hex: string | undefined) =>
      referenceChar(named, dec, hex),
  );
}

/** Maps offsets of one text to 1-based lines and columns. */
export class LineMap {
  private readonly starts: number[] = [0];

  constructor(text: string) {
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 10) this.starts.push(i + 1);
      else if (c === 13) {
        if (text.charCodeAt(i + 1) === 10) i++;
        this.starts.push(i + 1);
      }
    }
  }

  position(offset: number): SourcePosition {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.starts[mid] ?? 0) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - (this.starts[lo] ?? 0) + 1 };
  }
}

// ---------------------------------------------------------------------------------------------
// C# expressions

class Reader {
  constructor(
    readonly src: string,
    readonly file: string,
    readonly lines: LineMap,
  ) {}

  fail(offset: number, reason: string): never {
    const { line, column } = this.lines.position(offset);
    throw new PolicyXmlError(this.file, line, column, reason);
  }

  /** The character at `i` as the C# compiler sees it (XML references decoded) and its length. */
  read(i: number): { ch: string; len: number } {
    const src = this.src;
    if (src[i] === '&') {
      XML_REFERENCE.lastIndex = i;
      const m = XML_REFERENCE.exec(src);
      if (m) return { ch: referenceChar(m[1], m[2], m[3]), len: m[0].length };
    }
    return { ch: src[i] ?? '', len: 1 };
  }

  /** The character after the one at `i`. */
  peek(i: number): string {
    return this.read(i + this.read(i).len).ch;
  }

  describe(offset: number): string {
    const { line, column } = this.lines.position(offset);
    return `${line}:${column}`;
  }
}

const CLOSER: Record<string, string> = { '(': ')', '[': ']', '{': '}' };

/**
 * Scans C# code from `i` until the bracket that closes `closer` (brackets opened on the way must
 * be closed first). Returns the offset just past that bracket.
 */
/** The construct an error is reported in: an expression or an interpolation hole, and where it starts. */
interface Opener {
  at: number;
  what: string;
}

const within = (r: Reader, opener: Opener): string => `in ${opener.what} at ${r.describe(opener.at)}`;

function scanCode(r: Reader, i: number, closer: string, opener: Opener): number {
  const stack: string[] = [closer];
  for (;;) {
    if (i >= r.src.length) {
      r.fail(
        opener.at,
        `unbalanced expression: ${opener.what} is never closed (expected '${stack[stack.length - 1] ?? closer}' before the end of the file)`,
      );
    }
    const { ch, len } = r.read(i);
    const next = r.peek(i);
    if (ch === '"') {
      i = scanString(r, i + len, i, { verbatim: false, interpolated: false }, opener);
    } else if ((ch === '@' && next === '"') || (ch === '$' && next === '"')) {
      const quote = i + len + r.read(i + len).len;
      i = scanString(r, quote, i, { verbatim: ch === '@', interpolated: ch === '$' }, opener);
    } else if ((ch === '@' && next === '$') || (ch === '$' && next === '@')) {
      const second = i + len;
      const third = second + r.read(second).len;
      if (r.read(third).ch === '"') {
        i = scanString(r, third + r.read(third).len, i, { verbatim: true, interpolated: true }, opener);
      } else i += len;
    } else if (ch === "'") {
      i = scanChar(r, i, opener);
    } else if (ch === '/' && next === '/') {
      while (i < r.src.length && r.src[i] !== '\n' && r.src[i] !== '\r') i++;
    } else if (ch === '/' && next === '*') {
      const end = r.src.indexOf('*/', i + 2);
      if (end < 0) r.fail(i, `unterminated comment: /* is never closed (${within(r, opener)})`);
      i = end + 2;
    } else if (ch === '(' || ch === '[' || ch === '{') {
      stack.push(CLOSER[ch] ?? ')');
      i += len;
    } else if (ch === ')' || ch === ']' || ch === '}') {
      const expected = stack.pop();
      if (ch !== expected) {
        r.fail(
          i,
          `unbalanced expression: '${ch}' where '${expected ?? ''}' was expected (${within(r, opener)})`,
        );
      }
      i += len;
      if (stack.length === 0) return i;
    } else {
      i += len;
    }
  }
}

/** Scans a string literal whose opening `"` ends just before `i`; returns the offset past it. */
function scanString(
  r: Reader,
  i: number,
  literalStart: number,
  kind: { verbatim: boolean; interpolated: boolean },
  opener: Opener,
): number {
  const unterminated = (): never =>
    r.fail(
      literalStart,
      `unterminated ${kind.verbatim ? 'verbatim ' : ''}string literal (${within(r, opener)})`,
    );
  for (;;) {
    if (i >= r.src.length) unterminated();
    const { ch, len } = r.read(i);
    if (ch === '"') {
      if (kind.verbatim && r.peek(i) === '"') {
        i += len + r.read(i + len).len;
        continue;
      }
      return i + len;
    }
    if (!kind.verbatim && (ch === '\n' || ch === '\r')) unterminated();
    if (!kind.verbatim && ch === '\\') {
      const escaped = r.read(i + len);
      if (escaped.ch === '\n' || escaped.ch === '\r' || i + len >= r.src.length) unterminated();
      i += len + escaped.len;
      continue;
    }
    if (kind.interpolated && ch === '{') {
      if (r.peek(i) === '{') {
        i += len + r.read(i + len).len;
        continue;
      }
      i = scanCode(r, i + len, '}', { at: i, what: `an interpolation hole (${within(r, opener)})` });
      continue;
    }
    if (kind.interpolated && ch === '}' && r.peek(i) === '}') {
      i += len + r.read(i + len).len;
      continue;
    }
    i += len;
  }
}

/** Scans a character literal starting at its opening `'`; returns the offset past it. */
function scanChar(r: Reader, start: number, opener: Opener): number {
  let i = start + r.read(start).len;
  const first = r.read(i);
  if (first.ch === '\\') {
    i += first.len + r.read(i + first.len).len;
  } else if (first.ch !== "'" && first.ch !== '\n' && first.ch !== '\r' && i < r.src.length) {
    i += first.len;
  }
  // \uXXXX, \xX…, \UXXXXXXXX: the rest of the escape, at most 8 more characters.
  for (let n = 0; n <= 8 && i < r.src.length; n++) {
    const c = r.read(i);
    if (c.ch === "'") return i + c.len;
    if (!/[0-9a-fA-F]/.test(c.ch)) break;
    i += c.len;
  }
  return r.fail(start, `unterminated character literal (${within(r, opener)})`);
}

// ---------------------------------------------------------------------------------------------
// XML structure (lenient: saxes is the judge of well-formedness)

interface ScannedAttribute {
  name: string;
  nameStart: number;
  valueStart: number;
  valueEnd: number;
}

interface ScannedStartTag {
  name: string;
  start: number;
  attributes: ScannedAttribute[];
}

interface ScannedText extends PolicyTextSpan {
  /** Index of the enclosing element's start tag, or -1 outside the root. */
  owner: number;
}

interface Scan {
  masked: string;
  expressions: PolicyExpression[];
  tags: ScannedStartTag[];
  texts: ScannedText[];
  comments: Array<{ start: number; end: number }>;
  /** Where the scanner stopped understanding the markup (saxes will say why), if it did. */
  stoppedAt: number | null;
}

const NAME_START = /[A-Za-z_:\u00C0-\uFFFF]/;
const NAME_CHAR = /[A-Za-z0-9_:.\-\u00B7\u00C0-\uFFFF]/;
const SPACE = /[ \t\r\n]/;

function scan(r: Reader): Scan {
  const src = r.src;
  const expressions: PolicyExpression[] = [];
  const tags: ScannedStartTag[] = [];
  const texts: ScannedText[] = [];
  const comments: Array<{ start: number; end: number }> = [];
  const open: number[] = [];
  const pieces: string[] = [];
  let copied = 0;
  let i = 0;

  const bad = MASK_CHARS.exec(src);
  if (bad) r.fail(bad.index, `character U+${bad[0].charCodeAt(0).toString(16).toUpperCase()} is not allowed`);

  /** If an expression starts at `at`, masks it and returns the offset past it. */
  const expression = (at: number): number | null => {
    if (src[at] !== '@' || (src[at + 1] !== '(' && src[at + 1] !== '{')) return null;
    const kind = src[at + 1] === '(' ? '@(' : '@{';
    const end = scanCode(r, at + 2, kind === '@(' ? ')' : '}', { at, what: `the expression ${kind}` });
    const text = src.slice(at, end);
    expressions.push({
      kind,
      text,
      code: decodeXmlReferences(text),
      start: at,
      end,
      ...r.lines.position(at),
    });
    let mask = MASK_START;
    for (let k = at + 1; k < end - 1; k++) {
      const c = src[k];
      mask += c === '\n' || c === '\r' ? c : MASK_FILL;
    }
    mask += MASK_END;
    pieces.push(src.slice(copied, at), mask);
    copied = end;
    return end;
  };

  /** Outside expressions `&` must start a reference: saxes would only notice at the end of the file. */
  const ampersand = (at: number): void => {
    if (src[at] !== '&') return;
    ENTITY_REFERENCE.lastIndex = at;
    if (!ENTITY_REFERENCE.test(src))
      r.fail(at, "malformed XML: a bare '&' (write &amp; outside expressions)");
  };

  const name = (at: number): number => {
    let j = at;
    if (j < src.length && NAME_START.test(src[j] ?? '')) {
      j++;
      while (j < src.length && NAME_CHAR.test(src[j] ?? '')) j++;
    }
    return j;
  };
  const skipSpace = (at: number): number => {
    while (at < src.length && SPACE.test(src[at] ?? '')) at++;
    return at;
  };
  const finish = (stoppedAt: number | null): Scan => {
    pieces.push(src.slice(copied));
    return { masked: pieces.join(''), expressions, tags, texts, comments, stoppedAt };
  };
  const owner = (): number => open[open.length - 1] ?? -1;

  while (i < src.length) {
    if (src[i] !== '<') {
      const start = i;
      while (i < src.length && src[i] !== '<') {
        ampersand(i);
        i = expression(i) ?? i + 1;
      }
      texts.push({ start, end: i, cdata: false, owner: owner() });
      continue;
    }
    if (src.startsWith('<!--', i)) {
      const end = src.indexOf('-->', i + 4);
      if (end < 0) return finish(i);
      comments.push({ start: i, end: end + 3 });
      i = end + 3;
    } else if (src.startsWith('<![CDATA[', i)) {
      const end = src.indexOf(']]>', i + 9);
      if (end < 0) return finish(i);
      texts.push({ start: i + 9, end, cdata: true, owner: owner() });
      i = end + 3;
    } else if (src.startsWith('<?', i)) {
      const end = src.indexOf('?>', i + 2);
      if (end < 0) return finish(i);
      i = end + 2;
    } else if (src.startsWith('<!', i)) {
      r.fail(i, 'markup declarations (<!DOCTYPE …>) are not allowed in policy XML');
    } else if (src[i + 1] === '/') {
      const nameEnd = name(i + 2);
      const close = skipSpace(nameEnd);
      if (nameEnd === i + 2 || src[close] !== '>') return finish(i);
      open.pop();
      i = close + 1;
    } else {
      const nameEnd = name(i + 1);
      if (nameEnd === i + 1) return finish(i);
      const tag: ScannedStartTag = { name: src.slice(i + 1, nameEnd), start: i, attributes: [] };
      tags.push(tag);
      let j = nameEnd;
      for (;;) {
        const afterSpace = skipSpace(j);
        if (src.startsWith('/>', afterSpace)) {
          i = afterSpace + 2;
          break;
        }
        if (src[afterSpace] === '>') {
          open.push(tags.length - 1);
          i = afterSpace + 1;
          break;
        }
        const attrEnd = name(afterSpace);
        if (attrEnd === afterSpace || afterSpace === j) return finish(afterSpace);
        let k = skipSpace(attrEnd);
        if (src[k] !== '=') return finish(k);
        k = skipSpace(k + 1);
        const quote = src[k];
        if (quote !== '"' && quote !== "'") return finish(k);
        const valueStart = k + 1;
        k = valueStart;
        while (k < src.length && src[k] !== quote) {
          ampersand(k);
          k = expression(k) ?? k + 1;
        }
        if (k >= src.length) return finish(valueStart);
        tag.attributes.push({
          name: src.slice(afterSpace, attrEnd),
          nameStart: afterSpace,
          valueStart,
          valueEnd: k,
        });
        j = k + 1;
      }
    }
  }
  return finish(null);
}

// ---------------------------------------------------------------------------------------------
// Public API

/** Every expression and every `{{named value}}` reference in a policy file, with positions. */
export function listPolicyReferences(
  text: string,
  file: string,
): { expressions: PolicyExpression[]; namedValues: NamedValueReference[] } {
  const r = new Reader(text, file, new LineMap(text));
  return { expressions: scan(r).expressions, namedValues: namedValueReferences(text, r.lines) };
}

function namedValueReferences(text: string, lines: LineMap): NamedValueReference[] {
  const out: NamedValueReference[] = [];
  for (const m of text.matchAll(NAMED_VALUE)) {
    out.push({
      name: m[1] ?? '',
      text: m[0],
      start: m.index,
      end: m.index + m[0].length,
      ...lines.position(m.index),
    });
  }
  return out;
}

/**
 * The masked text: every expression replaced by placeholder characters of the same length (line
 * breaks kept), so that a strict XML parser accepts it. Exposed for tests and tools.
 */
export function maskPolicyExpressions(text: string, file: string): string {
  return scan(new Reader(text, file, new LineMap(text))).masked;
}

interface Building {
  name: string;
  attributes: Record<string, string>;
  attributeList: PolicyAttribute[];
  children: PolicyElement[];
  text: string;
  textSpans: PolicyTextSpan[];
  line: number;
  column: number;
  start: number;
}

/** Parses a policy file. Throws PolicyXmlError (`<file>:<line>:<column>: …`) when it is malformed. */
export function parsePolicyXml(text: string, file: string): PolicyDocument {
  const lines = new LineMap(text);
  const r: Reader = new Reader(text, file, lines);
  const scanned = scan(r);

  let restored = 0;
  const restore = (masked: string): string =>
    masked.replace(MASKED_EXPRESSION, () => {
      const expression = scanned.expressions[restored++];
      if (!expression) throw new Error(`${file}: more masked expressions than expressions (internal error)`);
      return expression.code;
    });

  const parser = new SaxesParser({ xmlns: false, position: true, fileName: file });
  const stack: Building[] = [];
  let root: PolicyElement | undefined;
  let tagIndex = 0;
  let pendingText = '';
  const flushText = (): void => {
    if (!pendingText) return;
    const top = stack[stack.length - 1];
    const value = restore(pendingText);
    if (top) top.text += value;
    pendingText = '';
  };

  parser.on('error', (err) => {
    // saxes reports the line and column of the character it just read; lines and offsets of the
    // masked text are those of the file.
    const prefix = `${file}:${parser.line}:${parser.column}: `;
    const reason = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
    throw new PolicyXmlError(file, parser.line, Math.max(parser.column, 1), `malformed XML: ${reason}`);
  });
  parser.on('text', (t) => {
    pendingText += t;
  });
  parser.on('cdata', (t) => {
    pendingText += t;
  });
  parser.on('comment', flushText);
  parser.on('processinginstruction', flushText);
  parser.on('opentag', (tag) => {
    flushText();
    const scannedTag = scanned.tags[tagIndex];
    if (!scannedTag || scannedTag.name !== tag.name) {
      throw new Error(`${file}: start tag ${tagIndex} <${tag.name}> was not scanned (internal error)`);
    }
    const attributes: Record<string, string> = {};
    const attributeList: PolicyAttribute[] = [];
    for (const a of scannedTag.attributes) {
      const raw = tag.attributes[a.name];
      if (raw === undefined) throw new Error(`${file}: attribute ${a.name} was not parsed (internal error)`);
      const value = restore(raw);
      attributes[a.name] = value;
      attributeList.push({
        name: a.name,
        value,
        valueStart: a.valueStart,
        valueEnd: a.valueEnd,
        ...lines.position(a.nameStart),
      });
    }
    stack.push({
      name: tag.name,
      attributes,
      attributeList,
      children: [],
      text: '',
      textSpans: scanned.texts
        .filter((t) => t.owner === tagIndex && (t.cdata || t.end > t.start))
        .map(({ start, end, cdata }) => ({ start, end, cdata })),
      start: scannedTag.start,
      ...lines.position(scannedTag.start),
    });
    tagIndex++;
  });
  parser.on('closetag', () => {
    flushText();
    const done = stack.pop();
    if (!done) return;
    const element: PolicyElement = done;
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(element);
    else root = element;
  });

  parser.write(scanned.masked).close();
  flushText();

  if (scanned.stoppedAt !== null) {
    // saxes accepted what the scanner could not follow: refuse rather than guess.
    r.fail(scanned.stoppedAt, 'unexpected markup');
  }
  if (!root) r.fail(text.length, 'no root element');
  if (restored !== scanned.expressions.length) {
    throw new Error(
      `${file}: ${scanned.expressions.length - restored} expressions were not restored (internal error)`,
    );
  }
  return {
    file,
    source: text,
    root,
    expressions: scanned.expressions,
    namedValues: namedValueReferences(text, lines),
    comments: scanned.comments,
  };
}

export interface PolicyVisit {
  element: PolicyElement;
  /** The enclosing elements, outermost first (empty for the root). */
  ancestors: readonly PolicyElement[];
}

/** Every element of the tree, depth-first in document order, with its ancestors. */
export function* walkPolicy(root: PolicyElement): Generator<PolicyVisit> {
  const ancestors: PolicyElement[] = [];
  function* visit(element: PolicyElement): Generator<PolicyVisit> {
    yield { element, ancestors: [...ancestors] };
    ancestors.push(element);
    for (const child of element.children) yield* visit(child);
    ancestors.pop();
  }
  yield* visit(root);
}
