import { badRequest } from '../contracts/api-errors';

/**
 * Audio durations measured from the audio itself, never from a figure the client claims, by
 * walking the container's structure: WAV (RIFF/PCM) chunk by chunk, Ogg Opus page by page from the
 * first byte. The duration billed is the audio the file really carries. A file whose structure is
 * broken, or whose header disagrees with its data, is refused with a 400 (`badRequest`) that says
 * what is wrong; messages never quote the file's bytes.
 */

export interface PcmFormat {
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
}

export interface WavInfo extends PcmFormat {
  /** Where the samples start: a `data` chunk need not be the last one, nor follow a 44-byte header. */
  dataOffset: number;
  /** The bytes of whole sample frames from dataOffset: exactly the samples measured. */
  dataBytes: number;
  durationSeconds: number;
  /** Set for G.711 (8-bit µ-law or A-law, format tags 7 and 6), which is not linear PCM; absent for PCM. */
  companding?: 'mulaw' | 'alaw';
}

// ---- WAV --------------------------------------------------------------------------------------------

interface WavFormat extends PcmFormat {
  blockAlign: number;
  companding?: 'mulaw' | 'alaw';
}

interface ChunkHeader {
  id: string;
  size: number;
  /** Where the chunk's body starts. */
  body: number;
}

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_ALAW = 6;
const WAVE_FORMAT_MULAW = 7;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;
/** KSDATAFORMAT_SUBTYPE_PCM, 00000001-0000-0010-8000-00aa00389b71, as a WAV file stores it. */
const PCM_SUBFORMAT = Buffer.from('0100000000001000800000aa00389b71', 'hex');
/** The data sizes streaming writers leave when they cannot seek back: "to the end of the file". */
const STREAMING_SIZES: readonly number[] = [0, 0xffffffff];

/**
 * Parses a RIFF/WAVE file strictly: one `fmt ` chunk (PCM, or 8-bit G.711) before one `data`
 * chunk, every chunk within the file, and nothing after the data but well-formed chunks. Undefined
 * when the buffer is not RIFF/WAVE at all; a 400 when it is, but broken.
 *
 * - A `data` size of 0 or 0xFFFFFFFF (a streaming writer's) means the samples run to the end of the
 *   file; if what follows parses as RIFF chunks (e.g. a LIST chunk after an empty data chunk), which
 *   bytes are audio is ambiguous and the file is refused.
 * - A `data` size larger than the bytes present (a truncated file) counts the bytes present: those
 *   are the samples sent on, so what is billed is what is recognised.
 * - Only whole sample frames count; a trailing partial frame is neither billed nor sent.
 */
export function readWav(buffer: Buffer): WavInfo | undefined {
  if (
    buffer.length < 12 ||
    buffer.toString('latin1', 0, 4) !== 'RIFF' ||
    buffer.toString('latin1', 8, 12) !== 'WAVE'
  ) {
    return undefined;
  }
  let format: WavFormat | undefined;
  for (let offset = 12; ;) {
    const chunk = chunkHeader(buffer, offset, `at offset ${offset}`);
    if (!chunk) {
      throw badRequest(
        format ? "The WAV file has no 'data' chunk." : "The WAV file has no 'fmt ' or 'data' chunk.",
      );
    }
    if (chunk.id === 'data') {
      if (!format) throw badRequest("The WAV file has its 'data' chunk before its 'fmt ' chunk.");
      return dataChunk(buffer, chunk, format);
    }
    checkChunkFits(buffer, chunk);
    if (chunk.id === 'fmt ') {
      if (format) throw badRequest("The WAV file has more than one 'fmt ' chunk.");
      format = fmtChunk(buffer, chunk);
    }
    offset = chunk.body + chunk.size + (chunk.size % 2);
  }
}

function dataChunk(buffer: Buffer, chunk: ChunkHeader, format: WavFormat): WavInfo {
  const available = buffer.length - chunk.body;
  let bytes: number;
  let next: number;
  if (STREAMING_SIZES.includes(chunk.size)) {
    const follower = available > 0 ? wellFormedChunks(buffer, chunk.body) : undefined;
    if (follower) {
      throw badRequest(
        `The WAV 'data' chunk declares no length (size ${chunk.size === 0 ? '0' : '0xFFFFFFFF'}, as a streaming writer leaves it), yet a '${follower}' chunk follows it: which bytes are audio is ambiguous. Write the data chunk's real size.`,
      );
    }
    bytes = available;
    next = buffer.length;
  } else if (chunk.size > available) {
    // Truncated: the samples present are the audio (and all that is sent on).
    bytes = available;
    next = buffer.length;
  } else {
    bytes = chunk.size;
    next = chunk.body + chunk.size + (chunk.size % 2);
  }
  // After the samples: well-formed chunks to the end of the file, and no second fmt or data.
  for (let offset = next; ;) {
    const after = chunkHeader(buffer, offset, "after its 'data' chunk");
    if (!after) break;
    if (after.id === 'data') throw badRequest("The WAV file has more than one 'data' chunk.");
    if (after.id === 'fmt ') throw badRequest("The WAV file has a 'fmt ' chunk after its 'data' chunk.");
    checkChunkFits(buffer, after);
    offset = after.body + after.size + (after.size % 2);
  }
  const frames = Math.floor(bytes / format.blockAlign);
  const { blockAlign: _, ...pcm } = format;
  return {
    ...pcm,
    dataOffset: chunk.body,
    dataBytes: frames * format.blockAlign,
    durationSeconds: frames / format.sampleRate,
  };
}

/** The chunk header at `offset`; undefined at the end of the file (or just past a final pad byte left out). */
function chunkHeader(buffer: Buffer, offset: number, where: string): ChunkHeader | undefined {
  if (offset >= buffer.length) return undefined;
  const left = buffer.length - offset;
  if (left < 8) throw badRequest(`The WAV file ends with ${left} stray bytes after its last chunk.`);
  if (!isFourCC(buffer, offset)) {
    throw badRequest(`The WAV file has bytes ${where} that are not a RIFF chunk.`);
  }
  return {
    id: buffer.toString('latin1', offset, offset + 4),
    size: buffer.readUInt32LE(offset + 4),
    body: offset + 8,
  };
}

function checkChunkFits(buffer: Buffer, chunk: ChunkHeader): void {
  const left = buffer.length - chunk.body;
  if (chunk.size > left) {
    throw badRequest(
      `The WAV file is truncated: its '${chunk.id}' chunk declares ${chunk.size} bytes, but ${left} remain.`,
    );
  }
}

/** A chunk id: four printable ASCII characters (so an id quoted in a message is harmless). */
function isFourCC(buffer: Buffer, offset: number): boolean {
  for (let i = offset; i < offset + 4; i++) {
    const byte = buffer[i] ?? 0;
    if (byte < 0x20 || byte > 0x7e) return false;
  }
  return true;
}

/** The first chunk's id when the bytes from `offset` are well-formed RIFF chunks to the end exactly. */
function wellFormedChunks(buffer: Buffer, offset: number): string | undefined {
  let at = offset;
  do {
    if (buffer.length - at < 8 || !isFourCC(buffer, at)) return undefined;
    const size = buffer.readUInt32LE(at + 4);
    if (size > buffer.length - at - 8) return undefined;
    at += 8 + size + (size % 2);
  } while (at < buffer.length);
  return buffer.toString('latin1', offset, offset + 4);
}

function fmtChunk(buffer: Buffer, chunk: ChunkHeader): WavFormat {
  const at = chunk.body;
  if (chunk.size < 16) {
    throw badRequest(`The WAV 'fmt ' chunk is ${chunk.size} bytes; it must be at least 16.`);
  }
  const tag = buffer.readUInt16LE(at);
  const channels = buffer.readUInt16LE(at + 2);
  const sampleRate = buffer.readUInt32LE(at + 4);
  const byteRate = buffer.readUInt32LE(at + 8);
  const blockAlign = buffer.readUInt16LE(at + 12);
  const bitsPerSample = buffer.readUInt16LE(at + 14);
  let companding: WavFormat['companding'];
  if (tag === WAVE_FORMAT_EXTENSIBLE) {
    if (chunk.size < 40 || buffer.readUInt16LE(at + 16) < 22) {
      throw badRequest("The WAV 'fmt ' chunk is WAVE_FORMAT_EXTENSIBLE but too short for its extension.");
    }
    if (!buffer.subarray(at + 24, at + 40).equals(PCM_SUBFORMAT)) {
      throw badRequest('The WAV audio is not PCM: its WAVE_FORMAT_EXTENSIBLE sub-format is not PCM.');
    }
    if (buffer.readUInt16LE(at + 18) > bitsPerSample) {
      throw badRequest('The WAV header disagrees with itself: more valid bits than bits per sample.');
    }
  } else if ((tag === WAVE_FORMAT_MULAW || tag === WAVE_FORMAT_ALAW) && bitsPerSample === 8) {
    companding = tag === WAVE_FORMAT_MULAW ? 'mulaw' : 'alaw';
  } else if (tag !== WAVE_FORMAT_PCM) {
    throw badRequest(
      `The WAV audio is not PCM (format tag 0x${tag.toString(16).padStart(4, '0')}); only PCM (format tag 1) is accepted.`,
    );
  }
  if (channels === 0) throw badRequest('The WAV format declares no channels.');
  if (sampleRate === 0) throw badRequest('The WAV format declares a sample rate of 0 Hz.');
  if (bitsPerSample === 0 || bitsPerSample % 8 !== 0 || bitsPerSample > 32) {
    throw badRequest(
      `The WAV format declares ${bitsPerSample} bits per sample; PCM must have 8, 16, 24 or 32.`,
    );
  }
  const frameBytes = channels * (bitsPerSample / 8);
  if (blockAlign !== frameBytes) {
    throw badRequest(
      `The WAV header disagrees with itself: block align ${blockAlign}, but ${channels} channel${channels === 1 ? '' : 's'} × ${bitsPerSample} bits = ${frameBytes} bytes a frame.`,
    );
  }
  if (byteRate !== sampleRate * frameBytes) {
    throw badRequest(
      `The WAV header disagrees with itself: byte rate ${byteRate}, but ${sampleRate} Hz × ${frameBytes} = ${sampleRate * frameBytes} bytes a second.`,
    );
  }
  return { sampleRate, channels, bitsPerSample, blockAlign, ...(companding ? { companding } : {}) };
}

// ---- Ogg Opus ---------------------------------------------------------------------------------------

const OGG_CONTINUED = 0x01;
const OGG_BOS = 0x02;
const OGG_EOS = 0x04;
const OPUS_HEAD = Buffer.from('OpusHead', 'latin1');
const OPUS_TAGS = Buffer.from('OpusTags', 'latin1');
/** Opus's granule clock, whatever the input rate. */
const OPUS_RATE = 48_000;

/** CRC32 as Ogg computes it: polynomial 0x04c11db7, initial value 0, no reflection, no final xor. */
const OGG_CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let bit = 0; bit < 8; bit++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r >>> 0;
  }
  return table;
})();

interface OggPage {
  flags: number;
  granule: bigint;
  serial: number;
  sequence: number;
  lacing: Buffer;
  body: number;
  end: number;
}

/**
 * Duration of an Ogg Opus stream, from the audio its packets carry. Undefined when the buffer is
 * not Ogg, or is Ogg whose first packet is not OpusHead; otherwise the stream is walked page by
 * page from the first byte (by the page lengths: the payload is never searched), each page's CRC
 * checked, and it must be one logical stream: OpusHead alone on the first page, OpusTags next,
 * then audio packets whose samples are counted from their TOC bytes (RFC 6716 §3.1). The granule
 * positions must never go backwards nor claim more than the packets hold, and the last one must
 * match the packets, less at most the last packet's length (end trimming, RFC 7845 §4.4). The
 * duration is that last granule position less the pre-skip.
 */
export function oggOpusDurationSeconds(buffer: Buffer): number | undefined {
  if (buffer.length < 4 || buffer.toString('latin1', 0, 4) !== 'OggS') return undefined;
  let serial = 0;
  let sequence = 0;
  let ended = false;
  /** Pieces of a packet begun on an earlier page. */
  let pending: Buffer[] = [];
  let packets = 0;
  let preSkip = 0;
  let samples = 0;
  let lastPacketSamples = 0;
  /** The granule position of the last page on which an audio packet ended. */
  let granule: bigint | undefined;
  let number = 0;
  for (let offset = 0; offset < buffer.length;) {
    number++;
    if (buffer.length - offset < 4 || buffer.toString('latin1', offset, offset + 4) !== 'OggS') {
      throw badRequest(
        `The Ogg stream has ${buffer.length - offset} bytes after its last page (page ${number - 1}) that are not an Ogg page.`,
      );
    }
    const page = oggPage(buffer, offset, number);
    offset = page.end;
    if (number === 1) {
      if (!buffer.subarray(page.body, page.body + OPUS_HEAD.length).equals(OPUS_HEAD)) return undefined;
      if (!(page.flags & OGG_BOS)) {
        throw badRequest("The Ogg stream's first page is not marked as the beginning of a stream.");
      }
      serial = page.serial;
    } else {
      if (page.serial !== serial) {
        throw badRequest(
          `The Ogg file holds more than one logical stream (page ${number} belongs to another): send one Opus stream.`,
        );
      }
      if (page.flags & OGG_BOS) {
        throw badRequest(
          `The Ogg stream's page ${number} is marked as the beginning of a stream, but only the first page may be.`,
        );
      }
      if (ended) throw badRequest(`The Ogg stream's page ${number} follows the end-of-stream page.`);
      if (page.sequence !== (sequence + 1) >>> 0) {
        throw badRequest(
          `The Ogg stream's page ${number} is out of sequence: a page is missing or repeated.`,
        );
      }
    }
    sequence = page.sequence;
    ended = (page.flags & OGG_EOS) !== 0;
    const continued = (page.flags & OGG_CONTINUED) !== 0;
    if (continued !== pending.length > 0) {
      throw badRequest(
        continued
          ? `The Ogg stream's page ${number} continues a packet that no page began.`
          : `The Ogg stream's page ${number} does not continue the packet the page before it left unfinished.`,
      );
    }

    // Reassemble packets by the lacing values: one below 255 ends a packet.
    const firstPacket = packets;
    let audioEnded = false;
    let at = page.body;
    for (const lace of page.lacing) {
      pending.push(buffer.subarray(at, at + lace));
      at += lace;
      if (lace === 255) continue;
      const packet = Buffer.concat(pending);
      pending = [];
      if (packets === 0) {
        preSkip = opusHead(packet);
      } else if (packets === 1) {
        if (!packet.subarray(0, OPUS_TAGS.length).equals(OPUS_TAGS)) {
          throw badRequest("The Ogg Opus stream's second packet is not its OpusTags header.");
        }
      } else {
        lastPacketSamples = opusPacketSamples(packet, packets - 1);
        samples += lastPacketSamples;
        audioEnded = true;
      }
      packets++;
    }

    if (number === 1 && (packets !== 1 || pending.length > 0)) {
      throw badRequest("The Ogg Opus stream's OpusHead must be alone on the first page.");
    }
    if (firstPacket < 2 && packets > firstPacket) {
      // A page ending a header: nothing else on it (audio starts on a fresh page), granule 0.
      if (packets > 2 || (packets === 2 && pending.length > 0)) {
        throw badRequest("The Ogg Opus stream's audio must start on a new page after its OpusTags header.");
      }
      if (page.granule !== 0n) {
        throw badRequest(`The Ogg Opus stream's header page ${number} has a granule position other than 0.`);
      }
    }
    if (audioEnded) {
      if (page.granule < 0n) {
        throw badRequest(`The Ogg stream's page ${number} ends a packet but has no valid granule position.`);
      }
      if (granule !== undefined && page.granule < granule) {
        throw badRequest(`The Ogg stream's granule position goes backwards at page ${number}.`);
      }
      if (page.granule > BigInt(samples)) {
        throw badRequest(
          `The Ogg pages' granule positions disagree with the audio they carry: page ${number} says ${seconds(page.granule, preSkip)} s, but the packets up to it hold ${seconds(samples, preSkip)} s.`,
        );
      }
      granule = page.granule;
    }
  }

  if (pending.length > 0) {
    throw badRequest(
      `The Ogg stream is truncated: its last packet is cut off (page ${number} ends in the middle of it).`,
    );
  }
  if (packets < 2) throw badRequest('The Ogg Opus stream has no OpusTags header.');
  if (granule === undefined) return 0; // headers only
  // granule ≤ samples (checked page by page), a safe integer.
  const end = Number(granule);
  if (end < samples - lastPacketSamples) {
    throw badRequest(
      `The Ogg pages' granule positions disagree with the audio they carry: the last page says ${seconds(end, preSkip)} s, but the packets hold ${seconds(samples, preSkip)} s.`,
    );
  }
  return Math.max(0, end - preSkip) / OPUS_RATE;
}

function seconds(granule: number | bigint, preSkip: number): string {
  return (Math.max(0, Number(granule) - preSkip) / OPUS_RATE).toFixed(3);
}

/** The page at `offset`: header, segment table and body all within the buffer, CRC correct. */
function oggPage(buffer: Buffer, offset: number, number: number): OggPage {
  const truncated = () =>
    badRequest(`The Ogg stream is truncated: page ${number} ends past the end of the file.`);
  if (offset + 27 > buffer.length) throw truncated();
  const version = buffer.readUInt8(offset + 4);
  if (version !== 0)
    throw badRequest(`The Ogg stream's page ${number} has version ${version}; only 0 exists.`);
  const flags = buffer.readUInt8(offset + 5);
  if (flags & ~(OGG_CONTINUED | OGG_BOS | OGG_EOS)) {
    throw badRequest(`The Ogg stream's page ${number} has header flags that do not exist.`);
  }
  const segments = buffer.readUInt8(offset + 26);
  const body = offset + 27 + segments;
  if (body > buffer.length) throw truncated();
  const lacing = buffer.subarray(offset + 27, body);
  const end = body + lacing.reduce((sum, lace) => sum + lace, 0);
  if (end > buffer.length) throw truncated();
  if (oggCrc(buffer, offset, end) !== buffer.readUInt32LE(offset + 22)) {
    throw badRequest(`The Ogg stream is damaged: page ${number} fails its CRC check.`);
  }
  return {
    flags,
    granule: buffer.readBigInt64LE(offset + 6),
    serial: buffer.readUInt32LE(offset + 14),
    sequence: buffer.readUInt32LE(offset + 18),
    lacing,
    body,
    end,
  };
}

/** The CRC of the page in [start, end), its CRC field (bytes 22–25) counted as zero. */
function oggCrc(buffer: Buffer, start: number, end: number): number {
  let crc = 0;
  for (let at = start; at < end; at++) {
    const byte = at >= start + 22 && at < start + 26 ? 0 : (buffer[at] ?? 0);
    crc = ((crc << 8) ^ (OGG_CRC_TABLE[((crc >>> 24) ^ byte) & 0xff] ?? 0)) >>> 0;
  }
  return crc;
}

/** Checks an OpusHead packet (RFC 7845 §5.1) and answers its pre-skip. */
function opusHead(packet: Buffer): number {
  if (packet.length < 19) throw badRequest("The Ogg Opus stream's OpusHead header is too short.");
  const version = packet.readUInt8(8);
  if (version & 0xf0) {
    throw badRequest(
      `The Ogg Opus stream's OpusHead has version ${version}, which this reader does not know.`,
    );
  }
  const channels = packet.readUInt8(9);
  const family = packet.readUInt8(18);
  if (channels === 0) throw badRequest("The Ogg Opus stream's OpusHead declares no channels.");
  if (family === 0 ? channels > 2 : packet.length < 21 + channels) {
    throw badRequest("The Ogg Opus stream's OpusHead channel mapping does not fit its channel count.");
  }
  return packet.readUInt16LE(10);
}

/** Samples per frame at 48 kHz by TOC config (RFC 6716 §3.1, table 2): SILK, hybrid, CELT. */
function frameSamples(config: number): number {
  if (config < 12) return [480, 960, 1920, 2880][config & 3] ?? 0; // SILK: 10, 20, 40, 60 ms
  if (config < 16) return [480, 960][config & 1] ?? 0; // hybrid: 10, 20 ms
  return [120, 240, 480, 960][config & 3] ?? 0; // CELT: 2.5, 5, 10, 20 ms
}

/** Samples an Opus packet decodes to, from its TOC byte (and, for code 3, its frame count byte). */
function opusPacketSamples(packet: Buffer, index: number): number {
  const toc = packet[0];
  if (toc === undefined) {
    throw badRequest(
      `The Ogg stream's Opus packet ${index} is empty: an Opus packet starts with a TOC byte.`,
    );
  }
  const code = toc & 3;
  let frames = code === 0 ? 1 : 2;
  if (code === 3) {
    const count = packet[1];
    if (count === undefined) {
      throw badRequest(`The Ogg stream's Opus packet ${index} has no frame count byte (code 3).`);
    }
    frames = count & 0x3f;
    if (frames === 0) throw badRequest(`The Ogg stream's Opus packet ${index} declares 0 frames.`);
  }
  const total = frames * frameSamples(toc >> 3);
  if (total > 5760) {
    throw badRequest(
      `The Ogg stream's Opus packet ${index} lasts ${total / 48} ms; an Opus packet holds at most 120 ms.`,
    );
  }
  return total;
}
