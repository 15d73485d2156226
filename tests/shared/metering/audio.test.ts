import { oggOpusSilence, pcmTone, wavHeader } from '../../../local/simulators/audio';
import { ApiError } from '../../../shared/contracts/api-errors';
import { oggOpusDurationSeconds, readWav } from '../../../shared/metering/audio';
import {
  chunk,
  flipBit,
  FLOAT_SUBFORMAT,
  fmt,
  fmtExtensible,
  list,
  MONO_16K,
  MONO_24K,
  OGG_BOS,
  OGG_CONTINUED,
  OGG_EOS,
  oggOpus,
  oggOpusPages,
  oggOpusSeconds,
  oggPage,
  opusHead,
  opusPacket,
  opusPackets,
  opusTags,
  riff,
  samples,
  TOC,
  withCrc,
} from '../../fixtures/crafted-audio';

/** The ApiError a call throws; fails the test when it throws nothing or something else. */
function refusal(run: () => unknown): ApiError {
  let result: unknown;
  try {
    result = run();
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error(`expected a 400, got ${JSON.stringify(result)}`);
}

function expectRefused(run: () => unknown, message: RegExp): void {
  const error = refusal(run);
  expect(error).toMatchObject({ status: 400, code: 'BadRequest' });
  expect(error.message).toMatch(message);
  expect(error.message.length).toBeLessThan(250);
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
  ])('uses the bytes present when the data size is %s and nothing follows', (_, declared) => {
    const wav = riff(fmt(MONO_16K), chunk('data', samples(8_000), declared));
    expect(readWav(wav)).toMatchObject({ dataOffset: 44, dataBytes: 8_000, durationSeconds: 0.25 });
  });

  it('bills the whole frames present when the data size runs past the end of the file', () => {
    // Declares 2 s; 0.5 s and one byte of a frame are present: 0.5 s is billed and sent.
    const cut = chunk('data', samples(16_001), 64_000).subarray(0, 8 + 16_001); // no pad byte: cut short
    const wav = riff(fmt(MONO_16K), cut);
    expect(readWav(wav)).toMatchObject({ dataOffset: 44, dataBytes: 16_000, durationSeconds: 0.5 });
  });

  it('counts whole sample frames only when the data ends in a partial frame', () => {
    // 16-bit mono: 16 001 bytes are 8 000 frames and one stray byte (then the pad byte).
    const mono = readWav(riff(fmt(MONO_16K), chunk('data', samples(16_001)), list('after')));
    expect(mono).toMatchObject({ dataOffset: 44, dataBytes: 16_000, durationSeconds: 0.5 });
    // 16-bit stereo: 4-byte frames; 64 006 bytes are 16 001 frames and 2 bytes.
    const stereo = readWav(
      riff(fmt({ sampleRate: 16_000, channels: 2, bitsPerSample: 16 }), chunk('data', samples(64_006))),
    );
    expect(stereo).toMatchObject({ dataBytes: 64_004, durationSeconds: 16_001 / 16_000 });
  });

  it('answers the exact bytes of the samples: dataOffset and dataBytes cover them and nothing else', () => {
    const pcm = samples(32_000);
    const wav = riff(list('before'), fmt(MONO_16K), chunk('data', pcm), list('after'));
    const info = readWav(wav);
    expect(wav.subarray(info?.dataOffset, (info?.dataOffset ?? 0) + (info?.dataBytes ?? 0))).toEqual(pcm);
  });

  it('reads WAVE_FORMAT_EXTENSIBLE with the PCM sub-format', () => {
    const wav = riff(fmtExtensible(MONO_16K), chunk('data', samples(32_000)));
    expect(readWav(wav)).toMatchObject({ dataOffset: 12 + 48 + 8, dataBytes: 32_000, durationSeconds: 1 });
  });

  it('reads 8-bit G.711 (µ-law, A-law) and says it is companded, not linear PCM', () => {
    const g711 = { sampleRate: 8_000, channels: 1, bitsPerSample: 8 };
    expect(readWav(riff(fmt(g711, { formatTag: 7 }), chunk('data', samples(8_000))))).toMatchObject({
      companding: 'mulaw',
      durationSeconds: 1,
    });
    expect(readWav(riff(fmt(g711, { formatTag: 6 }), chunk('data', samples(4_000))))).toMatchObject({
      companding: 'alaw',
      durationSeconds: 0.5,
    });
    expect(readWav(riff(fmt(MONO_16K), chunk('data', samples(2))))).not.toHaveProperty('companding');
  });

  it('reads the WAV files the local simulator writes, and a streaming header with no samples yet', () => {
    const tone = pcmTone(MONO_24K, 1.5);
    expect(readWav(Buffer.concat([wavHeader(MONO_24K, tone.length), tone]))).toMatchObject({
      dataOffset: 44,
      dataBytes: tone.length,
      durationSeconds: 1.5,
    });
    expect(readWav(wavHeader(MONO_16K, 0))).toMatchObject({ dataBytes: 0, durationSeconds: 0 });
    // The Speech SDK's header: RIFF size 0 and data size 0, samples following to the end.
    const sdk = wavHeader(MONO_16K, 0);
    sdk.writeUInt32LE(0, 4);
    expect(readWav(Buffer.concat([sdk, tone.subarray(0, 32_000)]))).toMatchObject({
      dataBytes: 32_000,
      durationSeconds: 1,
    });
  });

  describe('refuses, with a 400 that says why,', () => {
    it.each([
      ['0', 0],
      ['0xFFFFFFFF', 0xffffffff],
    ])('a data chunk of size %s followed by a LIST chunk (the metadata is not audio)', (_, size) => {
      const wav = riff(fmt(MONO_16K), chunk('data', Buffer.alloc(0), size), list('x'.repeat(4_000)));
      expectRefused(() => readWav(wav), /'data' chunk declares no length.*'LIST' chunk follows/);
    });

    it('a data chunk before any fmt chunk', () => {
      expectRefused(() => readWav(riff(chunk('data', samples(1_600)), fmt(MONO_16K))), /before its 'fmt '/);
      expectRefused(() => readWav(riff(chunk('data', samples(1_600)))), /before its 'fmt '/);
    });

    it('a fmt chunk after the data chunk', () => {
      const wav = riff(fmt(MONO_16K), chunk('data', samples(1_600)), fmt(MONO_24K));
      expectRefused(() => readWav(wav), /'fmt ' chunk after its 'data' chunk/);
    });

    it('two fmt chunks, or two data chunks', () => {
      const twoFmt = riff(fmt(MONO_24K), fmt(MONO_16K), chunk('data', samples(1_600)));
      expectRefused(() => readWav(twoFmt), /more than one 'fmt ' chunk/);
      const twoData = riff(fmt(MONO_16K), chunk('data', samples(1_600)), chunk('data', samples(1_600)));
      expectRefused(() => readWav(twoData), /more than one 'data' chunk/);
    });

    it.each([
      ['IEEE float (3)', 3, /format tag 0x0003/],
      ['Microsoft ADPCM (2)', 2, /format tag 0x0002/],
      ['MPEG Layer III (0x55)', 0x55, /format tag 0x0055/],
      ['16-bit "µ-law" (7)', 7, /format tag 0x0007/],
    ])('a non-PCM format tag: %s', (_, tag, message) => {
      const wav = riff(fmt(MONO_16K, { formatTag: tag }), chunk('data', samples(32_000)));
      expectRefused(() => readWav(wav), message);
    });

    it('WAVE_FORMAT_EXTENSIBLE with a sub-format other than PCM', () => {
      const wav = riff(fmtExtensible(MONO_16K, FLOAT_SUBFORMAT), chunk('data', samples(32_000)));
      expectRefused(() => readWav(wav), /sub-format is not PCM/);
    });

    it('a block align or byte rate that disagrees with channels × bits', () => {
      const align = riff(fmt(MONO_16K, { blockAlign: 4 }), chunk('data', samples(32_000)));
      expectRefused(() => readWav(align), /block align 4.*1 channel × 16 bits = 2/);
      const rate = riff(fmt(MONO_16K, { byteRate: 8_000 }), chunk('data', samples(32_000)));
      expectRefused(() => readWav(rate), /byte rate 8000.*16000 Hz × 2 = 32000/);
    });

    it.each([
      ['a zero sample rate', { sampleRate: 0, channels: 1, bitsPerSample: 16 }, /sample rate/],
      ['no channels', { sampleRate: 16_000, channels: 0, bitsPerSample: 16 }, /channels/],
      ['12-bit samples', { sampleRate: 16_000, channels: 1, bitsPerSample: 12 }, /bits per sample/],
    ])('a format with %s', (_, format, message) => {
      expectRefused(() => readWav(riff(fmt(format), chunk('data', samples(16)))), message);
    });

    it('a chunk whose size runs past the end of the file, before or after the data', () => {
      const before = riff(fmt(MONO_16K), chunk('LIST', Buffer.from('INFO'), 1_000_000));
      expectRefused(() => readWav(before), /truncated: its 'LIST' chunk declares 1000000 bytes/);
      const after = riff(
        fmt(MONO_16K),
        chunk('data', samples(3_200)),
        chunk('LIST', Buffer.from('INFO'), 500),
      );
      expectRefused(() => readWav(after), /truncated: its 'LIST' chunk declares 500 bytes/);
      const truncatedFmt = Buffer.concat([riff(), Buffer.from('fmt \x10\0\0\0\x01\0', 'latin1')]);
      expectRefused(() => readWav(truncatedFmt), /truncated: its 'fmt ' chunk declares 16 bytes/);
    });

    it('bytes after the data that are not chunks', () => {
      const junk = riff(
        fmt(MONO_16K),
        chunk('data', samples(3_200)),
        Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9]),
      );
      expectRefused(() => readWav(junk), /bytes after its 'data' chunk that are not a RIFF chunk/);
      const stray = riff(fmt(MONO_16K), chunk('data', samples(3_200)), Buffer.from('ab'));
      expectRefused(() => readWav(stray), /2 stray bytes/);
    });

    it('a WAVE without a data chunk', () => {
      expectRefused(() => readWav(riff(fmt(MONO_16K), list('no audio'))), /no 'data' chunk/);
    });

    it('without echoing the bytes it was sent', () => {
      const wav = riff(
        fmt(MONO_16K),
        chunk('data', samples(3_200)),
        Buffer.from('\x01\x02AAAA'.repeat(1_000)),
      );
      const error = refusal(() => readWav(wav));
      expect(error.message).not.toContain('AAAA');
    });
  });

  it.each([
    ['an empty buffer', Buffer.alloc(0)],
    ['a buffer shorter than the RIFF header', Buffer.from('RIFF\0\0\0\0WAV', 'latin1')],
    ['raw PCM', samples(32_000)],
    [
      'a RIFF file that is not WAVE',
      Buffer.concat([Buffer.from('RIFF\0\0\0\0AVI ', 'latin1'), samples(100)]),
    ],
    ['an Ogg stream', oggOpusSeconds(1)],
  ])('answers undefined for %s', (_, buffer) => {
    expect(readWav(buffer)).toBeUndefined();
  });
});

describe('oggOpusDurationSeconds', () => {
  it('measures the audio the packets carry, less the pre-skip, trimmed at the end', () => {
    expect(oggOpusDurationSeconds(oggOpusSeconds(7.25))).toBe(7.25);
    expect(oggOpusDurationSeconds(oggOpusSeconds(0.5))).toBe(0.5);
    expect(oggOpusDurationSeconds(oggOpusSeconds(0.0135))).toBe(0.0135);
  });

  it('subtracts the pre-skip the header declares', () => {
    // 55 packets of 20 ms: 52 800 samples at 48 kHz is 1.1 s; less 4 800 samples of pre-skip = 1 s
    expect(oggOpusDurationSeconds(oggOpus(opusPackets(1.1), { preSkip: 4_800 }))).toBe(1);
  });

  it('never answers a negative duration when the pre-skip exceeds the audio', () => {
    expect(oggOpusDurationSeconds(oggOpus(opusPackets(0.04), { preSkip: 3_840 }))).toBe(0);
  });

  it('answers 0 for a stream with only its headers', () => {
    expect(oggOpusDurationSeconds(oggOpus([]))).toBe(0);
  });

  it('reads the frame size and frame count of every packet from its TOC byte', () => {
    const packets = [
      opusPacket(TOC.silkWb20), // 960
      opusPacket(TOC.celtFb2_5Code3, 10, 8), // 8 × 120 = 960
      opusPacket(TOC.silkWb60Code1, 30), // 2 × 2 880 = 5 760
      opusPacket((15 << 3) | 2, 12), // hybrid fullband 20 ms, code 2: 2 × 960 = 1 920
      opusPacket((16 << 3) | 3, 4, 0x80 | 3), // CELT NB 2.5 ms, code 3 (VBR flag set): 3 × 120 = 360
      opusPacket((2 << 3) | 0x04, 5), // SILK NB 40 ms, stereo: 1 920
    ];
    const total = 960 + 960 + 5_760 + 1_920 + 360 + 1_920;
    expect(oggOpusDurationSeconds(oggOpus(packets, { preSkip: 0 }))).toBe(total / 48_000);
  });

  it('reassembles a packet continued across pages, and a packet of exactly 255 bytes', () => {
    const serial = 77;
    const big = opusPacket(TOC.celtFb20, 700); // 701 bytes: 510 on page 3, 191 on page 4
    const exact = opusPacket(TOC.silkWb20, 254); // 255 bytes: lacing 255, 0
    const pages = [
      oggPage({ packets: [opusHead(0)], granule: 0n, flags: OGG_BOS, serial, sequence: 0 }),
      oggPage({ packets: [opusTags()], granule: 0n, flags: 0, serial, sequence: 1 }),
      oggPage({
        packets: [exact, big.subarray(0, 510)],
        granule: 960n,
        flags: 0,
        serial,
        sequence: 2,
        openEnded: true,
      }),
      oggPage({
        packets: [big.subarray(510), opusPacket(TOC.silkWb20)],
        granule: 2_880n,
        flags: OGG_CONTINUED | OGG_EOS,
        serial,
        sequence: 3,
      }),
    ];
    expect(oggOpusDurationSeconds(Buffer.concat(pages))).toBe(2_880 / 48_000);
  });

  it('reads OggS inside a packet as payload, never as a page', () => {
    // The file: a fake page header in the payload claiming 99 999.99 s.
    const fake = Buffer.alloc(27);
    fake.write('OggS', 0, 'ascii');
    fake.writeBigInt64LE(BigInt(Math.round(99_999.99 * 48_000) + 312), 6);
    const packets = opusPackets(2.02, Buffer.concat([fake, Buffer.alloc(20)]));
    expect(oggOpusDurationSeconds(oggOpus(packets, { granule: (exact) => exact }))).toBe(
      (101 * 960 - 312) / 48_000,
    );
  });

  it('accepts end trimming of up to one packet (RFC 7845 §4.4)', () => {
    const packets = opusPackets(1); // 48 000 samples
    const trimmed = (by: bigint) =>
      oggOpus(packets, { granule: (exact, page) => (page.last ? exact - by : exact) });
    expect(oggOpusDurationSeconds(trimmed(959n))).toBe((48_000 - 959 - 312) / 48_000);
    expect(oggOpusDurationSeconds(trimmed(960n))).toBe((48_000 - 960 - 312) / 48_000);
    expectRefused(() => oggOpusDurationSeconds(trimmed(961n)), /granule positions disagree/);
  });

  it('reads the Ogg Opus files the local simulator writes', () => {
    for (const seconds of [0.02, 1, 3.3, 51 / 14, 29.99]) {
      // Exact to the sample: within 1/48 000 s of the length asked for.
      expect(oggOpusDurationSeconds(oggOpusSilence(24_000, seconds))).toBeCloseTo(seconds, 4);
    }
  });

  describe('refuses, with a 400 that says why,', () => {
    it('pages that under-claim: granule positions say 0.5 s, the packets carry 30 s', () => {
      const stream = oggOpus(opusPackets(30), { granule: (exact) => (exact < 24_312n ? exact : 24_312n) });
      expectRefused(
        () => oggOpusDurationSeconds(stream),
        /granule positions disagree with the audio they carry: the last page says 0\.500 s, but the packets hold 29\.99\d s/,
      );
    });

    it('pages that over-claim: granule positions say 60 s, the packets carry 2 s', () => {
      const stream = oggOpus(opusPackets(2), {
        packetsPerPage: 100,
        granule: () => BigInt(60 * 48_000 + 312),
      });
      expectRefused(
        () => oggOpusDurationSeconds(stream),
        /granule positions disagree with the audio they carry: page 3 says 60\.000 s, but the packets up to it hold 1\.99\d s/,
      );
      // One sample too many on the last page is still an over-claim.
      const byOne = oggOpus(opusPackets(2), { granule: (exact, page) => (page.last ? exact + 1n : exact) });
      expectRefused(() => oggOpusDurationSeconds(byOne), /granule positions disagree/);
    });

    it('granule positions that go backwards', () => {
      const stream = oggOpus(opusPackets(3), {
        granule: (exact, page) => (page.index === 1 ? 1_000n : exact),
      });
      expectRefused(() => oggOpusDurationSeconds(stream), /granule position goes backwards at page 4/);
    });

    it('a truncated page: its body, or its header, runs past the end of the file', () => {
      const stream = oggOpusSeconds(3);
      expectRefused(
        () => oggOpusDurationSeconds(stream.subarray(0, stream.length - 10)),
        /The Ogg stream is truncated: page 6 ends past the end of the file/,
      );
      const pages = oggOpusPages(opusPackets(3));
      const cut = Buffer.concat([...pages.slice(0, 3), (pages[3] as Buffer).subarray(0, 20)]);
      expectRefused(() => oggOpusDurationSeconds(cut), /The Ogg stream is truncated: page 4/);
    });

    it('a last packet that continues onto a page that is not there', () => {
      const serial = 5;
      const stream = Buffer.concat([
        oggPage({ packets: [opusHead()], granule: 0n, flags: OGG_BOS, serial, sequence: 0 }),
        oggPage({ packets: [opusTags()], granule: 0n, flags: 0, serial, sequence: 1 }),
        oggPage({
          packets: [opusPacket(TOC.celtFb20, 509)],
          granule: -1n,
          flags: 0,
          serial,
          sequence: 2,
          openEnded: true,
        }),
      ]);
      expectRefused(() => oggOpusDurationSeconds(stream), /truncated: its last packet is cut off/);
    });

    it('a page whose CRC does not match', () => {
      const pages = oggOpusPages(opusPackets(3));
      const damaged = flipBit(pages[3] as Buffer, -5); // one bit of audio
      const stream = Buffer.concat([...pages.slice(0, 3), damaged, ...pages.slice(4)]);
      expectRefused(() => oggOpusDurationSeconds(stream), /page 4 fails its CRC check/);
    });

    it('two logical streams, multiplexed or chained', () => {
      const first = oggOpusPages(opusPackets(2), { serial: 1 });
      const second = oggOpusPages(opusPackets(30), { serial: 2 });
      const grouped = Buffer.concat([first[0] as Buffer, ...second, ...first.slice(1)]);
      expectRefused(() => oggOpusDurationSeconds(grouped), /more than one logical stream/);
      const chained = Buffer.concat([...first, ...second]);
      expectRefused(() => oggOpusDurationSeconds(chained), /more than one logical stream/);
    });

    it('bytes after the last page', () => {
      const stream = Buffer.concat([oggOpusSeconds(1), Buffer.from('trailing garbage '.repeat(1_000))]);
      const error = refusal(() => oggOpusDurationSeconds(stream));
      expect(error.message).toMatch(/17000 bytes after its last page \(page 4\)/);
      expect(error.message).not.toContain('garbage');
    });

    it('a page after the end-of-stream page, a missing page, misplaced BOS/EOS flags', () => {
      const pages = oggOpusPages(opusPackets(3));
      const afterEos = Buffer.concat([
        ...pages,
        oggPage({
          packets: [opusPacket(TOC.silkWb20)],
          granule: 200_000n,
          flags: 0,
          serial: 0x1234_5678,
          sequence: 5,
        }),
      ]);
      expectRefused(() => oggOpusDurationSeconds(afterEos), /page 6 follows the end-of-stream page/);
      const missing = Buffer.concat([...pages.slice(0, 3), ...pages.slice(4)]);
      expectRefused(() => oggOpusDurationSeconds(missing), /page 4 is out of sequence/);
      const flag = (page: Buffer, flags: number) => {
        const copy = Buffer.from(page);
        copy[5] = flags;
        return withCrc(copy);
      };
      const lateBos = Buffer.concat([
        ...pages.slice(0, 3),
        flag(pages[3] as Buffer, OGG_BOS),
        ...pages.slice(4),
      ]);
      expectRefused(() => oggOpusDurationSeconds(lateBos), /page 4 is marked as the beginning/);
      const earlyEos = Buffer.concat([
        ...pages.slice(0, 3),
        flag(pages[3] as Buffer, OGG_EOS),
        ...pages.slice(4),
      ]);
      expectRefused(() => oggOpusDurationSeconds(earlyEos), /page 5 follows the end-of-stream page/);
    });

    it('a second header that is not OpusTags, or audio that shares the OpusHead page', () => {
      const serial = 9;
      const noTags = Buffer.concat([
        oggPage({ packets: [opusHead()], granule: 0n, flags: OGG_BOS, serial, sequence: 0 }),
        oggPage({ packets: opusPackets(0.2), granule: 9_600n, flags: OGG_EOS, serial, sequence: 1 }),
      ]);
      expectRefused(() => oggOpusDurationSeconds(noTags), /OpusTags/);
      const crowded = Buffer.concat([
        oggPage({ packets: [opusHead(), opusTags()], granule: 0n, flags: OGG_BOS, serial, sequence: 0 }),
        oggPage({ packets: opusPackets(0.2), granule: 9_600n, flags: OGG_EOS, serial, sequence: 1 }),
      ]);
      expectRefused(() => oggOpusDurationSeconds(crowded), /OpusHead must be alone on the first page/);
    });

    it('an empty packet, or a code 3 packet without its frame count', () => {
      expectRefused(
        () => oggOpusDurationSeconds(oggOpus([opusPacket(TOC.silkWb20), Buffer.alloc(0)])),
        /Opus packet 2 is empty/,
      );
      expectRefused(
        () => oggOpusDurationSeconds(oggOpus([Buffer.from([TOC.celtFb2_5Code3])])),
        /Opus packet 1 .*frame count/,
      );
      expectRefused(
        () =>
          oggOpusDurationSeconds(
            oggOpus(
              [opusPacket(TOC.silkWb60Code1, 4, 3)].map((p) => {
                const code3 = Buffer.from(p);
                code3[0] = (11 << 3) | 3; // 3 × 60 ms = 180 ms: more than an Opus packet may hold
                return code3;
              }),
            ),
          ),
        /Opus packet 1 .*120 ms/,
      );
    });
  });

  it.each([
    ['an empty buffer', Buffer.alloc(0)],
    ['a WAV file', riff(fmt(MONO_16K), chunk('data', samples(3_200)))],
    [
      'an Ogg Vorbis stream (no OpusHead)',
      Buffer.concat([
        oggPage({
          packets: [Buffer.from('\x01vorbis\0\0\0\0\x01', 'latin1')],
          granule: 0n,
          flags: OGG_BOS,
          serial: 3,
          sequence: 0,
        }),
        oggPage({ packets: [Buffer.alloc(20)], granule: 44_100n, flags: OGG_EOS, serial: 3, sequence: 1 }),
      ]),
    ],
    [
      'Opus data without the Ogg capture pattern',
      Buffer.concat([Buffer.from('XXXX'), oggOpusSeconds(1).subarray(4)]),
    ],
  ])('answers undefined for %s', (_, buffer) => {
    expect(oggOpusDurationSeconds(buffer)).toBeUndefined();
  });
});
