import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The allow-list of APIM policy elements and attributes (tests/fixtures/apim/policy-reference.json)
 * is data read from Microsoft's policy reference, never typed by hand: the generator rebuilds it,
 * identical, from the excerpt of the reference kept beside it (each file at the commit its
 * manifest names). The policy checks of the gateway work are built on it.
 */

const root = join(__dirname, '..', '..');
const fixtures = join(root, 'tests', 'fixtures', 'apim');

interface Reference {
  source: { repository: string; snapshot: string };
  policies: Record<
    string,
    { commit: string; limits: Array<{ kind: string; value?: number; quote: string }> }
  >;
  elements: Record<string, { attributes: string[] }>;
}

const committed = JSON.parse(readFileSync(join(fixtures, 'policy-reference.json'), 'utf8')) as Reference;

it('is exactly what the generator extracts from the reference excerpt', () => {
  const regenerated = execFileSync(
    process.execPath,
    [
      join(root, 'scripts', 'apim-policy-reference.mjs'),
      '--docs',
      join(fixtures, 'reference'),
      '--manifest',
      join(fixtures, 'reference', 'manifest.tsv'),
      '--retrieved',
      '2026-12-02',
      '--note',
      committed.source.snapshot,
    ],
    { encoding: 'utf8' },
  );
  expect(JSON.parse(regenerated)).toEqual(committed);
});

it('names its source for every policy, and the dimension limits the reference states', () => {
  expect(committed.source.repository).toBe('MicrosoftDocs/azure-docs');
  for (const policy of Object.values(committed.policies)) expect(policy.commit).toMatch(/^[0-9a-f]{40}$/);
  const dimensions = (name: string): string[] =>
    (committed.policies[name]?.limits ?? [])
      .filter((l) => l.kind === 'max-custom-dimensions')
      .map((l) => l.quote);
  expect(dimensions('llm-emit-token-metric').join(' ')).toMatch(/at most 5 custom dimensions/);
  expect(dimensions('emit-metric').join(' ')).toMatch(/10 custom dimensions/);
  expect(committed.elements['rate-limit-by-key']?.attributes).toEqual(
    expect.arrayContaining(['calls', 'renewal-period', 'counter-key']),
  );
});
