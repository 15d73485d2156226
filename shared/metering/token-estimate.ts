import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';

/**
 * Token counts for when the upstream reported none (an interrupted stream): the o200k encoding of
 * the GPT-4o family, with OpenAI's chat framing (3 tokens and a role token per message, 3 to prime
 * the reply). Events counted this way are flagged as estimated.
 */
export function countTextTokens(text: string): number {
  return text ? countTokens(text) : 0;
}

export function estimateChatPromptTokens(messages: ReadonlyArray<{ content?: unknown }>): number {
  let total = 3;
  for (const message of messages) total += 4 + countTextTokens(contentText(message.content));
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
