import { billableCharacters, escapeXml, spokenText } from '../../../shared/metering/speech-billing';
import { apiErrorOf } from '../../fixtures/errors';

const SSML_NS = 'xmlns="http://www.w3.org/2001/10/synthesis"';

describe('spokenText', () => {
  it('keeps the text of a plain SSML document and drops the markup', () => {
    const ssml = `<speak version="1.0" ${SSML_NS} xml:lang="en-US"><voice name="en-US-AvaNeural">Hello, world!</voice></speak>`;
    expect(spokenText(ssml)).toBe('Hello, world!');
  });

  it('collects the text of nested elements in document order', () => {
    const ssml =
      `<speak version="1.0" ${SSML_NS} xml:lang="en-US"><voice name="en-US-AvaNeural">` +
      '<p><s>Good <emphasis level="strong">morning</emphasis>.</s><s>Take <prosody rate="slow">a <break time="500ms"/>seat</prosody>.</s></p>' +
      '</voice></speak>';
    expect(spokenText(ssml)).toBe('Good morning.Take a seat.');
  });

  it('does not count attribute values (voice names, aliases, phonemes)', () => {
    const ssml = `<speak ${SSML_NS}><voice name="en-US-AndrewMultilingualNeural"><sub alias="World Wide Web">WWW</sub></voice></speak>`;
    expect(spokenText(ssml)).toBe('WWW');
  });

  it('decodes the predefined and numeric character entities', () => {
    expect(spokenText('<speak>Tom &amp; Jerry &lt;3 &quot;cheese&quot; &apos;n&apos; &gt;</speak>')).toBe(
      'Tom & Jerry <3 "cheese" \'n\' >',
    );
    expect(spokenText('<speak>&#65;&#x42;&#x4E2D;</speak>')).toBe('AB中');
  });

  it('includes CDATA and leaves out comments and processing instructions', () => {
    expect(spokenText('<speak>x <![CDATA[< y & z]]><!-- not spoken -->!<?mark here?></speak>')).toBe(
      'x < y & z!',
    );
  });

  it('collapses runs of white space, indentation included, and trims the ends', () => {
    const ssml = `<?xml version="1.0" encoding="utf-8"?>
<speak version="1.0" ${SSML_NS} xml:lang="en-US">
  <voice name="en-US-AvaNeural">
    First   line,
    second\tline.
  </voice>
  <voice name="en-US-AndrewNeural">Third.</voice>
</speak>
`;
    expect(spokenText(ssml)).toBe('First line, second line. Third.');
  });

  it('accepts a namespace-prefixed speak root', () => {
    expect(spokenText('<s:speak xmlns:s="http://www.w3.org/2001/10/synthesis">Hi</s:speak>')).toBe('Hi');
  });

  it('gives an empty text for a document with nothing to say', () => {
    expect(
      spokenText(`<speak ${SSML_NS}><voice name="en-US-AvaNeural">  <break time="1s"/> </voice></speak>`),
    ).toBe('');
  });

  it.each([
    ['an unclosed element', '<speak><voice>Hello</speak>'],
    ['an unclosed root', '<speak>Hello'],
    ['an undefined entity', '<speak>&nbsp;</speak>'],
    ['a bare ampersand', '<speak>Tom & Jerry</speak>'],
    ['text after the root', '<speak>Hello</speak> world'],
    ['two roots', '<speak>a</speak><speak>b</speak>'],
    ['no root at all', ''],
    ['plain text', 'Hello world'],
  ])('refuses malformed SSML (%s) with 400', (_, ssml) => {
    const error = apiErrorOf(() => spokenText(ssml));
    expect(error.status).toBe(400);
    expect(error.code).toBe('BadRequest');
    expect(error.message).toMatch(/^The SSML is not well-formed XML: /);
  });

  it('refuses a well-formed document whose root is not speak with 400', () => {
    const error = apiErrorOf(() => spokenText('<voice name="en-US-AvaNeural">Hello</voice>'));
    expect(error.status).toBe(400);
    expect(error.message).toBe('The SSML document must have a <speak> root element.');
  });

  it('refuses a DTD-declared entity (no entity expansion)', () => {
    const ssml = '<!DOCTYPE speak [<!ENTITY big "AAAAAAAAAA">]><speak>&big;</speak>';
    expect(apiErrorOf(() => spokenText(ssml)).status).toBe(400);
  });
});

describe('billableCharacters', () => {
  it('counts plain ASCII once per character, spaces and punctuation included', () => {
    expect(billableCharacters('Hello, world!')).toBe(13);
    expect(billableCharacters('a b')).toBe(3);
    expect(billableCharacters('')).toBe(0);
  });

  it('counts Chinese characters twice', () => {
    expect(billableCharacters('你好')).toBe(4);
    expect(billableCharacters('你好世界')).toBe(8);
  });

  it('counts Japanese kana and kanji twice', () => {
    expect(billableCharacters('こんにちは')).toBe(10); // hiragana
    expect(billableCharacters('カタカナ')).toBe(8); // katakana
    expect(billableCharacters('日本')).toBe(4); // kanji
  });

  it('counts Korean Hangul twice', () => {
    expect(billableCharacters('안녕하세요')).toBe(10);
  });

  it('counts CJK punctuation and the prolonged sound mark once (they are not Han, kana or Hangul)', () => {
    // 。 and 、 (U+3002, U+3001) and ー (U+30FC) are Script=Common.
    expect(billableCharacters('。、ー')).toBe(3);
    expect(billableCharacters('你好。')).toBe(5);
  });

  it('mixes single and double counts', () => {
    // H i , space = 4 singles; 世 界 = 2 doubles; ! = 1 single → 4 + 4 + 1
    expect(billableCharacters('Hi, 世界!')).toBe(9);
  });

  it('counts code points, not UTF-16 units', () => {
    expect(billableCharacters('😀')).toBe(1); // one astral code point, two UTF-16 units
    expect(billableCharacters('𠀀')).toBe(2); // U+20000, a Han character outside the BMP
    expect(billableCharacters('e\u0301')).toBe(2); // e + combining acute: two code points
  });

  it('counts accented Latin and Cyrillic letters once', () => {
    expect(billableCharacters('café')).toBe(4);
    expect(billableCharacters('Привет')).toBe(6);
  });

  it('bills the spoken text of an SSML document, markup excluded', () => {
    const ssml = `<speak ${SSML_NS} xml:lang="zh-CN"><voice name="zh-CN-XiaoxiaoNeural">你好, <emphasis>world</emphasis></voice></speak>`;
    // "你好, world": 2×2 + ", " 2 + "world" 5
    expect(billableCharacters(spokenText(ssml))).toBe(11);
  });
});

describe('escapeXml', () => {
  it('escapes the five XML special characters', () => {
    expect(escapeXml(`<a href="x">Tom & Jerry's</a>`)).toBe(
      '&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&apos;s&lt;/a&gt;',
    );
  });

  it('leaves other text alone', () => {
    expect(escapeXml('Hello, 世界! 1 + 2 = 3; #hash')).toBe('Hello, 世界! 1 + 2 = 3; #hash');
  });

  it('escapes an ampersand that already looks like an entity', () => {
    expect(escapeXml('&amp;')).toBe('&amp;amp;');
  });

  it('makes any text safe to embed in SSML, where it reads back unchanged and bills as the text', () => {
    const text = `if a < b && c > "d" then 'e' </voice></speak><speak>`;
    const ssml = `<speak ${SSML_NS}><voice name="en-US-AvaNeural">${escapeXml(text)}</voice></speak>`;
    expect(spokenText(ssml)).toBe(text);
    expect(billableCharacters(spokenText(ssml))).toBe(text.length);
  });
});
