import { createHash, randomUUID } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import { BlobServiceClient } from '@azure/storage-blob';
import type { AzuriteServer } from '../../../local/services/azurite';
import { startAzurite } from '../../../local/services/azurite';
import { provisionBlobContainers } from '../../../local/services/provision';
import {
  BlobQuarantine,
  BlobReportStore,
  listReports,
  reportReadLink,
} from '../../../shared/adapters/blob-reports';
import { WindowAggregator } from '../../../shared/chargeback/aggregate';
import type { ChargebackConfig, ChargebackReport, PriceEntry } from '../../../shared/chargeback/model';
import { chargebackConfigSchema } from '../../../shared/chargeback/model';
import type { RenderedReportFile } from '../../../shared/chargeback/ports';
import { buildReport } from '../../../shared/chargeback/report';
import { reportFiles } from '../../../shared/chargeback/report-files';
import { reportPath } from '../../../shared/contracts/report-paths';
import { dayOf, monthOf, parsePeriod } from '../../../shared/contracts/report-period';
import { BLOB_CONTAINERS } from '../../../shared/contracts/storage';
import type { UsageEvent } from '../../../shared/contracts/usage-event';
import { WINDOW_MS, windowEnd, windowId, windowStart } from '../../../shared/contracts/window';
import { usageEvent as anEvent } from '../../fixtures/usage';

/** The report store, listing, read links and quarantine against Azurite. */

let azurite: AzuriteServer;
let service: BlobServiceClient;
let reports: ContainerClient;
let store: BlobReportStore;

beforeAll(async () => {
  azurite = await startAzurite();
  await provisionBlobContainers(azurite.connectionString);
  service = BlobServiceClient.fromConnectionString(azurite.connectionString);
  reports = service.getContainerClient(BLOB_CONTAINERS.reports);
  store = new BlobReportStore(reports);
}, 30_000);
afterAll(() => azurite?.stop());

const CONFIG: ChargebackConfig = chargebackConfigSchema.parse({
  departments: [
    { id: 'research', name: 'Research', costCenter: 'CC-100' },
    { id: 'finance', name: 'Finance' },
  ],
});

const PRICE: Omit<PriceEntry, 'model' | 'meter'> = {
  id: 'test-price',
  unitPrice: '2.50',
  currency: 'USD',
  effectiveFrom: '2020-01-01T00:00:00.000Z',
  source: 'test',
};

/** A month of its own for every test (from 2032-01 on): report paths are per period. */
let months = 0;
function freshMonth(): Date {
  const n = months++;
  return new Date(Date.UTC(2032 + Math.floor(n / 12), n % 12, 1));
}

function usageEvent(window: Date, department: string, promptTokens: number): UsageEvent {
  return anEvent({
    recordedAt: new Date(window.getTime() + 60_000).toISOString(),
    subscriptionId: `sub-${department}`,
    appId: `app-${department}`,
    department,
    promptTokens,
    completionTokens: 1000,
    latencyMs: 40,
  });
}

/**
 * The report of a period (month or day) from a window's usage, as the chargeback builds it: usage
 * is `[department, prompt tokens]` pairs in the window `day` days into `month`.
 */
function reportOf(
  periodId: string,
  month: Date,
  usage: ReadonlyArray<[string, number]>,
  day = 2,
): ChargebackReport {
  const window = windowStart(new Date(month.getTime() + day * 86_400_000 + 40 * WINDOW_MS));
  const aggregator = new WindowAggregator({ windowId: windowId(window), batch: 'b1' }, (model, meter) => ({
    ...PRICE,
    model,
    meter,
  }));
  for (const [department, tokens] of usage)
    aggregator.add(JSON.stringify(usageEvent(window, department, tokens)));
  return buildReport({
    period: parsePeriod(periodId),
    aggregates: aggregator.aggregates(),
    config: CONFIG,
    dataThrough: windowEnd(window).toISOString(),
  });
}

const sha256 = (content: string | Buffer): string => createHash('sha256').update(content).digest('hex');

async function download(path: string): Promise<Buffer> {
  return reports.getBlobClient(path).downloadToBuffer();
}

/** Each file's etag and last-modified time, by path. */
async function versions(
  files: readonly RenderedReportFile[],
): Promise<Map<string, { etag?: string; lastModified?: Date }>> {
  const found = await Promise.all(
    files.map(async (file) => {
      const { etag, lastModified } = await reports.getBlobClient(file.path).getProperties();
      return [file.path, { etag, lastModified }] as const;
    }),
  );
  return new Map(found);
}

describe('BlobReportStore.write()', () => {
  it('writes every report file with its content type, disposition and metadata', async () => {
    const month = freshMonth();
    const report = reportOf(monthOf(month), month, [
      ['research', 3_000_000],
      ['finance', 1_000_000],
    ]);
    const files = reportFiles(report);
    // The whole report in every format, and csv + json for each department (unassigned included).
    expect(files.filter((f) => f.department === undefined).map((f) => f.format)).toEqual([
      'csv',
      'json',
      'html',
    ]);
    const departments = report.departments.map((d) => d.department).sort();
    expect(departments).toEqual(['finance', 'research', 'unassigned']);
    for (const department of departments) {
      expect(files.filter((f) => f.department === department).map((f) => f.format)).toEqual(['csv', 'json']);
    }

    expect(await store.write(files)).toEqual(files.map((f) => f.path));
    for (const file of files) {
      expect(file.path).toBe(
        reportPath({
          kind: file.kind,
          period: file.period,
          department: file.department,
          format: file.format,
        }),
      );
      const body = await download(file.path);
      expect(body.toString('utf8')).toBe(file.content);
      const properties = await reports.getBlobClient(file.path).getProperties();
      expect(properties.contentType).toBe(file.contentType);
      expect(properties.contentType).toMatch(
        { csv: /^text\/csv/, json: /^application\/json/, html: /^text\/html/ }[file.format],
      );
      if (file.format === 'html') {
        // Shown inline in the browser: no attachment disposition.
        expect(properties.contentDisposition ?? 'inline').toMatch(/^inline/);
      } else {
        const disposition = properties.contentDisposition ?? '';
        expect(disposition).toMatch(/^attachment; filename="[^"/\\]+"$/);
        expect(disposition).toContain(`.${file.format}"`);
      }
      expect(properties.metadata).toEqual(file.metadata);
      expect(properties.metadata?.sha256).toBe(sha256(body));
      const total =
        file.department === undefined
          ? report.total
          : report.departments.find((d) => d.department === file.department)?.total;
      expect(properties.metadata?.total).toBe(total);
      expect(properties.metadata?.period).toBe(monthOf(month));
      expect(properties.metadata?.kind).toBe('monthly');
    }
    // Per-department totals differ, so the metadata really is the department's own.
    const research = files.find((f) => f.department === 'research' && f.format === 'csv');
    const finance = files.find((f) => f.department === 'finance' && f.format === 'csv');
    expect(research?.metadata.total).not.toBe(finance?.metadata.total);
  });

  it('does not re-upload unchanged files, and rewrites a changed one', async () => {
    const month = freshMonth();
    const period = monthOf(month);
    const before = reportFiles(
      reportOf(period, month, [
        ['research', 2_000_000],
        ['finance', 500_000],
      ]),
    );
    await store.write(before);
    const first = await versions(before);
    // Last-Modified has a one-second resolution: let a rewrite show in it too.
    await new Promise((resolve) => setTimeout(resolve, 1100));

    await store.write(before);
    // Same etag and same last-modified time: nothing was uploaded again.
    expect(await versions(before)).toEqual(first);

    // More research usage: research's files and the whole-report files change, finance's CSV does not.
    const after = reportFiles(
      reportOf(period, month, [
        ['research', 4_000_000],
        ['finance', 500_000],
      ]),
    );
    expect(after.map((f) => f.path)).toEqual(before.map((f) => f.path));
    await store.write(after);
    const second = await versions(after);
    const shaBefore = new Map(before.map((f) => [f.path, f.metadata.sha256]));
    const unchanged = after.filter((f) => f.metadata.sha256 === shaBefore.get(f.path));
    const changed = after.filter((f) => f.metadata.sha256 !== shaBefore.get(f.path));
    expect(unchanged.length).toBeGreaterThan(0);
    expect(changed.length).toBeGreaterThan(0);
    expect(unchanged.map((f) => f.path)).toContain(
      after.find((f) => f.department === 'finance' && f.format === 'csv')?.path,
    );
    for (const file of unchanged) expect(second.get(file.path)).toEqual(first.get(file.path));
    for (const file of changed) {
      const [was, now] = [first.get(file.path), second.get(file.path)];
      expect(now?.etag).not.toBe(was?.etag);
      expect(now?.lastModified?.getTime()).toBeGreaterThan(was?.lastModified?.getTime() ?? Infinity);
      expect((await download(file.path)).toString('utf8')).toBe(file.content);
      const { metadata } = await reports.getBlobClient(file.path).getProperties();
      expect(metadata?.sha256).toBe(file.metadata.sha256);
    }
  });

  it('deletes the files of a department the report no longer lists, and only those', async () => {
    const month = freshMonth();
    const period = monthOf(month);
    await store.write(
      reportFiles(
        reportOf(period, month, [
          ['research', 1_000_000],
          ['ghost', 2_000_000],
        ]),
      ),
    );
    const departmentsOf = async (): Promise<string[]> => {
      const names: string[] = [];
      for await (const blob of reports.listBlobsFlat({ prefix: `monthly/${period}/departments/` }))
        names.push(blob.name);
      return names.sort();
    };
    expect(await departmentsOf()).toContain(`monthly/${period}/departments/ghost.csv`);

    // The ghost department's usage is now charged elsewhere: its files go, the others stay.
    const again = reportFiles(reportOf(period, month, [['research', 3_000_000]]));
    await store.write(again);
    expect(await departmentsOf()).toEqual(
      again
        .filter((f) => f.department !== undefined)
        .map((f) => f.path)
        .sort(),
    );
    expect(await departmentsOf()).not.toContain(`monthly/${period}/departments/ghost.csv`);
    expect(await reports.getBlobClient(`monthly/${period}/chargeback-${period}.csv`).exists()).toBe(true);
  });

  it('rewrites a file whose stored copy lacks the hash (e.g. written by hand)', async () => {
    const month = freshMonth();
    const files = reportFiles(reportOf(monthOf(month), month, [['research', 1_000_000]]));
    const target = files[0] as RenderedReportFile;
    await reports.getBlockBlobClient(target.path).upload('stale', 5);
    await store.write(files);
    expect((await download(target.path)).toString('utf8')).toBe(target.content);
    expect((await reports.getBlobClient(target.path).getProperties()).metadata?.sha256).toBe(
      target.metadata.sha256,
    );
  });

  it('fails when the reports container does not exist (the app never creates it)', async () => {
    const month = freshMonth();
    const missing = new BlobReportStore(service.getContainerClient(`absent-${randomUUID()}`));
    await expect(
      missing.write(reportFiles(reportOf(monthOf(month), month, [['research', 1_000]]))),
    ).rejects.toMatchObject({ statusCode: 404 });
  });
});

describe('listReports()', () => {
  it('filters by period, kind and department, and ignores blobs that are not report paths', async () => {
    const month = freshMonth();
    const period = monthOf(month);
    const usage: Array<[string, number]> = [
      ['research', 1_500_000],
      ['finance', 700_000],
    ];
    const monthly = reportFiles(reportOf(period, month, usage));
    const dayId = dayOf(new Date(month.getTime() + 2 * 86_400_000));
    const daily = reportFiles(reportOf(dayId, month, usage));
    await store.write([...monthly, ...daily]);
    // Not report paths: unknown names and formats, a department id with capitals, a department
    // summary page (departments get no html), a month 13, a 30 February, a nested copy.
    const strays = [
      `monthly/${period}/notes.txt`,
      `monthly/${period}/chargeback-${period}.pdf`,
      `monthly/${period}/departments/Research.csv`,
      `monthly/${period}/departments/research.html`,
      `monthly/${period}/chargeback-${dayId}.csv`,
      'monthly/2032-13/chargeback-2032-13.csv',
      'daily/2032-02-30/chargeback-2032-02-30.csv',
      `daily/${dayId}/old/chargeback-${dayId}.csv`,
      `archive/monthly/${period}/chargeback-${period}.csv`,
    ];
    await Promise.all(strays.map((name) => reports.getBlockBlobClient(name).upload('x', 1)));

    const paths = (list: ReadonlyArray<{ path: string }>): string[] => list.map((f) => f.path);
    const sorted = (files: readonly RenderedReportFile[]): string[] => files.map((f) => f.path).sort();

    const ofMonth = await listReports(reports, { period });
    expect(paths(ofMonth)).toEqual(sorted(monthly));
    for (const listing of ofMonth) {
      const file = monthly.find((f) => f.path === listing.path) as RenderedReportFile;
      expect(listing).toEqual({
        path: file.path,
        kind: 'monthly',
        period,
        ...(file.department !== undefined ? { department: file.department } : {}),
        format: file.format,
        size: Buffer.byteLength(file.content),
        lastModified: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
        contentType: file.contentType,
        total: file.metadata.total,
      });
    }

    expect(paths(await listReports(reports, { period: dayId }))).toEqual(sorted(daily));
    expect(paths(await listReports(reports, { period: dayId, kind: 'daily' }))).toEqual(sorted(daily));

    const allDaily = await listReports(reports, { kind: 'daily' });
    expect(paths(allDaily)).toEqual(expect.arrayContaining(sorted(daily)));
    expect(allDaily.every((l) => l.kind === 'daily')).toBe(true);
    const allMonthly = await listReports(reports, { kind: 'monthly' });
    expect(paths(allMonthly)).toEqual(expect.arrayContaining(sorted(monthly)));
    expect(allMonthly.every((l) => l.kind === 'monthly')).toBe(true);
    const everything = await listReports(reports, {});
    expect(paths(everything)).toEqual(expect.arrayContaining([...sorted(monthly), ...sorted(daily)]));
    expect(paths(everything)).toEqual([...paths(everything)].sort());
    for (const stray of strays) {
      expect(paths(everything)).not.toContain(stray);
      expect(paths(allDaily)).not.toContain(stray);
      expect(paths(allMonthly)).not.toContain(stray);
    }

    const research = await listReports(reports, { period, department: 'research' });
    expect(paths(research)).toEqual(sorted(monthly.filter((f) => f.department === 'research')));
    expect(research.map((l) => l.format).sort()).toEqual(['csv', 'json']);
    const financeDaily = await listReports(reports, { kind: 'daily', department: 'finance' });
    expect(paths(financeDaily)).toEqual(
      expect.arrayContaining(sorted(daily.filter((f) => f.department === 'finance'))),
    );
    expect(financeDaily.every((l) => l.department === 'finance' && l.kind === 'daily')).toBe(true);
    expect(await listReports(reports, { period, department: 'nobody' })).toEqual([]);
    expect(await listReports(reports, { period: monthOf(freshMonth()) })).toEqual([]);
  });

  it('lists nothing when the container does not exist', async () => {
    expect(await listReports(service.getContainerClient(`absent-${randomUUID()}`), {})).toEqual([]);
  });
});

describe('reportReadLink()', () => {
  let path: string;
  let content: string;
  beforeAll(async () => {
    const month = freshMonth();
    const files = reportFiles(reportOf(monthOf(month), month, [['research', 1_234_567]]));
    await store.write(files);
    const csv = files.find((f) => f.format === 'csv' && f.department === undefined) as RenderedReportFile;
    path = csv.path;
    content = csv.content;
  });

  it('gives a URL that downloads the report without any other credential', async () => {
    const { url, expiresAt } = await reportReadLink(service, BLOB_CONTAINERS.reports, path);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).toString('utf8')).toBe(content);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(new URL(url).pathname.endsWith(`/${BLOB_CONTAINERS.reports}/${path}`)).toBe(true);
    // The signature's expiry is the one reported (to the second).
    const se = new URL(url).searchParams.get('se') as string;
    expect(new Date(se).getTime()).toBe(Math.floor(new Date(expiresAt).getTime() / 1000) * 1000);
    expect(new URL(url).searchParams.get('sp')).toBe('r');
  });

  it('refuses a write, an overwrite or a delete through the link', async () => {
    const { url } = await reportReadLink(service, BLOB_CONTAINERS.reports, path);
    const put = await fetch(url, {
      method: 'PUT',
      headers: { 'x-ms-blob-type': 'BlockBlob', 'content-type': 'text/plain' },
      body: 'tampered',
    });
    expect(put.status).toBe(403);
    await put.text();
    const del = await fetch(url, { method: 'DELETE' });
    expect(del.status).toBe(403);
    await del.text();
    // The report is untouched.
    expect((await download(path)).toString('utf8')).toBe(content);
    // Nor does it reach another blob of the container.
    const other = new URL(url);
    other.pathname = other.pathname.replace(/[^/]+$/, 'other.csv');
    const read = await fetch(other);
    expect(read.status).toBe(403);
    await read.text();
  });

  it('clamps the lifetime to 1..15 minutes', async () => {
    const minutesLeft = async (ttl?: number): Promise<number> => {
      const began = Date.now();
      const { expiresAt } = await reportReadLink(service, BLOB_CONTAINERS.reports, path, ttl);
      return (new Date(expiresAt).getTime() - began) / 60_000;
    };
    const near = (expected: number): [number, number] => [expected - 0.05, expected + 0.05];
    const cases: Array<[number | undefined, number]> = [
      [undefined, 15],
      [60, 15],
      [16, 15],
      [15, 15],
      [5, 5],
      [1, 1],
      [0, 1],
      [-10, 1],
    ];
    for (const [ttl, expected] of cases) {
      const [low, high] = near(expected);
      const left = await minutesLeft(ttl);
      expect(left).toBeGreaterThanOrEqual(low);
      expect(left).toBeLessThanOrEqual(high);
    }
    // A clamped link still works.
    const { url } = await reportReadLink(service, BLOB_CONTAINERS.reports, path, 0);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  });
});

describe('BlobQuarantine.put()', () => {
  let quarantine: ContainerClient;
  beforeAll(() => {
    quarantine = service.getContainerClient(BLOB_CONTAINERS.usageQuarantine);
  });

  async function namesUnder(prefix: string): Promise<string[]> {
    const names: string[] = [];
    for await (const blob of quarantine.listBlobsFlat({ prefix })) names.push(blob.name);
    return names.sort();
  }

  it('keeps each invalid event once, named by its content hash, with the problem in metadata', async () => {
    const batch = {
      windowId: windowId(windowStart(new Date(Date.UTC(2032, 5, 1, 9, 0)))),
      batch: `b-${randomUUID()}`,
    };
    const invalid = [
      { raw: '{"id":"x","promptTokens":-1}', problem: 'Too small: expected number to be >=0' },
      { raw: 'not json at all – “ü”', problem: 'not JSON: Unexpected token “n” — at ü\nline 1' },
    ];
    const quarantined = new BlobQuarantine(quarantine);
    await quarantined.put(batch, invalid);
    await quarantined.put(batch, invalid); // a retried step
    await quarantined.put(batch, [invalid[0] as { raw: string; problem: string }]);

    const prefix = `${batch.windowId}/${batch.batch}/`;
    const names = await namesUnder(prefix);
    expect(names).toEqual(invalid.map(({ raw }) => `${prefix}${sha256(raw)}.json`).sort());

    for (const { raw } of invalid) {
      const blob = quarantine.getBlobClient(`${prefix}${sha256(raw)}.json`);
      expect((await blob.downloadToBuffer()).toString('utf8')).toBe(raw);
      expect((await blob.getProperties()).contentType).toBe('application/json');
    }
    const problem = async (raw: string): Promise<string | undefined> =>
      (await quarantine.getBlobClient(`${prefix}${sha256(raw)}.json`).getProperties()).metadata?.problem;
    expect(await problem(invalid[0]?.raw as string)).toBe('Too small: expected number to be >=0');
    // Header-safe: every character outside printable ASCII (quotes, dash, umlaut, newline) is '?'.
    expect(await problem(invalid[1]?.raw as string)).toBe('not JSON: Unexpected token ?n? ? at ??line 1');
  });

  it('keeps the same raw event apart per batch, and cuts a long problem to 1000 characters', async () => {
    const windowOf = windowId(windowStart(new Date(Date.UTC(2032, 5, 2, 9, 0))));
    const first = { windowId: windowOf, batch: `b-${randomUUID()}` };
    const second = { windowId: windowOf, batch: `b-${randomUUID()}` };
    const raw = `{"id":"${randomUUID()}"}`;
    const quarantined = new BlobQuarantine(quarantine);
    await quarantined.put(first, [{ raw, problem: 'x'.repeat(1500) }]);
    await quarantined.put(second, [{ raw, problem: 'missing fields' }]);

    expect(await namesUnder(`${windowOf}/${first.batch}/`)).toEqual([
      `${windowOf}/${first.batch}/${sha256(raw)}.json`,
    ]);
    expect(await namesUnder(`${windowOf}/${second.batch}/`)).toEqual([
      `${windowOf}/${second.batch}/${sha256(raw)}.json`,
    ]);
    const { metadata } = await quarantine
      .getBlobClient(`${windowOf}/${first.batch}/${sha256(raw)}.json`)
      .getProperties();
    expect(metadata?.problem).toBe('x'.repeat(1000));
  });

  it('does nothing for an empty list', async () => {
    const batch = {
      windowId: windowId(windowStart(new Date(Date.UTC(2032, 5, 3, 9, 0)))),
      batch: `b-${randomUUID()}`,
    };
    await new BlobQuarantine(quarantine).put(batch, []);
    expect(await namesUnder(`${batch.windowId}/`)).toEqual([]);
  });
});
