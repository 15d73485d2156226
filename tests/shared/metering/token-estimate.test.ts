import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { countTextTokens, estimateChatPromptTokens } from '../../../shared/metering/token-estimate';

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
