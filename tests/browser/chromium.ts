import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import type { Browser } from 'playwright-core';
import { chromium } from 'playwright-core';
import { REPORT_SECURITY_HEADERS } from '../../shared/chargeback/render-html';

/**
 * Debian's Chromium, driven by playwright-core, for the report pages' browser tests and the
 * screenshots. `npm test` installs the package (scripts/ensure-prerequisites.js --with-browser);
 * without it the browser tests fail, they are never skipped.
 */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** No network beyond the page: the machine may have none, and the page needs none. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM_PATH}, and the report pages are tested in it. ` +
        'Install it with `node scripts/ensure-prerequisites.js --with-browser` ' +
        '(Debian/Ubuntu: apt-get install -y chromium), as `npm test` does, and run the tests again.',
    );
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}

export interface PageServer {
  /** The URL of each page, by name. */
  urls: Record<string, string>;
  /** Every path the browser asked for, in order. */
  requested: string[];
  close(): Promise<void>;
}

/**
 * Serves HTML pages on 127.0.0.1 the way the finance API serves a report: inline, with the
 * report's security headers (so that a page needing anything more shows CSP errors in the
 * console). Anything else is a 404.
 */
export async function servePages(pages: Record<string, string>): Promise<PageServer> {
  const requested: string[] = [];
  const byPath = new Map(Object.entries(pages).map(([name, html]) => [`/${name}.html`, html]));
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://127.0.0.1').pathname;
    requested.push(path);
    const html = byPath.get(path);
    if (html === undefined || request.method !== 'GET') {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', ...REPORT_SECURITY_HEADERS });
      response.end('not found');
      return;
    }
    response.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'private, no-store',
      ...REPORT_SECURITY_HEADERS,
    });
    response.end(html);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  const urls = Object.fromEntries(
    Object.keys(pages).map((name) => [name, `http://127.0.0.1:${port}/${name}.html`]),
  );
  return {
    urls,
    requested,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
