/**
 * Screenshots of the HTML chargeback report, for the docs: docs/screenshots/report-monthly.png
 * and report-daily.png, rendered from the sample reports the browser tests check
 * (tests/browser/sample-reports.ts), served with the finance API's security headers and taken in
 * Debian's Chromium (`node scripts/ensure-prerequisites.js --with-browser` installs it).
 *
 * Usage: npm run build && node dist/scripts/report-screenshots.js [OUT_DIR]
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { renderHtml } from '../shared/chargeback/render-html';
import { launchChromium, servePages } from '../tests/browser/chromium';
import type { SampleName } from '../tests/browser/sample-reports';
import { sampleReports } from '../tests/browser/sample-reports';

/** Screenshot file (without .png) → the sample report it shows. */
const SHOTS: Record<string, SampleName> = {
  'report-monthly': 'monthly',
  'report-daily': 'daily',
};

/** dist/scripts/ → the repository's docs/screenshots/. */
const DEFAULT_OUT = join(__dirname, '..', '..', 'docs', 'screenshots');

async function main(): Promise<void> {
  const out = resolve(process.argv[2] ?? DEFAULT_OUT);
  mkdirSync(out, { recursive: true });
  const reports = sampleReports();
  const server = await servePages(
    Object.fromEntries(Object.entries(SHOTS).map(([file, name]) => [file, renderHtml(reports[name])])),
  );
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1120, height: 900 }, deviceScaleFactor: 1 });
    for (const file of Object.keys(SHOTS)) {
      await page.goto(server.urls[file] as string, { waitUntil: 'load' });
      const path = join(out, `${file}.png`);
      await page.screenshot({ path, fullPage: true, animations: 'disabled' });
      console.log(`wrote ${path}`);
    }
  } finally {
    await browser.close();
    await server.close();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
