import {
  LineMap,
  PolicyXmlError,
  listPolicyReferences,
  maskPolicyExpressions,
  parsePolicyXml,
  walkPolicy,
} from '../../local/gateway/policy-xml';
import type { PolicyDocument, PolicyElement } from '../../local/gateway/policy-xml';

/**
 * The policy XML reader: C# expressions are masked so that a strict XML parser accepts the file,
 * then restored; every position refers to the file as written.
 */

const FILE = 'apim-policies/test.xml';

/** A policy document with `body` in its inbound section, after `<base />` (line 4 on). */
const policy = (body: string): string =>
  `<policies>\n  <inbound>\n    <base />\n${body}\n  </inbound>\n</policies>\n`;

const find = (doc: PolicyDocument, name: string): PolicyElement => {
  const found = [...walkPolicy(doc.root)].find(({ element }) => element.name === name)?.element;
  if (!found) throw new Error(`no <${name}>`);
  return found;
};

/** Parses `<set-variable name="v" value="EXPRESSION" />` and returns the restored value. */
const attributeExpression = (expression: string): string => {
  const doc = parsePolicyXml(policy(`    <set-variable name="v" value="${expression}" />`), FILE);
  expect(doc.expressions.map((e) => e.text)).toEqual([expression]);
  return find(doc, 'set-variable').attributes.value ?? '';
};

/** Parses `<set-body>EXPRESSION</set-body>` and returns the restored text. */
const textExpression = (expression: string): string => {
  const doc = parsePolicyXml(policy(`    <set-body>${expression}</set-body>`), FILE);
  expect(doc.expressions.map((e) => e.text)).toEqual([expression]);
  return find(doc, 'set-body').text;
};

/** The error parsing `text` throws. */
const failure = (text: string): PolicyXmlError => {
  try {
    parsePolicyXml(text, FILE);
  } catch (err) {
    if (err instanceof PolicyXmlError) return err;
    throw err;
  }
  throw new Error('parsed without an error');
};

describe('expressions survive the masking intact', () => {
  const cases: Array<[string, string]> = [
    ['generics', '@(context.Request.Body.As<JObject>(preserveContent: true)["model"]?.ToString())'],
    [
      'generic methods with two type arguments',
      '@(context.Variables.GetValueOrDefault<Dictionary<string, int>>("counts") != null && 1 < 2)',
    ],
    ['strings holding ) } and escaped quotes', '@("a)b}c\\"d(" + "\\\\" + "{")'],
    ['verbatim strings with "" escapes and backslashes', '@(@"C:\\dir\\""quoted"") }" + @")(" + @"")'],
    ['char literals', "@(s.Split(')')[0] + '}' + '\\'' + '\"' + '\\u0029' + '(')"],
    [
      'nested lambdas with block bodies',
      '@(list.Where(x => x.Items.Any(y => { return y.Name == "}"; })).Count())',
    ],
    ['interpolated strings', '@($"{a}({b.ToString("N2")}) {{literal}} }}" + $@"{c}""")'],
    ['comments', '@(a /* ) } " */ + b)'],
    ['raw ampersands and angle brackets', '@(a < b && b > c & d)'],
  ];
  it.each(cases)('%s, in an attribute value', (_name, expression) => {
    expect(attributeExpression(expression)).toBe(expression);
  });
  it.each(cases)('%s, in element text', (_name, expression) => {
    expect(textExpression(expression)).toBe(expression);
  });

  it('a multi-line @{ } block with line comments, verbatim strings and nested blocks', () => {
    const block = [
      '@{',
      '        // a comment with ) and } and " in it',
      '        var body = context.Request.Body.As<JObject>(preserveContent: true);',
      '        var text = @"first line )',
      'second line }";',
      "        if (body != null && text.IndexOf('}') > 0) {",
      '            return body.ToString();',
      '        }',
      '        return "{}";',
      '    }',
    ].join('\n');
    expect(textExpression(block)).toBe(block);
    expect(attributeExpression(block)).toBe(block);
  });

  it('text around an expression and a second expression are kept apart', () => {
    const doc = parsePolicyXml(
      policy('    <set-body>before @(a) middle @{ return "}"; }after</set-body>'),
      FILE,
    );
    expect(find(doc, 'set-body').text).toBe('before @(a) middle @{ return "}"; }after');
    expect(doc.expressions.map((e) => e.kind)).toEqual(['@(', '@{']);
  });

  it('adjacent expressions are restored in order', () => {
    expect(attributeExpression('@(1)').length).toBe(4);
    const doc = parsePolicyXml(policy('    <set-variable name="v" value="@(one)@(two)" />'), FILE);
    expect(find(doc, 'set-variable').attributes.value).toBe('@(one)@(two)');
  });

  it('XML references inside an expression are read as the characters they stand for', () => {
    const doc = parsePolicyXml(
      policy('    <set-variable name="v" value="@(x.Get(&quot;a)&quot;) &amp;&amp; y)" />'),
      FILE,
    );
    expect(doc.expressions[0]?.text).toBe('@(x.Get(&quot;a)&quot;) &amp;&amp; y)');
    expect(doc.expressions[0]?.code).toBe('@(x.Get("a)") && y)');
    expect(find(doc, 'set-variable').attributes.value).toBe('@(x.Get("a)") && y)');
  });

  it('single-quoted attributes hold expressions too', () => {
    const doc = parsePolicyXml(policy(`    <set-variable name='v' value='@(a["k"] + "'")' />`), FILE);
    expect(find(doc, 'set-variable').attributes.value).toBe(`@(a["k"] + "'")`);
  });

  it('comments and CDATA sections are literal: no expression is looked for there', () => {
    const doc = parsePolicyXml(
      policy('    <!-- @( not an expression -->\n    <set-body><![CDATA[@( nor here <b>]]></set-body>'),
      FILE,
    );
    expect(doc.expressions).toEqual([]);
    expect(find(doc, 'set-body').text).toBe('@( nor here <b>');
    expect(doc.comments).toHaveLength(1);
  });

  it('entities outside expressions are decoded by the XML parser', () => {
    const doc = parsePolicyXml(
      policy('    <set-header name="a&amp;b" exists-action="override"><value>&lt;x&gt;</value></set-header>'),
      FILE,
    );
    expect(find(doc, 'set-header').attributes.name).toBe('a&b');
    expect(find(doc, 'value').text).toBe('<x>');
  });
});

describe('masking keeps lengths and line breaks', () => {
  const text = policy(
    [
      '    <set-variable name="v" value="@{',
      '        var x = "<&>";',
      '        return x;',
      '      }" />',
      '    <set-body>@(a < b)</set-body>',
    ].join('\n'),
  );

  it('has the same length, the same line breaks, and no expression character left', () => {
    const masked = maskPolicyExpressions(text, FILE);
    expect(masked).toHaveLength(text.length);
    const breaks = (s: string): number[] => [...s].flatMap((c, i) => (c === '\n' ? [i] : []));
    expect(breaks(masked)).toEqual(breaks(text));
    expect(masked).not.toMatch(/var x|<&>|a < b/);
    expect(masked.slice(0, text.indexOf('@{'))).toBe(text.slice(0, text.indexOf('@{')));
  });

  it('elements and attributes after a multi-line expression keep their lines and columns', () => {
    const doc = parsePolicyXml(text, FILE);
    const setVariable = find(doc, 'set-variable');
    expect(setVariable).toMatchObject({ line: 4, column: 5 });
    expect(setVariable.attributeList.map((a) => [a.name, a.line, a.column])).toEqual([
      ['name', 4, 19],
      ['value', 4, 28],
    ]);
    expect(find(doc, 'set-body')).toMatchObject({ line: 8, column: 5 });
    expect(doc.expressions.map((e) => [e.kind, e.line, e.column])).toEqual([
      ['@{', 4, 35],
      ['@(', 8, 15],
    ]);
    expect(text.slice(setVariable.attributeList[1]?.valueStart, setVariable.attributeList[1]?.valueEnd)).toBe(
      doc.expressions[0]?.text,
    );
  });

  it('an XML error after a multi-line expression is reported on its own line', () => {
    const err = failure(text.replace('</set-body>', '</set-bodY>'));
    expect(err.line).toBe(8);
    expect(err.message).toMatch(/^apim-policies\/test\.xml:8:\d+: malformed XML/);
  });

  it('CRLF line endings count as one line break', () => {
    const crlf = text.replace(/\n/g, '\r\n');
    const doc = parsePolicyXml(crlf, FILE);
    expect(find(doc, 'set-body')).toMatchObject({ line: 8, column: 5 });
    expect(failure(crlf.replace('</set-body>', '</set-bodY>')).line).toBe(8);
  });

  it('LineMap maps offsets to 1-based lines and columns', () => {
    const map = new LineMap('ab\ncd\r\nef\rg');
    expect([0, 1, 3, 4, 7, 10].map((o) => map.position(o))).toEqual([
      { line: 1, column: 1 },
      { line: 1, column: 2 },
      { line: 2, column: 1 },
      { line: 2, column: 2 },
      { line: 3, column: 1 },
      { line: 4, column: 1 },
    ]);
  });
});

describe('errors name the file, line and column', () => {
  it('an expression never closed, at its start', () => {
    const err = failure(policy('    <set-body>@{\n      if (a) {\n        return "x";\n    }</set-body>'));
    expect(err.message).toMatch(
      /^apim-policies\/test\.xml:4:15: unbalanced expression: the expression @\{ is never closed/,
    );
    expect([err.file, err.line, err.column]).toEqual([FILE, 4, 15]);
  });

  it('a closing bracket of the wrong kind, where it is', () => {
    const err = failure(policy('    <set-variable name="v" value="@(a[0)]" />'));
    expect(err.message).toMatch(
      /^apim-policies\/test\.xml:4:40: unbalanced expression: '\)' where '\]' was expected \(in the expression @\( at 4:35\)/,
    );
  });

  it('a string literal that runs to the end of its line', () => {
    const err = failure(policy('    <set-body>@(\n      "abc\n    )</set-body>'));
    expect(err.message).toMatch(
      /^apim-policies\/test\.xml:5:7: unterminated string literal \(in the expression @\( at 4:15\)/,
    );
  });

  it('a verbatim string that runs to the end of the file', () => {
    expect(failure(policy('    <set-body>@(@"abc)</set-body>')).message).toMatch(
      /^apim-policies\/test\.xml:4:17: unterminated verbatim string literal/,
    );
  });

  it('an unterminated character literal', () => {
    expect(failure(policy("    <set-body>@(s.Split('xy))</set-body>")).message).toMatch(
      /^apim-policies\/test\.xml:4:25: unterminated character literal/,
    );
  });

  it('malformed XML outside expressions', () => {
    expect(failure(policy('    <set-header name="a" name="b" />')).message).toMatch(
      /^apim-policies\/test\.xml:4:\d+: malformed XML: duplicate attribute: name/,
    );
    expect(failure(policy('    <set-body>a & b</set-body>')).message).toMatch(
      /^apim-policies\/test\.xml:4:17: malformed XML: a bare '&'/,
    );
    expect(failure(policy('    <set-variable name="a&b" value="x" />')).message).toMatch(
      /^apim-policies\/test\.xml:4:26: /,
    );
    expect(failure('<policies>\n  <inbound>\n').line).toBe(3);
  });

  it('a DOCTYPE', () => {
    expect(failure('<!DOCTYPE policies>\n<policies />').message).toMatch(
      /^apim-policies\/test\.xml:1:1: markup declarations/,
    );
  });
});

describe('listPolicyReferences', () => {
  it('lists every expression and every named value, as written, with positions', () => {
    const text = policy(
      [
        '    <set-header name="x-functions-key" exists-action="override">',
        '      <value>{{chargeback-function-key}}</value>',
        '    </set-header>',
        '    <set-variable name="v" value="@(&quot;{{entra-tenant-id}}&quot;)" />',
        '    <!-- {{in-a-comment}} -->',
      ].join('\n'),
    );
    const { expressions, namedValues } = listPolicyReferences(text, FILE);
    expect(expressions).toEqual([
      {
        kind: '@(',
        text: '@(&quot;{{entra-tenant-id}}&quot;)',
        code: '@("{{entra-tenant-id}}")',
        start: text.indexOf('@('),
        end: text.indexOf('@(') + '@(&quot;{{entra-tenant-id}}&quot;)'.length,
        line: 7,
        column: 35,
      },
    ]);
    expect(namedValues.map((n) => [n.name, n.text, n.line, n.column])).toEqual([
      ['chargeback-function-key', '{{chargeback-function-key}}', 5, 14],
      ['entra-tenant-id', '{{entra-tenant-id}}', 7, 43],
      ['in-a-comment', '{{in-a-comment}}', 8, 10],
    ]);
    expect(parsePolicyXml(text, FILE).namedValues).toEqual(namedValues);
  });
});
