import type { PcmFormat } from '../../shared/metering/audio';

/**
 * Audio of a given duration in the output formats Azure Speech offers, for the simulator: a quiet
 * 440 Hz tone where the voice would speak (so that it plays, and reads as speech when sent back to
 * recognition) and true silence for SSML breaks. PCM, µ-law and A-law carry the tone; MP3 and Ogg
 * Opus are valid streams of silent frames whose length is exact to the frame (24 ms / 20 ms).
 */

export interface AudioSegment {
  seconds: number;
  silent: boolean;
}

type Timeline = number | readonly AudioSegment[];

const WAVE_FORMAT = { pcm: 1, alaw: 6, mulaw: 7 } as const;

export function wavHeader(format: PcmFormat, dataBytes: number, formatTag: number = WAVE_FORMAT.pcm): Buffer {
  const header = Buffer.alloc(44);
  const blockAlign = format.channels * (format.bitsPerSample / 8);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + dataBytes, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(formatTag, 20);
  header.writeUInt16LE(format.channels, 22);
  header.writeUInt32LE(format.sampleRate, 24);
  header.writeUInt32LE(format.sampleRate * blockAlign, 28);
  header.writeUInt16LE(blockAlign, 32);
  header.writeUInt16LE(format.bitsPerSample, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(dataBytes, 40);
  return header;
}

/** A quiet 440 Hz tone, 16-bit PCM (not silence, so it is recognisably audio when played). */
export function pcmTone(format: PcmFormat, seconds: number): Buffer {
  const samples = Math.round(format.sampleRate * seconds);
  const pcm = Buffer.alloc(samples * format.channels * 2);
  for (let i = 0; i < samples; i++) {
    const value = Math.round(Math.sin((2 * Math.PI * 440 * i) / format.sampleRate) * 2000);
    for (let c = 0; c < format.channels; c++) pcm.writeInt16LE(value, (i * format.channels + c) * 2);
  }
  return pcm;
}

function pcmTimeline(format: PcmFormat, timeline: readonly AudioSegment[]): Buffer {
  return Buffer.concat(
    timeline.map((segment) =>
      segment.silent
        ? Buffer.alloc(Math.round(format.sampleRate * segment.seconds) * format.channels * 2)
        : pcmTone(format, segment.seconds),
    ),
  );
}

interface Mp3Format {
  mpeg1: boolean;
  sampleRate: number;
  kbps: number;
}

/** Layer III bit-rate indexes (MPEG-1; MPEG-2 LSF) and sample-rate indexes, per ISO 11172-3 / 13818-3. */
const MP3_BITRATES = {
  mpeg1: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  mpeg2: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
};
const MP3_RATES = { mpeg1: [44_100, 48_000, 32_000], mpeg2: [22_050, 24_000, 16_000] };

const MP3_FORMATS: Record<string, Mp3Format> = {
  'audio-16khz-32kbitrate-mono-mp3': { mpeg1: false, sampleRate: 16_000, kbps: 32 },
  'audio-16khz-64kbitrate-mono-mp3': { mpeg1: false, sampleRate: 16_000, kbps: 64 },
  'audio-16khz-128kbitrate-mono-mp3': { mpeg1: false, sampleRate: 16_000, kbps: 128 },
  'audio-24khz-48kbitrate-mono-mp3': { mpeg1: false, sampleRate: 24_000, kbps: 48 },
  'audio-24khz-96kbitrate-mono-mp3': { mpeg1: false, sampleRate: 24_000, kbps: 96 },
  'audio-24khz-160kbitrate-mono-mp3': { mpeg1: false, sampleRate: 24_000, kbps: 160 },
  'audio-48khz-96kbitrate-mono-mp3': { mpeg1: true, sampleRate: 48_000, kbps: 96 },
  'audio-48khz-192kbitrate-mono-mp3': { mpeg1: true, sampleRate: 48_000, kbps: 192 },
};

/** Seconds per MP3 frame: 1152 samples (MPEG-1) or 576 (MPEG-2 LSF). */
export function mp3FrameSeconds(outputFormat: string): number | undefined {
  const mp3 = MP3_FORMATS[outputFormat];
  return mp3 && (mp3.mpeg1 ? 1152 : 576) / mp3.sampleRate;
}

function mp3Silence(mp3: Mp3Format, seconds: number): Buffer {
  const version = mp3.mpeg1 ? 'mpeg1' : 'mpeg2';
  const samplesPerFrame = mp3.mpeg1 ? 1152 : 576;
  const frameBytes = ((samplesPerFrame / 8) * mp3.kbps * 1000) / mp3.sampleRate;
  const frame = Buffer.alloc(frameBytes); // all-zero side information decodes as silence
  frame[0] = 0xff;
  frame[1] = mp3.mpeg1 ? 0xfb : 0xf3; // sync, version, Layer III, no CRC
  frame[2] =
    (MP3_BITRATES[version].indexOf(mp3.kbps) << 4) | (MP3_RATES[version].indexOf(mp3.sampleRate) << 2);
  frame[3] = 0xc0; // mono
  const frames = Math.max(1, Math.round((seconds * mp3.sampleRate) / samplesPerFrame));
  return Buffer.concat(Array.from({ length: frames }, () => frame));
}

const OGG_FORMATS: Record<string, number> = {
  'ogg-16khz-16bit-mono-opus': 16_000,
  'ogg-24khz-16bit-mono-opus': 24_000,
  'ogg-48khz-16bit-mono-opus': 48_000,
};

const OGG_CRC_TABLE = Array.from({ length: 256 }, (_, i) => {
  let r = i << 24;
  for (let bit = 0; bit < 8; bit++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
  return r >>> 0;
});

function oggPage(
  serial: number,
  sequence: number,
  granule: bigint,
  flags: number,
  packets: readonly Buffer[],
): Buffer {
  const lacing: number[] = [];
  for (const packet of packets) {
    for (let left = packet.length; ; left -= 255) {
      lacing.push(Math.min(left, 255));
      if (left < 255) break;
    }
  }
  const header = Buffer.alloc(27 + lacing.length);
  header.write('OggS', 0, 'ascii');
  header.writeUInt8(flags, 5);
  header.writeBigInt64LE(granule, 6);
  header.writeUInt32LE(serial, 14);
  header.writeUInt32LE(sequence, 18);
  header.writeUInt8(lacing.length, 26);
  Buffer.from(lacing).copy(header, 27);
  const page = Buffer.concat([header, ...packets]);
  let crc = 0;
  for (const byte of page) crc = ((crc << 8) ^ (OGG_CRC_TABLE[((crc >>> 24) ^ byte) & 0xff] ?? 0)) >>> 0;
  page.writeUInt32LE(crc, 22);
  return page;
}

/** Opus decoders start with 312 samples (6.5 ms at 48 kHz) of pre-skip, as libopus encoders write. */
const OPUS_PRE_SKIP = 312;
/** A 20 ms CELT frame that decodes to silence (TOC 0xF8: fullband, 20 ms, mono, one frame). */
const OPUS_SILENT_FRAME = Buffer.from([0xf8, 0xff, 0xfe]);
const OPUS_FRAME_SAMPLES = 960;

/** A valid Ogg Opus stream of silence; its last granule position gives the exact duration. */
export function oggOpusSilence(inputSampleRate: number, seconds: number): Buffer {
  const serial = 0x51_4d_55_4c;
  const head = Buffer.alloc(19);
  head.write('OpusHead', 0, 'ascii');
  head.writeUInt8(1, 8);
  head.writeUInt8(1, 9);
  head.writeUInt16LE(OPUS_PRE_SKIP, 10);
  head.writeUInt32LE(inputSampleRate, 12);
  const vendor = Buffer.from('local speech simulator', 'utf8');
  const tags = Buffer.alloc(8 + 4 + vendor.length + 4);
  tags.write('OpusTags', 0, 'ascii');
  tags.writeUInt32LE(vendor.length, 8);
  vendor.copy(tags, 12);
  const total = Math.round(seconds * 48_000);
  const frames = Math.max(1, Math.ceil((total + OPUS_PRE_SKIP) / OPUS_FRAME_SAMPLES));
  const pages = [oggPage(serial, 0, 0n, 0x02, [head]), oggPage(serial, 1, 0n, 0, [tags])];
  const perPage = 50; // one second of audio a page
  for (let first = 0; first < frames; first += perPage) {
    const count = Math.min(perPage, frames - first);
    const last = first + count >= frames;
    const granule = last ? total + OPUS_PRE_SKIP : (first + count) * OPUS_FRAME_SAMPLES;
    pages.push(
      oggPage(
        serial,
        pages.length,
        BigInt(granule),
        last ? 0x04 : 0,
        Array.from({ length: count }, () => OPUS_SILENT_FRAME),
      ),
    );
  }
  return Buffer.concat(pages);
}

type Companding = 'mulaw' | 'alaw';

interface PcmOutput {
  format: PcmFormat;
  riff: boolean;
  companding?: Companding;
}

const PCM_FORMATS: Record<string, PcmOutput> = {};
for (const rate of [8000, 16_000, 22_050, 24_000, 44_100, 48_000]) {
  const name = rate % 1000 === 0 ? `${rate / 1000}khz` : `${rate}hz`;
  const format = { sampleRate: rate, channels: 1, bitsPerSample: 16 };
  PCM_FORMATS[`riff-${name}-16bit-mono-pcm`] = { format, riff: true };
  PCM_FORMATS[`raw-${name}-16bit-mono-pcm`] = { format, riff: false };
}
for (const companding of ['mulaw', 'alaw'] as const) {
  const format = { sampleRate: 8000, channels: 1, bitsPerSample: 8 };
  PCM_FORMATS[`riff-8khz-8bit-mono-${companding}`] = { format, riff: true, companding };
  PCM_FORMATS[`raw-8khz-8bit-mono-${companding}`] = { format, riff: false, companding };
}

export const SUPPORTED_OUTPUT_FORMATS = [
  ...Object.keys(PCM_FORMATS),
  ...Object.keys(MP3_FORMATS),
  ...Object.keys(OGG_FORMATS),
];

export function contentTypeOf(outputFormat: string): string {
  if (outputFormat in MP3_FORMATS) return 'audio/mpeg';
  if (outputFormat in OGG_FORMATS) return 'audio/ogg';
  const pcm = PCM_FORMATS[outputFormat];
  if (pcm?.riff) return 'audio/wav';
  return pcm?.companding === 'alaw' ? 'audio/x-alaw-basic' : 'audio/basic';
}

/**
 * Audio for a timeline (or a plain duration, all voice) in an Azure Speech output format;
 * undefined if the format is not one the simulator produces.
 */
export function synthesizeAudio(outputFormat: string, timeline: Timeline): Buffer | undefined {
  const segments: readonly AudioSegment[] =
    typeof timeline === 'number' ? [{ seconds: timeline, silent: false }] : timeline;
  const seconds = segments.reduce((sum, s) => sum + s.seconds, 0);
  const mp3 = MP3_FORMATS[outputFormat];
  if (mp3) return mp3Silence(mp3, seconds);
  const oggRate = OGG_FORMATS[outputFormat];
  if (oggRate) return oggOpusSilence(oggRate, seconds);
  const pcm = PCM_FORMATS[outputFormat];
  if (!pcm) return undefined;
  const linear = pcmTimeline({ ...pcm.format, bitsPerSample: 16 }, segments);
  const samples = pcm.companding ? compand(linear, pcm.companding) : linear;
  if (!pcm.riff) return samples;
  const tag = pcm.companding ? WAVE_FORMAT[pcm.companding] : WAVE_FORMAT.pcm;
  return Buffer.concat([wavHeader(pcm.format, samples.length, tag), samples]);
}

function compand(linear: Buffer, law: Companding): Buffer {
  const out = Buffer.alloc(linear.length >> 1);
  for (let i = 0; i < out.length; i++) {
    const sample = linear.readInt16LE(i << 1);
    out[i] = law === 'mulaw' ? linearToMulaw(sample) : linearToAlaw(sample);
  }
  return out;
}

/** G.711, after the Sun Microsystems reference implementation. */
function segment(value: number, ends: readonly number[]): number {
  const index = ends.findIndex((end) => value <= end);
  return index < 0 ? ends.length : index;
}

function linearToMulaw(sample: number): number {
  let value = sample >> 2;
  let mask = 0xff;
  if (value < 0) {
    value = -value;
    mask = 0x7f;
  }
  value = Math.min(value, 8159) + (0x84 >> 2);
  const seg = segment(value, [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff]);
  if (seg >= 8) return 0x7f ^ mask;
  return ((seg << 4) | ((value >> (seg + 1)) & 0xf)) ^ mask;
}

function linearToAlaw(sample: number): number {
  let value = sample >> 3;
  let mask = 0xd5;
  if (value < 0) {
    mask = 0x55;
    value = -value - 1;
  }
  const seg = segment(value, [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff]);
  if (seg >= 8) return 0x7f ^ mask;
  return ((seg << 4) | ((seg < 2 ? value >> 1 : value >> seg) & 0xf)) ^ mask;
}
