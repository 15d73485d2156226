import { stringify } from 'csv-stringify/sync';
import type { ChargebackReport, ReportLine } from './model';
import { money } from './money';

/**
 * The report's rows and its CSV, rendered from a ChargebackReport: pure and deterministic (same
 * report, same bytes). Columns follow the FinOps FOCUS 1.1 specification where FOCUS has the column; the
 * others carry FOCUS's `x_` prefix for custom columns.
 */

type Row = Record<string, string>;

export const REPORT_COLUMNS: ReadonlyArray<{
  name: string;
  description: string;
  /** An exact decimal: full precision in JSON, SPREADSHEET_DIGITS significant digits in CSV. */
  decimal?: true;
  value: (
    l: ReportLine,
    r: ChargebackReport,
    names: Map<string, { name: string; costCenter?: string }>,
  ) => string;
}> = [
  {
    name: 'BillingAccountId',
    description: 'The chargeback platform (constant).',
    value: () => 'ai-chargeback',
  },
  {
    name: 'BillingPeriodStart',
    description: 'Start of the report period (inclusive, UTC).',
    value: (_l, r) => r.period.start,
  },
  {
    name: 'BillingPeriodEnd',
    description: 'End of the report period (exclusive, UTC).',
    value: (_l, r) => r.period.end,
  },
  {
    name: 'ChargePeriodStart',
    description: 'Start of the day the usage was consumed; for shared costs the first accrued day.',
    value: (l) => l.chargePeriodStart,
  },
  {
    name: 'ChargePeriodEnd',
    description: 'End of that day (exclusive); for shared costs the end of the last accrued day.',
    value: (l) => l.chargePeriodEnd,
  },
  {
    name: 'ChargeCategory',
    description: 'Usage (metered AI usage), Purchase (allocated fixed platform cost), Adjustment (markup).',
    value: (l) => (l.category === 'usage' ? 'Usage' : l.category === 'shared' ? 'Purchase' : 'Adjustment'),
  },
  { name: 'ChargeClass', description: 'Empty: no line corrects an earlier period.', value: () => '' },
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
    description: 'Same as BilledCost (no amortisation).',
    value: (l) => l.cost,
  },
  {
    name: 'ListCost',
    decimal: true,
    description: 'Cost at list unit price (usage); the allocated amount otherwise.',
    value: (l) => l.cost,
  },
  { name: 'BillingCurrency', description: 'ISO 4217 currency.', value: (_l, r) => r.currency },
  {
    name: 'ConsumedQuantity',
    decimal: true,
    description: 'Quantity consumed, in ConsumedUnit (usage lines).',
    value: (l) => l.quantity ?? '',
  },
  {
    name: 'ConsumedUnit',
    description: 'Tokens, Seconds (audio) or Characters.',
    value: (l) => l.consumedUnit ?? '',
  },
  {
    name: 'PricingQuantity',
    decimal: true,
    description: 'ConsumedQuantity in pricing units.',
    value: (l) => l.pricingQuantity ?? '',
  },
  {
    name: 'PricingUnit',
    description: '1M Tokens, Hours or 1M Characters.',
    value: (l) => l.pricingUnit ?? '',
  },
  {
    name: 'ListUnitPrice',
    decimal: true,
    description: 'Price of one pricing unit, from the effective-dated price table.',
    value: (l) => l.unitPrice ?? '',
  },
  {
    name: 'ServiceName',
    description: 'Azure OpenAI, Azure AI Speech, or the shared cost.',
    value: (l) => serviceName(l),
  },
  {
    name: 'ServiceCategory',
    description: 'AI and Machine Learning.',
    value: () => 'AI and Machine Learning',
  },
  { name: 'ProviderName', description: 'Microsoft.', value: () => 'Microsoft' },
  { name: 'PublisherName', description: 'Microsoft.', value: () => 'Microsoft' },
  {
    name: 'ResourceId',
    description: 'The deployment called (usage lines).',
    value: (l) => l.deployment ?? '',
  },
  {
    name: 'ResourceName',
    description: 'The deployment called (usage lines).',
    value: (l) => l.deployment ?? '',
  },
  { name: 'SkuId', description: 'The model the upstream reported.', value: (l) => l.model ?? '' },
  { name: 'SubAccountId', description: 'The department charged.', value: (l) => l.department },
  {
    name: 'SubAccountName',
    description: "The department's name.",
    value: (l, _r, n) => n.get(l.department)?.name ?? l.department,
  },
  {
    name: 'Tags',
    description: 'JSON: department, app, subscription.',
    value: (l) =>
      JSON.stringify({
        department: l.department,
        ...(l.appId ? { app: l.appId } : {}),
        ...(l.subscriptionId ? { subscription: l.subscriptionId } : {}),
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
    description: 'Requests in the line (usage lines).',
    value: (l) => (l.requests === undefined ? '' : String(l.requests)),
  },
  {
    name: 'x_EstimatedRequests',
    description: 'Of which with estimated figures (interrupted streams).',
    value: (l) => (l.estimatedRequests === undefined ? '' : String(l.estimatedRequests)),
  },
  {
    name: 'x_Unpriced',
    description: 'true when no price matched the model (cost 0, to be priced).',
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

function serviceName(line: ReportLine): string {
  if (line.category === 'markup') return 'Chargeback markup';
  if (line.category === 'shared') return line.sharedCostName ?? line.description;
  return line.meter === 'audio-seconds' || line.meter === 'tts-characters'
    ? 'Azure AI Speech'
    : 'Azure OpenAI';
}

function departmentNames(report: ChargebackReport): Map<string, { name: string; costCenter?: string }> {
  return new Map(
    report.departments.map((d) => [
      d.department,
      { name: d.name, ...(d.costCenter ? { costCenter: d.costCenter } : {}) },
    ]),
  );
}

export function reportRows(report: ChargebackReport, lines: readonly ReportLine[] = report.lines): Row[] {
  const names = departmentNames(report);
  return lines.map((line) =>
    Object.fromEntries(REPORT_COLUMNS.map((c) => [c.name, c.value(line, report, names)])),
  );
}

/** What a spreadsheet may read as the start of a formula (OWASP's CSV injection list). */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * OWASP's advice for CSV injection: a cell that starts like a formula gets a leading single quote
 * (and is quoted), so a spreadsheet shows it as text. Quoting alone is not enough: spreadsheets
 * still evaluate a quoted `=...` cell.
 */
function neutralised(row: Row): Row {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, FORMULA_START.test(v) ? `'${v}` : v]));
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

/** RFC 4180 CSV, CRLF line ends, a header row, UTF-8 without BOM. */
export function renderCsv(report: ChargebackReport, lines: readonly ReportLine[] = report.lines): string {
  return stringify(reportRows(report, lines).map(spreadsheetDecimals).map(neutralised), {
    header: true,
    columns: REPORT_COLUMNS.map((c) => c.name),
    record_delimiter: '\r\n',
    quoted_match: /^'[=+\-@\t\r]/,
  });
}
