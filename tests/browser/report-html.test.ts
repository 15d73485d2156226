import type { Browser, Locator, Page } from 'playwright-core';
import type { ChargebackReport, Meter } from '../../shared/chargeback/model';
import { money, sum } from '../../shared/chargeback/money';
import { renderHtml } from '../../shared/chargeback/render-html';
import type { PageServer } from './chromium';
import { launchChromium, servePages } from './chromium';
import type { SampleName } from './sample-reports';
import { HOSTILE_DEPARTMENT, HOSTILE_NAME, sampleReports } from './sample-reports';

/**
 * The HTML report in a real browser (Debian's Chromium, headless), served as the finance API
 * serves it: inline, with its Content-Security-Policy, so that a page needing anything beyond its
 * own inline styles shows up as a console error. Every expected figure comes from the report.
 */

jest.setTimeout(120_000);

const reports = sampleReports();
const NAMES = Object.keys(reports) as SampleName[];
// A page that breaks the policy: the check that the harness sees what it must.
const VIOLATION =
  '<!doctype html><title>x</title><p>x</p><img alt="" src="http://127.0.0.1:9/x.png"><script>1</script>';

let browser: Browser | undefined;
let server: PageServer | undefined;

beforeAll(async () => {
  server = await servePages({
    ...Object.fromEntries(NAMES.map((name) => [name, renderHtml(reports[name])])),
    violation: VIOLATION,
  });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

interface Opened {
  page: Page;
  /** Console errors and warnings, page errors and failed requests. */
  problems: string[];
  /** Every URL the page requested. */
  requests: string[];
}

/** Each page is loaded once and read by every test of its report (the browser closes them all). */
const opened = new Map<string, Promise<Opened>>();
function open(name: string): Promise<Opened> {
  const page = opened.get(name) ?? load(name);
  opened.set(name, page);
  return page;
}

async function load(name: string): Promise<Opened> {
  if (!browser || !server) throw new Error('Chromium or the page server did not start');
  const url = server.urls[name] as string;
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') {
      problems.push(`console ${message.type()}: ${message.text()}`);
    }
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) =>
    problems.push(`request failed: ${request.url()} (${request.failure()?.errorText ?? '?'})`),
  );
  page.on('request', (request) => requests.push(request.url()));
  const response = await page.goto(url, { waitUntil: 'load' });
  expect(response?.status()).toBe(200);
  return { page, problems, requests };
}

/** "USD 1,234.56", "1,234.56", "−0.01" → "1234.56" (the report's own notation). */
const figure = (text: string): string => money(text.replace(/[^\d.−-]/g, '').replace('−', '-')).toFixed(2);
/** The cells of a table row as shown (innerText: styles applied), or as written (textContent). */
const cells = async (row: Locator): Promise<string[]> =>
  (await row.locator('th, td').allInnerTexts()).map((t) => t.trim());
const texts = async (row: Locator): Promise<string[]> =>
  (await row.locator('th, td').allTextContents()).map((t) => t.trim());
/** Thousands separators in the whole part: 1234567 → "1,234,567"; money to cents: "1,234.50". */
function grouped(value: string, decimals = money(value).isInteger() ? 0 : 2): string {
  const [whole = '', fraction] = money(value).toFixed(decimals).split('.');
  return `${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}${fraction === undefined ? '' : `.${fraction}`}`;
}

async function boxOf(locator: Locator): Promise<{ width: number; height: number }> {
  const box = await locator.boundingBox();
  return { width: box?.width ?? 0, height: box?.height ?? 0 };
}

/** Sum of the usage lines' quantities of one meter, by a key. */
function quantities(
  report: ChargebackReport,
  meter: Meter,
  key: 'department' | 'model',
): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of report.lines) {
    if (line.category !== 'usage' || line.meter !== meter) continue;
    const k = line[key] ?? '';
    out.set(
      k,
      money(out.get(k) ?? 0)
        .plus(money(line.quantity ?? 0))
        .toFixed(),
    );
  }
  return out;
}

describe('the harness', () => {
  it('sees a page that breaks the Content-Security-Policy: console errors, the blocked request', async () => {
    const { problems, requests } = await open('violation');
    expect(problems.some((p) => /^console error: .*Content Security Policy/i.test(p))).toBe(true);
    expect(problems.some((p) => /^request failed: .*:9\/x\.png/.test(p))).toBe(true);
    expect(requests).toContain('http://127.0.0.1:9/x.png');
  });
});

describe.each(NAMES)('the %s report', (name) => {
  const report = reports[name];

  it('loads with no console error, no page error, no failed request and nothing but itself', async () => {
    const { page, problems, requests } = await open(name);
    expect(problems).toEqual([]);
    expect(requests).toEqual([server?.urls[name]]);
    expect(await page.locator('script, img, iframe, object, embed, link, [onerror]').count()).toBe(0);
    // Nothing wider than the window, no raw ISO instant, no broken number.
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(1200);
    const overflowing = await page.evaluate<string[]>(
      "[...document.querySelectorAll('.table')].filter((e) => e.scrollWidth > e.clientWidth).map((e) => e.firstChild.id)",
    );
    expect(overflowing).toEqual([]);
    const text = await page.locator('body').innerText();
    expect(text).not.toMatch(/\d{4}-\d{2}-\d{2}T\d{2}|NaN|Infinity|undefined|\[object/);
  });

  it('renders every table and every chart with a size, and a visible note where a chart has nothing to show', async () => {
    const { page } = await open(name);
    const tables = await page.locator('table').all();
    expect(tables.length).toBeGreaterThan(0);
    for (const table of tables) {
      const box = await boxOf(table);
      expect(box.width).toBeGreaterThan(0);
      expect(box.height).toBeGreaterThan(0);
    }
    const figures = await page.locator('figure').all();
    expect(figures.length).toBeGreaterThan(0);
    for (const chart of figures) {
      const svg = chart.locator('svg');
      expect(await svg.count()).toBe(1);
      const box = await boxOf(svg);
      expect(box.width).toBeGreaterThan(100);
      expect(box.height).toBeGreaterThan(20);
      const bars = await chart.locator('rect').all();
      let drawn = 0;
      for (const bar of bars) {
        const { width, height } = await boxOf(bar);
        if (width > 0 && height > 0) drawn++;
      }
      if (drawn === 0) {
        const note = chart.locator('.empty');
        expect(await note.count()).toBeGreaterThan(0);
        await expect(note.first().isVisible()).resolves.toBe(true);
        expect((await note.first().textContent())?.trim()).toMatch(/^(No |.*less than a cent)/);
      }
    }
  });

  it('has a totals row equal to the report, the headline total and departments largest first', async () => {
    const { page } = await open(name);
    const [label, usage, shared, markup, total] = await cells(page.locator('#departments tfoot tr'));
    const column = (k: 'usage' | 'shared' | 'markup'): string =>
      sum(report.departments.map((d) => money(d[k]))).toFixed(2);
    expect(label).toMatch(new RegExp(`^Total \\(${report.departments.length} departments?\\)$`));
    expect([usage, shared, markup, total].map((t) => figure(t ?? ''))).toEqual([
      column('usage'),
      column('shared'),
      column('markup'),
      report.total,
    ]);
    const headline = await page.locator('#headline b').innerText();
    expect(headline).toBe(`${report.currency} ${grouped(report.total, 2)}`);

    const rows = await page.locator('#departments tbody tr').all();
    expect(rows).toHaveLength(report.departments.length);
    const totals: string[] = [];
    for (const row of rows) totals.push(figure((await cells(row))[4] ?? ''));
    expect([...totals].sort((a, b) => money(b).comparedTo(money(a)))).toEqual(totals);
    expect([...totals].sort()).toEqual(report.departments.map((d) => d.total).sort());
  });

  it("shows each department's shared costs by cost and rule, adding up to its shared total", async () => {
    const { page } = await open(name);
    const lines = report.lines.filter((l) => l.category === 'shared');
    if (lines.length === 0) {
      await expect(page.getByText('No shared costs in this period.').isVisible()).resolves.toBe(true);
      return;
    }
    const head = await texts(page.locator('#shared-costs thead tr'));
    const expected = new Map<string, string>();
    for (const line of lines) {
      const key = `${line.department}\u0000${line.sharedCostId}`;
      expected.set(
        key,
        money(expected.get(key) ?? 0)
          .plus(money(line.cost))
          .toFixed(2),
      );
    }
    const costs = [...new Set(lines.map((l) => l.sharedCostId ?? ''))];
    const columnOf = new Map(
      costs.map((id) => {
        const line = lines.find((l) => l.sharedCostId === id);
        const rule = line?.description.slice((line.sharedCostName ?? '').length + 2, -1) ?? '';
        const index = head.findIndex((h) => h === `${line?.sharedCostName}${rule}`);
        expect(index).toBeGreaterThan(0);
        return [id, index];
      }),
    );
    const nameOf = new Map(report.departments.map((d) => [d.department, d.name]));
    const rows = await page.locator('#shared-costs tbody tr').all();
    expect(rows).toHaveLength(new Set(lines.map((l) => l.department)).size);
    for (const row of rows) {
      const [who = '', ...values] = await cells(row);
      const department = [...new Set(lines.map((l) => l.department))].find((d) =>
        who.startsWith(nameOf.get(d) ?? d),
      );
      expect(department).toBeDefined();
      for (const [id, index] of columnOf) {
        expect(figure(values[index - 1] ?? '')).toBe(expected.get(`${department}\u0000${id}`) ?? '0.00');
      }
      const own = report.departments.find((d) => d.department === department);
      if (own) expect(figure(values[values.length - 1] ?? '')).toBe(own.shared);
    }
  });

  it('shows usage in tokens, audio and characters, so that usage worth less than a cent still shows', async () => {
    const { page } = await open(name);
    const usage = report.lines.filter((l) => l.category === 'usage');
    if (usage.length === 0) {
      await expect(
        page
          .getByText(/No metered usage in this period/)
          .first()
          .isVisible(),
      ).resolves.toBe(true);
      return;
    }
    const head = await cells(page.locator('#usage-by-model thead tr'));
    const input = head.indexOf('INPUT TOKENS');
    const cost = head.indexOf(`COST (${report.currency})`);
    expect(input).toBeGreaterThan(0);
    const byModel = quantities(report, 'input-tokens', 'model');
    for (const row of await page.locator('#usage-by-model tbody tr').all()) {
      const values = await cells(row);
      const model = values[0] ?? '';
      expect(values[input]).toBe(grouped(byModel.get(model) ?? '0'));
      if (byModel.has(model) && figure(values[cost] ?? '') === '0.00') {
        expect(values[input]).not.toBe('0'); // less than a cent, still visible as tokens
      }
    }
    const foot = await cells(page.locator('#usage-by-department tfoot tr'));
    const total = (meter: Meter): string =>
      sum([...quantities(report, meter, 'department').values()].map((q) => money(q))).toFixed();
    const all = (meter: Meter): string => grouped(total(meter));
    expect(foot[head.indexOf('INPUT TOKENS')]).toBe(all('input-tokens'));
    expect(foot[head.indexOf('OUTPUT TOKENS')]).toBe(all('output-tokens'));
    expect(foot[head.indexOf('SPEECH CHARACTERS')]).toBe(all('tts-characters'));
    const audio = foot[head.indexOf('AUDIO')] ?? '';
    if (money(total('audio-seconds')).isZero()) expect(audio).toBe('0 s');
    else expect(audio).toMatch(/^(\d[\d,]* h \d{2} min|\d+ min \d{2} s|[\d.]+ s|< 0\.1 s)$/);
    expect(figure(foot[cost] ?? '')).toBe(sum(usage.map((l) => money(l.cost))).toFixed(2));
  });

  it('shows a per-day trend only when the period has more than one day, with a column per day of usage', async () => {
    const { page } = await open(name);
    const trend = page.locator('#chart-days');
    if (report.period.kind === 'daily') {
      expect(await trend.count()).toBe(0);
      expect(await page.locator('svg[aria-label*="per day"]').count()).toBe(0);
      expect(await page.getByRole('heading', { name: 'Trend' }).count()).toBe(0);
      return;
    }
    expect(await trend.count()).toBe(1);
    const perDay = new Map<string, string>();
    for (const line of report.lines.filter((l) => l.category === 'usage')) {
      const day = line.chargePeriodStart.slice(0, 10);
      perDay.set(
        day,
        money(perDay.get(day) ?? 0)
          .plus(money(line.cost))
          .toFixed(2),
      );
    }
    const days = (Date.parse(report.period.end) - Date.parse(report.period.start)) / 86_400_000;
    const ticks = await trend.locator('text.tick').allTextContents();
    for (let d = 1; d <= days; d++) expect(ticks).toContain(String(d)); // an axis with every day
    const labels = await trend.locator('text.value').allTextContents();
    const nonZero = [...perDay.values()].filter((v) => v !== '0.00');
    expect(labels.map(figure).sort()).toEqual(nonZero.sort());
    if (nonZero.length === 0) {
      const note = trend.locator('text.empty');
      await expect(note.isVisible()).resolves.toBe(true);
      expect(await note.textContent()).toMatch(/^(No usage in this period|.*less than a cent)/);
    }
  });
});

describe('what each report says', () => {
  it('states the period and the data in words, in UTC', async () => {
    const expectations: Record<SampleName, RegExp[]> = {
      monthly: [
        /December 2026/,
        /1–31 December 2026 \(UTC\)/,
        /Data through 9 Dec 2026 14:30 UTC \(month to date\)/,
      ],
      daily: [
        /Wednesday 2 December 2026/,
        /00:00–24:00 UTC/,
        /Complete: all usage to the end of 2 December 2026/,
      ],
      'one-day-month': [/November 2026/, /1–30 November 2026 \(UTC\)/, /Data through 1 Nov 2026 23:45 UTC/],
      'shared-only': [/October 2026/, /1–31 October 2026 \(UTC\)/, /Complete/],
      'all-zero': [/Wednesday 14 October 2026/, /Data through 14 Oct 2026 08:15 UTC \(day to date\)/],
      hostile: [/December 2026/, /Data through 2 Dec 2026 18:00 UTC/],
    };
    for (const name of NAMES) {
      const { page } = await open(name);
      const header = await page.locator('header').innerText();
      for (const expected of expectations[name]) expect(header).toMatch(expected);
    }
  });

  it('a month with usage on one day: one labelled column on a full month axis', async () => {
    const { page } = await open('one-day-month');
    const trend = page.locator('#chart-days');
    expect(await trend.locator('text.value').count()).toBe(1);
    expect((await boxOf(trend.locator('rect').first())).height).toBeGreaterThan(50);
    expect(await trend.locator('line.grid').count()).toBeGreaterThanOrEqual(2); // a value axis
  });

  it('all zero: explicit notes, zero-width bars still labelled, no share of a zero total', async () => {
    const { page } = await open('all-zero');
    const report = reports['all-zero'];
    expect(report.total).toBe('0.00');
    await expect(page.getByText(/^No charges in this period/).isVisible()).resolves.toBe(true);
    const labels = await page.locator('#chart-departments text.value').allTextContents();
    expect(labels).toEqual(report.departments.map(() => `${report.currency} 0.00`));
    expect(await page.locator('#chart-departments rect').count()).toBe(0);
    expect(await page.locator('#chart-models').count()).toBe(0);
    expect(await page.locator('#departments tfoot td').last().innerText()).toBe('–');
  });

  it('usage worth less than a cent: charged shared costs only, the usage still shown in its units', async () => {
    const { page } = await open('shared-only');
    const report = reports['shared-only'];
    expect(sum(report.departments.map((d) => money(d.usage))).toFixed(2)).toBe('0.00');
    expect(money(report.total).isZero()).toBe(false);
    const tokens = quantities(report, 'input-tokens', 'department');
    expect(tokens.size).toBe(1);
    await expect(
      page
        .locator('#chart-days')
        .getByText(/less than a cent/)
        .isVisible(),
    ).resolves.toBe(true);
    await expect(
      page
        .locator('#chart-models')
        .getByText(/less than a cent/)
        .isVisible(),
    ).resolves.toBe(true);
    expect(await page.locator('#chart-models text.value').allTextContents()).toEqual([
      `${report.currency} 0.00`,
    ]);
    expect(await page.locator('#shared-costs tbody tr').count()).toBeGreaterThan(0);
    const [department, tokenCount] = [...tokens][0] ?? [];
    const row = page.locator('#usage-by-department tbody tr', {
      hasText: report.departments.find((d) => d.department === department)?.name ?? '?',
    });
    expect(await cells(row)).toContain(grouped(tokenCount ?? '?'));
  });

  it('hostile names are text, never markup', async () => {
    const { page } = await open('hostile');
    expect(await page.locator('h1').count()).toBe(1);
    expect(await page.locator('table').count()).toBe(4);
    expect(await page.locator('#departments').innerText()).toContain(HOSTILE_NAME);
    expect(await page.locator('#departments').innerText()).toContain(HOSTILE_DEPARTMENT);
    expect(await page.locator('#shared-costs thead').textContent()).toContain(`Redis </th></table><h1>"&'`);
    expect(await page.locator('#usage-by-model').innerText()).toContain('<i>&amp;</i>');
    expect(await page.locator('#chart-departments svg title').allTextContents()).toContain(HOSTILE_NAME);
  });

  it('the same report gives the same bytes', () => {
    for (const name of NAMES) {
      expect(renderHtml(structuredClone(reports[name]))).toBe(renderHtml(reports[name]));
    }
  });
});
