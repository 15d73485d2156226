#!/usr/bin/env node
/**
 * Installs what `npm start` and `npm test` need from outside npm (Debian packages): redis-server,
 * and with `--with-browser` (the tests) chromium, the browser the HTML report's tests drive.
 * Runs before both, so a fresh machine needs no manual step.
 *
 * Usage: node scripts/ensure-prerequisites.js [--with-browser]
 */
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');

/** Where the browser tests look for Chromium (tests/browser/chromium.ts). */
const CHROMIUM_PATH = '/usr/bin/chromium';

const args = process.argv.slice(2);
const unknown = args.filter((arg) => arg !== '--with-browser');
if (unknown.length > 0) {
  console.error(
    `Unknown argument ${unknown[0]}. Usage: node scripts/ensure-prerequisites.js [--with-browser]`,
  );
  process.exit(1);
}

function has(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** Debian package → whether it is installed. */
const needed = [
  { name: 'redis-server', installed: () => has('redis-server') },
  ...(args.includes('--with-browser')
    ? [{ name: 'chromium', installed: () => fs.existsSync(CHROMIUM_PATH) }]
    : []),
];
const missing = needed.filter((p) => !p.installed());
if (missing.length === 0) process.exit(0);
const names = missing.map((p) => p.name);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const prefix = isRoot ? [] : ['sudo', '-n'];
if (!has('apt-get') || (!isRoot && !has('sudo'))) {
  console.error(
    `${names.join(' and ')} ${names.length > 1 ? 'are' : 'is'} required but not installed, and cannot be installed automatically here.\n` +
      `Install with your package manager (Debian/Ubuntu: apt-get install -y ${names.join(' ')}) and try again.`,
  );
  process.exit(1);
}

function run(args) {
  const [command, ...rest] = [...prefix, ...args];
  execFileSync(command, rest, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

console.log(
  `${names.join(' and ')} ${names.length > 1 ? 'are' : 'is'} missing: installing with apt-get (once)...`,
);
try {
  run(['apt-get', 'update', '-qq']);
  run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...names]);
} catch (error) {
  console.error(`Installing ${names.join(' and ')} failed: ${error.message}`);
  process.exit(1);
}
for (const p of missing) {
  if (!p.installed()) {
    console.error(
      p.name === 'chromium'
        ? `apt-get finished but ${CHROMIUM_PATH} is still missing.`
        : `apt-get finished but ${p.name} is still not on PATH.`,
    );
    process.exit(1);
  }
}
// Debian may start a system-wide redis-server on port 6379 after install; the project runs its own.
if (names.includes('redis-server')) {
  try {
    run(['sh', '-c', 'service redis-server stop >/dev/null 2>&1 || true']);
  } catch {
    // nothing to stop
  }
}
