import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import {
  countTextTokens,
  estimateChatPromptTokens,
  estimateEmbeddingInputTokens,
  RunningTokenCount,
} from '../../../shared/metering/token-estimate';

/** OpenAI's chat framing as the module documents it: 3 + 1 (role) per message, 3 to prime the reply. */
const PER_MESSAGE = 4;
const PRIMING = 3;

describe('countTextTokens', () => {
  it.each([
    ['Hello, world!', 4],
    ['hello world', 2],
    ['The quick brown fox jumps over the lazy dog.', 10],
    ['You are a helpful assistant.', 6],
    ['What is the capital of France?', 7],
    ['你好，世界', 3],
  ])('counts %j as %i o200k tokens, as the tokenizer does', (text, tokens) => {
    expect(countTextTokens(text)).toBe(tokens);
    expect(countTextTokens(text)).toBe(countTokens(text));
  });

  it('counts an empty string as no tokens', () => {
    expect(countTextTokens('')).toBe(0);
  });

  it('counts white space: a lone space is one token', () => {
    expect(countTextTokens(' ')).toBe(1);
  });

  it('grows with the text: a long prompt is not capped', () => {
    const text = 'The quick brown fox jumps over the lazy dog. '.repeat(200);
    expect(countTextTokens(text)).toBe(countTokens(text));
    expect(countTextTokens(text)).toBeGreaterThan(1_900);
  });
});

describe('estimateChatPromptTokens', () => {
  it('primes the reply with 3 tokens even without messages', () => {
    expect(estimateChatPromptTokens([])).toBe(3);
  });

  it('adds 4 tokens of framing per message to its content tokens', () => {
    const messages = [
      { role: 'system', content: 'You are a helpful assistant.' }, // 6 tokens
      { role: 'user', content: 'What is the capital of France?' }, // 7 tokens
    ];
    // 3 + (4 + 6) + (4 + 7)
    expect(estimateChatPromptTokens(messages)).toBe(24);
    expect(estimateChatPromptTokens(messages)).toBe(
      PRIMING +
        2 * PER_MESSAGE +
        countTokens('You are a helpful assistant.') +
        countTokens('What is the capital of France?'),
    );
  });

  it('counts a message with empty content by its framing only', () => {
    expect(estimateChatPromptTokens([{ content: '' }])).toBe(7);
  });

  it('counts the text parts of array content, joined without a separator', () => {
    const messages = [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Hello' },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } },
          { type: 'text', text: 'world' },
        ],
      },
    ];
    // The text is 'Helloworld' (3 tokens), not 'Hello' + 'world' counted apart (2 tokens).
    expect(countTokens('Helloworld')).toBe(3);
    expect(estimateChatPromptTokens(messages)).toBe(3 + 4 + 3);
  });

  it('counts array content the same as the equivalent string', () => {
    const parts = [
      { type: 'text', text: 'The quick brown fox ' },
      { type: 'text', text: 'jumps over the lazy dog.' },
    ];
    expect(estimateChatPromptTokens([{ content: parts }])).toBe(
      estimateChatPromptTokens([{ content: 'The quick brown fox jumps over the lazy dog.' }]),
    );
    expect(estimateChatPromptTokens([{ content: parts }])).toBe(3 + 4 + 10);
  });

  it('skips parts without string text (images, audio, malformed parts)', () => {
    const content = [
      { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
      { type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } },
      { type: 'text', text: 42 },
      null,
      'a bare string part',
      { type: 'text', text: 'Hello, world!' }, // 4 tokens
    ];
    expect(estimateChatPromptTokens([{ content }])).toBe(3 + 4 + 4);
  });

  it.each([
    ['missing', {}],
    ['null', { content: null }],
    ['a number', { content: 12345 }],
    ['an object', { content: { text: 'not a list of parts' } }],
    ['an empty array', { content: [] }],
  ])('counts only the framing when content is %s', (_, message) => {
    expect(estimateChatPromptTokens([message])).toBe(3 + 4);
  });

  it('does not count other message fields (role, name, tool calls)', () => {
    const messages = [
      {
        role: 'assistant',
        name: 'a-very-long-assistant-name',
        content: null,
        tool_calls: [{ id: 'call_1' }],
      },
      { role: 'user', content: 'hello world' }, // 2 tokens
    ];
    expect(estimateChatPromptTokens(messages)).toBe(3 + 4 + (4 + 2));
  });

  it('adds up over many messages', () => {
    const messages = Array.from({ length: 10 }, () => ({ content: 'Hello, world!' }));
    expect(estimateChatPromptTokens(messages)).toBe(3 + 10 * (4 + 4));
  });
});

describe('countTextTokens on text that spells a special token', () => {
  it('counts it as the plain text it is, rather than throwing (the event would be lost)', () => {
    const text = 'The model wrote <|endoftext|> and went on.';
    expect(() => countTextTokens(text)).not.toThrow();
    expect(countTextTokens(text)).toBe(countTokens(text, { disallowedSpecial: new Set() }));
    expect(countTextTokens(text)).toBeGreaterThan(countTokens('The model wrote  and went on.'));
  });
});

describe('estimateEmbeddingInputTokens', () => {
  it.each([
    ['a string', 'hello world', 2],
    ['strings', ['hello world', 'Hello, world!'], 2 + 4],
    ['a token array', [1, 2, 3], 3],
    ['token arrays', [[1, 2], [3]], 3],
    ['nothing usable', { text: 'x' }, 0],
  ])('counts %s without chat framing', (_, input, tokens) => {
    expect(estimateEmbeddingInputTokens(input)).toBe(tokens);
  });
});

/** A text of `length` characters drawn from `pieces`, reproducibly (a small linear congruential generator). */
function randomText(pieces: readonly string[], length: number, seed: number): string {
  let state = seed;
  const next = (n: number): number => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state % n;
  };
  let text = '';
  while (text.length < length) text += pieces[next(pieces.length)];
  return text;
}

/** Cuts a text into deltas of 1 to `max` characters, as a stream delivers it. */
function deltas(text: string, max: number, seed: number): string[] {
  let state = seed;
  const out: string[] = [];
  for (let i = 0; i < text.length;) {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    const size = 1 + (state % max);
    out.push(text.slice(i, i + size));
    i += size;
  }
  return out;
}

describe('RunningTokenCount', () => {
  const WORDS = [
    ' the',
    ' ledger',
    ' Finance',
    ' café',
    ' naïve',
    ' 12345',
    ' 3.14',
    '.',
    ',',
    '!',
    '?',
    ' "quoted"',
    " it's",
    ' (aside)',
    '\n',
    '\n\n',
    '  ',
    '\t',
    ' 😀',
    ' 东京',
    ' ---',
    ' x/y',
    ' CamelCase',
    ' snake_case',
    ' <|endoftext|>',
  ];

  it.each([
    [1, 3],
    [2, 40],
    [3, 2_000],
    [4, 20_000],
  ])(
    'counts a text streamed in pieces exactly as the whole text (seed %i, deltas up to %i characters)',
    (seed, max) => {
      const text = randomText(WORDS, 200_000, seed);
      const running = new RunningTokenCount();
      for (const delta of deltas(text, max, seed)) running.add(delta);
      expect(running.total()).toBe(countTextTokens(text));
    },
  );

  it('keeps at most 4 Ki characters waiting, however long the text', () => {
    const running = new RunningTokenCount();
    let longest = 0;
    const text = randomText(WORDS, 500_000, 7);
    for (const delta of deltas(text, 50, 7)) {
      running.add(delta);
      longest = Math.max(longest, running.pendingLength);
    }
    expect(longest).toBeLessThanOrEqual(4 * 1024);
    expect(running.total()).toBe(countTextTokens(text));
  });

  it('cuts text without a split point (no spaces) at the bound, staying within a token or two per cut', () => {
    const text = '东京の会計は月末に締まる。'.repeat(20_000); // no spaces at all
    const running = new RunningTokenCount();
    let longest = 0;
    let cuts = 0;
    for (const delta of [...deltas(text, 30, 11), 'x'.repeat(10_000)]) {
      const before = running.pendingLength;
      running.add(delta);
      if (running.pendingLength < before + delta.length) cuts += 1;
      longest = Math.max(longest, running.pendingLength);
    }
    expect(longest).toBeLessThanOrEqual(4 * 1024);
    expect(cuts).toBeGreaterThan(0);
    const exact = countTextTokens(text) + countTextTokens('x'.repeat(10_000));
    expect(Math.abs(running.total() - exact)).toBeLessThanOrEqual(2 * cuts + 2);
  });

  it('never cuts a surrogate pair in half', () => {
    // After the 'a', every character is a surrogate pair whose high half sits where a cut at the
    // bound would land; no spaces. A run of this emoji is one token each; a half pair would not be.
    expect(countTextTokens(`a${'😀'.repeat(1_000)}`)).toBe(1 + 1_000);
    const running = new RunningTokenCount();
    for (const delta of deltas(`a${'😀'.repeat(20_000)}`, 7, 5)) running.add(delta);
    expect(running.total()).toBe(1 + 20_000);
  });

  it('counts nothing for no text', () => {
    const running = new RunningTokenCount();
    running.add('');
    expect(running.total()).toBe(0);
  });
});
