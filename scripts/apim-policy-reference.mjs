#!/usr/bin/env node
// Regenerates tests/fixtures/apim/policy-reference.json: an allow-list of Azure API Management
// policy elements/attributes extracted from Microsoft's own policy reference.
//
// SOURCE
//   The APIM policy reference is public markdown in the MicrosoftDocs/azure-docs repository,
//   folder `articles/api-management/`, one file per policy (`<policy>-policy.md`, e.g.
//   `rate-limit-by-key-policy.md`). Each file has a "Policy statement" XML block, an
//   "Attributes" table, an "Elements" table, "### <element> attributes|elements" tables for
//   child elements, and a "Usage" list ("Policy sections:", "Policy scopes:", "Gateways:")
//   followed by "Usage notes". Some limits live in `includes/*.md` (e.g.
//   `includes/api-management-custom-metrics-limits.md`), which is read when present.
//
// HOW TO RUN
//   1. Get the markdown (sparse checkout; the full repository is tens of GB):
//        git clone --depth 1 --filter=blob:none --sparse https://github.com/MicrosoftDocs/azure-docs.git
//        cd azure-docs && git sparse-checkout set articles/api-management includes && cd ..
//   2. node scripts/apim-policy-reference.mjs --docs ./azure-docs \
//        [--commit "$(git -C azure-docs rev-parse HEAD)"] [--retrieved YYYY-MM-DD] \
//        [--manifest <tsv of "path<TAB>commit" lines, for snapshots assembled file by file>] \
//        [--out tests/fixtures/apim/policy-reference.json] [--only a-policy.md,b-policy.md]
//        [--note "free text recorded as source.snapshot"]
//      --docs is the repository root (containing articles/ and includes/) or the
//      articles/api-management folder itself. Without --out the JSON goes to stdout.
//
// WHAT IS RECORDED (all from the markdown; nothing inferred unless flagged `inferred`)
//   policies[<root element>]: file, commit, msDate, sections, scopes, gateways, limits, usageNotes
//   elements[<name>]: union over every file that documents it of attributes/children/parents,
//     attribute details (required/default/expressions allowed/enumerated values/type),
//     `policy: true` for elements that are a policy's root element.
//   Enumerated values come from the attribute description ("one of the following values",
//   "Possible values are", "`a` - ..." bullet lists) or, failing that, from the policy
//   statement placeholder when it is a plain `a | b | c` list (flagged valuesFrom).
// No dependencies beyond Node >= 20 built-ins.

import { readFileSync, readdirSync, existsSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, basename, dirname, resolve } from 'node:path';

const SECTIONS = ['inbound', 'backend', 'outbound', 'on-error'];

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const k = a.slice(2);
    const v = argv[i + 1] && !argv[i + 1].startsWith('--') ? argv[++i] : 'true';
    out[k] = v;
  }
  return out;
}

function locate(docs) {
  const root = resolve(docs);
  if (existsSync(join(root, 'articles', 'api-management'))) {
    return { articles: join(root, 'articles', 'api-management'), includes: join(root, 'includes') };
  }
  return { articles: root, includes: resolve(root, '..', '..', 'includes') };
}

function frontMatter(md) {
  const m = /^---\n([\s\S]*?)\n---/.exec(md);
  const fm = {};
  if (m)
    for (const line of m[1].split('\n')) {
      const kv = /^([\w.-]+):\s*(.*)$/.exec(line);
      if (kv) fm[kv[1]] = kv[2].trim();
    }
  return fm;
}

// Split the document into sections keyed by heading text (## and ###).
function headings(md) {
  const lines = md.split('\n');
  const out = [];
  let cur = { level: 0, title: '', lines: [] };
  let inFence = false;
  for (const line of lines) {
    if (/^\s*```/.test(line)) inFence = !inFence;
    const h = !inFence && /^\s{0,3}(#{2,4})\s+(.*?)\s*$/.exec(line);
    if (h) {
      out.push(cur);
      cur = { level: h[1].length, title: h[2], lines: [] };
    } else cur.lines.push(line);
  }
  out.push(cur);
  return out;
}

function firstXmlBlock(text) {
  const m = /```xml\s*\n([\s\S]*?)```/.exec(text);
  return m ? m[1] : null;
}

// Tolerant scanner for the illustrative XML in "Policy statement" blocks (placeholder values
// may contain quotes, `|` alternatives, `...` and non-XML comments, so no strict parser).
function scanStatement(xml) {
  xml = xml.replace(/<!(?:--|—)[\s\S]*?-->/g, '');
  const tags = [];
  const re = /<(\/?)([A-Za-z][\w.:-]*)/g;
  let m;
  while ((m = re.exec(xml))) {
    const closing = m[1] === '/';
    const name = m[2];
    let i = re.lastIndex;
    const attrs = [];
    let selfClosing = false;
    if (!closing) {
      for (;;) {
        const rest = xml.slice(i);
        const end = /^\s*(\/?)>/.exec(rest);
        if (end) {
          selfClosing = end[1] === '/';
          i += end[0].length;
          break;
        }
        const a = /^\s*([A-Za-z][\w.:-]*)\s*=\s*"/.exec(rest);
        if (!a) {
          const bare = /^\s*([A-Za-z][\w.:-]*)(?=\s|\/?>|$)/.exec(rest);
          if (bare) {
            attrs.push({ name: bare[1], placeholder: null });
            i += bare[0].length;
            continue;
          }
          break; // prose inside a tag: give up on this tag's remaining attributes
        }
        i += a[0].length;
        // value ends at a quote followed by another attribute, or the end of the tag
        const close = /"(?=\s*(?:[A-Za-z][\w.:-]*\s*=\s*"|\/?>|\s*$))/g;
        close.lastIndex = i;
        const c = close.exec(xml);
        if (!c) break;
        attrs.push({ name: a[1], placeholder: xml.slice(i, c.index) });
        i = c.index + 1;
      }
      re.lastIndex = i;
    } else {
      const gt = xml.indexOf('>', i);
      re.lastIndex = gt === -1 ? xml.length : gt + 1;
    }
    tags.push({ closing, name, attrs, selfClosing });
  }
  // Build parent/child relations.
  const rel = { root: null, elements: new Map() };
  const stack = [];
  const get = (n) => {
    if (!rel.elements.has(n))
      rel.elements.set(n, { attrs: new Map(), children: new Set(), parents: new Set() });
    return rel.elements.get(n);
  };
  for (const t of tags) {
    if (t.closing) {
      const idx = stack.lastIndexOf(t.name);
      if (idx !== -1) stack.length = idx;
      continue;
    }
    if (!rel.root) rel.root = t.name;
    const e = get(t.name);
    for (const a of t.attrs) if (!e.attrs.has(a.name)) e.attrs.set(a.name, a.placeholder);
    const parent = stack[stack.length - 1];
    if (parent) {
      get(parent).children.add(t.name);
      e.parents.add(parent);
    }
    if (!t.selfClosing) stack.push(t.name);
  }
  return rel;
}

function splitRow(line) {
  let s = line.trim();
  if (s.startsWith('|')) s = s.slice(1);
  if (s.endsWith('|')) s = s.slice(0, -1);
  const cells = s.split(/(?<!\\)\|/).map((c) => c.replace(/\\\|/g, '|').trim());
  // An unescaped `|` inside a quoted first cell (e.g. `x="false | true"`) splits it: re-join.
  while (cells.length > 1 && (cells[0].match(/"/g) || []).length % 2 === 1)
    cells.splice(0, 2, `${cells[0]} | ${cells[1]}`);
  return cells;
}

function tables(lines) {
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    if (/^\s*\|/.test(lines[i]) && lines[i + 1] && /^\s*\|?\s*:?-{3,}/.test(lines[i + 1])) {
      const header = splitRow(lines[i]).map((h) => h.toLowerCase());
      const rows = [];
      let j = i + 2;
      for (; j < lines.length && /^\s*\|/.test(lines[j]); j++) rows.push(splitRow(lines[j]));
      out.push({ header, rows });
      i = j;
    }
  }
  return out;
}

function cleanName(cell) {
  let s = cell
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[`*]/g, '')
    .trim();
  s = s.replace(/=.*$/, '').trim(); // e.g. mode="string", follow-redirects="false \| true"
  s = s.replace(/^<|\/?>$/g, '').trim();
  return /^[A-Za-z][\w.:-]*$/.test(s) ? s : null;
}

function describeAttr(desc, required, dflt, placeholder) {
  const d = { required: required ?? null, default: dflt ?? null };
  const text = desc.replace(/<br\s*\/?>|<\/br>/gi, '\n');
  if (/Policy expressions (are|is) allowed|policy expressions are supported/i.test(text))
    d.expressions = true;
  else if (/Policy expressions (aren't|are not|aren’t) (allowed|supported)/i.test(text))
    d.expressions = false;
  const typeM = /^\s*(Boolean|String|Integer|Timespan|Number|Double)\b/i.exec(text);
  if (typeM) d.type = typeM[1].toLowerCase();
  else if (/\bBoolean value\b|\bThe Boolean expression\b/i.test(text)) d.type = 'boolean';
  else if (/expressed as a double/i.test(text)) d.type = 'double';
  else if (/expressed as an integer/i.test(text)) d.type = 'integer';
  else if (/^\s*(The length in seconds|A positive number)/i.test(text)) d.type = 'number';
  // Enumerated values.
  let values = null;
  if (/one of the following|possible values|supported value|must have one of|Set to one of/i.test(text)) {
    const bullets = [...text.matchAll(/(?:^|\n)\s*-\s*`([^`]+)`/g)].map((x) => x[1]);
    if (bullets.length) values = bullets;
    else {
      const after = text.split(/one of the following(?: values)?:?|possible values(?: are)?:?/i)[1] || '';
      const inline = [...after.matchAll(/`([^`]+)`/g)].map((x) => x[1]);
      if (inline.length) values = inline;
    }
  }
  if (values) {
    d.values = [...new Set(values)];
    d.valuesFrom = 'description';
  } else if (placeholder && /^\s*[\w.-]+(\s*\|\s*[\w.-]+)+\s*$/.test(placeholder)) {
    d.values = placeholder.split('|').map((s) => s.trim());
    d.valuesFrom = 'policy-statement';
  }
  if (!d.type && d.values && d.values.every((v) => v === 'true' || v === 'false')) d.type = 'boolean';
  const range = /between (\d+) and (\d+)/i.exec(text);
  if (range) d.range = { min: +range[1], max: +range[2], quote: range[0] };
  const max = /Maximum allowed value: ([\d,]+)/i.exec(text);
  if (max) d.max = { value: +max[1].replace(/,/g, ''), quote: max[0] };
  const min = /Minimum period: ([\d,]+)/i.exec(text);
  if (min) d.min = { value: +min[1].replace(/,/g, ''), quote: min[0] };
  return d;
}

function listAfter(line, label) {
  const m = new RegExp(label + '[^)]*\\)?\\**\\s*(.*)$', 'i').exec(line);
  if (!m) return null;
  return m[1]
    .replace(/[*[\]]/g, '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function parsePolicyFile(path, includesDir) {
  const md = readFileSync(path, 'utf8');
  const fm = frontMatter(md);
  const hs = headings(md);
  const find = (re) => hs.find((h) => re.test(h.title));
  const stmt = find(/^Policy statement/i);
  const xml = stmt ? firstXmlBlock(stmt.lines.join('\n')) : null;
  if (!xml) return null;
  const rel = scanStatement(xml);
  if (!rel.root) return null;
  const root = rel.root;
  const elements = new Map(); // name -> {attributes: Map name->detail, children:Set, parents:Set}
  const el = (n) => {
    if (!elements.has(n))
      elements.set(n, { attributes: new Map(), children: new Set(), parents: new Set(), fromTable: false });
    return elements.get(n);
  };
  for (const [n, e] of rel.elements) {
    const x = el(n);
    for (const [a, ph] of e.attrs) x.attributes.set(a, { placeholder: ph, fromStatement: true });
    for (const c of e.children) x.children.add(c);
    for (const p of e.parents) x.parents.add(p);
  }
  const applyAttrTable = (target, t) => {
    for (const row of t.rows) {
      const name = cleanName(row[0] || '');
      if (!name) continue;
      const prev = el(target).attributes.get(name) || {};
      const det = describeAttr(row[1] || '', row[2], row[3], prev.placeholder);
      el(target).attributes.set(name, { ...prev, ...det, fromTable: true });
    }
  };
  const applyElemTable = (parent, t) => {
    for (const row of t.rows) {
      const name = cleanName(row[0] || '');
      if (!name) continue;
      el(parent).children.add(name);
      const c = el(name);
      c.parents.add(parent);
      c.fromTable = true;
      c.required = c.required ?? row[2] ?? null;
    }
  };
  for (const h of hs) {
    const ts = tables(h.lines);
    if (!ts.length) continue;
    const t = h.title.replace(/[`*]/g, '').trim();
    let m;
    if (/^Attributes$/i.test(t)) applyAttrTable(root, ts[0]);
    else if (/^Elements$/i.test(t)) applyElemTable(root, ts[0]);
    else if ((m = /^([\w.:-]+)\s+(?:element\s+)?attributes$/i.exec(t)))
      applyAttrTable(m[1].toLowerCase() === m[1] ? m[1] : matchCase(m[1], elements), ts[0]);
    else if ((m = /^([\w.:-]+)\s+(?:sub-?)?elements$/i.exec(t)))
      applyElemTable(matchCase(m[1], elements), ts[0]);
  }
  // Usage.
  const usage = find(/^Usage$/i);
  const usageLines = usage ? usage.lines : [];
  let sections = null,
    scopes = null,
    gateways = null;
  for (const line of usageLines) {
    if (/Policy sections:/i.test(line)) sections = listAfter(line, 'Policy sections:');
    else if (/(Policy )?scopes:/i.test(line)) scopes = listAfter(line, 'scopes:');
    else if (/Gateways:/i.test(line)) gateways = listAfter(line, 'Gateways:');
  }
  if (sections) sections = sections.map((s) => s.toLowerCase()).filter((s) => SECTIONS.includes(s));
  const notesH = find(/^Usage notes$/i);
  const notes = (notesH ? notesH.lines : [])
    .map((l) => l.replace(/^\s*[-*]\s*/, '').trim())
    .filter((l) => l && !/^\[!INCLUDE/.test(l));
  // Limits a checker can enforce, each with its quote.
  const limits = [];
  const limitRe = /(at most|maximum of|no more than|only be used once)[^.]*\./i;
  const scan = (text, where) => {
    for (const line of text.split('\n')) {
      const m = limitRe.exec(line);
      if (!m) continue;
      const quote = line.replace(/^\s*[-*]\s*/, '').trim();
      const lim = { quote, where };
      const dim = /(?:at most|maximum of)\s+(\d+)\s+custom dimensions/i.exec(quote);
      if (dim) {
        lim.kind = 'max-custom-dimensions';
        lim.value = +dim[1];
        lim.element = 'dimension';
      }
      if (/only be used once in a policy section/i.test(quote)) {
        lim.kind = 'once-per-section';
        lim.value = 1;
      }
      limits.push(lim);
    }
  };
  scan(usageLines.join('\n') + '\n' + (notesH ? notesH.lines.join('\n') : ''), basename(path));
  // Includes pulled into a "Limits" heading (e.g. api-management-custom-metrics-limits).
  for (const inc of md.matchAll(/\[!INCLUDE \[[^\]]*\]\(([^)]*limits[^)]*)\)\]/gi)) {
    const p = resolve(includesDir, basename(inc[1]));
    if (existsSync(p)) scan(readFileSync(p, 'utf8'), `includes/${basename(inc[1])}`);
  }
  return {
    root,
    file: basename(path),
    msDate: fm['ms.date'] || null,
    title: fm.title || null,
    elements,
    sections,
    scopes,
    gateways,
    limits,
    notes,
  };
}

function matchCase(name, elements) {
  for (const k of elements.keys()) if (k.toLowerCase() === name.toLowerCase()) return k;
  return name.toLowerCase();
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  if (!args.docs) {
    console.error(
      'Usage: node scripts/apim-policy-reference.mjs --docs <azure-docs checkout> [--commit <sha>] [--manifest <tsv>] [--retrieved YYYY-MM-DD] [--out <file>]',
    );
    process.exit(2);
  }
  const { articles, includes } = locate(args.docs);
  const manifest = new Map();
  if (args.manifest) {
    for (const line of readFileSync(args.manifest, 'utf8').split('\n')) {
      const [p, c] = line.trim().split('\t');
      if (p && c) manifest.set(p, c);
    }
  }
  const only = args.only ? new Set(args.only.split(',')) : null;
  const files = readdirSync(articles)
    .filter((f) => /-policy\.md$/.test(f) && (!only || only.has(f)))
    .filter((f) => statSync(join(articles, f)).isFile())
    .sort();
  const policies = {};
  const elements = {};
  const skipped = [];
  for (const f of files) {
    const p = parsePolicyFile(join(articles, f), includes);
    if (!p) {
      skipped.push(f);
      continue;
    }
    const relPath = `articles/api-management/${f}`;
    const commit = manifest.get(relPath) || args.commit || null;
    policies[p.root] = {
      file: relPath,
      commit,
      msDate: p.msDate,
      sections: p.sections,
      scopes: p.scopes,
      gateways: p.gateways,
      limits: p.limits.map((l) =>
        l.where.startsWith('includes/') ? { ...l, commit: manifest.get(l.where) || args.commit || null } : l,
      ),
      usageNotes: p.notes,
    };
    for (const [name, e] of p.elements) {
      const out = (elements[name] ||= {
        attributes: [],
        children: [],
        parents: [],
        sections: [],
        files: [],
        attributeDetails: {},
      });
      if (name === p.root) out.policy = true;
      if (!out.files.includes(relPath)) out.files.push(relPath);
      for (const c of e.children) if (!out.children.includes(c)) out.children.push(c);
      for (const par of e.parents) if (!out.parents.includes(par)) out.parents.push(par);
      if (name === p.root && p.sections)
        for (const s of p.sections) if (!out.sections.includes(s)) out.sections.push(s);
      for (const [a, d] of e.attributes) {
        if (!out.attributes.includes(a)) out.attributes.push(a);
        const det = { file: relPath, ...(e.parents.size ? { parents: [...e.parents] } : {}) };
        for (const k of [
          'required',
          'default',
          'expressions',
          'type',
          'values',
          'valuesFrom',
          'range',
          'max',
          'min',
        ])
          if (d[k] !== undefined && d[k] !== null) det[k] = d[k];
        if (!d.fromTable) det.documentedIn = 'policy-statement-only';
        (out.attributeDetails[a] ||= []).push(det);
      }
    }
  }
  for (const e of Object.values(elements)) {
    e.attributes.sort();
    e.children.sort();
    e.parents.sort();
    if (!e.sections.length) delete e.sections;
    e.file = e.files[0];
  }
  const sorted = Object.fromEntries(
    Object.keys(elements)
      .sort()
      .map((k) => [k, elements[k]]),
  );
  const result = {
    source: {
      repository: 'MicrosoftDocs/azure-docs',
      commit: args.commit || null,
      path: 'articles/api-management',
      retrieved: args.retrieved || new Date().toISOString().slice(0, 10),
      note: args.commit
        ? 'All files from one checkout at `commit`.'
        : 'Assembled file by file; each policy records its own `commit` (see policies[*].commit).',
      generator: 'scripts/apim-policy-reference.mjs',
      ...(args.note ? { snapshot: args.note } : {}),
    },
    sections: SECTIONS,
    policies: Object.fromEntries(
      Object.keys(policies)
        .sort()
        .map((k) => [k, policies[k]]),
    ),
    elements: sorted,
    skipped,
  };
  const json = JSON.stringify(result, null, 2) + '\n';
  if (args.out) {
    mkdirSync(dirname(resolve(args.out)), { recursive: true });
    writeFileSync(args.out, json);
    console.error(
      `wrote ${args.out}: ${Object.keys(policies).length} policies, ${Object.keys(sorted).length} elements` +
        (skipped.length ? `, skipped ${skipped.join(', ')}` : ''),
    );
  } else process.stdout.write(json);
}

main();
