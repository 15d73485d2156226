import { SaxesParser } from 'saxes';
import type { AudioSegment } from './audio';

/**
 * What an SSML document would sound like, for the simulator: the spoken text, the voices asked
 * for, and a timeline of speech (at a fixed speaking rate) and `<break>` silences.
 */

/** A stretch of the timeline: speech (with the text spoken) or a silence. */
export interface SpokenSegment extends AudioSegment {
  text: string;
}

export interface SsmlDocument {
  text: string;
  voices: string[];
  timeline: SpokenSegment[];
  seconds: number;
}

export class SsmlError extends Error {}

/** A natural speaking rate; Azure's neural voices read about 14 characters a second. */
export const CHARACTERS_PER_SECOND = 14;

/** Azure's break strengths, in seconds. */
const BREAK_STRENGTH: Record<string, number> = {
  none: 0,
  'x-weak': 0.25,
  weak: 0.5,
  medium: 0.75,
  strong: 1,
  'x-strong': 1.25,
};
/** The service caps a single break at 20 seconds. */
const MAX_BREAK_SECONDS = 20;
/** Even an empty utterance yields a little audio. */
const MIN_SPEECH_SECONDS = 0.5;

export function speechSecondsFor(text: string): number {
  return [...text].length / CHARACTERS_PER_SECOND;
}

export function parseSsml(ssml: string): SsmlDocument {
  const parser = new SaxesParser({ xmlns: false });
  const voices: string[] = [];
  const timeline: SpokenSegment[] = [];
  let pending = '';
  let text = '';
  let root: string | undefined;
  const flush = (): void => {
    const spoken = pending.replace(/\s+/g, ' ').trim();
    if (spoken) {
      timeline.push({ seconds: speechSecondsFor(spoken), silent: false, text: spoken });
      text += (text ? ' ' : '') + spoken;
    }
    pending = '';
  };
  parser.on('opentag', (tag) => {
    const name = tag.name.split(':').pop() ?? tag.name;
    root ??= name;
    const attributes = tag.attributes as Record<string, string>;
    if (name === 'voice' && attributes.name) voices.push(attributes.name);
    if (name === 'break') {
      flush();
      timeline.push({ seconds: breakSeconds(attributes.time, attributes.strength), silent: true, text: '' });
    }
  });
  parser.on('text', (value) => {
    pending += value;
  });
  parser.on('cdata', (value) => {
    pending += value;
  });
  try {
    parser.write(ssml).close();
  } catch (error) {
    if (error instanceof SsmlError) throw error;
    throw new SsmlError(`The SSML is not well-formed XML: ${(error as Error).message.split('\n')[0]}`);
  }
  if (root !== 'speak') throw new SsmlError('The SSML document must have a <speak> root element.');
  flush();
  const seconds = timeline.reduce((sum, segment) => sum + segment.seconds, 0);
  if (seconds < MIN_SPEECH_SECONDS) {
    timeline.push({ seconds: MIN_SPEECH_SECONDS - seconds, silent: true, text: '' });
  }
  return { text, voices, timeline, seconds: Math.max(seconds, MIN_SPEECH_SECONDS) };
}

function breakSeconds(time: string | undefined, strength: string | undefined): number {
  if (time !== undefined) {
    const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$/i.exec(time);
    if (!match) throw new SsmlError(`Invalid break time '${time}'.`);
    const value = Number(match[1]) / (match[2]?.toLowerCase() === 'ms' ? 1000 : 1);
    return Math.min(value, MAX_BREAK_SECONDS);
  }
  if (strength !== undefined) {
    const value = BREAK_STRENGTH[strength];
    if (value === undefined) throw new SsmlError(`Invalid break strength '${strength}'.`);
    return value;
  }
  return BREAK_STRENGTH.medium ?? 0.75;
}
