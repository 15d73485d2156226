import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import type { ChargebackConfig, Meter, UsageAggregate } from '../../../shared/chargeback/model';
import { PRICING_UNITS } from '../../../shared/chargeback/model';
import { money, sum } from '../../../shared/chargeback/money';
import {
  CLOUD_PROVIDER,
  FOCUS_VERSION,
  INTERNAL_PLATFORM,
  renderCsv,
  REPORT_COLUMNS,
  reportRows,
} from '../../../shared/chargeback/render-csv';
import { renderJson } from '../../../shared/chargeback/render-json';
import { buildReport } from '../../../shared/chargeback/report';
import { parsePeriod } from '../../../shared/contracts/report-period';
import { usageAggregate } from '../../fixtures/usage';

/**
 * The report CSV checked against the FinOps FOCUS specification's own column definitions:
 * tests/fixtures/focus/focus-1.2-columns.json, extracted by scripts/focus-columns.mjs from
 * https://github.com/FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec, tag v1.2, commit
 * 7296e3146fb931ee32b6496fa6e4200e7f4384f7 (specification/columns/*.md and
 * specification/attributes/*.md). The checker (`violations`) names no FOCUS column or value:
 * which columns are Mandatory, each column's data type, nullability, value format and allowed
 * values, and the requirements the generator could read as rules (conditional nullability, fixed
 * values, non-negative prices, unit price × quantity = cost) all come from the extract. This file
 * adds how to check a data type or a value format (a regular expression per attribute; an unknown
 * one fails), the report the CSV is rendered from, the choices FOCUS leaves to the data (who
 * provides and invoices what), and mutated copies of the CSV that the checker must reject.
 */

const SPEC_COMMIT = '7296e3146fb931ee32b6496fa6e4200e7f4384f7';

// ---- the extract -------------------------------------------------------------------------------

interface Clause {
  column: string;
  op: 'in' | 'notIn' | 'null' | 'notNull';
  values?: string[];
}
/** Disjunctive normal form: any of the alternatives, each all of its clauses. */
type Condition = Clause[][];

interface Rule {
  requirement: string;
  kind: 'null' | 'notNull' | 'equals' | 'notEquals' | 'nonNegative' | 'product';
  column: string;
  value?: string;
  factors?: [string, string];
  when?: Condition;
}

interface FocusColumn {
  id: string;
  displayName: string;
  featureLevel: string;
  dataType: string;
  allowsNulls: boolean;
  valueFormat: string | null;
  valueFormatRecommended?: boolean;
  allowedValues?: Array<{ value: string; parent?: string }>;
  allowedValuesParentColumn?: string;
  rules: Rule[];
}

interface FocusExtract {
  source: { repository: string; tag: string; commit: string };
  version: string;
  mandatory: string[];
  conditional: string[];
  recommended: string[];
  attributes: Array<{ id: string; name: string; pattern?: string }>;
  columns: FocusColumn[];
}

const spec = JSON.parse(
  readFileSync(path.join(__dirname, '../../fixtures/focus/focus-1.2-columns.json'), 'utf8'),
) as FocusExtract;
const COLUMNS = new Map(spec.columns.map((c) => [c.id, c]));

// ---- how a data type and a value format are checked ---------------------------------------------

/** NumericFormat: an integer, a decimal or E notation; no sign for positive values, no separators. */
const NUMERIC = /^-?\d+(\.\d+)?(E-?\d+)?$/;

/** DateTimeFormat: the pattern the attribute spells out ('YYYY-MM-DDTHH:mm:ssZ'), as a regex. */
const DATE_TIME = ((): RegExp => {
  const pattern = spec.attributes.find((a) => a.id === 'DateTimeFormat')?.pattern;
  if (!pattern) throw new Error('the extract has no DateTimeFormat pattern');
  const tokens: Record<string, string> = {
    YYYY: '\\d{4}',
    MM: '\\d{2}',
    DD: '\\d{2}',
    HH: '\\d{2}',
    mm: '\\d{2}',
    ss: '\\d{2}',
  };
  const source = pattern
    .split(/(YYYY|MM|DD|HH|mm|ss)/)
    .map((part) => tokens[part] ?? part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('');
  return new RegExp(`^${source}$`);
})();

/**
 * UnitFormat: `<plural-units>`, `<singular-unit>-<plural-time-units>`, `<plural-units>/<singular-time-unit>`,
 * each optionally with a whole-number quantity (`1000 Tokens`) or interval (`Units/3 Months`).
 */
const TIME_UNIT = '(?:Year|Month|Day|Hour|Minute|Second)';
const UNIT_FORMAT = new RegExp(
  `^(?:\\d+ )?[A-Z][A-Za-z]*(?:-${TIME_UNIT}s|/${TIME_UNIT}|/\\d+ ${TIME_UNIT}s)?$`,
);

const CURRENCIES = new Set(Intl.supportedValuesOf('currency'));

/** KeyValueFormat: a serialized JSON object whose values are strings, numbers, booleans or null. */
function keyValueProblem(value: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return `'${value}' is not JSON`;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return `'${value}' is not a JSON object`;
  }
  const nested = Object.entries(parsed).find(([, v]) => v !== null && typeof v === 'object');
  return nested ? `key '${nested[0]}' holds an object or an array` : undefined;
}

type Check = (value: string, column: FocusColumn) => string | undefined;

const DATA_TYPES: Record<string, Check> = {
  String: (v) => (v.trim() === '' ? 'a string of spaces' : undefined),
  Decimal: (v) => (NUMERIC.test(v) ? undefined : `'${v}' is not a decimal`),
  'Date/Time': (v) =>
    DATE_TIME.test(v) && !Number.isNaN(Date.parse(v)) ? undefined : `'${v}' is not a FOCUS date/time`,
  JSON: (v) => keyValueProblem(v),
};

const VALUE_FORMATS: Record<string, Check> = {
  NumericFormat: (v) => (NUMERIC.test(v) ? undefined : `'${v}' breaks NumericFormat`),
  DateTimeFormat: (v) => (DATE_TIME.test(v) ? undefined : `'${v}' breaks DateTimeFormat ${DATE_TIME.source}`),
  CurrencyFormat: (v) =>
    /^[A-Z]{3}$/.test(v) && CURRENCIES.has(v) ? undefined : `'${v}' is no ISO 4217 currency code`,
  UnitFormat: (v) => (UNIT_FORMAT.test(v) ? undefined : `'${v}' breaks UnitFormat`),
  KeyValueFormat: (v) => keyValueProblem(v),
  AllowedValues: (v, column) =>
    column.allowedValues?.some((a) => a.value === v)
      ? undefined
      : `'${v}' is not one of the allowed values of ${column.id}`,
};

// ---- the checker -------------------------------------------------------------------------------

interface Table {
  header: string[];
  records: string[][];
}

const isNull = (value: string | undefined): boolean => value === undefined || value === '';

function holds(when: Condition | undefined, row: Record<string, string>): boolean {
  if (!when) return true;
  return when.some((clauses) =>
    clauses.every(({ column, op, values = [] }) => {
      const value = row[column];
      switch (op) {
        case 'null':
          return isNull(value);
        case 'notNull':
          return !isNull(value);
        case 'in':
          return !isNull(value) && values.includes(value as string);
        case 'notIn':
          return isNull(value) || !values.includes(value as string);
      }
    }),
  );
}

/** Two decimals as a CSV holds them (15 significant digits): equal to within that precision. */
function matches(product: string, expected: string): boolean {
  const a = money(product);
  const b = money(expected);
  const scale = a.abs().greaterThan(b.abs()) ? a.abs() : b.abs();
  return a.minus(b).abs().lessThanOrEqualTo(scale.times('1e-13'));
}

function ruleProblem(rule: Rule, row: Record<string, string>): string | undefined {
  if (!holds(rule.when, row)) return undefined;
  const value = row[rule.column];
  const broken = (): string => `breaks "${rule.requirement}"`;
  switch (rule.kind) {
    case 'null':
      return isNull(value) ? undefined : broken();
    case 'notNull':
      return isNull(value) ? broken() : undefined;
    case 'equals':
      return value === rule.value ? undefined : broken();
    case 'notEquals':
      return value === rule.value ? broken() : undefined;
    case 'nonNegative':
      return isNull(value) || !NUMERIC.test(value as string) || !money(value as string).isNegative()
        ? undefined
        : broken();
    case 'product': {
      const [a, b] = (rule.factors ?? []).map((f) => row[f]);
      if (isNull(a) || isNull(b) || isNull(value)) return undefined;
      if (![a, b, value].every((v) => NUMERIC.test(v as string))) return undefined; // reported as a type error
      const product = money(a as string)
        .times(b as string)
        .toFixed();
      return matches(product, value as string) ? undefined : `${broken()}: ${a} × ${b} ≠ ${value}`;
    }
  }
}

function cellProblems(column: FocusColumn, value: string, row: Record<string, string>): string[] {
  const problems: string[] = [];
  if (isNull(value)) {
    if (!column.allowsNulls) problems.push(`null, but ${column.id} allows no nulls`);
  } else {
    const dataType = DATA_TYPES[column.dataType];
    if (!dataType) problems.push(`no check for data type '${column.dataType}'`);
    else problems.push(...[dataType(value, column)].filter((p) => p !== undefined));
    if (column.valueFormat !== null) {
      const format = VALUE_FORMATS[column.valueFormat];
      if (!format) problems.push(`no check for value format '${column.valueFormat}'`);
      else problems.push(...[format(value, column)].filter((p) => p !== undefined));
    }
    if (column.allowedValuesParentColumn) {
      const parent = column.allowedValues?.find((a) => a.value === value)?.parent;
      const actual = row[column.allowedValuesParentColumn];
      if (parent !== undefined && parent !== actual) {
        problems.push(
          `'${value}' belongs to ${column.allowedValuesParentColumn} '${parent}', not '${actual}'`,
        );
      }
    }
  }
  for (const rule of column.rules) {
    const problem = ruleProblem(rule, row);
    if (problem) problems.push(problem);
  }
  return problems;
}

/** Everything in a CSV table that breaks the FOCUS extract; empty when it conforms. */
function violations({ header, records }: Table): string[] {
  const out: string[] = [];
  for (const id of spec.mandatory) {
    if (!header.includes(id)) out.push(`missing Mandatory column ${id}`);
  }
  const duplicates = header.filter((name, i) => header.indexOf(name) !== i);
  if (duplicates.length > 0) out.push(`duplicate columns ${duplicates.join(', ')}`);
  header.forEach((name, i) => {
    if (COLUMNS.has(name)) {
      if (header.slice(0, i).some((n) => !COLUMNS.has(n)))
        out.push(`FOCUS column ${name} after custom columns`);
    } else if (!/^x_[A-Z][A-Za-z0-9]*$/.test(name)) {
      out.push(`column '${name}' is neither a FOCUS ${spec.version} column nor a custom x_ column`);
    }
  });
  records.forEach((record, r) => {
    const at = `line ${r + 2}`;
    if (record.length !== header.length)
      out.push(`${at}: ${record.length} cells for ${header.length} columns`);
    const row = Object.fromEntries(header.map((name, i) => [name, record[i] ?? '']));
    for (const name of header) {
      const column = COLUMNS.get(name);
      if (!column) continue;
      out.push(...cellProblems(column, row[name] as string, row).map((p) => `${at} ${name}: ${p}`));
    }
  });
  return out;
}

function table(csv: string | Buffer): Table {
  const [header = [], ...records] = parse(csv, { bom: true, relax_column_count: true });
  return { header, records };
}

// ---- a realistic report ------------------------------------------------------------------------

const ZURICH = 'Forschung & Entwicklung – Zürich';

const config: ChargebackConfig = {
  currency: 'USD',
  departments: [
    { id: 'research', name: ZURICH, costCenter: 'CC-4711' },
    { id: 'marketing', name: 'Marketing', costCenter: 'CC-2001' },
    { id: 'support', name: 'Customer Support' },
  ],
  apps: [{ appId: 'helpdesk-bot', department: 'support' }],
  sharedCosts: [
    { id: 'apim', name: 'API Management', monthlyAmount: '700.00', rule: { kind: 'proportional-cost' } },
    {
      id: 'platform-team',
      name: 'Platform team (share of run costs)',
      monthlyAmount: '3100',
      rule: { kind: 'even' },
    },
    {
      id: 'ptu',
      name: 'Provisioned throughput',
      monthlyAmount: '333.33',
      rule: { kind: 'proportional-tokens' },
    },
  ],
  markupPercent: '2.5',
  budgets: [],
};

const PRICES: Record<Meter, string> = {
  'input-tokens': '2.50',
  'cached-input-tokens': '1.25',
  'output-tokens': '10.00',
  'audio-seconds': '1.00',
  'tts-characters': '15.00',
};

/** A priced usage row, as aggregation commits it. */
function usage(
  department: string,
  windowId: string,
  meter: Meter,
  quantity: string,
  fields: Partial<UsageAggregate> = {},
): UsageAggregate {
  const pricingQuantity = money(quantity).div(PRICING_UNITS[meter].size).toFixed();
  const speech =
    meter === 'audio-seconds'
      ? { api: 'stt' as const, deployment: 'stt-en-US', model: 'azure-speech-stt-standard' }
      : meter === 'tts-characters'
        ? { api: 'tts' as const, deployment: 'tts-neural', model: 'azure-speech-tts-neural' }
        : {};
  const unitPrice = fields.priceId === null ? '0' : PRICES[meter];
  return usageAggregate({
    id: `${windowId}-${department}-${meter}-${fields.appId ?? ''}-${fields.model ?? ''}`,
    windowId,
    department,
    appId: `${department}-app`,
    subscriptionId: `sub-${department}`,
    meter,
    quantity,
    pricingUnit: PRICING_UNITS[meter].unit,
    pricingQuantity,
    unitPrice,
    cost: money(pricingQuantity).times(unitPrice).toFixed(),
    requests: 3,
    estimatedRequests: 0,
    ...speech,
    ...fields,
  });
}

const rows: UsageAggregate[] = [
  usage('research', '20261201T0900Z', 'input-tokens', '1234567'),
  usage('research', '20261201T0900Z', 'cached-input-tokens', '200000'),
  usage('research', '20261201T0900Z', 'output-tokens', '345678', { estimatedRequests: 1 }),
  usage('research', '20261202T1415Z', 'audio-seconds', '90.5'),
  usage('marketing', '20261201T1030Z', 'input-tokens', '50000'),
  usage('marketing', '20261202T1030Z', 'output-tokens', '7777'),
  usage('marketing', '20261202T1100Z', 'tts-characters', '12345'),
  // APIM named marketing; the configuration maps the app to support.
  usage('marketing', '20261202T0800Z', 'input-tokens', '99999', { appId: 'helpdesk-bot' }),
  usage('unassigned', '20261202T1200Z', 'input-tokens', '4321'),
  usage('research', '20261202T1600Z', 'input-tokens', '1000', { model: 'llama-3-70b', priceId: null }),
];

const report = buildReport({
  period: parsePeriod('2026-12'),
  aggregates: rows,
  config,
  dataThrough: '2026-12-02T23:45:00.000Z',
});
const csv = renderCsv(report);
const rendered = table(csv);
const records = rendered.records.map((record) =>
  Object.fromEntries(rendered.header.map((name, i) => [name, record[i] ?? ''])),
);

// ---- the tests ---------------------------------------------------------------------------------

describe(`FOCUS ${spec.version} conformance of the report CSV`, () => {
  it('claims the FOCUS version the extract was made from, at the pinned commit', () => {
    expect(FOCUS_VERSION).toBe(spec.version);
    expect(spec.source).toMatchObject({
      repository: 'https://github.com/FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec',
      tag: `v${FOCUS_VERSION}`,
      commit: SPEC_COMMIT,
    });
    expect(spec.mandatory.length).toBeGreaterThan(0);
  });

  it('renders usage (Azure OpenAI tokens, Speech), shared-cost and markup lines', () => {
    const kinds = new Set(records.map((r) => `${r.ChargeCategory} ${r.ServiceName} ${r.ConsumedUnit}`));
    expect([...kinds]).toEqual(
      expect.arrayContaining([
        'Usage Azure OpenAI Tokens',
        'Usage Azure AI Speech Seconds',
        'Usage Azure AI Speech Characters',
        'Purchase API Management ',
        'Purchase Platform team (share of run costs) ',
        'Purchase Provisioned throughput ',
        'Adjustment Chargeback markup ',
      ]),
    );
  });

  it('has every column the specification makes Mandatory', () => {
    expect(spec.mandatory.filter((id) => !rendered.header.includes(id))).toEqual([]);
  });

  it('every cell obeys its column: data type, value format, nullability, allowed values and rules', () => {
    expect(violations(rendered)).toEqual([]);
  });

  it('reads a rule from the specification for the conditional columns it renders', () => {
    // The checks above are only as strong as the rules extracted: the conditional nullability of
    // the pricing columns must be among them.
    const ruled = rendered.header.filter((name) => COLUMNS.get(name)?.rules.some((r) => r.when));
    expect(ruled).toEqual(expect.arrayContaining(['PricingQuantity', 'ListUnitPrice', 'ConsumedQuantity']));
  });

  it('custom columns start with x_ and follow the FOCUS columns', () => {
    const custom = rendered.header.filter((name) => !COLUMNS.has(name));
    expect(custom.length).toBeGreaterThan(0);
    for (const name of custom) expect(name).toMatch(/^x_/);
    const firstCustom = rendered.header.indexOf(custom[0] as string);
    expect(rendered.header.slice(firstCustom).every((name) => !COLUMNS.has(name))).toBe(true);
  });

  it('every Decimal column is rounded for spreadsheets: at most 15 significant digits, the JSON keeps all', () => {
    const decimal = rendered.header.filter((name) => COLUMNS.get(name)?.dataType === 'Decimal');
    const flagged = new Set(REPORT_COLUMNS.filter((c) => c.decimal).map((c) => c.name));
    expect(decimal.filter((name) => !flagged.has(name))).toEqual([]);
    const significant = (v: string): number => v.replace(/^[-0.]+/, '').replace('.', '').length;
    const cells = records.flatMap((r) => [...flagged].map((name) => r[name] ?? ''));
    expect(Math.max(...cells.map(significant))).toBe(15);
    const json = JSON.parse(renderJson(report)) as { rows: Array<Record<string, string>> };
    expect(json.rows.some((r) => significant(r.ListCost ?? '') > 15)).toBe(true);
  });

  it('amounts come from the report: BilledCost is the rounded cost, ListCost the exact one', () => {
    const full = reportRows(report);
    report.lines.forEach((line, i) => {
      expect(full[i]).toMatchObject({
        BilledCost: line.cost,
        EffectiveCost: line.cost,
        ListCost: line.exactCost,
        ContractedCost: line.exactCost,
      });
    });
    expect(sum(records.map((r) => money(r.BilledCost as string))).toFixed(2)).toBe(report.total);
  });

  it('names who provides, publishes and invoices each line truthfully', () => {
    for (const r of records) {
      const internal = r.ChargeCategory !== 'Usage';
      expect([r.ProviderName, r.PublisherName, r.InvoiceIssuerName]).toEqual(
        internal
          ? [INTERNAL_PLATFORM.name, INTERNAL_PLATFORM.name, INTERNAL_PLATFORM.name]
          : [CLOUD_PROVIDER, CLOUD_PROVIDER, INTERNAL_PLATFORM.name],
      );
      expect(r.ServiceCategory).toBe(internal ? 'Other' : 'AI and Machine Learning');
    }
  });

  const mutate = (change: (rows: Array<Record<string, string>>) => void, header = rendered.header): Table => {
    const copy = records.map((r) => ({ ...r }));
    change(copy);
    return { header, records: copy.map((r) => header.map((name) => r[name] ?? '')) };
  };
  const first = (rs: Array<Record<string, string>>, category: string): Record<string, string> =>
    rs.find((r) => r.ChargeCategory === category) as Record<string, string>;

  it.each(spec.mandatory)('fails when the Mandatory column %s is dropped', (id) => {
    const header = rendered.header.filter((name) => name !== id);
    expect(violations(mutate(() => undefined, header))).toContain(`missing Mandatory column ${id}`);
  });

  it.each<[string, (rs: Array<Record<string, string>>) => void, string]>([
    [
      'a value outside the allowed set',
      (rs) => void (first(rs, 'Usage').ChargeCategory = 'Fee'),
      'allowed values',
    ],
    [
      'a date/time with milliseconds',
      (rs) => void (first(rs, 'Usage').BillingPeriodStart = '2026-12-01T00:00:00.000Z'),
      'DateTimeFormat',
    ],
    [
      'a null where the column allows none',
      (rs) => void (first(rs, 'Usage').BilledCost = ''),
      'allows no nulls',
    ],
    [
      'a decimal with a thousands separator',
      (rs) => void (first(rs, 'Usage').ListCost = '1,000.5'),
      'not a decimal',
    ],
    [
      'a usage line without a pricing quantity',
      (rs) => void (first(rs, 'Usage').PricingQuantity = ''),
      'MUST NOT',
    ],
    [
      'a consumed quantity on a purchase',
      (rs) => void (first(rs, 'Purchase').ConsumedQuantity = '5'),
      'MUST be null',
    ],
    [
      'a list cost that is not price × quantity',
      (rs) => void (first(rs, 'Usage').ListCost = '1234.5'),
      'product',
    ],
    [
      'a subcategory of another category',
      (rs) => void (first(rs, 'Purchase').ServiceSubcategory = 'Generative AI'),
      'belongs to ServiceCategory',
    ],
    [
      'a nested value in Tags',
      (rs) => void (first(rs, 'Usage').Tags = '{"a":{"b":1}}'),
      'object or an array',
    ],
    ['a price-table unit', (rs) => void (first(rs, 'Usage').PricingUnit = '1M Tokens'), 'UnitFormat'],
  ])('fails on %s', (_what, change, message) => {
    const found = violations(mutate(change));
    expect(found.length).toBeGreaterThan(0);
    expect(found.join('\n')).toContain(message);
  });

  it('fails on a custom column without the x_ prefix', () => {
    const header = rendered.header.map((name) => (name === 'x_CostCenter' ? 'CostCenter' : name));
    expect(violations(mutate(() => undefined, header)).join('\n')).toContain("'CostCenter' is neither");
  });
});

describe('report CSV encoding', () => {
  it('is UTF-8 with a byte-order mark, so Excel reads non-ASCII department names', () => {
    const bytes = Buffer.from(csv, 'utf8');
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    // Valid UTF-8 throughout, and the name's non-ASCII characters are UTF-8 sequences (ü, –).
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    expect(text).toBe(csv.slice(1));
    expect(bytes.includes(Buffer.from([0xc3, 0xbc]))).toBe(true); // ü
    expect(bytes.includes(Buffer.from([0xe2, 0x80, 0x93]))).toBe(true); // –
    const names = table(bytes).records.map((r) => r[rendered.header.indexOf('SubAccountName')]);
    expect(names).toContain(ZURICH);
    expect(rendered.header[0]).toBe('BillingAccountId'); // the BOM is no part of the first column's name
  });

  it('neutralises formula-like text but leaves numbers in numeric columns alone', () => {
    const line = report.lines.find((l) => l.category === 'usage');
    if (!line) throw new Error('no usage line');
    const negative = { ...line, department: '-5', cost: '-0.50', exactCost: '-0.5', quantity: '-1' };
    const out = renderCsv(report, [negative]);
    const [record = []] = table(out).records;
    const cell = (name: string): string | undefined => record[rendered.header.indexOf(name)];
    expect([cell('BilledCost'), cell('ListCost'), cell('ConsumedQuantity')]).toEqual(['-0.5', '-0.5', '-1']);
    expect(cell('SubAccountId')).toBe("'-5");
    expect(out).toContain(',-0.5,-0.5,');
  });
});
