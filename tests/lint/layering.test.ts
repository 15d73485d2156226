import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The layering rule of eslint.config.mjs, from the project's own config: a deliberate bad import
 * in a domain module is an error; the same import in an adapter is fine.
 */

const root = join(__dirname, '..', '..');

/**
 * ESLint's own API in a separate Node process (its config is an ES module, which jest's module
 * sandbox cannot load): each case is a real module of the tree with one extra import line, linted
 * under its own path. Returns the no-restricted-imports messages of each case.
 */
function restrictedImports(cases: ReadonlyArray<readonly [string, string]>): string[][] {
  const inputs = cases.map(([file, importLine]) => ({
    filePath: join(root, file),
    text: `${importLine}\n${readFileSync(join(root, file), 'utf8')}`,
  }));
  const script = `
    const { ESLint } = require('eslint');
    const inputs = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
    // Type information is not needed for import rules: skip building the TypeScript program.
    const { configs } = require('typescript-eslint');
    const eslint = new ESLint({ cwd: ${JSON.stringify(root)}, overrideConfig: configs.disableTypeChecked });
    (async () => {
      const out = [];
      for (const { filePath, text } of inputs) {
        const [result] = await eslint.lintText(text, { filePath });
        out.push(result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message));
      }
      process.stdout.write(JSON.stringify(out));
    })().catch((error) => { console.error(error); process.exit(1); });`;
  const child = spawnSync(process.execPath, ['-e', script], {
    cwd: root,
    input: JSON.stringify(inputs),
    encoding: 'utf8',
  });
  if (child.status !== 0) throw new Error(`eslint failed: ${child.stderr}`);
  return JSON.parse(child.stdout) as string[][];
}

jest.setTimeout(120_000);

const FORBIDDEN = [
  ['shared/metering/openai-request.ts', "import type { Redis } from 'ioredis';", /import no SDK/],
  ['shared/chargeback/aggregate.ts', "import type { Container } from '@azure/cosmos';", /import no SDK/],
  ['shared/chargeback/run.ts', "import type { InvocationContext } from '@azure/functions';", /import no SDK/],
  ['shared/metering/sse-relay.ts', "import type { Dispatcher } from 'undici';", /import no SDK/],
  ['shared/contracts/window.ts', "import type { Redis } from 'ioredis';", /import no SDK/],
  [
    'shared/chargeback/run.ts',
    "import type { BlobUsageSpool } from '../adapters/blob-spool';",
    /never on adapters/,
  ],
  [
    'shared/metering/openai-proxy.ts',
    "import type { AppServices } from '../config/composition';",
    /never on adapters/,
  ],
  ['shared/contracts/storage.ts', "import type { Draft } from '../chargeback/draft';", /never on adapters/],
] as const;

const ALLOWED = [
  ['shared/adapters/redis-usage-buffer.ts', "import type { Cluster as C } from 'ioredis';"],
  ['shared/config/composition.ts', "import type { Container as C } from '@azure/cosmos';"],
  ['shared/chargeback/run.ts', "import type { UsageEvent as E } from '../contracts/usage-event';"],
  ['shared/metering/openai-proxy.ts', "import type { WindowBatch as W } from '../chargeback/ports';"],
] as const;

let results: string[][] = [];
beforeAll(() => {
  results = restrictedImports([...FORBIDDEN, ...ALLOWED].map(([file, line]) => [file, line] as const));
});

describe('layering: the domain imports no SDK and no adapter', () => {
  it.each(FORBIDDEN.map(([file, line, message], index) => [file, line, message, index] as const))(
    '%s: %s is an error',
    (_file, _line, message, index) => {
      const messages = results[index] ?? [];
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatch(message);
    },
  );

  it.each(ALLOWED.map(([file, line], index) => [file, line, FORBIDDEN.length + index] as const))(
    '%s: %s is allowed',
    (_file, _line, index) => {
      expect(results[index]).toEqual([]);
    },
  );
});
