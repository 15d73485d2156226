import { createParser } from 'eventsource-parser';
import {
  countTextTokens,
  estimateChatPromptTokens,
  estimateEmbeddingInputTokens,
  RunningTokenCount,
} from '../../shared/metering/token-estimate';
import type { TokenUsage } from './engine';

/**
 * What the token policies (llm-token-limit, llm-emit-token-metric) count, as APIM does: the prompt
 * estimated from the request before the call, then the tokens the answer reports; a stream that
 * reports none (the caller did not ask for usage) has its completion counted from its text.
 */

/** The prompt tokens of a chat, Responses or embeddings request body (0 for anything else). */
export function countPromptTokens(body: unknown): number {
  if (typeof body !== 'object' || body === null) return 0;
  const request = body as { messages?: unknown; input?: unknown; instructions?: unknown };
  if (Array.isArray(request.messages)) {
    return estimateChatPromptTokens(request.messages as Array<{ content?: unknown }>);
  }
  if (request.input !== undefined) {
    // Responses API input is a string or a list of messages; embeddings input strings or token arrays.
    const input =
      Array.isArray(request.input) && request.input.some((i) => typeof i === 'object' && i !== null)
        ? estimateChatPromptTokens(request.input as Array<{ content?: unknown }>)
        : estimateEmbeddingInputTokens(request.input);
    const instructions = typeof request.instructions === 'string' ? countTextTokens(request.instructions) : 0;
    return input + instructions;
  }
  return 0;
}

interface ReportedUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  input_tokens?: number;
  output_tokens?: number;
  total_tokens?: number;
}

function fromReported(usage: ReportedUsage): TokenUsage {
  const prompt = usage.prompt_tokens ?? usage.input_tokens ?? 0;
  const completion = usage.completion_tokens ?? usage.output_tokens ?? 0;
  return {
    promptTokens: prompt,
    completionTokens: completion,
    totalTokens: usage.total_tokens ?? prompt + completion,
    estimated: false,
  };
}

/** The `usage` a JSON answer or a stream event carries (chat, embeddings, Responses API). */
function usageIn(value: unknown): ReportedUsage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as { usage?: unknown; response?: { usage?: unknown } };
  const usage = record.usage ?? record.response?.usage;
  return typeof usage === 'object' && usage !== null ? usage : undefined;
}

/** The answer text a stream event carries (chat deltas, Responses API text deltas). */
function textIn(value: unknown): string {
  if (typeof value !== 'object' || value === null) return '';
  const event = value as {
    choices?: Array<{ delta?: { content?: unknown } }>;
    type?: unknown;
    delta?: unknown;
  };
  if (event.type === 'response.output_text.delta' && typeof event.delta === 'string') return event.delta;
  return (event.choices ?? [])
    .map((c) => (typeof c.delta?.content === 'string' ? c.delta.content : ''))
    .join('');
}

/**
 * Counts an answer's tokens as its body passes through, without keeping it: JSON answers are
 * collected up to a bound (they are small), streams are read event by event.
 */
export class UsageTap {
  private readonly stream: boolean;
  private json = '';
  private reported: ReportedUsage | undefined;
  private readonly completion = new RunningTokenCount();
  private readonly parser;
  private readonly decoder = new TextDecoder();

  constructor(
    contentType: string | undefined,
    private readonly promptEstimate: number,
  ) {
    this.stream = (contentType ?? '').startsWith('text/event-stream');
    this.parser = createParser({
      onEvent: (event) => {
        if (event.data === '[DONE]') return;
        let value: unknown;
        try {
          value = JSON.parse(event.data);
        } catch {
          return;
        }
        this.reported = usageIn(value) ?? this.reported;
        this.completion.add(textIn(value));
      },
    });
  }

  write(chunk: Uint8Array): void {
    const text = this.decoder.decode(chunk, { stream: true });
    if (this.stream) this.parser.feed(text);
    else if (this.json.length < 1_000_000) this.json += text;
  }

  /** The answer's usage: as reported, else the prompt estimate and the counted completion. */
  usage(): TokenUsage {
    if (!this.stream) {
      try {
        this.reported = usageIn(JSON.parse(this.json));
      } catch {
        this.reported = undefined;
      }
    }
    if (this.reported) return fromReported(this.reported);
    const completion = this.completion.total();
    return {
      promptTokens: this.promptEstimate,
      completionTokens: completion,
      totalTokens: this.promptEstimate + completion,
      estimated: true,
    };
  }
}
