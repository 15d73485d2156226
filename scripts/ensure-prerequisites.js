#!/usr/bin/env node
/**
 * Installs what `npm start` and `npm test` need from outside npm: redis-server (Debian package).
 * Runs before both, so a fresh machine needs no manual step.
 */
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');

function has(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

if (has('redis-server')) process.exit(0);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const prefix = isRoot ? [] : ['sudo', '-n'];
if (!has('apt-get') || (!isRoot && !has('sudo'))) {
  console.error(
    'redis-server is required but not installed, and it cannot be installed automatically here.\n' +
      'Install it with your package manager (Debian/Ubuntu: apt-get install -y redis-server) and try again.',
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

console.log('redis-server is missing: installing it with apt-get (once)...');
try {
  run(['apt-get', 'update', '-qq']);
  run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', 'redis-server']);
} catch (error) {
  console.error(`Installing redis-server failed: ${error.message}`);
  process.exit(1);
}
if (!has('redis-server')) {
  console.error('apt-get finished but redis-server is still not on PATH.');
  process.exit(1);
}
// Debian may start a system-wide redis-server on port 6379 after install; the project runs its own.
try {
  run(['sh', '-c', 'service redis-server stop >/dev/null 2>&1 || true']);
} catch {
  // nothing to stop
}
