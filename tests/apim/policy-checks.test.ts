import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { lintPolicy, loadPolicyReference, POLICY_CONTAINERS } from '../../local/gateway/policy-lint';
import type { PolicyProblem } from '../../local/gateway/policy-lint';
import type { PolicyElement } from '../../local/gateway/policy-xml';
import { PolicyXmlError, parsePolicyXml, walkPolicy } from '../../local/gateway/policy-xml';
import {
  APIM_APIS,
  APIM_POLICY_FOLDER,
  GLOBAL_POLICY_FILE,
  MAX_METRIC_DIMENSIONS,
  REMAINING_REQUESTS_HEADER,
  REMAINING_TOKENS_HEADER,
  SPOOFABLE_REQUEST_ID_HEADERS,
  TOKEN_METRIC,
} from '../../shared/contracts/apim';
import { GATEWAY_HEADER_NAMES } from '../../shared/contracts/gateway-headers';

/**
 * The API Management policy files are checked against Microsoft's policy reference
 * (tests/fixtures/apim/policy-reference.json) and the contract (shared/contracts/apim.ts,
 * gateway-headers.ts); deliberately broken fixtures show that every rule rejects what it should,
 * on the right line.
 */

const root = join(__dirname, '..', '..');
const policyFolder = join(root, APIM_POLICY_FOLDER);
const brokenFolder = join(root, 'tests', 'fixtures', 'apim', 'broken');
const reference = loadPolicyReference(join(root, 'tests', 'fixtures', 'apim', 'policy-reference.json'));

const check = (text: string, file: string): PolicyProblem[] =>
  lintPolicy(parsePolicyXml(text, file), reference);
const show = (problems: PolicyProblem[]): string[] =>
  problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`);

describe(`the policy files in ${APIM_POLICY_FOLDER}/`, () => {
  const required = [GLOBAL_POLICY_FILE, ...Object.values(APIM_APIS).map((api) => api.policyFile)];
  const present = existsSync(policyFolder) ? readdirSync(policyFolder).filter((f) => f.endsWith('.xml')) : [];
  const files = [...new Set([...required, ...present])].sort();

  it('include the global policy and one per API', () => {
    expect(present).toEqual(expect.arrayContaining(required));
  });

  it.each(files)('%s parses and passes every check', (file) => {
    const text = readFileSync(join(policyFolder, file), 'utf8');
    expect(show(check(text, `${APIM_POLICY_FOLDER}/${file}`))).toEqual([]);
  });
});

describe('broken fixtures are rejected on the expected line', () => {
  const lint = (line: number, message: RegExp) => ({ kind: 'lint' as const, line, message });
  const parse = (line: number, message: RegExp) => ({ kind: 'parse' as const, line, message });
  const expected = {
    'malformed-xml.xml': parse(7, /malformed XML: unexpected close tag/),
    'unbalanced-expression.xml': parse(6, /unbalanced expression: the expression @\{ is never closed/),
    'missing-base.xml': lint(9, /<outbound> has no <base \/>/),
    'sections-out-of-order.xml': lint(9, /<backend> comes after <outbound>/),
    'unknown-element.xml': lint(5, /unknown element <set-headers>/),
    'unknown-attribute.xml': lint(6, /unknown attribute period on <rate-limit-by-key>/),
    'wrong-section.xml': lint(
      8,
      /<rate-limit-by-key> is not allowed in the outbound section: the reference allows it in inbound/,
    ),
    'unlisted-named-value.xml': lint(9, /unknown named value \{\{backend-url\}\}/),
    'unknown-gateway-header.xml': lint(
      8,
      /<set-header name> names the header X-Chargeback-Tenant, which is not a gateway header/,
    ),
    'six-dimensions.xml': lint(
      5,
      new RegExp(`<llm-emit-token-metric> has 6 dimensions: at most ${MAX_METRIC_DIMENSIONS}`),
    ),
    'literal-url.xml': lint(
      6,
      /attribute base-url of <set-backend-service> holds a literal URL "https:\/\/func-chargeback/,
    ),
    'literal-secret.xml': lint(7, /the text of <value> holds a key-like string "Zm9v/),
  };

  it('every fixture has an expectation', () => {
    expect(readdirSync(brokenFolder).sort()).toEqual(Object.keys(expected).sort());
  });

  it.each(Object.entries(expected))('%s', (file, { kind, line, message }) => {
    const text = readFileSync(join(brokenFolder, file), 'utf8');
    if (kind === 'parse') {
      expect(() => parsePolicyXml(text, file)).toThrow(PolicyXmlError);
      expect(() => parsePolicyXml(text, file)).toThrow(
        new RegExp(`^${file}:${line}:\\d+: ${message.source}`),
      );
      return;
    }
    // Exactly one problem: the fixture breaks one rule only.
    expect(check(text, file)).toEqual([
      { file, line, column: expect.any(Number), message: expect.stringMatching(message) },
    ]);
  });
});

describe('the rules', () => {
  /** A file with all four sections, each with <base />, and `inbound` in the inbound section. */
  const doc = (
    inbound: string,
    extra: { backend?: string; outbound?: string; onError?: string } = {},
  ): string =>
    [
      '<policies>',
      '  <inbound>',
      '    <base />',
      inbound,
      '  </inbound>',
      '  <backend>',
      '    <base />',
      extra.backend ?? '',
      '  </backend>',
      '  <outbound>',
      '    <base />',
      extra.outbound ?? '',
      '  </outbound>',
      '  <on-error>',
      '    <base />',
      extra.onError ?? '',
      '  </on-error>',
      '</policies>',
    ].join('\n');
  const messages = (text: string, file = 'api.xml'): string[] =>
    check(text, file).map((p) => `${p.line}: ${p.message}`);

  it('accept a policy that uses choose, send-request, return-response, named values and expressions', () => {
    const text = doc(
      [
        '    <validate-azure-ad-token tenant-id="{{entra-tenant-id}}" header-name="Authorization" output-token-variable-name="jwt">',
        '      <audiences><audience>{{chargeback-api-audience}}</audience></audiences>',
        '      <required-claims><claim name="roles" match="any"><value>Reports.Read</value></claim></required-claims>',
        '    </validate-azure-ad-token>',
        '    <choose>',
        '      <when condition="@(context.Request.Headers.GetValueOrDefault(&quot;a&quot;, &quot;&quot;) != &quot;&quot;)">',
        '        <set-header name="x-chargeback-roles" exists-action="override">',
        '          <value>@(string.Join(",", ((Jwt)context.Variables["jwt"]).Claims.GetValueOrDefault("roles", new string[0])))</value>',
        '        </set-header>',
        '      </when>',
        '      <otherwise>',
        '        <return-response>',
        '          <set-status code="403" reason="Forbidden" />',
        '          <set-header name="Content-Type" exists-action="override"><value>application/json</value></set-header>',
        '          <set-body template="liquid">{"error": "{{context.Request.Url.Path}}"}</set-body>',
        '        </return-response>',
        '      </otherwise>',
        '    </choose>',
        '    <send-request mode="new" response-variable-name="probe" timeout="5">',
        '      <set-url>{{chargeback-functions-url}}/health</set-url>',
        '      <set-method>GET</set-method>',
        '      <set-header name="x-chargeback-gateway-key" exists-action="override"><value>{{chargeback-gateway-secret}}</value></set-header>',
        '    </send-request>',
        '    <set-backend-service base-url="{{chargeback-functions-url}}/openai" />',
      ].join('\n'),
      {
        backend:
          '    <retry condition="@(context.Response.StatusCode == 503)" count="2" interval="1"><forward-request timeout="120" /></retry>',
        onError:
          '    <set-header name="x-request-id" exists-action="override"><value>@(context.RequestId.ToString())</value></set-header>',
      },
    );
    expect(messages(text)).toEqual([]);
  });

  it('(a) the root, unknown sections, duplicates and stray text', () => {
    expect(messages('<policy>\n  <inbound><base /></inbound>\n</policy>')).toEqual([
      "1: the root element is <policy>: a policy file's root is <policies>",
    ]);
    expect(
      messages(
        '<policies>\n  <inbound><base /></inbound>\n  <inbound><base /></inbound>\n  <outgoing />\n  text\n</policies>',
      ),
    ).toEqual([
      '3: a second <inbound> section (the first is on line 2): each section at most once',
      '4: <outgoing> is not a policy section: <policies> holds only inbound, backend, outbound, on-error',
      '5: text directly inside <policies>: only policies go there',
    ]);
  });

  it('(b) exactly one <base /> per section, only there, also in the global policy', () => {
    expect(
      messages(doc('    <base />\n    <choose><when condition="@(true)"><base /></when></choose>')),
    ).toEqual([
      '4: a second <base /> in <inbound> (the first is on line 3): exactly one per section',
      '5: <base /> inside <when>: it belongs directly in a section',
    ]);
    expect(
      messages('<policies>\n  <inbound>\n  </inbound>\n</policies>', `apim-policies/${GLOBAL_POLICY_FILE}`),
    ).toEqual([
      "2: <inbound> has no <base />: every section keeps exactly one, to run the enclosing scope's policies (the global policy too, where it is a no-op)",
    ]);
  });

  it('(c) placement: child elements only in their documented parents, policies only in sections that allow them', () => {
    expect(
      messages(
        doc(
          [
            '    <validate-jwt header-name="Authorization"><set-header name="a" /></validate-jwt>',
            '    <audience>x</audience>',
            '    <cors><allowed-origins><origin>*</origin></allowed-origins></cors>',
            '    <cors><allowed-origins><origin>*</origin></allowed-origins></cors>',
          ].join('\n'),
          {
            outbound:
              '    <choose><when condition="@(true)"><llm-token-limit counter-key="a" tokens-per-minute="1" /></when></choose>',
          },
        ),
      ),
    ).toEqual([
      '4: <set-header> is not allowed inside <validate-jwt>: the reference allows it in a section, <when>, <otherwise>, <retry>, <return-response>, <send-request>',
      '5: <audience> is not allowed inside <inbound>: the reference allows it in <audiences>',
      '7: <cors> may be used only once in a policy section (inbound)',
      '15: <llm-token-limit> is not allowed in the outbound section: the reference allows it in inbound',
    ]);
  });

  it('(c) attributes: unknown ones, and ones the reference documents only under other parents', () => {
    const reference2 = structuredClone(reference);
    const details = reference2.elements['set-header']?.attributeDetails['exists-action'];
    if (!details) throw new Error('set-header exists-action is not in the reference');
    details.splice(0, details.length, ...details.filter((d) => d.parents));
    const text = doc('    <set-header name="a" exists-action="skip" overwrite="true" />');
    expect(
      lintPolicy(parsePolicyXml(text, 'api.xml'), reference2).map(
        (p) => `${p.line}:${p.column}: ${p.message}`,
      ),
    ).toEqual([
      '4:26: attribute exists-action of <set-header> is documented only inside <send-request>, not inside <inbound>',
      '4:47: unknown attribute overwrite on <set-header>: the reference lists exists-action, name',
    ]);
  });

  it("(d) named values: only the contract's, wherever they are", () => {
    expect(
      messages(
        doc('    <set-variable name="v" value="@(&quot;{{tenant}}&quot;)" />\n    <!-- {{old-name}} -->'),
      ),
    ).toEqual([
      expect.stringMatching(
        /^4: unknown named value \{\{tenant\}\}: the policies use only chargeback-functions-url, /,
      ),
      expect.stringMatching(/^5: unknown named value \{\{old-name\}\}/),
    ]);
  });

  it('(e) gateway headers in set-header, check-header, …header-name attributes and cors headers', () => {
    expect(
      messages(
        doc(
          [
            '    <check-header name="x-chargeback-key" failed-check-httpcode="401" failed-check-error-message="no" ignore-case="true"><value>a</value></check-header>',
            '    <validate-jwt header-name="X-Chargeback-Token" />',
            '    <cors><allowed-origins><origin>*</origin></allowed-origins><allowed-headers><header>x-chargeback-extra</header></allowed-headers></cors>',
            '    <set-header name="x-chargeback-user" exists-action="delete" />',
            '    <set-header name="@(&quot;x-chargeback-&quot; + context.Variables[&quot;h&quot;])" exists-action="delete" />',
            '    <set-header name="x-other" exists-action="delete" />',
          ].join('\n'),
        ),
      ),
    ).toEqual([
      expect.stringMatching(
        /^4: <check-header name> names the header x-chargeback-key, which is not a gateway header/,
      ),
      expect.stringMatching(/^5: <validate-jwt header-name> names the header X-Chargeback-Token/),
      expect.stringMatching(/^6: <header> names the header x-chargeback-extra/),
    ]);
  });

  it("(f) the OpenAI API emits the contract's token metric; no metric repeats a dimension", () => {
    const metric = (dimensions: string[], namespace: string = TOKEN_METRIC.namespace): string =>
      [
        `    <llm-emit-token-metric namespace="${namespace}">`,
        ...dimensions.map((d) => `      <dimension name="${d}" />`),
        '    </llm-emit-token-metric>',
      ].join('\n');
    const openai = `apim-policies/${APIM_APIS.openai.policyFile}`;
    expect(messages(doc(metric([...TOKEN_METRIC.dimensions].reverse())), openai)).toEqual([]);
    expect(messages(doc(''), openai)).toEqual([
      expect.stringMatching(/^1: the OpenAI API emits no token metric/),
    ]);
    expect(messages(doc(metric(['Department', 'App', 'Subscription ID', 'Model'], 'other')), openai)).toEqual(
      [
        '4: <llm-emit-token-metric> dimensions must be exactly Department, App, Subscription ID, Deployment (TOKEN_METRIC.dimensions); missing Deployment; not in the contract Model',
        '4: <llm-emit-token-metric> namespace must be "ai-chargeback" (TOKEN_METRIC.namespace)',
      ],
    );
    expect(messages(doc(metric(['Department', 'App', 'Department'])))).toEqual([
      '7: <llm-emit-token-metric> has the dimension "Department" twice (first on line 5)',
    ]);
    // Other files may emit other metrics.
    expect(messages(doc(metric(['Region'], 'other')))).toEqual([]);
  });

  it('(g) URLs, GUIDs, Azure host names, connection-string secrets and key-like strings; named values are fine', () => {
    expect(
      messages(
        doc(
          [
            '    <set-variable name="a" value="{{chargeback-functions-url}}/openai/deployments/gpt-4o-2024-08-06/chat" />',
            '    <set-variable name="b" value="@(context.Request.Headers.GetValueOrDefault(&quot;api-key&quot;, &quot;&quot;))" />',
            '    <validate-azure-ad-token tenant-id="72f988bf-86f1-41af-91ab-2d7cd011db47" />',
            '    <set-variable name="c" value="@(&quot;func-chargeback.azurewebsites.net&quot;)" />',
            '    <set-variable name="d" value="DefaultEndpointsProtocol=https;AccountKey=abc123==" />',
            '    <set-variable name="e" value="0123456789abcdef0123456789abcdef" />',
            '    <set-body>see http://example.com</set-body>',
            '    <!-- comments may link documentation: https://learn.microsoft.com/azure/api-management/ -->',
          ].join('\n'),
        ),
      ),
    ).toEqual([
      '6: attribute tenant-id of <validate-azure-ad-token> holds a literal GUID (an id of a tenant, subscription or application) "72f988bf-86f1-41af-91ab-2d7cd011db47": make it a named value ({{…}})',
      '7: attribute value of <set-variable> holds an Azure resource host name "func-chargeback.azurewebsites.net": make it a named value ({{…}})',
      '8: attribute value of <set-variable> holds a connection-string or URL secret "AccountKey=abc123==": make it a named value ({{…}})',
      '9: attribute value of <set-variable> holds a key-like string "0123456789abcdef0123456789abcdef": make it a named value ({{…}})',
      '10: the text of <set-body> holds a literal URL "http://example.com": make it a named value ({{…}})',
    ]);
  });

  it('the containers of policy statements are elements of the reference that list no children', () => {
    for (const name of POLICY_CONTAINERS) expect(reference.elements[name]?.children).toEqual([]);
  });
});

describe('the policies keep the contract', () => {
  const elements = (file: string): PolicyElement[] =>
    [...walkPolicy(parsePolicyXml(readFileSync(join(policyFolder, file), 'utf8'), file).root)].map(
      (v) => v.element,
    );
  const inbound = (file: string): readonly PolicyElement[] => {
    const section = parsePolicyXml(readFileSync(join(policyFolder, file), 'utf8'), file).root.children.find(
      (c) => c.name === 'inbound',
    );
    return section?.children ?? [];
  };

  it('deletes, before anything else, every gateway header and every request id a caller could choose', () => {
    const deleted: string[] = [];
    for (const element of inbound(GLOBAL_POLICY_FILE)) {
      if (element.name === 'base') continue;
      if (element.name !== 'set-header' || element.attributes['exists-action'] !== 'delete') break;
      deleted.push((element.attributes.name ?? '').toLowerCase());
    }
    expect(deleted.sort()).toEqual([...GATEWAY_HEADER_NAMES, ...SPOOFABLE_REQUEST_ID_HEADERS].sort());
  });

  it('reports remaining requests and tokens in the contract headers, and deletes each API key header and parameter', () => {
    for (const api of Object.values(APIM_APIS)) {
      const all = elements(api.policyFile);
      for (const limit of all.filter((e) => e.name === 'rate-limit-by-key')) {
        const header = limit.attributes['remaining-calls-header-name'];
        if (header !== undefined)
          expect({ file: api.policyFile, header }).toEqual({
            file: api.policyFile,
            header: REMAINING_REQUESTS_HEADER,
          });
      }
      for (const limit of all.filter((e) => e.name === 'llm-token-limit')) {
        expect(limit.attributes['remaining-tokens-header-name']).toBe(REMAINING_TOKENS_HEADER);
      }
      if (!api.subscriptionKey) continue;
      const deletes = (element: string, name: string): boolean =>
        all.some(
          (e) =>
            e.name === element && e.attributes.name === name && e.attributes['exists-action'] === 'delete',
        );
      expect(deletes('set-header', api.subscriptionKey.header)).toBe(true);
      expect(deletes('set-query-parameter', api.subscriptionKey.query)).toBe(true);
    }
  });
});
