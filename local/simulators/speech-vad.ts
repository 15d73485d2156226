import type { PcmFormat } from '../../shared/metering/audio';

/**
 * Where the speech is in PCM audio, as the recognizer would segment it: an energy detector on
 * 20 ms frames. A phrase starts at the first loud frame and ends after a run of silence (or when it
 * reaches the forced maximum); offsets and durations are in the service's 100 ns ticks. It works
 * incrementally so that a WebSocket session can answer while audio is still arriving.
 */

export const TICKS_PER_SECOND = 10_000_000;

export interface SegmenterOptions {
  /** Silence that ends a phrase. The service's default is about 500 ms. */
  silenceTimeoutMs?: number;
  /** A phrase longer than this is cut here, as the service segments long uninterrupted speech. */
  maxPhraseMs?: number;
  /** Mean absolute 16-bit sample value above which a frame counts as speech (about -47 dBFS). */
  threshold?: number;
}

export type SegmentEvent =
  | { type: 'start'; offset: number }
  | { type: 'hypothesis'; offset: number; duration: number }
  | { type: 'phrase'; offset: number; duration: number };

const FRAME_MS = 20;
const HYPOTHESIS_EVERY_MS = 500;

export class SpeechSegmenter {
  private readonly bytesPerFrame: number;
  private readonly frameSamples: number;
  private readonly silenceSamples: number;
  private readonly maxPhraseSamples: number;
  private readonly hypothesisSamples: number;
  private readonly threshold: number;
  private readonly pcm16: boolean;
  private remainder: Buffer = Buffer.alloc(0);
  /** Sample frames (one sample per channel) consumed so far. */
  private position = 0;
  private phraseStart: number | undefined;
  private lastVoicedEnd = 0;
  private lastHypothesis = 0;
  private started = false;
  /** True once any speech was heard. */
  heardSpeech = false;

  constructor(
    private readonly format: PcmFormat,
    options: SegmenterOptions = {},
  ) {
    const rate = format.sampleRate;
    this.pcm16 = format.bitsPerSample === 16;
    this.frameSamples = Math.max(1, Math.round((rate * FRAME_MS) / 1000));
    this.bytesPerFrame = this.frameSamples * format.channels * Math.max(1, format.bitsPerSample / 8);
    this.silenceSamples = Math.round((rate * (options.silenceTimeoutMs ?? 500)) / 1000);
    this.maxPhraseSamples = Math.round((rate * (options.maxPhraseMs ?? 20_000)) / 1000);
    this.hypothesisSamples = Math.round((rate * HYPOTHESIS_EVERY_MS) / 1000);
    this.threshold = options.threshold ?? 150;
  }

  /** Audio received so far, in seconds. */
  get seconds(): number {
    return this.position / this.format.sampleRate;
  }

  get ticks(): number {
    return this.toTicks(this.position);
  }

  push(audio: Buffer): SegmentEvent[] {
    const events: SegmentEvent[] = [];
    let data = this.remainder.length ? Buffer.concat([this.remainder, audio]) : audio;
    let at = 0;
    for (; at + this.bytesPerFrame <= data.length; at += this.bytesPerFrame) {
      this.frame(data.subarray(at, at + this.bytesPerFrame), events);
    }
    data = data.subarray(at);
    this.remainder = Buffer.from(data);
    return events;
  }

  /** The audio ended: a last partial frame counts, and an open phrase ends where the speech did. */
  end(): SegmentEvent[] {
    const events: SegmentEvent[] = [];
    const blockAlign = this.format.channels * Math.max(1, this.format.bitsPerSample / 8);
    const whole = this.remainder.length - (this.remainder.length % blockAlign);
    if (whole > 0) this.frame(this.remainder.subarray(0, whole), events);
    this.remainder = Buffer.alloc(0);
    this.closePhrase(events);
    return events;
  }

  private frame(frame: Buffer, events: SegmentEvent[]): void {
    const samples = frame.length / (this.format.channels * Math.max(1, this.format.bitsPerSample / 8));
    const start = this.position;
    this.position += samples;
    if (this.loud(frame)) {
      if (this.phraseStart === undefined) {
        this.phraseStart = start;
        this.lastHypothesis = start;
        if (!this.started) events.push({ type: 'start', offset: this.toTicks(start) });
        this.started = true;
        this.heardSpeech = true;
      }
      this.lastVoicedEnd = this.position;
      if (this.position - this.phraseStart >= this.maxPhraseSamples) {
        this.closePhrase(events);
      } else if (this.position - this.lastHypothesis >= this.hypothesisSamples) {
        this.lastHypothesis = this.position;
        events.push({
          type: 'hypothesis',
          offset: this.toTicks(this.phraseStart),
          duration: this.toTicks(this.position) - this.toTicks(this.phraseStart),
        });
      }
    } else if (this.phraseStart !== undefined && this.position - this.lastVoicedEnd >= this.silenceSamples) {
      this.closePhrase(events);
    }
  }

  private closePhrase(events: SegmentEvent[]): void {
    if (this.phraseStart === undefined) return;
    events.push({
      type: 'phrase',
      offset: this.toTicks(this.phraseStart),
      duration: this.toTicks(this.lastVoicedEnd) - this.toTicks(this.phraseStart),
    });
    this.phraseStart = undefined;
  }

  private loud(frame: Buffer): boolean {
    // Only 16-bit PCM is measured; any other sample format counts as speech throughout.
    if (!this.pcm16) return true;
    let sum = 0;
    const count = frame.length >> 1;
    for (let i = 0; i < count; i++) sum += Math.abs(frame.readInt16LE(i << 1));
    return count > 0 && sum / count > this.threshold;
  }

  private toTicks(samples: number): number {
    return Math.round((samples * TICKS_PER_SECOND) / this.format.sampleRate);
  }
}
