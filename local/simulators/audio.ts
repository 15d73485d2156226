import type { PcmFormat } from '../../shared/audio';

/** Audio of a given duration in the output formats Azure Speech offers, for the simulator. */

export function wavHeader(format: PcmFormat, dataBytes: number): Buffer {
  const header = Buffer.alloc(44);
  const blockAlign = format.channels * (format.bitsPerSample / 8);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + dataBytes, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(format.channels, 22);
  header.writeUInt32LE(format.sampleRate, 24);
  header.writeUInt32LE(format.sampleRate * blockAlign, 28);
  header.writeUInt16LE(blockAlign, 32);
  header.writeUInt16LE(format.bitsPerSample, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(dataBytes, 40);
  return header;
}

/** A quiet 440 Hz tone (not silence, so it is recognisably audio when played). */
export function pcmTone(format: PcmFormat, seconds: number): Buffer {
  const samples = Math.round(format.sampleRate * seconds);
  const pcm = Buffer.alloc(samples * format.channels * 2);
  for (let i = 0; i < samples; i++) {
    const value = Math.round(Math.sin((2 * Math.PI * 440 * i) / format.sampleRate) * 2000);
    for (let c = 0; c < format.channels; c++) pcm.writeInt16LE(value, (i * format.channels + c) * 2);
  }
  return pcm;
}

interface Mp3Format {
  /** Four header bytes of an MPEG-2 Layer III frame without CRC, mono. */
  header: [number, number, number, number];
  frameBytes: number;
  frameSeconds: number;
}

/** MPEG-2 Layer III, 576 samples a frame; frame bytes = 72 × bitrate / sample rate. */
const MP3_FORMATS: Record<string, Mp3Format> = {
  'audio-16khz-32kbitrate-mono-mp3': {
    header: [0xff, 0xf3, 0x48, 0xc0],
    frameBytes: 144,
    frameSeconds: 576 / 16_000,
  },
  'audio-24khz-48kbitrate-mono-mp3': {
    header: [0xff, 0xf3, 0x64, 0xc0],
    frameBytes: 144,
    frameSeconds: 576 / 24_000,
  },
};

const PCM_FORMATS: Record<string, { format: PcmFormat; riff: boolean }> = {
  'riff-8khz-16bit-mono-pcm': { format: { sampleRate: 8000, channels: 1, bitsPerSample: 16 }, riff: true },
  'riff-16khz-16bit-mono-pcm': { format: { sampleRate: 16_000, channels: 1, bitsPerSample: 16 }, riff: true },
  'riff-24khz-16bit-mono-pcm': { format: { sampleRate: 24_000, channels: 1, bitsPerSample: 16 }, riff: true },
  'riff-48khz-16bit-mono-pcm': { format: { sampleRate: 48_000, channels: 1, bitsPerSample: 16 }, riff: true },
  'raw-8khz-16bit-mono-pcm': { format: { sampleRate: 8000, channels: 1, bitsPerSample: 16 }, riff: false },
  'raw-16khz-16bit-mono-pcm': { format: { sampleRate: 16_000, channels: 1, bitsPerSample: 16 }, riff: false },
  'raw-24khz-16bit-mono-pcm': { format: { sampleRate: 24_000, channels: 1, bitsPerSample: 16 }, riff: false },
  'raw-48khz-16bit-mono-pcm': { format: { sampleRate: 48_000, channels: 1, bitsPerSample: 16 }, riff: false },
};

export const SUPPORTED_OUTPUT_FORMATS = [...Object.keys(PCM_FORMATS), ...Object.keys(MP3_FORMATS)];

export function contentTypeOf(outputFormat: string): string {
  if (outputFormat in MP3_FORMATS) return 'audio/mpeg';
  return PCM_FORMATS[outputFormat]?.riff ? 'audio/wav' : 'audio/basic';
}

/** Audio of (about) the given duration in an Azure Speech output format; undefined if unsupported. */
export function synthesizeAudio(outputFormat: string, seconds: number): Buffer | undefined {
  const mp3 = MP3_FORMATS[outputFormat];
  if (mp3) {
    const frames = Math.max(1, Math.round(seconds / mp3.frameSeconds));
    const frame = Buffer.alloc(mp3.frameBytes); // all-zero side info decodes as silence
    Buffer.from(mp3.header).copy(frame);
    return Buffer.concat(Array.from({ length: frames }, () => frame));
  }
  const pcm = PCM_FORMATS[outputFormat];
  if (!pcm) return undefined;
  const samples = pcmTone(pcm.format, seconds);
  return pcm.riff ? Buffer.concat([wavHeader(pcm.format, samples.length), samples]) : samples;
}
