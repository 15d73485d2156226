import { SaxesParser } from 'saxes';
import { badRequest } from '../contracts/api-errors';

/**
 * Billable characters of a text-to-speech request, as Azure Speech bills them: the text spoken,
 * SSML markup excluded, with each Chinese, Japanese or Korean character counted twice. Runs of
 * white space count as one character (indentation between elements is not spoken).
 */
const DOUBLE_WIDTH = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;

export function spokenText(ssml: string): string {
  const parser = new SaxesParser();
  const parts: string[] = [];
  let root: string | undefined;
  parser.on('opentag', (tag) => {
    root ??= tag.name.split(':').pop();
  });
  parser.on('text', (text) => parts.push(text));
  parser.on('cdata', (text) => parts.push(text));
  try {
    parser.write(ssml).close();
  } catch (error) {
    throw badRequest(`The SSML is not well-formed XML: ${(error as Error).message.split('\n')[0]}`);
  }
  if (root !== 'speak') throw badRequest('The SSML document must have a <speak> root element.');
  return parts.join('').replace(/\s+/g, ' ').trim();
}

export function billableCharacters(text: string): number {
  let count = 0;
  for (const character of text) count += DOUBLE_WIDTH.test(character) ? 2 : 1;
  return count;
}

export function escapeXml(text: string): string {
  return text.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] ?? c,
  );
}
