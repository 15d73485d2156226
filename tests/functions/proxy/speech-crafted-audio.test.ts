import { randomUUID } from 'node:crypto';
import { oggOpusSilence } from '../../../local/simulators/audio';
import type { UsageEvent } from '../../../shared/contracts/usage-event';
import {
  chunk,
  flipBit,
  fmt,
  list,
  MONO_16K,
  oggOpus,
  opusPackets,
  riff,
  samples,
} from '../../fixtures/crafted-audio';
import { gatewayHeaders, recordedEvent, recordedEvents, useTestStack } from '../../stack';

/**
 * Speech-to-text through the real local stack with audio crafted to mislead the meter: what is
 * billed is the audio the file really carries, or the file is refused with a 400 that says why
 * and nothing is recorded.
 */

const t = useTestStack({ MAX_AUDIO_SECONDS: '30' });

const sttPath = '/api/speech/recognition/conversation/cognitiveservices/v1?language=en-US';
const OGG = 'audio/ogg; codecs=opus';
const WAV = 'audio/wav; codecs=audio/pcm; samplerate=16000';

function recognize(id: string, contentType: string, audio: Buffer): Promise<Response> {
  const caller = { subscription: 'sub-support', department: 'customer-support' };
  return fetch(`${t.stack.host.url}${sttPath}`, {
    method: 'POST',
    headers: gatewayHeaders(t.stack, id, caller, { 'content-type': contentType }),
    body: Uint8Array.from(audio),
  });
}

async function billed(id: string): Promise<UsageEvent> {
  const recorded = await recordedEvent(t.redis, id);
  if (!recorded) throw new Error(`no usage event ${id}`);
  return recorded;
}

async function expectRefused(res: Response, id: string, message: RegExp): Promise<void> {
  expect(res.status).toBe(400);
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe('BadRequest');
  expect(body.error.message).toMatch(message);
  expect(await recordedEvents(t.redis, id)).toEqual([]);
}

describe('crafted Ogg Opus', () => {
  it('bills a stream with OggS inside a packet by its packets (2 s), not by the fake page (99 999.99 s)', async () => {
    const fake = Buffer.alloc(27);
    fake.write('OggS', 0, 'ascii');
    fake.writeBigInt64LE(BigInt(Math.round(99_999.99 * 48_000) + 312), 6);
    // 101 packets of 20 ms (2.02 s), the last page trimmed to 2 s after the 312 samples of pre-skip.
    const stream = oggOpus(opusPackets(2.02, Buffer.concat([fake, Buffer.alloc(16)])), {
      granule: (exact, page) => (page.last ? BigInt(2 * 48_000 + 312) : exact),
    });
    const id = randomUUID();
    const res = await recognize(id, OGG, stream);
    expect(res.status).toBe(200);
    expect(await billed(id)).toMatchObject({ api: 'stt', audioSeconds: 2 });
  });

  it('refuses pages that claim 0.5 s for 40 s of packets (under the 30 s limit by the claim), recording nothing', async () => {
    const stream = oggOpus(opusPackets(40), { granule: (exact) => (exact < 24_312n ? exact : 24_312n) });
    const id = randomUUID();
    await expectRefused(
      await recognize(id, OGG, stream),
      id,
      /granule positions disagree with the audio they carry: the last page says 0\.500 s, but the packets hold 39\.99\d s/,
    );
  });

  it('refuses a stream with a damaged page, recording nothing', async () => {
    const stream = flipBit(oggOpus(opusPackets(3)), -3, 0x40); // in the last page's audio
    const id = randomUUID();
    await expectRefused(await recognize(id, OGG, stream), id, /page 5 fails its CRC check/);
  });

  it('bills an honest stream (the simulator writer) by its length', async () => {
    const id = randomUUID();
    const res = await recognize(id, OGG, oggOpusSilence(16_000, 3.3));
    expect(res.status).toBe(200);
    expect((await billed(id)).audioSeconds).toBe(3.3);
  });
});

describe('crafted WAV', () => {
  it('refuses a data chunk of size 0 followed by a LIST chunk (metadata is not audio), recording nothing', async () => {
    const wav = riff(fmt(MONO_16K), chunk('data', Buffer.alloc(0), 0), list('x'.repeat(32_000)));
    const id = randomUUID();
    await expectRefused(
      await recognize(id, WAV, wav),
      id,
      /'data' chunk declares no length .*'LIST' chunk follows it: which bytes are audio is ambiguous/,
    );
  });

  it('refuses samples that are not PCM (IEEE float), recording nothing', async () => {
    const wav = riff(fmt(MONO_16K, { formatTag: 3 }), chunk('data', samples(64_000)));
    const id = randomUUID();
    await expectRefused(await recognize(id, WAV, wav), id, /not PCM \(format tag 0x0003\)/);
  });

  it('refuses a fmt chunk after the data, recording nothing', async () => {
    const wav = riff(fmt(MONO_16K), chunk('data', samples(32_000)), fmt(MONO_16K));
    const id = randomUUID();
    await expectRefused(await recognize(id, WAV, wav), id, /'fmt ' chunk after its 'data' chunk/);
  });

  it('bills the whole frames present when the data size runs past the end of the file', async () => {
    // Declares 10 s; 1.5 s and a stray byte are present.
    const cut = chunk('data', samples(48_001), 320_000).subarray(0, 8 + 48_001);
    const id = randomUUID();
    const res = await recognize(id, WAV, riff(fmt(MONO_16K), cut));
    expect(res.status).toBe(200);
    expect((await billed(id)).audioSeconds).toBe(1.5);
  });
});
