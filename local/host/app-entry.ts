import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';

/** The folder holding host.json, searched upwards from `start`. */
export function findAppRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'host.json')) && existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`No host.json found above ${start}.`);
  }
}

/**
 * The app's function entry files, found from package.json `main` (a glob, as the Node worker
 * accepts). In `source` mode the compiled pattern (`dist/functions/**\/*.js`) is mapped back to the
 * TypeScript sources, for tests that run the app without a build.
 */
export function resolveEntryModules(appRoot: string, mode: 'compiled' | 'source'): string[] {
  const manifest = JSON.parse(readFileSync(join(appRoot, 'package.json'), 'utf8')) as { main?: string };
  if (!manifest.main)
    throw new Error(`${join(appRoot, 'package.json')} has no "main" naming the function entry files.`);
  const pattern =
    mode === 'source' ? manifest.main.replace(/^(\.\/)?dist\//, '').replace(/\.js$/, '.ts') : manifest.main;
  const files = glob(appRoot, pattern.replace(/^\.\//, ''));
  if (files.length === 0) {
    const hint = mode === 'compiled' ? ' (run `npm run build` first)' : '';
    throw new Error(`No function entry files match "${pattern}" in ${appRoot}${hint}.`);
  }
  return files;
}

function glob(root: string, pattern: string): string[] {
  const base = pattern.split('/').filter((segment) => !/[*?]/.test(segment));
  const firstWildcard = pattern.split('/').findIndex((segment) => /[*?]/.test(segment));
  const baseDir = join(root, ...(firstWildcard < 0 ? base : pattern.split('/').slice(0, firstWildcard)));
  if (!existsSync(baseDir)) return [];
  const regex = new RegExp(
    '^' +
      pattern
        .split('/')
        .map((segment) =>
          segment === '**'
            ? '\uE000'
            : segment
                .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                .replace(/\*/g, '[^/]*')
                .replace(/\?/g, '[^/]'),
        )
        .join('/')
        .replace(/\uE000\//g, '(?:.*/)?')
        .replace(/\uE000/g, '.*') +
      '$',
  );
  return readdirSync(baseDir, { recursive: true, encoding: 'utf8' })
    .map((file) => relative(root, join(baseDir, file)).split(sep).join('/'))
    .filter((file) => regex.test(file) && !file.endsWith('.d.ts') && !file.endsWith('.map'))
    .sort()
    .map((file) => join(root, file));
}
