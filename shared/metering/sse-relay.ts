import { ReadableStream } from 'node:stream/web';
import { createParser } from 'eventsource-parser';
import { RunningTokenCount } from './token-estimate';

/** An upstream answer's body as it arrives, and a way to stop it (the caller went away). */
export interface UpstreamBody {
  chunks: AsyncIterable<Uint8Array>;
  cancel(reason: Error): void;
}

export interface StreamOutcome {
  usage: unknown;
  model: string;
  /**
   * The tokens of the streamed text (chat `choices[].delta.content`, Responses API
   * `response.output_text.delta`), counted as it arrived: the estimate when the upstream sent no usage.
   */
  completionTokens: () => number;
}

interface StreamChunk {
  type?: unknown;
  model?: unknown;
  usage?: unknown;
  delta?: unknown;
  response?: { model?: unknown; usage?: unknown };
  choices?: Array<{ delta?: { content?: unknown } } | null>;
}

/** A usage object (not `usage: null`): only the final chunk of a stream carries one. */
const USAGE_OBJECT = /"usage"\s*:\s*\{/;
/** `"usage":null` with the comma that joins it to its neighbours; quotes inside JSON strings are escaped, so a match is always a key. */
const USAGE_NULL = /\s*,\s*"usage"\s*:\s*null(?=\s*[,}])|"usage"\s*:\s*null\s*,?/;

/** A `"content"` key with a string value (the text of a chat delta, where it opens the delta). */
const CONTENT_STRING = /"content"\s*:\s*"/g;
/** What comes before a chat delta's `"content"` when it is the delta's first key (spacing aside). */
const DELTA_OPENING = '"delta":{';
const SPACED_DELTA_OPENING = /"delta"\s*:\s*\{\s*$/;
/** A Responses API text delta event, and the key of its text. */
const TEXT_DELTA_EVENT = /"type"\s*:\s*"response\.output_text\.delta"/;
const DELTA_KEY = '"delta"';
/** A string value after a key. */
const STRING_VALUE = /\s*:\s*"/y;

/**
 * Passes SSE through as it arrives. Watches the events for the model and the final usage, parsing
 * only the few that carry them (the first event and the usage chunk), not every token's event;
 * the text of the others is picked out of the event without parsing it, and counted as it comes
 * (for the estimate if no usage comes). Neither the events nor the text are kept: whatever the
 * answer's length, a stream holds one upstream read, the event the parser is part-way through,
 * and at most 4 Ki characters of text waiting to be counted (RunningTokenCount).
 * When the caller did not ask for usage, hides the usage-only chunk and the `usage: null` fields
 * that came with the other chunks; otherwise the upstream's bytes go out untouched. `finish` runs
 * exactly once: at the end, on a broken upstream, or when the caller goes away (the upstream call
 * is then cancelled).
 */
export function relayStream(
  upstream: UpstreamBody,
  options: {
    hideUsage: boolean;
    finish: (outcome: StreamOutcome) => Promise<void>;
  },
): ReadableStream<Uint8Array> {
  // The upstream adapter's read timeout fails the read when the upstream goes quiet for too long.
  const chunks = upstream.chunks[Symbol.asyncIterator]();
  const decoder = new TextDecoder();
  const streamed = new RunningTokenCount();
  const outcome: StreamOutcome = { usage: undefined, model: '', completionTokens: () => streamed.total() };
  let rewritten = '';
  let finished: Promise<void> | undefined;
  const finish = (): Promise<void> => (finished ??= options.finish(outcome));

  const parser = createParser({
    onEvent(sse) {
      const data = sse.data;
      if (data === '[DONE]') {
        if (options.hideUsage) rewritten += 'data: [DONE]\n\n';
        return;
      }
      let chunk: StreamChunk | undefined;
      const parse = !outcome.model || USAGE_OBJECT.test(data);
      if (parse) {
        chunk = parseChunk(data);
        if (chunk) observe(chunk, outcome);
      }
      if (outcome.usage === undefined) {
        // Counted as it comes, for the estimate should no usage come (once it came, nothing is).
        streamed.add(parse ? (chunk ? chunkText(chunk) : '') : eventText(data));
      }
      if (!options.hideUsage) return;
      const prefix = sse.event ? `event: ${sse.event}\n` : '';
      if (chunk && 'usage' in chunk) {
        if (chunk.usage && (chunk.choices ?? []).length === 0) return; // the usage-only chunk
        delete chunk.usage;
        rewritten += `${prefix}data: ${JSON.stringify(chunk)}\n\n`;
        return;
      }
      rewritten += `${prefix}data: ${data.replace(USAGE_NULL, '')}\n\n`;
    },
  });

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        for (;;) {
          const next: IteratorResult<Uint8Array> = await chunks.next();
          if (next.done) {
            await finish();
            controller.close();
            return;
          }
          parser.feed(decoder.decode(next.value, { stream: true }));
          if (!options.hideUsage) {
            controller.enqueue(next.value); // the upstream's own bytes
            return;
          }
          if (rewritten) {
            // Everything one upstream read produced goes out in one write.
            controller.enqueue(Buffer.from(rewritten, 'utf8'));
            rewritten = '';
            return;
          }
        }
      } catch (error) {
        await finish();
        controller.error(error);
      }
    },
    async cancel(reason) {
      // The caller went away: stop the upstream generation too, then account for what was served.
      upstream.cancel(reason instanceof Error ? reason : new Error('client disconnected'));
      await finish();
    },
  });
}

function parseChunk(data: string): StreamChunk | undefined {
  try {
    const value = JSON.parse(data) as unknown;
    return typeof value === 'object' && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

function observe(chunk: StreamChunk, outcome: StreamOutcome): void {
  // The Responses API's events about the response carry it, with its model (from the first one,
  // `response.created`, so that the events after it need no parsing); the final one its usage.
  if (chunk.response && typeof chunk.response.model === 'string' && chunk.response.model) {
    outcome.model = chunk.response.model;
  }
  if (chunk.type === 'response.completed' && chunk.response) outcome.usage = chunk.response.usage;
  if (typeof chunk.model === 'string' && chunk.model) outcome.model = chunk.model;
  if (chunk.usage) outcome.usage = chunk.usage;
}

/** The text a parsed event carries: a chat chunk's delta contents, or a Responses API text delta. */
function chunkText(chunk: StreamChunk): string {
  let text = '';
  if (chunk.type === 'response.output_text.delta' && typeof chunk.delta === 'string') text += chunk.delta;
  if (Array.isArray(chunk.choices)) {
    for (const choice of chunk.choices) {
      if (typeof choice?.delta?.content === 'string') text += choice.delta.content;
    }
  }
  return text;
}

/**
 * chunkText of an event not parsed, picked out with searches that cost a fraction of a parse (the
 * expressions' literal parts are found by a fast string search). A chat delta's text is the
 * `"content"` string that opens its delta, as Azure OpenAI and OpenAI send it; any other
 * `"content"` string (a delta's later key, a citation's content) is told apart by parsing the event
 * after all. Searching the raw JSON is sound because a quote inside a JSON string is escaped:
 * `"content"` followed by a colon is always a key, and `"response.output_text.delta"` a value.
 */
function eventText(data: string): string {
  let text = '';
  let found = false;
  CONTENT_STRING.lastIndex = 0;
  for (let match = CONTENT_STRING.exec(data); match; match = CONTENT_STRING.exec(data)) {
    const key = match.index;
    const start = CONTENT_STRING.lastIndex;
    const end = stringEnd(data, start);
    const opensDelta =
      data.startsWith(DELTA_OPENING, key - DELTA_OPENING.length) ||
      SPACED_DELTA_OPENING.test(data.slice(Math.max(0, key - 64), key));
    const content = opensDelta && end !== -1 ? jsonString(data.slice(start, end)) : undefined;
    if (content === undefined) return parsedText(data);
    text += content;
    found = true;
    CONTENT_STRING.lastIndex = end + 1;
  }
  if (found || !TEXT_DELTA_EVENT.test(data)) return text;
  const key = data.indexOf(DELTA_KEY);
  const value = key === -1 ? undefined : stringValueAt(data, key + DELTA_KEY.length);
  const delta = value && value.end !== -1 ? jsonString(data.slice(value.start, value.end)) : undefined;
  return delta ?? parsedText(data);
}

function parsedText(data: string): string {
  const chunk = parseChunk(data);
  return chunk ? chunkText(chunk) : '';
}

/**
 * Where the string value after a key in raw JSON is (`from`: just past the key): `start` of its
 * contents and `end`, its closing quote, or -1 when the text stops before it; undefined when the
 * value is not a string.
 */
export function stringValueAt(data: string, from: number): { start: number; end: number } | undefined {
  STRING_VALUE.lastIndex = from;
  if (!STRING_VALUE.test(data)) return undefined;
  const start = STRING_VALUE.lastIndex;
  return { start, end: stringEnd(data, start) };
}

/** Where the JSON string whose contents start at `start` ends (its closing quote), or -1. */
function stringEnd(data: string, start: number): number {
  for (let quote = data.indexOf('"', start); quote !== -1; quote = data.indexOf('"', quote + 1)) {
    let backslashes = 0;
    while (quote - backslashes > start && data.charCodeAt(quote - backslashes - 1) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return quote;
  }
  return -1;
}

/** A JSON string's contents (between its quotes) as text; undefined when malformed. */
export function jsonString(raw: string): string | undefined {
  if (!raw.includes('\\')) return raw;
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return undefined;
  }
}
