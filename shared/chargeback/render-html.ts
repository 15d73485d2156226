import type Decimal from 'decimal.js';
import { UNASSIGNED_DEPARTMENT } from '../contracts/department';
import { DAY_MS } from '../contracts/report-period';
import type { ChargebackReport, DepartmentTotal, Meter, ReportLine, ReportLineCategory } from './model';
import { primaryMeter } from './model';
import { money, sum } from './money';

/**
 * The HTML summary of a report, for finance: one self-contained page (no script, no external
 * resource, charts as inline SVG) that reads at a glance: the headline total and the period in
 * words, the departments with a totals row, each department's shared costs by cost and rule, the
 * usage in tokens, audio and characters (so that usage worth less than a cent still shows), and a
 * per-day chart when the period has more than one day. A pure function of the report: the same
 * report gives the same bytes (no clock, no locale), and every string from the report is escaped.
 */

/**
 * What the page needs, and all it needs: its own inline styles. Sent as the Content-Security-Policy
 * header wherever a report is served (functions/reports/reports-get.ts).
 */
const PAGE_POLICY = [
  "default-src 'none'",
  "style-src 'unsafe-inline'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
] as const;
export const REPORT_CONTENT_SECURITY_POLICY = [...PAGE_POLICY, "frame-ancestors 'none'"].join('; ');

/** The headers every served report file carries (HTML, CSV and JSON alike). */
export const REPORT_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': REPORT_CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
};

const escapeHtml = (text: string): string =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );

// ---------------------------------------------------------------------------------------------
// Numbers: from exact decimals, grouped by thousands, never through the locale.

function grouped(value: Decimal, decimals: number): string {
  const fixed = value.toFixed(decimals);
  const negative = fixed.startsWith('-');
  const [whole = '0', fraction] = (negative ? fixed.slice(1) : fixed).split('.');
  const digits = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${negative ? '−' : ''}${digits}${fraction === undefined ? '' : `.${fraction}`}`;
}

/** A count (tokens, characters): whole numbers as such, a fractional one to 2 decimals. */
const count = (value: Decimal): string => grouped(value, value.isInteger() ? 0 : 2);

/** Audio duration, in the units a reader expects: 42.5 s, 3 min 07 s, 12 h 04 min. */
function duration(seconds: Decimal): string {
  if (seconds.isZero()) return '0 s';
  if (seconds.lessThan('0.05')) return '< 0.1 s';
  if (seconds.lessThan('59.95')) return `${grouped(seconds, 1)} s`;
  const whole = seconds.toDecimalPlaces(0).toNumber();
  const [h, m, s] = [Math.floor(whole / 3600), Math.floor((whole % 3600) / 60), whole % 60];
  const two = (n: number): string => String(n).padStart(2, '0');
  return h > 0 ? `${grouped(money(h), 0)} h ${two(m)} min` : `${m} min ${two(s)} s`;
}

// ---------------------------------------------------------------------------------------------
// Dates: in words, in UTC, with inclusive days (a period's end is exclusive).

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];
const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

const monthOf = (d: Date): string => MONTHS[d.getUTCMonth()] as string;
const longDate = (d: Date): string => `${d.getUTCDate()} ${monthOf(d)} ${d.getUTCFullYear()}`;
const shortDate = (d: Date): string => `${d.getUTCDate()} ${monthOf(d).slice(0, 3)} ${d.getUTCFullYear()}`;
const weekday = (d: Date): string => WEEKDAYS[d.getUTCDay()] as string;

function instant(iso: string): Date | undefined {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : new Date(t);
}

function dateTime(d: Date): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  const seconds = d.getUTCSeconds() === 0 ? '' : `:${two(d.getUTCSeconds())}`;
  return `${shortDate(d)} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}${seconds} UTC`;
}

/** First to last day, inclusive: "1–31 December 2026", "28 February – 2 March 2026". */
function dayRange(first: Date, last: Date): string {
  if (first.getTime() === last.getTime()) return longDate(first);
  const sameYear = first.getUTCFullYear() === last.getUTCFullYear();
  if (sameYear && first.getUTCMonth() === last.getUTCMonth())
    return `${first.getUTCDate()}–${longDate(last)}`;
  if (sameYear) return `${first.getUTCDate()} ${monthOf(first)} – ${longDate(last)}`;
  return `${longDate(first)} – ${longDate(last)}`;
}

interface PeriodText {
  /** "December 2026", "Wednesday 2 December 2026". */
  name: string;
  /** "1–31 December 2026 (UTC)", "2 December 2026, 00:00–24:00 UTC" */
  span: string;
  /** "Data through 2 Dec 2026 14:30 UTC (month to date)" */
  status: string;
}

function periodText(report: ChargebackReport): PeriodText {
  const { period } = report;
  const start = instant(period.start);
  const end = instant(period.end);
  const through = instant(report.dataThrough);
  if (!start || !end) return { name: period.id, span: period.id, status: '' };
  const last = new Date(end.getTime() - DAY_MS);
  const monthly = period.kind === 'monthly';
  const name = monthly
    ? `${monthOf(start)} ${start.getUTCFullYear()}`
    : `${weekday(start)} ${longDate(start)}`;
  const span = monthly ? `${dayRange(start, last)} (UTC)` : `${longDate(start)}, 00:00–24:00 UTC`;
  let status: string;
  if (!through) status = `Data through ${report.dataThrough}`;
  else if (through.getTime() >= end.getTime())
    status = `Complete: all usage to the end of ${longDate(last)} (UTC) is included`;
  else if (through.getTime() <= start.getTime()) status = 'No data for this period yet';
  else status = `Data through ${dateTime(through)} (${monthly ? 'month' : 'day'} to date)`;
  return { name, span, status };
}

// ---------------------------------------------------------------------------------------------
// Figures from the report's lines.

const TOKEN_METERS = ['input-tokens', 'cached-input-tokens', 'output-tokens'] as const;

interface Usage {
  requests: number;
  quantity: Record<Meter, Decimal>;
  cost: Decimal;
}

const noUsage = (): Usage => ({
  requests: 0,
  quantity: {
    'input-tokens': money(0),
    'cached-input-tokens': money(0),
    'output-tokens': money(0),
    'audio-seconds': money(0),
    'tts-characters': money(0),
  },
  cost: money(0),
});

function usageBy(lines: readonly ReportLine[], key: (l: ReportLine) => string): Map<string, Usage> {
  const out = new Map<string, Usage>();
  for (const line of lines) {
    if (line.category !== 'usage') continue;
    const k = key(line);
    const usage = out.get(k) ?? noUsage();
    // Each request counts once: on its call's primary meter line (the other lines count it again).
    if (line.api !== undefined && line.meter === primaryMeter(line.api)) usage.requests += line.requests ?? 0;
    if (line.meter !== undefined && line.meter in usage.quantity) {
      usage.quantity[line.meter] = usage.quantity[line.meter].plus(money(line.quantity ?? 0));
    }
    usage.cost = usage.cost.plus(money(line.cost));
    out.set(k, usage);
  }
  return out;
}

function totalUsage(all: Iterable<Usage>): Usage {
  const total = noUsage();
  for (const u of all) {
    total.requests += u.requests;
    for (const meter of Object.keys(total.quantity) as Meter[]) {
      total.quantity[meter] = total.quantity[meter].plus(u.quantity[meter]);
    }
    total.cost = total.cost.plus(u.cost);
  }
  return total;
}

/** The rule text of a shared line: its description is `<name> (<rule>)`. */
function ruleOf(line: ReportLine): string {
  const prefix = `${line.sharedCostName ?? ''} (`;
  if (line.sharedCostName && line.description.startsWith(prefix) && line.description.endsWith(')')) {
    return line.description.slice(prefix.length, -1);
  }
  return line.description === line.sharedCostName ? '' : line.description;
}

interface SharedColumn {
  key: string;
  name: string;
  rule: string;
  total: Decimal;
  byDepartment: Map<string, Decimal>;
}

function sharedColumns(lines: readonly ReportLine[]): SharedColumn[] {
  const columns = new Map<string, SharedColumn>();
  for (const line of lines) {
    if (line.category !== 'shared') continue;
    const name = line.sharedCostName ?? line.sharedCostId ?? line.description;
    const rule = ruleOf(line);
    const key = `${line.sharedCostId ?? name}\u0000${rule}`;
    const column: SharedColumn = columns.get(key) ?? {
      key,
      name,
      rule,
      total: money(0),
      byDepartment: new Map<string, Decimal>(),
    };
    column.total = column.total.plus(money(line.cost));
    column.byDepartment.set(
      line.department,
      (column.byDepartment.get(line.department) ?? money(0)).plus(money(line.cost)),
    );
    columns.set(key, column);
  }
  return [...columns.values()].sort((a, b) =>
    a.name === b.name ? (a.key < b.key ? -1 : 1) : a.name < b.name ? -1 : 1,
  );
}

/** Largest total first; equal totals by name, then id. */
function sortedDepartments(departments: readonly DepartmentTotal[]): DepartmentTotal[] {
  return [...departments].sort((a, b) => {
    const byTotal = money(b.total).comparedTo(money(a.total));
    if (byTotal !== 0) return byTotal;
    if (a.name !== b.name) return a.name < b.name ? -1 : 1;
    return a.department < b.department ? -1 : a.department > b.department ? 1 : 0;
  });
}

// ---------------------------------------------------------------------------------------------
// Charts: inline SVG, sized in pixels, every bar labelled with its value.

const CATEGORY_LABELS: Record<ReportLineCategory, string> = {
  usage: 'Usage',
  shared: 'Shared costs',
  markup: 'Markup',
};
const CATEGORIES = Object.keys(CATEGORY_LABELS) as ReportLineCategory[];

const legend = (categories: readonly ReportLineCategory[]): string =>
  `<p class="legend">${categories.map((c) => `<span><i class="sw ${c}"></i>${CATEGORY_LABELS[c]}</span>`).join('')}</p>`;

/** Cut a label to what fits beside a bar; the whole text stays in the SVG title. */
function fit(text: string, max: number): string {
  const chars = [...text];
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : text;
}

interface Bar {
  label: string;
  parts: Array<{ category: ReportLineCategory; value: Decimal }>;
  text: string;
}

function barChart(
  id: string,
  title: string,
  bars: readonly Bar[],
  note: string,
  categories: readonly ReportLineCategory[] = [],
): string {
  const width = 1040;
  const labelWidth = 250;
  const valueWidth = 130;
  const rowHeight = 28;
  const top = 6;
  const totals = bars.map((b) => sum(b.parts.map((p) => p.value)).toNumber());
  const max = Math.max(0, ...totals);
  const scale = max > 0 ? (width - labelWidth - valueWidth) / max : 0;
  const height = top + bars.length * rowHeight + 8;
  const rows = bars
    .map((bar, i) => {
      const y = top + i * rowHeight;
      let x = labelWidth;
      const rects = bar.parts
        .filter((p) => p.value.greaterThan(0))
        .map((p) => {
          const w = Math.max(1, p.value.toNumber() * scale);
          const rect = `<rect class="${p.category}" x="${x.toFixed(1)}" y="${y + 5}" width="${w.toFixed(1)}" height="18"/>`;
          x += w;
          return rect;
        })
        .join('');
      const label = `<text class="label" x="${labelWidth - 10}" y="${y + 19}" text-anchor="end">${escapeHtml(fit(bar.label, 34))}<title>${escapeHtml(bar.label)}</title></text>`;
      const value = `<text class="value" x="${(x + 6).toFixed(1)}" y="${y + 19}">${escapeHtml(bar.text)}</text>`;
      return `<g>${label}${rects}${value}</g>`;
    })
    .join('');
  const axis = `<line class="axis" x1="${labelWidth}" y1="${top}" x2="${labelWidth}" y2="${height - 4}"/>`;
  return `<figure id="${id}"><figcaption>${escapeHtml(title)}</figcaption>${
    categories.length > 1 ? legend(categories) : ''
  }${
    max > 0 ? '' : `<p class="empty">${escapeHtml(note)}</p>`
  }<svg role="img" aria-label="${escapeHtml(title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${axis}${rows}</svg></figure>`;
}

/** A round axis maximum and step for values up to `max` (1, 2, 2.5 or 5 × a power of ten). */
function axisScale(max: number): { top: number; step: number } {
  if (!(max > 0)) return { top: 1, step: 0.25 };
  const rough = max / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * power >= rough) ?? 10) * power;
  return { top: Math.ceil(max / step - 1e-9) * step, step };
}

/**
 * Usage cost per day of the period, as columns on a full-period axis (days without data yet in
 * grey). Shared costs and markup are charged for the period as a whole, so they are not per day.
 */
function dayChart(report: ChargebackReport): string {
  const start = Date.parse(report.period.start);
  const end = Date.parse(report.period.end);
  const through = Date.parse(report.dataThrough);
  const days: number[] = [];
  for (let t = start; t < end; t += DAY_MS) days.push(t);
  const perDay = new Map(days.map((t) => [t, money(0)]));
  for (const line of report.lines) {
    if (line.category !== 'usage') continue;
    const day = Date.parse(`${line.chargePeriodStart.slice(0, 10)}T00:00:00.000Z`);
    const cost = perDay.get(day);
    if (cost) perDay.set(day, cost.plus(money(line.cost)));
  }
  const max = Math.max(0, ...[...perDay.values()].map((v) => v.toNumber()));
  const { top: axisTop, step } = axisScale(max);
  const decimals = step < 1 ? 2 : 0;

  const width = 1040;
  const height = 300;
  const [left, right, plotTop, bottom] = [64, 12, 64, 44];
  const plotHeight = height - plotTop - bottom;
  const baseline = height - bottom;
  const middle = left + (width - left - right) / 2;
  const slot = (width - left - right) / Math.max(days.length, 1);
  const barWidth = Math.max(2, Math.min(28, slot * 0.7));
  const y = (v: number): number => baseline - (v / axisTop) * plotHeight;

  const grid: string[] = [];
  for (let v = 0; v <= axisTop + step / 2; v += step) {
    const at = y(v).toFixed(1);
    grid.push(
      `<line class="${v === 0 ? 'axis' : 'grid'}" x1="${left}" y1="${at}" x2="${width - right}" y2="${at}"/><text class="tick" x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${grouped(money(v), decimals)}</text>`,
    );
  }
  const columns = days
    .map((t, i) => {
      const cx = left + slot * (i + 0.5);
      const cost = perDay.get(t) ?? money(0);
      const date = new Date(t);
      const tip = `<title>${escapeHtml(`${weekday(date)} ${longDate(date)}: ${report.currency} ${grouped(cost, 2)}`)}</title>`;
      const future = t >= through ? ' future' : '';
      const label = `<text class="tick${future}" x="${cx.toFixed(1)}" y="${baseline + 15}" text-anchor="middle">${date.getUTCDate()}</text>`;
      if (!cost.greaterThan(0)) return `<g>${tip}${label}</g>`;
      const h = Math.max(1, baseline - y(cost.toNumber()));
      const rect = `<rect class="usage" x="${(cx - barWidth / 2).toFixed(1)}" y="${(baseline - h).toFixed(1)}" width="${barWidth.toFixed(1)}" height="${h.toFixed(1)}"/>`;
      const value = `<text class="value" transform="translate(${(cx + 3.5).toFixed(1)} ${(baseline - h - 5).toFixed(1)}) rotate(-90)">${grouped(cost, 2)}</text>`;
      return `<g>${tip}${rect}${value}${label}</g>`;
    })
    .join('');
  const first = new Date(start);
  const axisTitles = `<text class="tick" x="${left - 6}" y="${plotTop - 14}" text-anchor="end">${escapeHtml(report.currency)}</text><text class="tick" x="${middle.toFixed(1)}" y="${height - 8}" text-anchor="middle">Day of ${escapeHtml(`${monthOf(first)} ${first.getUTCFullYear()}`)} (UTC)</text>`;
  const hasUsage = report.lines.some((l) => l.category === 'usage');
  const empty =
    max > 0
      ? ''
      : `<text class="empty" x="${middle.toFixed(1)}" y="${(plotTop + plotHeight / 2).toFixed(1)}" text-anchor="middle">${
          hasUsage ? 'Usage in this period is worth less than a cent a day' : 'No usage in this period'
        }</text>`;
  const notes: string[] = [];
  if (report.lines.some((l) => l.category !== 'usage' && !money(l.cost).isZero())) {
    notes.push('Shared costs and markup are charged for the period as a whole, not per day.');
  }
  if (through < end) notes.push('Days in grey have no data yet.');
  const title = 'Usage cost per day';
  return `<figure id="chart-days"><figcaption>${title}</figcaption><svg role="img" aria-label="${title}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${axisTitles}${grid.join('')}${columns}${empty}</svg>${
    notes.length > 0 ? `<p class="note">${escapeHtml(notes.join(' '))}</p>` : ''
  }</figure>`;
}

// ---------------------------------------------------------------------------------------------
// The page.

const STYLE = `
:root{color-scheme:light}
*{box-sizing:border-box}
body{font-family:"Segoe UI",system-ui,-apple-system,Roboto,"Helvetica Neue",Arial,"Liberation Sans",sans-serif;margin:0;color:#1f2933;background:#f4f6f8;font-size:14px;line-height:1.45}
main{max-width:1120px;margin:0 auto;padding:28px 36px 40px;background:#fff;min-height:100vh}
header{border-bottom:3px solid #1f4e79;padding-bottom:14px;margin-bottom:20px}
.kicker{margin:0;color:#52606d;font-size:13px;text-transform:uppercase;letter-spacing:.06em}
h1{margin:4px 0 2px;font-size:28px;color:#102a43}
h2{font-size:18px;margin:32px 0 6px;color:#102a43}
.period{margin:0;font-size:15px}
.status{margin:4px 0 0;color:#52606d}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:0 0 8px}
.card{flex:1 1 150px;border:1px solid #d9e2ec;border-radius:6px;padding:10px 14px;background:#fafbfc}
.card.main{flex:1.6 1 220px;background:#1f4e79;border-color:#1f4e79;color:#fff}
.card span{display:block;font-size:12px;text-transform:uppercase;letter-spacing:.04em;opacity:.8}
.card b{display:block;font-size:20px;font-variant-numeric:tabular-nums;white-space:nowrap}
.card.main b{font-size:28px}
.card small{display:block;color:inherit;opacity:.75}
p.intro{margin:0 0 10px;color:#52606d}
.table{overflow-x:auto}
table{border-collapse:collapse;width:100%;margin:6px 0 4px;font-size:13px}
th,td{padding:6px 8px;border-bottom:1px solid #e4e7eb;text-align:left;vertical-align:top}
thead th{border-bottom:2px solid #9aa5b1;font-size:11px;text-transform:uppercase;letter-spacing:.02em;color:#52606d;vertical-align:bottom}
thead th.n{white-space:normal;overflow-wrap:break-word;max-width:200px}
thead th small{display:block;text-transform:none;letter-spacing:0;font-weight:400}
tfoot th,tfoot td{border-top:2px solid #1f2933;border-bottom:none;font-weight:700}
td.name{min-width:190px;max-width:320px;overflow-wrap:break-word}
td.name small{display:block;color:#7b8794}
.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.zero{color:#9aa5b1}
.total{font-weight:700}
figure{margin:18px 0 8px}
figcaption{font-weight:600;margin-bottom:6px;color:#102a43}
svg{display:block;max-width:100%;height:auto;font-family:inherit;font-size:12px}
svg .label{fill:#1f2933}
svg .value{fill:#1f2933;font-size:11px;font-variant-numeric:tabular-nums}
svg .tick{fill:#52606d;font-size:11px}
svg .tick.future{fill:#c5ccd3}
svg .axis{stroke:#52606d;stroke-width:1}
svg .grid{stroke:#e4e7eb;stroke-width:1}
svg .empty{fill:#52606d;font-size:14px;font-style:italic}
.usage{fill:#1f6fb5;background:#1f6fb5}
.shared{fill:#7fb2e5;background:#7fb2e5}
.markup{fill:#e3a33b;background:#e3a33b}
.legend{margin:0 0 4px;font-size:12px;color:#52606d}
.legend span{margin-right:16px;white-space:nowrap}
.sw{display:inline-block;width:10px;height:10px;margin-right:5px;border-radius:2px}
p.empty{margin:4px 0;padding:10px 14px;background:#f4f6f8;border-left:3px solid #9aa5b1;color:#3e4c59;font-style:italic}
.note{color:#52606d;font-size:12px;margin:4px 0}
.warning{padding:8px 12px;border-left:3px solid #d64545;background:#fff5f5}
footer{margin-top:32px;border-top:1px solid #d9e2ec;padding-top:10px;color:#52606d;font-size:12px}
footer ul{margin:4px 0;padding-left:18px}
@media print{body{background:#fff}main{padding:0;max-width:none}.card.main{color:#000;background:#fff}figure,table{break-inside:avoid}}
`
  .trim()
  .replace(/\n/g, '');

/** A self-contained page (no scripts, no external resources): totals, shares, usage, and charts as inline SVG. */
export function renderHtml(report: ChargebackReport): string {
  const c = report.currency;
  const cur = escapeHtml(c);
  const amount = (v: Decimal): string => `${c} ${grouped(v, 2)}`;
  const cell = (v: Decimal, extra = ''): string =>
    `<td class="n${v.isZero() ? ' zero' : ''}${extra}">${grouped(v, 2)}</td>`;
  const qty = (v: Decimal, text: string): string => `<td class="n${v.isZero() ? ' zero' : ''}">${text}</td>`;
  const when = periodText(report);
  const kindName = report.period.kind === 'monthly' ? 'Monthly' : 'Daily';
  const departments = sortedDepartments(report.departments);
  const nameOf = new Map(report.departments.map((d) => [d.department, d.name]));
  const deptCell = (d: Pick<DepartmentTotal, 'department' | 'name' | 'costCenter'>): string => {
    // The id (as in the CSV and JSON files) unless the name is just the id, and the cost center.
    const details = [d.name.toLowerCase() === d.department ? '' : d.department, d.costCenter ?? '']
      .filter((s) => s !== '')
      .map(escapeHtml)
      .join(' · ');
    return `<td class="name">${escapeHtml(d.name)}${details ? `<small>${details}</small>` : ''}</td>`;
  };

  // Headline figures, summed from the departments (the totals row) and checked against the report.
  const column = (k: 'usage' | 'shared' | 'markup' | 'total'): Decimal =>
    sum(report.departments.map((d) => money(d[k])));
  const totals = {
    usage: column('usage'),
    shared: column('shared'),
    markup: column('markup'),
    total: column('total'),
  };
  const reportTotal = money(report.total);
  const share = (v: string): string =>
    reportTotal.isZero() ? '–' : `${money(v).div(reportTotal).times(100).toFixed(1)}%`;
  const markupRates = [
    ...new Set(report.lines.filter((l) => l.category === 'markup').map((l) => l.description)),
  ];

  const usageLines = report.lines.filter((l) => l.category === 'usage');
  const byDepartment = usageBy(usageLines, (l) => l.department);
  const byModel = usageBy(usageLines, (l) => l.model ?? '(unknown model)');
  const allUsage = totalUsage(byDepartment.values());
  const tokens = sum(TOKEN_METERS.map((m) => allUsage.quantity[m]));

  const cards = [
    `<div class="card main" id="headline"><span>Total to charge</span><b>${escapeHtml(amount(reportTotal))}</b><small>${escapeHtml(when.name)}</small></div>`,
    `<div class="card"><span>Usage</span><b>${escapeHtml(amount(totals.usage))}</b><small>${count(tokens)} tokens</small></div>`,
    `<div class="card"><span>Shared costs</span><b>${escapeHtml(amount(totals.shared))}</b><small>platform costs, allocated</small></div>`,
    ...(markupRates.length > 0 || !totals.markup.isZero()
      ? [
          `<div class="card"><span>Markup</span><b>${escapeHtml(amount(totals.markup))}</b><small>${escapeHtml(markupRates.join(', ') || 'markup')}</small></div>`,
        ]
      : []),
    `<div class="card"><span>Requests</span><b>${grouped(money(allUsage.requests), 0)}</b><small>audio ${escapeHtml(duration(allUsage.quantity['audio-seconds']))} · ${count(allUsage.quantity['tts-characters'])} characters</small></div>`,
  ].join('');

  const departmentRows = departments
    .map(
      (d) =>
        `<tr>${deptCell(d)}${cell(money(d.usage))}${cell(money(d.shared))}${cell(money(d.markup))}${cell(money(d.total), ' total')}<td class="n">${share(d.total)}</td></tr>`,
    )
    .join('');
  const unbalanced = totals.total.equals(reportTotal)
    ? ''
    : `<p class="warning">The departments add up to ${escapeHtml(amount(totals.total))}, the report's lines to ${escapeHtml(amount(reportTotal))}.</p>`;
  const departmentTable = `<div class="table"><table id="departments"><thead><tr><th>Department</th><th class="n">Usage</th><th class="n">Shared costs</th><th class="n">Markup</th><th class="n">Total (${cur})</th><th class="n">Share</th></tr></thead><tbody>${departmentRows}</tbody><tfoot><tr><th scope="row">Total (${departments.length} department${departments.length === 1 ? '' : 's'})</th>${cell(totals.usage)}${cell(totals.shared)}${cell(totals.markup)}${cell(totals.total, ' total')}<td class="n">${reportTotal.isZero() ? '–' : '100.0%'}</td></tr></tfoot></table></div>${unbalanced}`;

  const departmentChart = barChart(
    'chart-departments',
    'Cost per department',
    departments.map((d) => ({
      label: d.name,
      parts: [
        { category: 'usage' as const, value: money(d.usage) },
        { category: 'shared' as const, value: money(d.shared) },
        { category: 'markup' as const, value: money(d.markup) },
      ],
      text: amount(money(d.total)),
    })),
    'No charges in this period: every department is at 0.00.',
    CATEGORIES.filter((category) => !totals[category].isZero()),
  );

  // Shared costs: one column per cost and rule, one row per department that has a share.
  const shared = sharedColumns(report.lines);
  const sharedDepartments = departments.filter((d) => shared.some((s) => s.byDepartment.has(d.department)));
  const unknown = [...new Set(shared.flatMap((s) => [...s.byDepartment.keys()]))]
    .filter((d) => !nameOf.has(d))
    .sort()
    .map((d) => ({ department: d, name: d }));
  const sharedTable =
    shared.length === 0
      ? '<p class="empty">No shared costs in this period.</p>'
      : `<div class="table"><table id="shared-costs"><thead><tr><th>Department</th>${shared
          .map(
            (s) =>
              `<th class="n">${escapeHtml(s.name)}${s.rule ? `<small>${escapeHtml(s.rule)}</small>` : ''}</th>`,
          )
          .join('')}<th class="n">Total shared (${cur})</th></tr></thead><tbody>${[
          ...sharedDepartments,
          ...unknown,
        ]
          .map((d) => {
            const values = shared.map((s) => s.byDepartment.get(d.department) ?? money(0));
            return `<tr>${deptCell(d)}${values.map((v) => cell(v)).join('')}${cell(sum(values), ' total')}</tr>`;
          })
          .join('')}</tbody><tfoot><tr><th scope="row">Total</th>${shared
          .map((s) => cell(s.total))
          .join('')}${cell(sum(shared.map((s) => s.total)), ' total')}</tr></tfoot></table></div>`;

  // Usage in its own units, so that usage worth less than a cent still shows.
  const usageHead = (first: string): string =>
    `<thead><tr><th>${first}</th><th class="n">Requests</th><th class="n">Input tokens</th><th class="n">Cached input tokens</th><th class="n">Output tokens</th><th class="n">Audio</th><th class="n">Speech characters</th><th class="n">Cost (${cur})</th></tr></thead>`;
  const usageCells = (u: Usage): string =>
    `${qty(money(u.requests), grouped(money(u.requests), 0))}${TOKEN_METERS.map((m) => qty(u.quantity[m], count(u.quantity[m]))).join('')}${qty(u.quantity['audio-seconds'], escapeHtml(duration(u.quantity['audio-seconds'])))}${qty(u.quantity['tts-characters'], count(u.quantity['tts-characters']))}${cell(u.cost, ' total')}`;
  const usageFoot = `<tfoot><tr><th scope="row">Total</th>${usageCells(allUsage)}</tr></tfoot>`;
  const usageDepartments = [
    ...departments.filter((d) => byDepartment.has(d.department)),
    ...[...byDepartment.keys()]
      .filter((d) => !nameOf.has(d))
      .sort()
      .map((d) => ({ department: d, name: d })),
  ];
  const usageByDepartment =
    usageLines.length === 0
      ? '<p class="empty">No metered usage in this period: no tokens, audio or speech characters.</p>'
      : `<div class="table"><table id="usage-by-department">${usageHead('Department')}<tbody>${usageDepartments
          .map((d) => `<tr>${deptCell(d)}${usageCells(byDepartment.get(d.department) ?? noUsage())}</tr>`)
          .join('')}</tbody>${usageFoot}</table></div>`;
  const models = [...byModel.entries()].sort(
    ([a, x], [b, y]) => y.cost.comparedTo(x.cost) || (a < b ? -1 : 1),
  );
  const usageByModel =
    usageLines.length === 0
      ? ''
      : `<div class="table"><table id="usage-by-model">${usageHead('Model')}<tbody>${models
          .map(([model, u]) => `<tr><td class="name">${escapeHtml(model)}</td>${usageCells(u)}</tr>`)
          .join('')}</tbody>${usageFoot}</table></div>`;
  const modelChart =
    usageLines.length === 0
      ? ''
      : barChart(
          'chart-models',
          'Usage cost per model',
          models.map(([model, u]) => ({
            label: model,
            parts: [{ category: 'usage' as const, value: u.cost }],
            text: amount(u.cost),
          })),
          'All usage in this period is worth less than a cent: see the quantities above.',
        );

  const warnings: string[] = [];
  const unpriced = usageLines.filter((l) => l.unpriced);
  if (unpriced.length > 0) {
    const models = [...new Set(unpriced.map((l) => l.model ?? '(unknown model)'))].sort();
    warnings.push(
      `${unpriced.length} usage line${unpriced.length > 1 ? 's have' : ' has'} no price and ${unpriced.length > 1 ? 'are' : 'is'} charged at 0.00 (${models.join(', ')}).`,
    );
  }
  const estimated = usageLines.reduce((n, l) => n + (l.estimatedRequests ?? 0), 0);
  if (estimated > 0) {
    warnings.push(
      `${grouped(money(estimated), 0)} request${estimated > 1 ? 's were' : ' was'} interrupted; their tokens are estimated.`,
    );
  }
  const unassigned = report.departments.find((d) => d.department === UNASSIGNED_DEPARTMENT);
  if (unassigned && !money(unassigned.total).isZero()) {
    warnings.push(
      `${amount(money(unassigned.total))} is charged to Unassigned: usage that could not be attributed to a department.`,
    );
  }

  const title = `AI chargeback: ${when.name}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${PAGE_POLICY.join('; ')}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<header>
<p class="kicker">AI usage chargeback · ${kindName} report</p>
<h1>${escapeHtml(when.name)}</h1>
<p class="period">Period: ${escapeHtml(when.span)}</p>
<p class="status">${escapeHtml(when.status)} · amounts in ${cur}</p>
</header>
<section class="cards">${cards}</section>
${warnings.map((w) => `<p class="warning">${escapeHtml(w)}</p>`).join('\n')}
<h2>Charges by department</h2>
<p class="intro">What each department is charged: its own usage, its share of the shared platform costs, and markup. Largest first.</p>
${departmentTable}
${departmentChart}
${report.period.kind === 'monthly' ? `<h2>Trend</h2>\n${dayChart(report)}` : ''}
<h2>Shared costs by department</h2>
<p class="intro">Fixed platform costs accrue per day and are split between departments by each cost's rule.</p>
${sharedTable}
<h2>Usage by department</h2>
<p class="intro">What was consumed, in its own units; usage worth less than a cent still shows here.</p>
${usageByDepartment}
<h2>Usage by model</h2>
${usageByModel || '<p class="empty">No metered usage in this period.</p>'}
${modelChart}
<footer>
<ul>
<li>Amounts are in ${cur}, rounded to the cent; the lines are rounded so that they add up exactly to the total.</li>
<li>Usage is priced with the price in effect when it was consumed. Shared costs accrue at their monthly amount ÷ the days of the month, for each day with usage, and are split by usage cost, by tokens, evenly or by fixed percentages.</li>
<li>All dates and times are UTC. Report ${escapeHtml(report.period.id)}; the line-level detail is in the CSV and JSON files of the same report.</li>
</ul>
</footer>
</main>
</body>
</html>
`;
}
