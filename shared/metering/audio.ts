/**
 * Audio durations measured from the audio itself (never from a figure the client claims): WAV
 * (RIFF/PCM) from its header and data size, Ogg Opus from its last granule position.
 */

export interface PcmFormat {
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
}

export interface WavInfo extends PcmFormat {
  /** Where the samples start: a `data` chunk need not be the last one, nor follow a 44-byte header. */
  dataOffset: number;
  dataBytes: number;
  durationSeconds: number;
}

/** Parses a RIFF/WAVE header and its `data` chunk; undefined when the buffer is not WAV. */
export function readWav(buffer: Buffer): WavInfo | undefined {
  if (
    buffer.length < 12 ||
    buffer.toString('ascii', 0, 4) !== 'RIFF' ||
    buffer.toString('ascii', 8, 12) !== 'WAVE'
  ) {
    return undefined;
  }
  let format: PcmFormat | undefined;
  let offset = 12;
  while (offset + 8 <= buffer.length) {
    const id = buffer.toString('ascii', offset, offset + 4);
    const size = buffer.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ' && body + 16 <= buffer.length) {
      format = {
        channels: buffer.readUInt16LE(body + 2),
        sampleRate: buffer.readUInt32LE(body + 4),
        bitsPerSample: buffer.readUInt16LE(body + 14),
      };
    } else if (id === 'data' && format) {
      // Streams often write 0 or 0xFFFFFFFF as the data size; the bytes present are the truth.
      const available = buffer.length - body;
      const dataBytes = size === 0 || size > available ? available : size;
      const bytesPerSecond = format.sampleRate * format.channels * (format.bitsPerSample / 8);
      if (bytesPerSecond <= 0) return undefined;
      return { ...format, dataOffset: body, dataBytes, durationSeconds: dataBytes / bytesPerSecond };
    }
    offset = body + size + (size % 2);
  }
  return undefined;
}

/** Duration of an Ogg Opus stream: the last page's granule position at 48 kHz, less the pre-skip. */
export function oggOpusDurationSeconds(buffer: Buffer): number | undefined {
  if (buffer.toString('ascii', 0, 4) !== 'OggS') return undefined;
  const head = buffer.indexOf('OpusHead');
  if (head < 0) return undefined;
  const preSkip = buffer.readUInt16LE(head + 10);
  let granule = -1n;
  for (
    let at = buffer.indexOf('OggS');
    at >= 0 && at + 27 <= buffer.length;
    at = buffer.indexOf('OggS', at + 4)
  ) {
    const position = buffer.readBigInt64LE(at + 6);
    if (position > granule) granule = position;
  }
  if (granule < 0n) return undefined;
  return Math.max(0, Number(granule) - preSkip) / 48_000;
}
