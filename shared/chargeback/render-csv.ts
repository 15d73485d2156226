import { stringify } from 'csv-stringify/sync';
import { parsePeriod } from '../contracts/report-period';
import type { ChargebackReport, ReportLine } from './model';
import { money } from './money';

/**
 * The report's rows and its CSV, rendered from a ChargebackReport: pure and deterministic (same
 * report, same bytes). The CSV is a FinOps FOCUS 1.2 dataset (FOCUS_VERSION): every column FOCUS
 * 1.2 makes Mandatory, a few Conditional and Recommended ones, and custom columns with FOCUS's
 * `x_` prefix after them. tests/shared/chargeback/focus-conformance.test.ts checks it against the
 * specification's own column definitions; docs/report-csv.md documents it for finance.
 *
 * A FOCUS null is an empty cell (an empty string in the JSON rows).
 */

/** The FOCUS release the CSV conforms to (FOCUS_Spec tag v1.2). */
export const FOCUS_VERSION = '1.2';

/**
 * The internal platform that runs the gateway and issues the chargeback: the billing account the
 * report belongs to, and the provider, publisher and invoice issuer of what it charges on its own
 * account (shared platform costs, markup). Constants until the configuration names the platform.
 */
export const INTERNAL_PLATFORM = {
  billingAccountId: 'ai-chargeback',
  billingAccountName: 'AI chargeback',
  name: 'Internal AI platform',
} as const;

/** Provider and publisher of the metered services (Azure OpenAI, Azure AI Speech). */
export const CLOUD_PROVIDER = 'Microsoft';

/** Prefix of the tag keys the chargeback defines (FOCUS: provider-defined tag keys are prefixed). */
export const TAG_PREFIX = 'chargeback/';

export type Row = Record<string, string>;
type Names = Map<string, { name: string; costCenter?: string }>;

export const REPORT_COLUMNS: ReadonlyArray<{
  name: string;
  description: string;
  /** An exact decimal: full precision in JSON, SPREADSHEET_DIGITS significant digits in CSV. */
  decimal?: true;
  /** A whole number. */
  integer?: true;
  value: (l: ReportLine, r: ChargebackReport, names: Names) => string;
}> = [
  {
    name: 'BillingAccountId',
    description: 'The chargeback platform (constant).',
    value: () => INTERNAL_PLATFORM.billingAccountId,
  },
  {
    name: 'BillingAccountName',
    description: 'The chargeback platform (constant).',
    value: () => INTERNAL_PLATFORM.billingAccountName,
  },
  {
    name: 'BillingPeriodStart',
    description:
      'Start of the calendar month billed (inclusive, UTC); a daily report bills within its month.',
    value: (_l, r) => focusDateTime(billingPeriod(r).start),
  },
  {
    name: 'BillingPeriodEnd',
    description: 'End of that month (exclusive, UTC).',
    value: (_l, r) => focusDateTime(billingPeriod(r).end),
  },
  {
    name: 'ChargePeriodStart',
    description:
      'Usage: start of the day consumed. Shared cost: start of the first accrued day. Markup: start of the report period.',
    value: (l) => focusDateTime(l.chargePeriodStart),
  },
  {
    name: 'ChargePeriodEnd',
    description: 'End (exclusive) of that day, of the last accrued day, or of the report period.',
    value: (l) => focusDateTime(l.chargePeriodEnd),
  },
  {
    name: 'ChargeCategory',
    description: 'Usage (metered AI usage), Purchase (allocated fixed platform cost), Adjustment (markup).',
    value: (l) => (l.category === 'usage' ? 'Usage' : l.category === 'shared' ? 'Purchase' : 'Adjustment'),
  },
  { name: 'ChargeClass', description: 'Null: no line corrects an earlier period.', value: () => '' },
  {
    name: 'ChargeFrequency',
    description: 'Usage-Based for usage and markup, Recurring for fixed monthly costs.',
    value: (l) => (l.category === 'shared' ? 'Recurring' : 'Usage-Based'),
  },
  { name: 'ChargeDescription', description: 'What the line is.', value: (l) => l.description },
  {
    name: 'BilledCost',
    decimal: true,
    description:
      'Amount charged to the department, rounded to cents; lines add up exactly to the report total.',
    value: (l) => l.cost,
  },
  {
    name: 'EffectiveCost',
    decimal: true,
    description: 'Same as BilledCost (no amortisation, no commitment discounts).',
    value: (l) => l.cost,
  },
  {
    name: 'ListCost',
    decimal: true,
    description:
      'The exact amount before rounding: ListUnitPrice × PricingQuantity (usage, shared cost), markupPercent × the exact amounts marked up (markup).',
    value: (l) => l.exactCost,
  },
  {
    name: 'ContractedCost',
    decimal: true,
    description: 'Same as ListCost (no negotiated discounts).',
    value: (l) => l.exactCost,
  },
  { name: 'BillingCurrency', description: 'ISO 4217 currency.', value: (_l, r) => r.currency },
  {
    name: 'ConsumedQuantity',
    decimal: true,
    description: 'Quantity consumed, in ConsumedUnit (usage lines; null otherwise).',
    value: (l) => (l.category === 'usage' ? (l.quantity ?? '') : ''),
  },
  {
    name: 'ConsumedUnit',
    description: 'Tokens, Seconds (audio) or Characters (usage lines; null otherwise).',
    value: (l) => (l.category === 'usage' ? (l.consumedUnit ?? '') : ''),
  },
  {
    name: 'PricingQuantity',
    decimal: true,
    description: 'Usage: ConsumedQuantity in pricing units. Shared cost: 1 allocation. Markup: null.',
    value: (l) => pricing(l)?.quantity ?? '',
  },
  {
    name: 'PricingUnit',
    description:
      'Usage: 1000000 Tokens, Hours or 1000000 Characters. Shared cost: Allocations. Markup: null.',
    value: (l) => pricing(l)?.unit ?? '',
  },
  {
    name: 'ListUnitPrice',
    decimal: true,
    description:
      'Usage: price of one pricing unit, from the effective-dated price table. Shared cost: the allocated amount. Markup: null.',
    value: (l) => pricing(l)?.unitPrice ?? '',
  },
  {
    name: 'ContractedUnitPrice',
    decimal: true,
    description: 'Same as ListUnitPrice (no negotiated discounts).',
    value: (l) => pricing(l)?.unitPrice ?? '',
  },
  {
    name: 'PricingCategory',
    description: 'Standard (prices agreed in advance) for usage and shared costs; null for markup.',
    value: (l) => (l.category === 'markup' ? '' : 'Standard'),
  },
  {
    name: 'ServiceName',
    description: 'Azure OpenAI, Azure AI Speech, the shared cost as configured, or Chargeback markup.',
    value: (l) => serviceName(l),
  },
  {
    name: 'ServiceCategory',
    description: 'AI and Machine Learning (Azure OpenAI, Azure AI Speech); Other (shared costs, markup).',
    value: (l) => serviceCategory(l).category,
  },
  {
    name: 'ServiceSubcategory',
    description:
      'Generative AI (Azure OpenAI), Natural Language Processing (Azure AI Speech), Other (Other) otherwise.',
    value: (l) => serviceCategory(l).subcategory,
  },
  {
    name: 'ProviderName',
    description: 'Microsoft for usage; the internal platform for shared costs and markup.',
    value: (l) => (l.category === 'usage' ? CLOUD_PROVIDER : INTERNAL_PLATFORM.name),
  },
  {
    name: 'PublisherName',
    description: 'Microsoft for usage; the internal platform for shared costs and markup.',
    value: (l) => (l.category === 'usage' ? CLOUD_PROVIDER : INTERNAL_PLATFORM.name),
  },
  {
    name: 'InvoiceIssuerName',
    description: 'The internal platform, which issues the chargeback for every line.',
    value: () => INTERNAL_PLATFORM.name,
  },
  {
    name: 'ResourceId',
    description: 'The deployment called (usage lines; null otherwise).',
    value: (l) => l.deployment ?? '',
  },
  {
    name: 'ResourceName',
    description: 'The deployment called (usage lines; null otherwise).',
    value: (l) => l.deployment ?? '',
  },
  {
    name: 'SkuId',
    description: 'Usage: the model the upstream reported. Shared cost: its configured id. Markup: null.',
    value: (l) =>
      l.category === 'usage' ? (l.model ?? '') : l.category === 'shared' ? (l.sharedCostId ?? '') : '',
  },
  { name: 'SubAccountId', description: 'The department charged.', value: (l) => l.department },
  {
    name: 'SubAccountName',
    description: "The department's name.",
    value: (l, _r, n) => n.get(l.department)?.name ?? l.department,
  },
  {
    name: 'Tags',
    description: `JSON: ${TAG_PREFIX}department, ${TAG_PREFIX}app, ${TAG_PREFIX}subscription.`,
    value: (l) =>
      JSON.stringify({
        [`${TAG_PREFIX}department`]: l.department,
        ...(l.appId ? { [`${TAG_PREFIX}app`]: l.appId } : {}),
        ...(l.subscriptionId ? { [`${TAG_PREFIX}subscription`]: l.subscriptionId } : {}),
      }),
  },
  {
    name: 'x_CostCenter',
    description: "The department's cost center.",
    value: (l, _r, n) => n.get(l.department)?.costCenter ?? '',
  },
  { name: 'x_AppId', description: 'The calling app.', value: (l) => l.appId ?? '' },
  { name: 'x_SubscriptionId', description: 'The APIM subscription.', value: (l) => l.subscriptionId ?? '' },
  {
    name: 'x_Meter',
    description: 'input-tokens, cached-input-tokens, output-tokens, audio-seconds, tts-characters.',
    value: (l) => l.meter ?? '',
  },
  {
    name: 'x_Requests',
    integer: true,
    description: 'Requests in the line (usage lines).',
    value: (l) => (l.requests === undefined ? '' : String(l.requests)),
  },
  {
    name: 'x_EstimatedRequests',
    integer: true,
    description: 'Of which with estimated figures (interrupted streams).',
    value: (l) => (l.estimatedRequests === undefined ? '' : String(l.estimatedRequests)),
  },
  {
    name: 'x_Unpriced',
    description:
      'true when no price matched the model: cost 0, and a price added later applies from when it is added, not to this line.',
    value: (l) => (l.unpriced ? 'true' : ''),
  },
  {
    name: 'x_SharedCostId',
    description: 'The shared cost allocated (shared lines).',
    value: (l) => l.sharedCostId ?? '',
  },
  {
    name: 'x_ExactCost',
    decimal: true,
    description: 'The exact amount before rounding (in CSV to 15 significant digits, as spreadsheets keep).',
    value: (l) => l.exactCost,
  },
];

/**
 * A FOCUS Date/Time: ISO 8601 in UTC, to the second, 'YYYY-MM-DDTHH:mm:ssZ'. Lines carry
 * JavaScript's `toISOString()` form (with milliseconds); their bounds are whole days.
 */
function focusDateTime(value: string): string {
  const time = Date.parse(value);
  if (Number.isNaN(time)) throw new Error(`'${value}' is not a date/time`);
  return new Date(time).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The calendar month a report bills: its own period, or the month a daily report's day is in. */
function billingPeriod(report: ChargebackReport): { start: string; end: string } {
  return report.period.kind === 'monthly' ? report.period : parsePeriod(report.period.id.slice(0, 7));
}

/**
 * A FOCUS unit: a unit quantity is a whole number ('1000000 Tokens', not the price table's
 * '1M Tokens').
 */
function focusUnit(unit: string): string {
  const m = /^(\d+)([KM]) (.+)$/.exec(unit);
  if (!m) return unit;
  return `${money(m[1] as string)
    .times(m[2] === 'K' ? 1_000 : 1_000_000)
    .toFixed()} ${m[3] as string}`;
}

/** Unit a shared cost is priced in until its lines carry their own pricing (one allocation). */
const SHARED_COST_UNIT = 'Allocations';

/**
 * A line's pricing, which FOCUS requires for Usage and Purchase (shared) lines. A shared line is
 * one allocation of the shared cost, priced at the allocated amount, unless the line carries its
 * own pricing. Markup has none.
 */
function pricing(line: ReportLine): { quantity: string; unit: string; unitPrice: string } | undefined {
  if (line.pricingQuantity !== undefined && line.pricingUnit !== undefined && line.unitPrice !== undefined) {
    return { quantity: line.pricingQuantity, unit: focusUnit(line.pricingUnit), unitPrice: line.unitPrice };
  }
  if (line.category === 'shared') {
    return { quantity: '1', unit: SHARED_COST_UNIT, unitPrice: line.exactCost };
  }
  return undefined;
}

const isSpeech = (line: ReportLine): boolean =>
  line.meter === 'audio-seconds' || line.meter === 'tts-characters';

function serviceName(line: ReportLine): string {
  if (line.category === 'markup') return 'Chargeback markup';
  if (line.category === 'shared') return line.sharedCostName ?? line.description;
  return isSpeech(line) ? 'Azure AI Speech' : 'Azure OpenAI';
}

/**
 * FOCUS service category and subcategory. A shared cost is whatever the platform team configured
 * (API Management, Redis, provisioned throughput...), and the markup is no service at all: FOCUS's
 * "Other" is the one category true of them all.
 */
function serviceCategory(line: ReportLine): { category: string; subcategory: string } {
  if (line.category !== 'usage') return { category: 'Other', subcategory: 'Other (Other)' };
  return {
    category: 'AI and Machine Learning',
    subcategory: isSpeech(line) ? 'Natural Language Processing' : 'Generative AI',
  };
}

function departmentNames(report: ChargebackReport): Names {
  return new Map(
    report.departments.map((d) => [
      d.department,
      { name: d.name, ...(d.costCenter ? { costCenter: d.costCenter } : {}) },
    ]),
  );
}

/** The rows, every decimal at full precision (the JSON's rows). */
export function reportRows(report: ChargebackReport, lines: readonly ReportLine[] = report.lines): Row[] {
  const names = departmentNames(report);
  return lines.map((line) =>
    Object.fromEntries(REPORT_COLUMNS.map((c) => [c.name, c.value(line, report, names)])),
  );
}

/** What a spreadsheet may read as the start of a formula (OWASP's CSV injection list). */
const FORMULA_START = /^[=+\-@\t\r]/;

/** A FOCUS numeric value (NumericFormat): what a numeric column holds, never a formula. */
const NUMBER = /^-?\d+(\.\d+)?(E-?\d+)?$/;
const NUMERIC_COLUMNS = new Set(REPORT_COLUMNS.filter((c) => c.decimal || c.integer).map((c) => c.name));

/**
 * OWASP's advice for CSV injection: a cell that starts like a formula gets a leading single quote
 * (and is quoted), so a spreadsheet shows it as text. Quoting alone is not enough: spreadsheets
 * still evaluate a quoted `=...` cell. A number in a numeric column is left as it is: it is no
 * formula, and a quote would turn it into text.
 */
function neutralised(row: Row): Row {
  return Object.fromEntries(
    Object.entries(row).map(([k, v]) => [
      k,
      FORMULA_START.test(v) && !(NUMERIC_COLUMNS.has(k) && NUMBER.test(v)) ? `'${v}` : v,
    ]),
  );
}

/** Spreadsheets keep 15 significant digits of a number and silently drop the rest. */
const SPREADSHEET_DIGITS = 15;
const DECIMAL_COLUMNS = REPORT_COLUMNS.filter((c) => c.decimal).map((c) => c.name);

/** Decimals rounded (half to even) to what a spreadsheet keeps, so nothing is cut silently. */
function spreadsheetDecimals(row: Row): Row {
  const out = { ...row };
  for (const name of DECIMAL_COLUMNS) {
    const value = out[name];
    if (value) out[name] = money(value).toSignificantDigits(SPREADSHEET_DIGITS).toFixed();
  }
  return out;
}

/**
 * RFC 4180 CSV, CRLF line ends, a header row, UTF-8 with a byte-order mark: the BOM is what makes
 * Excel read the file as UTF-8 (without it, non-ASCII department names come out garbled).
 */
export function renderCsv(report: ChargebackReport, lines: readonly ReportLine[] = report.lines): string {
  return csvOf(reportRows(report, lines));
}

/** The CSV of rows already made by reportRows (report-files.ts makes them once per report). */
export function csvOf(rows: readonly Row[]): string {
  return stringify(rows.map(spreadsheetDecimals).map(neutralised), {
    bom: true,
    header: true,
    columns: REPORT_COLUMNS.map((c) => c.name),
    record_delimiter: '\r\n',
    quoted_match: /^'[=+\-@\t\r]/,
  });
}
