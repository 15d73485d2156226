#!/usr/bin/env node
/**
 * Extracts the column definitions of one FinOps FOCUS release from the specification's own markdown
 * (github.com/FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec, one file per column under
 * `specification/columns/`, one per attribute under `specification/attributes/`) into the JSON
 * that tests/shared/chargeback/focus-conformance.test.ts checks the report CSV against.
 *
 * Usage:
 *   node scripts/focus-columns.mjs <FOCUS_Spec clone or mirror> <tag> [out.json]
 *
 *   git clone --mirror https://github.com/FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec /tmp/focus
 *   node scripts/focus-columns.mjs /tmp/focus v1.2 tests/fixtures/focus/focus-1.2-columns.json
 *
 * The first argument is any git repository holding the tag (a clone, a bare or mirror clone): the
 * files are read with `git show <commit>:<path>`, so no work tree or checkout is needed. Without
 * `out.json` the JSON goes to stdout. The output records the repository, the tag and the commit it
 * was read from, and is formatted with the repository's prettier configuration, so a rerun on the
 * same commit gives the same bytes. The extract is never edited by hand: rerun this script.
 *
 * Per column: id, display name, description, column type, feature level (Mandatory, Conditional,
 * Recommended), data type, whether nulls are allowed, the value format (an attribute id such as
 * NumericFormat or DateTimeFormat, AllowedValues, or null when the spec says "not specified"), the
 * allowed values (with their parent value when the table has one, e.g. ServiceSubcategory →
 * ServiceCategory), the normative requirements as written, and the subset of them this script can
 * read as machine-checkable rules (`rules`, below). Per attribute: id, name, requirements and, for
 * DateTimeFormat, the pattern the spec spells out ('YYYY-MM-DDTHH:mm:ssZ').
 *
 * Rules: a requirement becomes a rule only when all of it (and of the "When …, X adheres to the
 * following additional requirements:" bullet it sits under) is one of these sentence shapes:
 *   X MUST [NOT] be null [when C].            → { kind: 'null' | 'notNull', column, when }
 *   X MUST [NOT] be "V" [when C].             → { kind: 'equals' | 'notEquals', column, value, when }
 *   X MUST be a non-negative decimal value.   → { kind: 'nonNegative', column, when }
 *   The product of A and B MUST match the C [when C]. → { kind: 'product', factors: [A, B], column: C, when }
 * where the condition C is clauses `Y is [not] null` or `Y is [not] "V" [or "W"…]` joined by
 * "and" / "," (all of) and ", or when" / "or when" (any of), Y being a FOCUS column. `when` is in
 * disjunctive normal form: an array of alternatives, each an array of clauses that must all hold;
 * absent means always. Anything else (prose such as "when a charge is related to a resource") stays
 * in `requirements` only.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPOSITORY = 'FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec';
const COLUMNS_DIR = 'specification/columns';
const ATTRIBUTES_DIR = 'specification/attributes';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function git(repo, ...args) {
  return execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

/** Markdown inline syntax removed: links keep their text, emphasis and escapes are dropped. */
function plain(text) {
  return text
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\\</g, '<')
    .replace(/\*+([^*]+?)\*+/g, '$1')
    .replace(/\*+/g, '')
    .replace(/`/g, '')
    .replace(/\s+/g, ' ')
    .trim();
}

/** The lines of the section under `## <title>` (case-insensitive), up to the next `#`/`##` heading. */
function section(lines, title) {
  const start = lines.findIndex((l) => l.trim().toLowerCase() === `## ${title.toLowerCase()}`);
  if (start < 0) return [];
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((l) => /^#{1,2} /.test(l));
  return end < 0 ? rest : rest.slice(0, end);
}

function firstParagraph(lines) {
  const text = [];
  for (const line of lines) {
    if (line.trim() === '') {
      if (text.length > 0) break;
      continue;
    }
    text.push(line.trim());
  }
  return plain(text.join(' '));
}

/** The rows of the first markdown table at or after `from`, as arrays of raw cells (header first). */
function table(lines, from = 0) {
  let i = from;
  while (i < lines.length && !lines[i].trim().startsWith('|')) i++;
  const rows = [];
  for (; i < lines.length && lines[i].trim().startsWith('|'); i++) {
    const cells = lines[i]
      .trim()
      .replace(/^\|/, '')
      .replace(/\|$/, '')
      .split('|')
      .map((c) => c.trim());
    if (cells.every((c) => /^:?-+:?$/.test(c))) continue; // the header separator
    rows.push(cells);
  }
  return rows;
}

/** The bullets of a markdown list as a tree: [{ text, children }], nesting by indentation. */
function bullets(lines) {
  const root = { indent: -1, children: [] };
  const stack = [root];
  for (const line of lines) {
    const m = /^(\s*)[*-] (.*)$/.exec(line);
    if (!m) {
      // A continuation line of the previous bullet.
      const last = stack[stack.length - 1];
      if (line.trim() !== '' && last !== root) last.text += ` ${line.trim()}`;
      continue;
    }
    const indent = m[1].length;
    while (stack[stack.length - 1].indent >= indent) stack.pop();
    const node = { indent, text: m[2], children: [] };
    stack[stack.length - 1].children.push(node);
    stack.push(node);
  }
  const tidy = (nodes) =>
    nodes.map((n) => ({ text: plain(n.text), ...(n.children.length ? { children: tidy(n.children) } : {}) }));
  return tidy(root.children);
}

/** Splits on a separator regex, outside double quotes. */
function splitOutsideQuotes(text, separator) {
  const parts = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '"') quoted = !quoted;
    if (!quoted) {
      separator.lastIndex = 0;
      const m = separator.exec(text.slice(i));
      if (m && m.index === 0) {
        parts.push(current);
        current = '';
        i += m[0].length - 1;
        continue;
      }
    }
    current += text[i];
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

/** A condition in disjunctive normal form, or undefined when any of it is prose. */
function condition(text, columnIds) {
  const alternatives = splitOutsideQuotes(text, /^,? or when /y);
  const dnf = [];
  for (const alternative of alternatives) {
    const clauses = [];
    for (const part of splitOutsideQuotes(alternative, /^(?:, and |,? and |, )/y)) {
      const isNull = /^(\w+) is (not )?null$/.exec(part);
      const isValue = /^(\w+) is (not )?("[^"]+"(?: or "[^"]+")*)$/.exec(part);
      const m = isNull ?? isValue;
      if (!m || !columnIds.has(m[1])) return undefined;
      if (isNull) clauses.push({ column: m[1], op: m[2] ? 'notNull' : 'null' });
      else {
        const values = [...m[3].matchAll(/"([^"]+)"/g)].map((v) => v[1]);
        clauses.push({ column: m[1], op: m[2] ? 'notIn' : 'in', values });
      }
    }
    dnf.push(clauses);
  }
  return dnf;
}

/** Both conditions must hold: the product of two DNFs. */
function both(a, b) {
  if (!a) return b;
  if (!b) return a;
  return a.flatMap((x) => b.map((y) => [...x, ...y]));
}

const UNKNOWN = Symbol('unknown context');

/** Machine-checkable rules from a column's requirement tree (see the header comment). */
function rules(tree, columnIds, context = undefined) {
  const out = [];
  for (const node of tree) {
    const text = node.text;
    if (node.children) {
      const when = /^When (.+), (\w+) adheres to the following additional requirements:$/.exec(text);
      let inner = UNKNOWN;
      if (context !== UNKNOWN) {
        if (when) {
          const c = condition(when[1], columnIds);
          inner = c ? both(context, c) : UNKNOWN;
        } else if (/(adheres to the following additional requirements|is defined as follows):$/.test(text)) {
          inner = context;
        }
      }
      out.push(...rules(node.children, columnIds, inner));
      continue;
    }
    if (context === UNKNOWN) continue;
    const rule = ruleOf(text, columnIds);
    if (!rule) continue;
    const when = both(context, rule.when);
    out.push({ requirement: text, ...rule, ...(when ? { when } : {}) });
  }
  return out;
}

function ruleOf(text, columnIds) {
  const withCondition = (body, rest) => {
    if (rest === undefined) return body;
    const when = condition(rest, columnIds);
    return when ? { ...body, when } : undefined;
  };
  let m = /^(\w+) MUST (NOT )?be null(?: when (.+))?\.$/.exec(text);
  if (m && columnIds.has(m[1])) return withCondition({ kind: m[2] ? 'notNull' : 'null', column: m[1] }, m[3]);
  m = /^(\w+) MUST (NOT )?be "([^"]+)"(?: when (.+))?\.$/.exec(text);
  if (m && columnIds.has(m[1])) {
    return withCondition({ kind: m[2] ? 'notEquals' : 'equals', column: m[1], value: m[3] }, m[4]);
  }
  m = /^(\w+) MUST be a non-negative decimal value\.$/.exec(text);
  if (m && columnIds.has(m[1])) return { kind: 'nonNegative', column: m[1] };
  m = /^The product of (\w+) and (\w+) MUST match the (\w+)(?: when (.+))?\.$/.exec(text);
  if (m && [m[1], m[2], m[3]].every((c) => columnIds.has(c))) {
    return withCondition({ kind: 'product', factors: [m[1], m[2]], column: m[3] }, m[4]);
  }
  return undefined;
}

/** An attribute's anchor as the columns link to it: its name, lowercased, without spaces. */
const anchorOf = (name) => name.toLowerCase().replace(/\s+/g, '');

function readAttributes(repo, commit) {
  const files = git(repo, 'ls-tree', '-r', '--name-only', commit, ATTRIBUTES_DIR)
    .split('\n')
    .filter((f) => f.endsWith('.md'));
  return files
    .map((file) => {
      const lines = git(repo, 'show', `${commit}:${file}`).split(/\r?\n/);
      const id = firstParagraph(section(lines, 'Attribute ID'));
      const name = firstParagraph(section(lines, 'Attribute Name'));
      const requirements = bullets(section(lines, 'Requirements'));
      const flat = JSON.stringify(requirements);
      const pattern = /'(YYYY-MM-DD[^']*)'/.exec(flat)?.[1];
      return {
        id,
        name,
        file,
        description: firstParagraph(section(lines, 'Description')),
        ...(pattern ? { pattern } : {}),
        requirements,
      };
    })
    .filter((a) => a.id)
    .sort((a, b) => (a.id < b.id ? -1 : 1));
}

function valueFormat(raw, attributes) {
  const text = plain(raw);
  const recommended = /\brecommended\b/i.test(text);
  if (/^<not specified>$/i.test(text)) return { valueFormat: null };
  if (/^allowed values$/i.test(text)) return { valueFormat: 'AllowedValues' };
  const anchor = /\(#([^)]+)\)/.exec(raw)?.[1];
  const attribute = attributes.find((a) => anchor !== undefined && anchorOf(a.name) === anchor.toLowerCase());
  if (!attribute) throw new Error(`Unknown value format '${raw}'`);
  return { valueFormat: attribute.id, ...(recommended ? { valueFormatRecommended: true } : {}) };
}

function readColumns(repo, commit, attributes) {
  const files = git(repo, 'ls-tree', '-r', '--name-only', commit, COLUMNS_DIR)
    .split('\n')
    .filter((f) => f.endsWith('.md'));
  const parsed = files.map((file) => {
    const lines = git(repo, 'show', `${commit}:${file}`).split(/\r?\n/);
    const id = firstParagraph(section(lines, 'Column ID'));
    const displayName = firstParagraph(section(lines, 'Display Name'));
    const constraintsAt = lines.findIndex((l) => /^## Content Constraints$/i.test(l.trim()));
    if (!id || constraintsAt < 0) throw new Error(`${file}: no Column ID or Content Constraints`);
    const constraints = Object.fromEntries(
      table(lines, constraintsAt)
        .slice(1)
        .map(([k, v]) => [plain(k).toLowerCase(), v ?? '']),
    );
    const intro = lines.findIndex((l) => /adheres to the following requirements:\s*$/.test(l));
    const requirementLines = [];
    for (let i = intro + 1; intro >= 0 && i < lines.length && !/^#{1,2} /.test(lines[i]); i++) {
      if (lines[i].trim() === '' && requirementLines.length > 0) break;
      requirementLines.push(lines[i]);
    }
    const allowedAt = lines.findIndex((l) => /^Allowed values:?\s*$/i.test(l.trim()));
    return { file, lines, id, displayName, constraints, requirementLines, allowedAt };
  });
  const columnIds = new Set(parsed.map((p) => p.id));
  const byDisplayName = new Map(parsed.map((p) => [p.displayName.toLowerCase(), p.id]));

  return parsed
    .map(({ file, lines, id, displayName, constraints, requirementLines, allowedAt }) => {
      const requirements = bullets(requirementLines);
      const column = {
        id,
        displayName,
        file,
        description: firstParagraph(section(lines, 'Description')),
        columnType: plain(constraints['column type'] ?? ''),
        featureLevel: plain(constraints['feature level'] ?? ''),
        dataType: plain(constraints['data type'] ?? ''),
        allowsNulls: /^true$/i.test(plain(constraints['allows nulls'] ?? '')),
        ...valueFormat(constraints['value format'] ?? '', attributes),
        introduced: firstParagraph(section(lines, 'Introduced (version)')),
      };
      if (allowedAt >= 0) {
        const [header, ...rows] = table(lines, allowedAt);
        const names = header.map((h) => plain(h).toLowerCase());
        // The value is the column headed "Value" or with the column's own name; a header naming
        // another column (Service Category in ServiceSubcategory's table) gives the value's parent.
        const own = names.findIndex((n) => n === 'value' || n === displayName.toLowerCase());
        const valueAt = own >= 0 ? own : 0;
        const parentAt = names.findIndex((n, i) => i !== valueAt && byDisplayName.has(n));
        const descriptionAt = names.findIndex((n, i) => i !== valueAt && i !== parentAt);
        column.allowedValues = rows.map((r) => ({
          value: plain(r[valueAt] ?? ''),
          ...(parentAt >= 0 ? { parent: plain(r[parentAt] ?? '') } : {}),
          description: plain(r[descriptionAt] ?? ''),
        }));
        if (parentAt >= 0) column.allowedValuesParentColumn = byDisplayName.get(names[parentAt]);
      }
      column.requirements = requirements;
      column.rules = rules(requirements, columnIds);
      return column;
    })
    .sort((a, b) => (a.id < b.id ? -1 : 1));
}

async function main() {
  const [repo, tag, out] = process.argv.slice(2);
  if (!repo || !tag) {
    console.error('Usage: node scripts/focus-columns.mjs <FOCUS_Spec clone or mirror> <tag> [out.json]');
    process.exit(2);
  }
  const commit = git(repo, 'rev-parse', `${tag}^{commit}`).trim();
  const attributes = readAttributes(repo, commit);
  const columns = readColumns(repo, commit, attributes);
  const extract = {
    source: {
      repository: `https://github.com/${REPOSITORY}`,
      tag,
      commit,
      generator: 'scripts/focus-columns.mjs',
    },
    version: tag.replace(/^v/, ''),
    mandatory: columns.filter((c) => c.featureLevel === 'Mandatory').map((c) => c.id),
    conditional: columns.filter((c) => c.featureLevel === 'Conditional').map((c) => c.id),
    recommended: columns.filter((c) => c.featureLevel === 'Recommended').map((c) => c.id),
    attributes,
    columns,
  };
  const prettier = await import('prettier');
  // The repository's prettier configuration, wherever the output goes: the same bytes every time.
  const filepath = path.join(ROOT, 'tests', 'fixtures', 'focus', 'focus-columns.json');
  const options = { ...(await prettier.resolveConfig(filepath)), filepath };
  const json = await prettier.format(JSON.stringify(extract, null, 2), options);
  if (out) writeFileSync(out, json);
  else process.stdout.write(json);
}

await main();
