import { createHash, randomBytes } from 'node:crypto';
import * as cl100k from 'gpt-tokenizer/encoding/cl100k_base';
import * as o200k from 'gpt-tokenizer/encoding/o200k_base';

/**
 * What the Azure OpenAI simulator says and how it counts: tokenizers per model family, chat prompt
 * accounting, Azure's prompt caching, reasoning tokens and a deterministic reply.
 */

export interface Tokenizer {
  encode(text: string): number[];
  decodePieces(ids: readonly number[]): string[];
}

/** User text is text: `<|endoftext|>` in a prompt is counted as characters, never as a control token. */
const AS_TEXT = { disallowedSpecial: new Set<string>() };

/**
 * Benchmarks send the same system prompts and get the same replies over and over: short texts'
 * tokens are remembered (bounded), so a request costs little beyond its new text.
 */
function memoized(encode: (text: string) => number[]): (text: string) => number[] {
  const memo = new Map<string, number[]>();
  return (text) => {
    if (text.length > 4096) return encode(text);
    let ids = memo.get(text);
    if (!ids) {
      ids = encode(text);
      if (memo.size >= 4096) memo.clear();
      memo.set(text, ids);
    }
    return ids;
  };
}

const O200K: Tokenizer = {
  encode: memoized((text) => o200k.encode(text, AS_TEXT)),
  decodePieces: (ids) => [...o200k.decodeGenerator(ids)],
};
const CL100K: Tokenizer = {
  encode: memoized((text) => cl100k.encode(text, AS_TEXT)),
  decodePieces: (ids) => [...cl100k.decodeGenerator(ids)],
};

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
let idCounter = 0;
const idSeed = randomBytes(8).toString('hex');

/**
 * A unique id of the given length in the service's style, without the cost of fresh randomness
 * per id: a hash of a per-process seed and a counter.
 */
export function serviceId(length: number): string {
  const digest = createHash('sha256').update(`${idSeed}:${idCounter++}`).digest();
  let id = '';
  for (let i = 0; i < length; i++) id += ID_ALPHABET[(digest[i % digest.length] ?? 0) % ID_ALPHABET.length];
  return id;
}

/** gpt-4o, gpt-4.1, gpt-5 and the o-series use o200k_base; older chat models and embeddings cl100k_base. */
export function tokenizerFor(model: string): Tokenizer {
  return /^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o\d|chatgpt-4o|codex)/.test(model) ? O200K : CL100K;
}

export function isReasoningModel(model: string): boolean {
  return /^(o\d|gpt-5|codex)/.test(model) && !/^gpt-5[\w.-]*-chat/.test(model);
}

export function isEmbeddingModel(model: string): boolean {
  return model.startsWith('text-embedding-');
}

export const EMBEDDING_DIMENSIONS: Readonly<Record<string, number>> = {
  'text-embedding-3-small': 1536,
  'text-embedding-3-large': 3072,
  'text-embedding-ada-002': 1536,
};

/**
 * A prompt as the model sees it: `ids` is the token sequence used for prefix caching (framing
 * tokens included, as stand-in ids), `tokens` the billed count (the sequence plus reply priming).
 */
export interface Prompt {
  ids: number[];
  tokens: number;
  /** The last user text, which the reply talks about. */
  question: string;
}

// Stand-in ids for tokens that are not text (message framing, images). Outside every vocabulary.
const FRAME = [-1, -2, -3];
const IMAGE = -4;
/** Per message, OpenAI's chat format adds 3 framing tokens, and 1 more after a `name`. */
const NAME_SEPARATOR = -5;
/** Every reply is primed with `<|start|>assistant<|message|>`. */
const REPLY_PRIMING = 3;
/** gpt-4o vision: a low-detail image costs 85 tokens; a high-detail one 85 + 170 per 512 px tile. */
const IMAGE_TOKENS_LOW = 85;
const IMAGE_TOKENS_HIGH = 85 + 170 * 4;

export interface PromptPart {
  role: string;
  /** A string, or an array of content parts (text, image). */
  content: unknown;
  name?: string;
  /** Tool calls or other structured content, counted as their JSON. */
  extra?: unknown;
}

export class PromptBuilder {
  readonly ids: number[] = [];
  private question = '';

  constructor(private readonly tokenizer: Tokenizer) {}

  /** Tool or function definitions: the service renders them into the system prompt. */
  addJson(value: unknown): this {
    if (value !== undefined && value !== null) this.push(this.tokenizer.encode(JSON.stringify(value)));
    return this;
  }

  addMessage(message: PromptPart): this {
    this.push(FRAME);
    this.push(this.tokenizer.encode(message.role));
    if (message.name) {
      this.push(this.tokenizer.encode(message.name));
      this.ids.push(NAME_SEPARATOR);
    }
    const text = this.addContent(message.content);
    if (message.extra !== undefined && message.extra !== null) this.addJson(message.extra);
    if (message.role === 'user' && text) this.question = text;
    return this;
  }

  /** Context carried over from an earlier turn (a stored response), as already-counted ids. */
  addIds(ids: readonly number[]): this {
    this.push(ids);
    return this;
  }

  build(): Prompt {
    return { ids: this.ids, tokens: this.ids.length + REPLY_PRIMING, question: this.question };
  }

  private addContent(content: unknown): string {
    if (typeof content === 'string') {
      this.push(this.tokenizer.encode(content));
      return content;
    }
    if (!Array.isArray(content)) return '';
    let text = '';
    for (const part of content as unknown[]) {
      if (typeof part !== 'object' || part === null) continue;
      const { type } = part as { type?: unknown };
      if ('text' in part && typeof part.text === 'string') {
        this.push(this.tokenizer.encode(part.text));
        text += part.text;
      } else if (type === 'image_url' || type === 'input_image') {
        const detail =
          (part as { image_url?: { detail?: unknown }; detail?: unknown }).image_url?.detail ??
          (part as { detail?: unknown }).detail;
        const count = detail === 'low' ? IMAGE_TOKENS_LOW : IMAGE_TOKENS_HIGH;
        for (let i = 0; i < count; i++) this.ids.push(IMAGE);
      } else {
        this.addJson(part);
      }
    }
    return text;
  }

  private push(ids: readonly number[]): void {
    for (const id of ids) this.ids.push(id);
  }
}

/** Azure caches prompts of at least 1024 tokens and reports cache hits in steps of 128 tokens. */
const CACHE_MIN_TOKENS = 1024;
const CACHE_STEP_TOKENS = 128;

/**
 * Azure OpenAI prompt caching: a prompt whose first 1024+ tokens were seen recently (same
 * deployment) reports the longest such prefix, in 128-token steps, as cached. A bounded LRU of
 * prefix hashes with an idle expiry, as the service evicts after minutes of inactivity.
 */
export class PromptCache {
  private readonly entries = new Map<string, number>();

  constructor(
    private readonly capacity = 20_000,
    private readonly ttlMs = 10 * 60_000,
  ) {}

  /** Returns the cached tokens of this prompt and remembers its prefixes for later requests. */
  use(scope: string, ids: readonly number[]): number {
    if (ids.length < CACHE_MIN_TOKENS) return 0;
    const now = Date.now();
    const hash = createHash('sha1').update(scope);
    let cached = 0;
    for (let end = CACHE_STEP_TOKENS; end <= ids.length; end += CACHE_STEP_TOKENS) {
      hash.update(Buffer.from(Int32Array.from(ids.slice(end - CACHE_STEP_TOKENS, end)).buffer));
      if (end < CACHE_MIN_TOKENS) continue;
      const key = hash.copy().digest('base64');
      const seen = this.entries.get(key);
      if (seen !== undefined && now - seen < this.ttlMs) cached = end;
      this.entries.delete(key); // re-inserting moves it to the young end of the LRU
      this.entries.set(key, now);
    }
    trimOldest(this.entries, this.capacity);
    return cached;
  }
}

/** Forgets a map's oldest entries (in insertion order) beyond `capacity`: the eviction of a bounded LRU. */
export function trimOldest<K>(entries: Map<K, unknown>, capacity: number): void {
  while (entries.size > capacity) {
    const oldest = entries.keys().next();
    if (oldest.done) break;
    entries.delete(oldest.value);
  }
}

export type ReasoningEffort = 'minimal' | 'low' | 'medium' | 'high';

export const REASONING_EFFORTS: readonly string[] = ['minimal', 'low', 'medium', 'high'];

const EFFORT_FACTOR: Record<ReasoningEffort, number> = { minimal: 0.125, low: 0.5, medium: 1, high: 2 };

/** Deterministic per prompt, between 128 and 511 tokens at medium effort, scaled by the effort asked. */
export function reasoningTokensFor(model: string, promptTokens: number, effort: ReasoningEffort): number {
  if (!isReasoningModel(model)) return 0;
  const base = 128 + ((promptTokens * 7) % 384);
  return Math.max(1, Math.round(base * EFFORT_FACTOR[effort]));
}

const SENTENCES = [
  'Here is a concise answer based on what you asked.',
  'The main point is that usage is measured per request and charged per department.',
  'Costs are computed from prompt, cached and completion tokens at the published prices.',
  'Let me know if you would like more detail on any part of this.',
  'Streaming responses arrive token by token, and the last chunk reports usage.',
  'Shared platform costs are allocated by a configurable rule.',
];

/** A deterministic reply about the question, between 2 and 6 sentences depending on the prompt. */
export function composeReply(question: string, promptTokens: number): string {
  const topic = question.split(/\s+/).filter(Boolean).slice(0, 8).join(' ');
  const count = 2 + (promptTokens % 5);
  const start = promptTokens % SENTENCES.length;
  const body = Array.from({ length: count }, (_, i) => SENTENCES[(start + i) % SENTENCES.length]).join(' ');
  return topic ? `You asked about "${topic}". ${body}` : body;
}

export interface Completion {
  /** The visible text and its pieces as streamed (one token each, multi-byte characters kept whole). */
  text: string;
  pieces: string[];
  textTokens: number;
  reasoningTokens: number;
  /** The output token limit cut the reply short. */
  truncated: boolean;
}

/**
 * The reply to a prompt under an output-token limit. Reasoning tokens come first and count
 * against the limit, as on the service, so a small limit can leave no visible text at all.
 */
export function complete(
  tokenizer: Tokenizer,
  model: string,
  prompt: Prompt,
  limit: number | undefined,
  effort: ReasoningEffort,
): Completion {
  let reasoningTokens = reasoningTokensFor(model, prompt.tokens, effort);
  let ids = tokenizer.encode(composeReply(prompt.question, prompt.tokens));
  let truncated = false;
  if (limit !== undefined && reasoningTokens + ids.length > limit) {
    truncated = true;
    reasoningTokens = Math.min(reasoningTokens, limit);
    ids = ids.slice(0, limit - reasoningTokens);
  }
  const pieces = tokenizer.decodePieces(ids);
  return { text: pieces.join(''), pieces, textTokens: ids.length, reasoningTokens, truncated };
}

/** A unit vector that depends only on the text, so equal inputs embed equally. */
export function embeddingVector(text: string, dimensions: number): Float32Array {
  const vector = new Float32Array(dimensions);
  let seed = createHash('sha256').update(text).digest();
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    const byte = i % 32;
    if (byte === 0 && i > 0) seed = createHash('sha256').update(seed).digest();
    const value = ((seed[byte] ?? 0) - 127.5) / 127.5;
    vector[i] = value;
    norm += value * value;
  }
  const scale = 1 / Math.sqrt(norm || 1);
  for (let i = 0; i < dimensions; i++) vector[i] = (vector[i] ?? 0) * scale;
  return vector;
}
