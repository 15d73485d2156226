import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APIM_APIS, APIM_POLICY_FOLDER, GLOBAL_POLICY_FILE } from '../../../shared/contracts/apim';
import { readGatewayConfig } from '../../../local/gateway/local-config';
import { checkPoliciesRun } from '../../../local/gateway/server';

/**
 * The local gateway runs the policy files themselves: everything in them must be something it
 * runs. An element, attribute, expression or named value it does not know stops it at start,
 * naming the file and the line.
 */

const root = join(__dirname, '..', '..', '..');
const config = readGatewayConfig(root);
let folder: string;

beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'policies-'));
  cpSync(join(root, APIM_POLICY_FOLDER), folder, { recursive: true });
});
afterEach(() => rmSync(folder, { recursive: true, force: true }));

/** Replaces text in a copied policy file; returns the 1-based line of the replacement. */
function edit(file: string, find: string, replace: string): number {
  const path = join(folder, file);
  const text = readFileSync(path, 'utf8');
  const at = text.indexOf(find);
  if (at < 0) throw new Error(`'${find}' is not in ${file}`);
  writeFileSync(path, text.slice(0, at) + replace + text.slice(at + find.length));
  return text.slice(0, at).split('\n').length;
}

it('runs every policy file of the repository', () => {
  expect(() => checkPoliciesRun(root, config)).not.toThrow();
});

it.each([
  [
    'an unknown element',
    APIM_APIS.openai.policyFile,
    '<set-backend-service',
    '<cache-lookup vary-by-developer="false" />\n    <set-backend-service',
    /<cache-lookup> is not an element the local gateway runs/,
  ],
  [
    'an unknown attribute',
    APIM_APIS.speech.policyFile,
    '<rate-limit-by-key calls',
    '<rate-limit-by-key increment-condition="@(true)" calls',
    /<rate-limit-by-key> has no attribute 'increment-condition'/,
  ],
  [
    'an expression without an implementation',
    APIM_APIS.openai.policyFile,
    '<value>@(context.Subscription.Name)</value>',
    '<value>@(context.Subscription.Name.ToUpper())</value>',
    /the expression @\(context\.Subscription\.Name\.ToUpper\(\)\) has no implementation/,
  ],
  [
    'an unknown named value',
    APIM_APIS.chargeback.policyFile,
    '{{chargeback-api-audience}}',
    '{{chargeback-api-audiences}}',
    /the named value '\{\{chargeback-api-audiences\}\}' is not defined/,
  ],
  [
    'a policy in a section it does not belong to',
    GLOBAL_POLICY_FILE,
    '<forward-request',
    '<rate-limit-by-key calls="1" renewal-period="1" counter-key="x" />\n    <forward-request',
    /<rate-limit-by-key> is not allowed in <backend>/,
  ],
])('refuses %s, naming file and line', (_what, file, find, replace, message) => {
  const line = edit(file, find, replace);
  let error: unknown;
  try {
    checkPoliciesRun(root, config, folder);
  } catch (e) {
    error = e;
  }
  expect(String(error)).toMatch(message);
  // The line of the edit (the inserted element or attribute starts on it or on the line after).
  const shown = /apim-policies\/[\w.-]+:(\d+)/.exec(String(error));
  expect(shown?.[0]).toMatch(new RegExp(`^${APIM_POLICY_FOLDER}/${file.replace('.', '\\.')}:`));
  expect([line, line + 1]).toContain(Number(shown?.[1]));
});
