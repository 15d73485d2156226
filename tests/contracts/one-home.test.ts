import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Every contract literal lives in exactly one non-test module, the one named here; everything
 * else imports it. Comments are ignored (they may explain a layout); code is not.
 */

const root = join(__dirname, '..', '..');
const SOURCE_FOLDERS = ['functions', 'shared', 'local', 'bench', 'scripts'];

function sourceFiles(folder: string): string[] {
  return readdirSync(join(root, folder), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && /\.(ts|js|cjs|mjs)$/.test(entry.name))
    .map((entry) => relative(root, join(entry.parentPath, entry.name)));
}

/** The file's code without its comments (block comments, and line comments not inside a URL). */
function code(file: string): string {
  return readFileSync(join(root, file), 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

const files = SOURCE_FOLDERS.flatMap(sourceFiles);
const sources = new Map(files.map((file) => [file, code(file)]));

function homesOf(literal: RegExp): string[] {
  return files.filter((file) => literal.test(sources.get(file) ?? '')).sort();
}

describe('one home per contract', () => {
  it('reads the source tree', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(files).toContain('shared/contracts/window.ts');
  });

  it.each([
    [
      'the window length',
      /WINDOW_MINUTES\s*=\s*\d+|\b15\s*\*\s*60(?:_?000)?\b|900_?000/,
      'shared/contracts/window.ts',
    ],
    [
      'the window id format',
      /\\d\{8\}T\\d\{4\}Z|\(\\d\{4\}\)\(\\d\{2\}\)\(\\d\{2\}\)T/,
      'shared/contracts/window.ts',
    ],
    [
      'the Redis key prefix and hash tag',
      /\bPREFIX\s*=|['"`]usage:|:\{w:/,
      'shared/adapters/redis-usage-buffer.ts',
    ],
    ['the usage partition key path', /['"`]\/pk['"`]/, 'shared/contracts/storage.ts'],
    ['the prices partition key path', /['"`]\/model['"`]/, 'shared/contracts/storage.ts'],
    ['the usage partition key format', /\|~batches|\$\{month\}\|\$\{/, 'shared/contracts/storage.ts'],
    ['the department id pattern', /a-z0-9\]\[a-z0-9/, 'shared/contracts/department.ts'],
    ['the spool container', /['"`]usage-spool['"`]/, 'shared/contracts/storage.ts'],
    ['the quarantine container', /['"`]usage-quarantine['"`]/, 'shared/contracts/storage.ts'],
    ['the prices container', /['"`]prices['"`]/, 'shared/contracts/storage.ts'],
    [
      'the usage container',
      /id:\s*['"`]usage['"`]|container\(\s*['"`]usage['"`]/,
      'shared/contracts/storage.ts',
    ],
    [
      'the configuration container',
      /id:\s*['"`]configuration['"`]|container\(\s*['"`]configuration['"`]/,
      'shared/contracts/storage.ts',
    ],
    [
      'the report path layout',
      /chargeback-\$\{[^}]*\}\.|\/chargeback-\$\{|departments\//,
      'shared/contracts/report-paths.ts',
    ],
    ['the finance role', /Chargeback\.Finance/, 'shared/contracts/roles.ts'],
    ['the admin role', /Chargeback\.Admin/, 'shared/contracts/roles.ts'],
  ])('%s is only in its home', (_name, literal, home) => {
    expect(homesOf(literal)).toEqual([home]);
  });

  it('the reports container name is only in its home (the finance API route of the same name is an HTTP path)', () => {
    const uses = homesOf(/['"`]reports['"`]/);
    expect(uses).toEqual(['functions/reports/reports-get.ts', 'shared/contracts/storage.ts']);
    expect(sources.get('functions/reports/reports-get.ts')).toMatch(/route:\s*'reports'/);
    expect(sources.get('functions/reports/reports-get.ts')?.match(/['"`]reports['"`]/g)).toHaveLength(1);
  });

  it.each([
    'x-chargeback-gateway-key',
    'x-chargeback-subscription',
    'x-chargeback-app',
    'x-chargeback-department',
    'x-chargeback-user',
    'x-chargeback-request-id',
    'x-chargeback-roles',
  ])('the %s header name is only in shared/contracts/gateway-headers.ts', (header) => {
    expect(homesOf(new RegExp(`${header}(?![\\w-])`, 'i'))).toEqual(['shared/contracts/gateway-headers.ts']);
  });

  it('the Functions key header is only in shared/contracts/gateway-headers.ts', () => {
    expect(homesOf(/x-functions-key/i)).toEqual(['shared/contracts/gateway-headers.ts']);
  });

  it('the Cosmos database name is only in its home (the chargeback API path of the same word is an HTTP path)', () => {
    expect(homesOf(/['"`]chargeback['"`]/)).toEqual([
      'shared/contracts/apim.ts',
      'shared/contracts/storage.ts',
    ]);
    expect(sources.get('shared/contracts/apim.ts')).not.toMatch(/COSMOS|database/i);
  });

  it('no header is spelled out anywhere but its home', () => {
    expect(homesOf(/x-chargeback-/i)).toEqual(['shared/contracts/gateway-headers.ts']);
  });
});
