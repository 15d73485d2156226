import {
  mp3FrameSeconds,
  oggOpusSilence,
  pcmTone,
  synthesizeAudio,
  wavHeader,
} from '../../../local/simulators/audio';
import {
  FaultSyntaxError,
  isFaulted,
  parseFault,
  requestFault,
  retryAfterSeconds,
} from '../../../local/simulators/faults';
import { PromptCache } from '../../../local/simulators/openai-text';
import { SpeechSegmenter } from '../../../local/simulators/speech-vad';
import { parseSsml, SsmlError } from '../../../local/simulators/ssml';
import { oggOpusDurationSeconds, readWav } from '../../../shared/metering/audio';

describe('fault settings', () => {
  it('parses outcomes, latencies and combinations', () => {
    expect(parseFault(undefined)).toEqual({ retryAfterMs: 1000 });
    expect(parseFault('429')).toEqual({ outcome: 'rate-limit', retryAfterMs: 1000 });
    expect(parseFault('429:250')).toEqual({ outcome: 'rate-limit', retryAfterMs: 250 });
    expect(parseFault('slow:200, cut')).toEqual({ outcome: 'cut', retryAfterMs: 1000, latencyMs: 200 });
    expect(parseFault(['drip:5', 'timeout'])).toEqual({
      outcome: 'timeout',
      retryAfterMs: 1000,
      chunkDelayMs: 5,
    });
  });

  it.each(['explode', '500,503', 'slow', 'slow:-1', 'slow:1.5', 'cut:3'])('rejects %p', (value) => {
    expect(() => parseFault(value)).toThrow(FaultSyntaxError);
  });
});

describe('request faults', () => {
  const wide = parseFault('503');

  it("take the request's value over the simulator-wide fault, an empty value meaning none", () => {
    expect(requestFault(undefined, wide)).toBe(wide);
    expect(requestFault(null, wide)).toBe(wide);
    expect(requestFault('', wide)).toEqual({ retryAfterMs: 1000 });
    expect(requestFault(['slow:5', 'cut'], wide)).toEqual({
      outcome: 'cut',
      retryAfterMs: 1000,
      latencyMs: 5,
    });
    expect(() => requestFault('explode', wide)).toThrow(FaultSyntaxError);
  });

  it('count as faulted when they change anything, and round retry-after up to whole seconds', () => {
    expect(isFaulted(parseFault(undefined))).toBe(false);
    expect(isFaulted(parseFault('drip:0'))).toBe(true);
    expect(isFaulted(wide)).toBe(true);
    expect([1, 1000, 1001, 2500].map((ms) => retryAfterSeconds(parseFault(`429:${ms}`)))).toEqual([
      1, 1, 2, 3,
    ]);
  });
});

describe('prompt cache', () => {
  const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

  it('hits on prefixes of 1024 tokens and more, in steps of 128, per scope', () => {
    const cache = new PromptCache();
    expect(cache.use('a', ids(1500))).toBe(0);
    expect(cache.use('a', ids(1500))).toBe(1408);
    expect(cache.use('a', [...ids(1200), ...ids(900, 5000)])).toBe(1152);
    expect(cache.use('b', ids(1500))).toBe(0);
    expect(cache.use('a', ids(1000))).toBe(0); // too short to cache at all
  });

  it('forgets the least recently used prefixes beyond its capacity, and idle ones', () => {
    const small = new PromptCache(4);
    small.use('a', ids(1024)); // one prefix key each
    small.use('a', ids(1024, 1));
    small.use('a', ids(1024)); // refreshes the first
    small.use('a', ids(1024, 2));
    small.use('a', ids(1024, 3));
    small.use('a', ids(1024, 4)); // evicts the least recently used: ids(1024, 1)
    expect(small.use('a', ids(1024))).toBe(1024);
    expect(small.use('a', ids(1024, 1))).toBe(0);
    const idle = new PromptCache(100, 0);
    idle.use('a', ids(1024));
    expect(idle.use('a', ids(1024))).toBe(0);
  });
});

describe('speech segmentation', () => {
  const format = { sampleRate: 16_000, channels: 1, bitsPerSample: 16 };
  const silence = (s: number) => Buffer.alloc(Math.round(16_000 * s) * 2);

  it('finds phrases between pauses, whatever the chunking of the audio', () => {
    const audio = Buffer.concat([
      silence(0.3),
      pcmTone(format, 1),
      silence(0.8),
      pcmTone(format, 0.5),
      silence(0.1),
    ]);
    const phrases = (chunk: number) => {
      const segmenter = new SpeechSegmenter(format);
      const events = [];
      for (let at = 0; at < audio.length; at += chunk)
        events.push(...segmenter.push(audio.subarray(at, at + chunk)));
      events.push(...segmenter.end());
      return events.filter((e) => e.type !== 'hypothesis');
    };
    const expected = [
      { type: 'start', offset: 3_000_000 },
      { type: 'phrase', offset: 3_000_000, duration: 10_000_000 },
      { type: 'phrase', offset: 21_000_000, duration: 5_000_000 },
    ];
    expect(phrases(audio.length)).toEqual(expected);
    expect(phrases(999)).toEqual(expected);
  });

  it('cuts uninterrupted speech at the maximum phrase length and honours the silence timeout', () => {
    const long = new SpeechSegmenter(format, { maxPhraseMs: 1000 });
    const events = [...long.push(pcmTone(format, 2.5)), ...long.end()].filter((e) => e.type === 'phrase');
    expect(events.map((e) => e.type === 'phrase' && e.duration)).toEqual([10_000_000, 10_000_000, 5_000_000]);
    const patient = new SpeechSegmenter(format, { silenceTimeoutMs: 2000 });
    const audio = Buffer.concat([pcmTone(format, 1), silence(1), pcmTone(format, 1)]);
    expect([...patient.push(audio), ...patient.end()].filter((e) => e.type === 'phrase')).toHaveLength(1);
  });
});

describe('synthesized audio', () => {
  it('writes MP3 frames with valid headers back to back', () => {
    for (const [name, frameBytes] of [
      ['audio-16khz-32kbitrate-mono-mp3', 144],
      ['audio-16khz-128kbitrate-mono-mp3', 576],
      ['audio-24khz-96kbitrate-mono-mp3', 288],
      ['audio-48khz-192kbitrate-mono-mp3', 576],
    ] as const) {
      const audio = synthesizeAudio(name, 2) as Buffer;
      expect(audio.length % frameBytes).toBe(0);
      for (let at = 0; at < audio.length; at += frameBytes) {
        expect(audio[at]).toBe(0xff);
        expect((audio[at + 1] ?? 0) & 0xe0).toBe(0xe0);
      }
      expect((audio.length / frameBytes) * (mp3FrameSeconds(name) ?? 0)).toBeCloseTo(2, 1);
    }
  });

  it('writes Ogg pages whose CRCs check out and whose granule gives the duration', () => {
    const ogg = oggOpusSilence(24_000, 3.3);
    expect(oggOpusDurationSeconds(ogg)).toBeCloseTo(3.3, 6);
    // The Ogg CRC, bit by bit: polynomial 0x04c11db7, no reflection, initial value 0, checksum field zeroed.
    const crc = (page: Buffer) => {
      let r = 0;
      for (const byte of page) {
        r ^= byte << 24;
        for (let bit = 0; bit < 8; bit++) r = (r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1) >>> 0;
      }
      return r >>> 0;
    };
    let pages = 0;
    for (let at = 0; at < ogg.length; pages++) {
      expect(ogg.toString('ascii', at, at + 4)).toBe('OggS');
      const segments = ogg[at + 26] ?? 0;
      const size = 27 + segments + [...ogg.subarray(at + 27, at + 27 + segments)].reduce((a, b) => a + b, 0);
      const page = Buffer.from(ogg.subarray(at, at + size));
      const stored = page.readUInt32LE(22);
      page.writeUInt32LE(0, 22);
      expect(crc(page)).toBe(stored);
      at += size;
    }
    expect(pages).toBeGreaterThanOrEqual(4); // OpusHead, OpusTags, audio
  });

  it('writes µ-law and A-law WAV, and reads headers back', () => {
    for (const [name, tag] of [
      ['riff-8khz-8bit-mono-mulaw', 7],
      ['riff-8khz-8bit-mono-alaw', 6],
    ] as const) {
      const audio = synthesizeAudio(name, [
        { seconds: 0.5, silent: true },
        { seconds: 1, silent: false },
      ]) as Buffer;
      expect(audio.readUInt16LE(20)).toBe(tag);
      expect(readWav(audio)?.durationSeconds).toBeCloseTo(1.5, 6);
      // Companded silence is the code for zero (0xff µ-law, 0xd5 A-law), speech is not.
      expect(audio[44 + 100]).toBe(name.endsWith('mulaw') ? 0xff : 0xd5);
      expect(new Set(audio.subarray(44 + 4000 + 100, 44 + 4000 + 200)).size).toBeGreaterThan(3);
    }
    const header = readWav(wavHeader({ sampleRate: 24_000, channels: 2, bitsPerSample: 16 }, 0));
    expect(header).toEqual({
      sampleRate: 24_000,
      channels: 2,
      bitsPerSample: 16,
      dataOffset: 44,
      dataBytes: 0,
      durationSeconds: 0,
    });
    expect(readWav(Buffer.from('not a wav file at all'))).toBeUndefined();
  });
});

describe('SSML', () => {
  it('extracts spoken text, voices and breaks', () => {
    const document = parseSsml(
      `<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis" xmlns:mstts="http://www.w3.org/2001/mstts" xml:lang="en-US">
         <voice name="en-US-JennyNeural"><mstts:express-as style="cheerful">Hello &amp; welcome</mstts:express-as>
         <break time="2s"/></voice><voice name="de-DE-KatjaNeural"><![CDATA[Guten Tag]]></voice></speak>`,
    );
    expect(document.voices).toEqual(['en-US-JennyNeural', 'de-DE-KatjaNeural']);
    expect(document.text).toBe('Hello & welcome Guten Tag');
    expect(document.seconds).toBeCloseTo(15 / 14 + 2 + 9 / 14, 6);
  });

  it.each(['<speak>unclosed', '<voice>no speak</voice>', '<speak><break time="later"/></speak>'])(
    'rejects %p',
    (ssml) => {
      expect(() => parseSsml(ssml)).toThrow(SsmlError);
    },
  );
});
