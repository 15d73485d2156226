import { ReadableStream } from 'node:stream/web';
import { createParser } from 'eventsource-parser';

/** An upstream answer's body as it arrives, and a way to stop it (the caller went away). */
export interface UpstreamBody {
  chunks: AsyncIterable<Uint8Array>;
  cancel(reason: Error): void;
}

export interface StreamOutcome {
  usage: unknown;
  model: string;
  /** The streamed text, only worked out when the upstream sent no usage (to estimate it). */
  text: () => string;
}

interface StreamChunk {
  type?: unknown;
  model?: unknown;
  usage?: unknown;
  delta?: unknown;
  response?: { model?: unknown; usage?: unknown };
  choices?: Array<{ delta?: { content?: unknown } }>;
}

/** A usage object (not `usage: null`): only the final chunk of a stream carries one. */
const USAGE_OBJECT = /"usage"\s*:\s*\{/;
/** `"usage":null` with the comma that joins it to its neighbours; quotes inside JSON strings are escaped, so a match is always a key. */
const USAGE_NULL = /\s*,\s*"usage"\s*:\s*null(?=\s*[,}])|"usage"\s*:\s*null\s*,?/;

/**
 * Passes SSE through as it arrives. Watches the events for the model and the final usage, parsing
 * only the few that carry them (the first event and the usage chunk), not every token's event.
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
  const events: string[] = [];
  const outcome: StreamOutcome = { usage: undefined, model: '', text: () => streamedText(events) };
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
      events.push(data);
      let chunk: StreamChunk | undefined;
      if (!outcome.model || USAGE_OBJECT.test(data)) {
        chunk = parseChunk(data);
        if (chunk) observe(chunk, outcome);
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
  // The Responses API's final event carries the response, with its model and usage.
  if (chunk.type === 'response.completed' && chunk.response) {
    outcome.usage = chunk.response.usage;
    if (typeof chunk.response.model === 'string') outcome.model = chunk.response.model;
  }
  if (typeof chunk.model === 'string' && chunk.model) outcome.model = chunk.model;
  if (chunk.usage) outcome.usage = chunk.usage;
}

/** The text of a stream's events (chat deltas or Responses API text deltas). */
function streamedText(events: readonly string[]): string {
  let text = '';
  for (const data of events) {
    const chunk = parseChunk(data);
    if (!chunk) continue;
    if (chunk.type === 'response.output_text.delta' && typeof chunk.delta === 'string') text += chunk.delta;
    for (const choice of chunk.choices ?? []) {
      if (typeof choice.delta?.content === 'string') text += choice.delta.content;
    }
  }
  return text;
}
