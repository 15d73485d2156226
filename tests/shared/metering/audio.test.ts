import { oggOpusDurationSeconds, readWav } from '../../../shared/metering/audio';

interface Format {
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
}

const MONO_16K: Format = { sampleRate: 16_000, channels: 1, bitsPerSample: 16 };
const MONO_24K: Format = { sampleRate: 24_000, channels: 1, bitsPerSample: 16 };

function chunk(id: string, body: Buffer, declaredSize = body.length): Buffer {
  const header = Buffer.alloc(8);
  header.write(id, 0, 'ascii');
  header.writeUInt32LE(declaredSize, 4);
  // RIFF chunks are word-aligned: an odd-sized body is followed by a pad byte.
  return Buffer.concat([header, body, Buffer.alloc(body.length % 2)]);
}

function fmt(format: Format): Buffer {
  const body = Buffer.alloc(16);
  const blockAlign = format.channels * (format.bitsPerSample / 8);
  body.writeUInt16LE(1, 0); // PCM
  body.writeUInt16LE(format.channels, 2);
  body.writeUInt32LE(format.sampleRate, 4);
  body.writeUInt32LE(format.sampleRate * blockAlign, 8);
  body.writeUInt16LE(blockAlign, 12);
  body.writeUInt16LE(format.bitsPerSample, 14);
  return chunk('fmt ', body);
}

/** A deterministic, non-silent PCM body of `bytes` bytes. */
function samples(bytes: number): Buffer {
  const body = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) body[i] = (i * 37) % 251;
  return body;
}

function list(text: string): Buffer {
  return chunk(
    'LIST',
    Buffer.concat([Buffer.from('INFO', 'ascii'), chunk('ISFT', Buffer.from(text, 'ascii'))]),
  );
}

function riff(...chunks: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from('WAVE', 'ascii'), ...chunks]);
  const header = Buffer.alloc(8);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(body.length, 4);
  return Buffer.concat([header, body]);
}

/** A page of a single-stream Ogg file with one segment (enough for the duration reader). */
function oggPage(granule: bigint, payload: Buffer): Buffer {
  const header = Buffer.alloc(27);
  header.write('OggS', 0, 'ascii');
  header.writeBigInt64LE(granule, 6);
  header.writeUInt8(1, 26);
  return Buffer.concat([header, Buffer.from([payload.length]), payload]);
}

function opusHead(preSkip: number): Buffer {
  const head = Buffer.alloc(19);
  head.write('OpusHead', 0, 'ascii');
  head.writeUInt8(1, 8); // version
  head.writeUInt8(1, 9); // channels
  head.writeUInt16LE(preSkip, 10);
  head.writeUInt32LE(48_000, 12); // original input rate (informational)
  return head;
}

/** An Ogg Opus stream of `seconds` (48 kHz granule clock, `preSkip` samples of pre-skip). */
function oggOpus(seconds: number, preSkip = 312): Buffer {
  return Buffer.concat([
    oggPage(0n, opusHead(preSkip)),
    oggPage(BigInt(Math.round(seconds * 48_000) + preSkip), Buffer.alloc(40)),
  ]);
}

describe('readWav', () => {
  it('reads a 16 kHz mono 16-bit WAV and its exact duration', () => {
    // 2.5 s × 16 000 samples/s × 2 bytes = 80 000 bytes after a 44-byte header
    const wav = riff(fmt(MONO_16K), chunk('data', samples(80_000)));
    expect(readWav(wav)).toEqual({
      sampleRate: 16_000,
      channels: 1,
      bitsPerSample: 16,
      dataOffset: 44,
      dataBytes: 80_000,
      durationSeconds: 2.5,
    });
  });

  it('reads a 24 kHz mono 16-bit WAV and its exact duration', () => {
    // 1.25 s × 24 000 × 2 = 60 000 bytes
    const info = readWav(riff(fmt(MONO_24K), chunk('data', samples(60_000))));
    expect(info).toMatchObject({
      sampleRate: 24_000,
      dataOffset: 44,
      dataBytes: 60_000,
      durationSeconds: 1.25,
    });
  });

  it('measures a fraction of a second exactly', () => {
    // 0.1 s at 16 kHz = 3 200 bytes; 16 bytes = 8 samples = 0.0005 s
    expect(readWav(riff(fmt(MONO_16K), chunk('data', samples(3_200))))?.durationSeconds).toBe(0.1);
    expect(readWav(riff(fmt(MONO_16K), chunk('data', samples(16))))?.durationSeconds).toBe(0.0005);
  });

  it('accounts for channels and sample size', () => {
    // 48 kHz stereo 16-bit: 192 000 bytes/s; 96 000 bytes = 0.5 s
    const stereo = readWav(
      riff(fmt({ sampleRate: 48_000, channels: 2, bitsPerSample: 16 }), chunk('data', samples(96_000))),
    );
    expect(stereo).toMatchObject({ channels: 2, durationSeconds: 0.5 });
    // 8 kHz mono 8-bit: 8 000 bytes/s; 12 000 bytes = 1.5 s
    const telephone = readWav(
      riff(fmt({ sampleRate: 8_000, channels: 1, bitsPerSample: 8 }), chunk('data', samples(12_000))),
    );
    expect(telephone).toMatchObject({ bitsPerSample: 8, durationSeconds: 1.5 });
  });

  it('skips a LIST chunk before the data, so the data offset moves', () => {
    const info = list('Lavf60.3.100'); // 4 + 8 + 12 = 24-byte body
    const wav = riff(fmt(MONO_16K), info, chunk('data', samples(32_000)));
    expect(readWav(wav)).toMatchObject({ dataOffset: 44 + 8 + 24, dataBytes: 32_000, durationSeconds: 1 });
  });

  it('skips the pad byte of an odd-sized chunk before the data', () => {
    const odd = chunk('LIST', Buffer.from('INFOabcde', 'ascii')); // 9-byte body + 1 pad byte
    const wav = riff(fmt(MONO_16K), odd, chunk('data', samples(16_000)));
    const result = readWav(wav);
    expect(result).toMatchObject({ dataOffset: 44 + 8 + 10, dataBytes: 16_000, durationSeconds: 0.5 });
    // The offset really is where the samples start.
    expect(wav.subarray(result?.dataOffset, (result?.dataOffset ?? 0) + 4)).toEqual(samples(4));
  });

  it('ignores a LIST chunk after the data: only the declared data bytes count', () => {
    const wav = riff(
      fmt(MONO_24K),
      chunk('data', samples(48_000)),
      list('a long trailing comment, not audio'),
    );
    expect(readWav(wav)).toMatchObject({ dataOffset: 44, dataBytes: 48_000, durationSeconds: 1 });
  });

  it('handles LIST chunks on both sides of the data', () => {
    const wav = riff(
      list('before'),
      fmt(MONO_16K),
      list('middle!'),
      chunk('data', samples(24_000)),
      list('after'),
    );
    // RIFF+WAVE 12, LIST 8+4+(8+6) = 26, fmt 24, LIST 8+4+(8+7+pad) = 28, data header 8 → 98
    expect(readWav(wav)).toMatchObject({ dataOffset: 98, dataBytes: 24_000, durationSeconds: 0.75 });
  });

  it.each([
    ['0 (streamed)', 0],
    ['0xFFFFFFFF (streamed)', 0xffffffff],
    ['larger than the bytes present (truncated)', 100_000],
  ])('uses the bytes present when the data size is %s', (_, declared) => {
    const wav = riff(fmt(MONO_16K), chunk('data', samples(8_000), declared));
    expect(readWav(wav)).toMatchObject({ dataBytes: 8_000, durationSeconds: 0.25 });
  });

  it.each([
    ['an empty buffer', Buffer.alloc(0)],
    ['a buffer shorter than the RIFF header', Buffer.from('RIFF\0\0\0\0WAV', 'latin1')],
    ['raw PCM', samples(32_000)],
    [
      'a RIFF file that is not WAVE',
      Buffer.concat([Buffer.from('RIFF\0\0\0\0AVI ', 'latin1'), samples(100)]),
    ],
    ['an Ogg stream', oggOpus(1)],
    ['a WAVE without a data chunk', riff(fmt(MONO_16K), list('no audio'))],
    ['a WAVE whose data has no fmt before it', riff(chunk('data', samples(1_600)))],
    [
      'a WAVE with a zero sample rate',
      riff(fmt({ sampleRate: 0, channels: 1, bitsPerSample: 16 }), chunk('data', samples(16))),
    ],
    [
      'a WAVE with a truncated fmt chunk',
      Buffer.concat([riff(), Buffer.from('fmt \x10\0\0\0\x01\0', 'latin1')]),
    ],
  ])('answers undefined for %s', (_, buffer) => {
    expect(readWav(buffer)).toBeUndefined();
  });
});

describe('oggOpusDurationSeconds', () => {
  it('measures the stream from its last granule position, less the pre-skip', () => {
    expect(oggOpusDurationSeconds(oggOpus(7.25))).toBe(7.25);
    expect(oggOpusDurationSeconds(oggOpus(0.5))).toBe(0.5);
  });

  it('subtracts the pre-skip the header declares', () => {
    // granule 52 800 at 48 kHz is 1.1 s; less 4 800 samples of pre-skip = 1 s
    const stream = Buffer.concat([oggPage(0n, opusHead(4_800)), oggPage(52_800n, Buffer.alloc(30))]);
    expect(oggOpusDurationSeconds(stream)).toBe(1);
  });

  it('takes the highest granule over several pages', () => {
    const stream = Buffer.concat([
      oggPage(0n, opusHead(312)),
      oggPage(0n, Buffer.from('OpusTags')),
      oggPage(48_312n, Buffer.alloc(20)),
      oggPage(96_312n, Buffer.alloc(20)),
      oggPage(120_312n, Buffer.alloc(20)),
    ]);
    expect(oggOpusDurationSeconds(stream)).toBe(2.5);
  });

  it('ignores a page that ends no packet (granule -1)', () => {
    const stream = Buffer.concat([
      oggPage(0n, opusHead(0)),
      oggPage(72_000n, Buffer.alloc(20)),
      oggPage(-1n, Buffer.alloc(20)),
    ]);
    expect(oggOpusDurationSeconds(stream)).toBe(1.5);
  });

  it('never answers a negative duration when the pre-skip exceeds the granule', () => {
    const stream = Buffer.concat([oggPage(0n, opusHead(3_840)), oggPage(1_000n, Buffer.alloc(10))]);
    expect(oggOpusDurationSeconds(stream)).toBe(0);
  });

  it('answers 0 for a stream with only headers', () => {
    expect(oggOpusDurationSeconds(oggPage(0n, opusHead(312)))).toBe(0);
  });

  it.each([
    ['an empty buffer', Buffer.alloc(0)],
    ['a WAV file', riff(fmt(MONO_16K), chunk('data', samples(3_200)))],
    [
      'an Ogg Vorbis stream (no OpusHead)',
      Buffer.concat([
        oggPage(0n, Buffer.from('\x01vorbis\0\0\0\0\x01', 'latin1')),
        oggPage(44_100n, Buffer.alloc(20)),
      ]),
    ],
    [
      'Opus data without the Ogg capture pattern',
      Buffer.concat([Buffer.from('XXXX'), oggOpus(1).subarray(4)]),
    ],
  ])('answers undefined for %s', (_, buffer) => {
    expect(oggOpusDurationSeconds(buffer)).toBeUndefined();
  });
});
