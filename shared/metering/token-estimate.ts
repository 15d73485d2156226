import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';

/**
 * Token counts for when the upstream reported none (an interrupted stream): the o200k encoding of
 * the GPT-4o family, with OpenAI's chat framing (3 tokens and a role token per message, 3 to prime
 * the reply). Events counted this way are flagged as estimated.
 */

/**
 * Text that spells a special token (`<|endoftext|>`) is counted as the text it is, as the service
 * does with a caller's text; by default the tokenizer throws on it, and the event would be lost.
 */
const AS_PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

export function countTextTokens(text: string): number {
  return text ? countTokens(text, AS_PLAIN_TEXT) : 0;
}

/** Text waiting to be counted is counted once it is longer than this (UTF-16 code units). */
const PENDING_LIMIT = 4 * 1024;

/**
 * The token count of a text that arrives in pieces (a streamed answer), counted as it arrives
 * without keeping the text: what countTextTokens would give for the whole text at once.
 *
 * Once more than PENDING_LIMIT code units wait, the text is counted up to its last split point, a
 * space that follows a character other than white space: the tokenizer's pre-tokenizer always
 * starts a new piece there and no piece reaches across it, so counting the text on either side
 * apart gives exactly the whole text's count. The rest waits for more text. Memory is bounded:
 * after each add, at most PENDING_LIMIT code units (8 KB) wait, however long the text. Text that
 * still waits beyond that has no split point (a run without spaces: Chinese or Japanese, base64)
 * and is cut at the limit anyway; each such cut may shift the count by a token or so. The bound
 * also bounds the tokenizer's work on such runs, which grows with the square of a piece's length.
 */
export class RunningTokenCount {
  #counted = 0;
  #pending = '';
  /** Where the last split point in `#pending` is; 0 when it has none. */
  #split = 0;
  /** The last code unit added (kept apart: reading it from `#pending` would flatten that string). */
  #last = 0x20;

  add(text: string): void {
    if (!text) return;
    const start = this.#pending.length;
    const previous = this.#last;
    this.#pending += text;
    this.#last = text.charCodeAt(text.length - 1);
    // Look for a split point in the new text only, so that each piece of text is searched once.
    for (let i = text.lastIndexOf(' '); i >= 0; i = i > 0 ? text.lastIndexOf(' ', i - 1) : -1) {
      const before = i > 0 ? text.charCodeAt(i - 1) : previous;
      if (start + i > 0 && !isWhiteSpace(before)) {
        this.#split = start + i;
        break;
      }
    }
    if (this.#pending.length <= PENDING_LIMIT) return;
    if (this.#split > 0) this.#countUpTo(this.#split);
    while (this.#pending.length > PENDING_LIMIT) {
      // No split point within the limit: cut anyway, never between the halves of a surrogate pair.
      this.#countUpTo(
        isHighSurrogate(this.#pending.charCodeAt(PENDING_LIMIT - 1)) ? PENDING_LIMIT - 1 : PENDING_LIMIT,
      );
    }
  }

  /** The tokens of all the text added so far. */
  total(): number {
    return this.#counted + countTextTokens(this.#pending);
  }

  /** How much text waits to be counted (UTF-16 code units). */
  get pendingLength(): number {
    return this.#pending.length;
  }

  #countUpTo(end: number): void {
    this.#counted += countTextTokens(this.#pending.slice(0, end));
    this.#pending = this.#pending.slice(end);
    // What is left follows the last split point, or is a cut's remainder: it holds none.
    this.#split = 0;
  }
}

const WHITE_SPACE = /\s/;

function isWhiteSpace(code: number): boolean {
  if (code > 0x20 && code < 0x7f) return false; // printable ASCII, the common case
  return WHITE_SPACE.test(String.fromCharCode(code));
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

export function estimateChatPromptTokens(messages: ReadonlyArray<{ content?: unknown }>): number {
  let total = 3;
  for (const message of messages) total += 4 + countTextTokens(contentText(message.content));
  return total;
}

/**
 * The input tokens of an embeddings request: its texts' tokens, or the token arrays' lengths
 * (no framing: embeddings bill the input as it is).
 */
export function estimateEmbeddingInputTokens(input: unknown): number {
  if (typeof input === 'string') return countTextTokens(input);
  if (!Array.isArray(input)) return 0;
  if (input.every((item) => typeof item === 'number')) return input.length; // one token array
  let total = 0;
  for (const item of input as unknown[]) {
    if (typeof item === 'string') total += countTextTokens(item);
    else if (Array.isArray(item)) total += item.length;
  }
  return total;
}

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part) =>
        typeof part === 'object' && part !== null && typeof (part as { text?: unknown }).text === 'string'
          ? (part as { text: string }).text
          : '',
      )
      .join('');
  }
  return '';
}
