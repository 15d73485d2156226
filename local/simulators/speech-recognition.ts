import { TICKS_PER_SECOND } from './speech-vad';

/**
 * What the simulated recognizer says, over REST and the WebSocket alike. It cannot understand
 * speech: a transcript reads "Simulated transcript of N seconds of audio." where N is the length of
 * the phrase it detected.
 */

export function transcriptFor(seconds: number): string {
  return `Simulated transcript of ${seconds.toFixed(2)} seconds of audio.`;
}

/** A recognized phrase as the service reports it: simple, or detailed with an N-best list. */
export function recognitionResult(
  offset: number,
  duration: number,
  detailed: boolean,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const text = transcriptFor(duration / TICKS_PER_SECOND);
  const base = { RecognitionStatus: 'Success', Offset: offset, Duration: duration, ...extra };
  if (!detailed) return { ...base, DisplayText: text };
  const normalized = text.toLowerCase().replace(/[^\w\s.]/g, '');
  return {
    ...base,
    NBest: [
      {
        Confidence: 0.97,
        Lexical: text.toLowerCase().replace(/[^\w\s]/g, ''),
        ITN: normalized,
        MaskedITN: normalized,
        Display: text,
      },
    ],
  };
}
