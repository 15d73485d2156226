import { randomUUID } from 'node:crypto';
import { pcmTone, wavHeader } from '../../../local/simulators/audio';
import { readWav } from '../../../shared/metering/audio';
import { billableCharacters, spokenText } from '../../../shared/metering/speech-billing';
import type { UsageEvent } from '../../../shared/contracts/usage-event';
import { gatewayHeaders, recordedEvent, recordedEvents, useTestStack } from '../../stack';
import { oggOpusSeconds } from '../../fixtures/crafted-audio';

const t = useTestStack({ MAX_AUDIO_SECONDS: '30', MAX_TTS_CHARACTERS: '400' });

function headers(
  id: string,
  contentType: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  const support = { subscription: 'sub-support', department: 'customer-support' };
  return gatewayHeaders(t.stack, id, support, { 'content-type': contentType, ...extra });
}

const pcm16k = { sampleRate: 16_000, channels: 1, bitsPerSample: 16 };
function wav(seconds: number, format = pcm16k): Uint8Array<ArrayBuffer> {
  const samples = pcmTone(format, seconds);
  return Uint8Array.from(Buffer.concat([wavHeader(format, samples.length), samples]));
}

/** A well-formed Ogg Opus stream of a known length (48 kHz clock, 312 pre-skip). */
function oggOpus(seconds: number): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(oggOpusSeconds(seconds));
}

async function event(id: string): Promise<UsageEvent> {
  const recorded = await recordedEvent(t.redis, id);
  if (!recorded) throw new Error(`no usage event ${id}`);
  return recorded;
}

const sttPath = '/api/speech/recognition/conversation/cognitiveservices/v1?language=en-US';

describe('speech-to-text through the proxy', () => {
  it('transcribes WAV through the Speech SDK and meters the seconds measured from the audio', async () => {
    const id = randomUUID();
    const res = await fetch(`${t.stack.host.url}${sttPath}`, {
      method: 'POST',
      headers: headers(id, 'audio/wav; codecs=audio/pcm; samplerate=16000', {
        // A client's claim about the length is never used.
        'x-audio-duration': '999',
      }),
      body: wav(4.5),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      RecognitionStatus: 'Success',
      DisplayText: expect.stringContaining('4.50 seconds'),
    });
    expect(await event(id)).toMatchObject({
      api: 'stt',
      audioSeconds: 4.5,
      billableCharacters: 0,
      department: 'customer-support',
    });
  });

  it('meters 24 kHz WAV too', async () => {
    const id = randomUUID();
    const format = { sampleRate: 24_000, channels: 1, bitsPerSample: 16 };
    const res = await fetch(`${t.stack.host.url}${sttPath}&format=detailed`, {
      method: 'POST',
      headers: headers(id, 'audio/wav'),
      body: wav(2.25, format),
    });
    expect(res.status).toBe(200);
    expect((await event(id)).audioSeconds).toBe(2.25);
  });

  it('transcribes Ogg Opus (compressed) and meters its duration from the stream', async () => {
    const id = randomUUID();
    const res = await fetch(`${t.stack.host.url}${sttPath}`, {
      method: 'POST',
      headers: headers(id, 'audio/ogg; codecs=opus'),
      body: oggOpus(7.25),
    });
    expect(res.status).toBe(200);
    expect((await event(id)).audioSeconds).toBe(7.25);
  });

  it.each([
    ['audio longer than the limit', 'audio/wav', () => wav(31), 400, /limit is 30 s/],
    ['an unsupported format', 'audio/flac', () => wav(1), 415, /audio\/wav/],
    [
      'stereo WAV',
      'audio/wav',
      () => wav(1, { sampleRate: 16_000, channels: 2, bitsPerSample: 16 }),
      415,
      /mono/,
    ],
    [
      'a file that is not WAV',
      'audio/wav',
      () => Uint8Array.from(Buffer.from('not audio at all')),
      400,
      /RIFF/,
    ],
    ['no audio', 'audio/wav', () => new Uint8Array(0), 400, /no audio/],
  ])('rejects %s with a clear 4xx and records nothing', async (_name, type, body, status, message) => {
    const id = randomUUID();
    const res = await fetch(`${t.stack.host.url}${sttPath}`, {
      method: 'POST',
      headers: headers(id, type),
      body: body(),
    });
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(message);
    expect(await recordedEvents(t.redis, id)).toEqual([]);
  });

  it.each([
    ['an oversized language', `en-${'Abcdefgh-'.repeat(40)}US`],
    ['a language with too many subtags', 'en-Latn-US-abcd-efgh'],
  ])('refuses %s before calling anything, and records nothing', async (_name, language) => {
    const id = randomUUID();
    const res = await fetch(
      `${t.stack.host.url}/api/speech/recognition/conversation/cognitiveservices/v1?language=${encodeURIComponent(language)}`,
      { method: 'POST', headers: headers(id, 'audio/wav'), body: wav(1) },
    );
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { param: string; message: string } };
    expect(body.error.param).toBe('language');
    expect(body.error.message.length).toBeLessThan(200);
    expect(await recordedEvent(t.redis, id)).toBeUndefined();
  });

  it('requires the language', async () => {
    const res = await fetch(`${t.stack.host.url}/api/speech/recognition/conversation/cognitiveservices/v1`, {
      method: 'POST',
      headers: headers(randomUUID(), 'audio/wav'),
      body: wav(1),
    });
    expect(res.status).toBe(400);
  });
});

describe('text-to-speech through the proxy', () => {
  const ssml = (text: string) =>
    `<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="en-US"><voice name="en-US-JennyNeural"><prosody rate="+10%">${text}</prosody></voice></speak>`;

  it('synthesizes SSML through the Speech SDK; markup is not billed', async () => {
    const id = randomUUID();
    const text = 'Your invoice is ready.'; // 22 characters
    const res = await fetch(`${t.stack.host.url}/api/cognitiveservices/v1`, {
      method: 'POST',
      headers: headers(id, 'application/ssml+xml', {
        'X-Microsoft-OutputFormat': 'riff-16khz-16bit-mono-pcm',
      }),
      body: ssml(text),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('audio/wav');
    const audio = readWav(Buffer.from(await res.arrayBuffer()));
    expect(audio?.sampleRate).toBe(16_000);
    const recorded = await event(id);
    expect(recorded).toMatchObject({ api: 'tts', billableCharacters: 22 });
    expect(recorded.audioSeconds).toBeCloseTo(audio?.durationSeconds ?? 0, 3);
  });

  it('counts Chinese, Japanese and Korean characters twice', async () => {
    const id = randomUUID();
    const res = await fetch(`${t.stack.host.url}/api/cognitiveservices/v1?voice=ja-JP-NanamiNeural`, {
      method: 'POST',
      headers: headers(id, 'text/plain; charset=utf-8'),
      body: 'こんにちは、世界 OK', // 5 kana + 、 + 2 kanji + space + 2 latin
    });
    expect(res.status).toBe(200);
    expect((await event(id)).billableCharacters).toBe(5 * 2 + 1 + 2 * 2 + 1 + 2);
  });

  it.each([
    ['malformed SSML', 'application/ssml+xml', '<speak><voice>unclosed</speak>', {}, 400, /not well-formed/],
    ['SSML without <speak>', 'application/ssml+xml', '<voice>hi</voice>', {}, 400, /<speak> root/],
    [
      'an unknown output format',
      'text/plain',
      'hello',
      { 'X-Microsoft-OutputFormat': 'flac-96khz' },
      400,
      /Unsupported/,
    ],
    ['text over the limit', 'text/plain', 'x'.repeat(401), {}, 400, /limit is 400/],
    ['a wrong content type', 'application/json', '{"text":"hi"}', {}, 415, /ssml\+xml/],
  ])('rejects %s', async (_name, type, body, extra, status, message) => {
    const id = randomUUID();
    const res = await fetch(`${t.stack.host.url}/api/cognitiveservices/v1`, {
      method: 'POST',
      headers: headers(id, type, extra),
      body,
    });
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(message);
  });

  it('rejects an oversized voice without echoing it back, and records nothing', async () => {
    const id = randomUUID();
    const voice = `en-US-${'J'.repeat(500)}Neural`;
    const res = await fetch(
      `${t.stack.host.url}/api/cognitiveservices/v1?voice=${encodeURIComponent(voice)}`,
      {
        method: 'POST',
        headers: headers(id, 'text/plain'),
        body: 'hello',
      },
    );
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { param: string; message: string } };
    expect(body.error).toMatchObject({ param: 'voice' });
    expect(body.error.message).not.toContain('JJJJ');
    expect(await recordedEvent(t.redis, id)).toBeUndefined();
  });
});

describe('billable characters', () => {
  it('excludes markup and collapses layout white space', () => {
    const text = spokenText(`<speak version="1.0">
      <voice name="en-US-GuyNeural">
        Hello <break time="200ms"/> world &amp; friends
      </voice>
    </speak>`);
    expect(text).toBe('Hello world & friends');
    expect(billableCharacters(text)).toBe(21);
    expect(billableCharacters('한국어')).toBe(6);
  });
});

describe('WAV layout', () => {
  it('finds the samples by the data chunk, not by counting back from the end', async () => {
    // A WAV with a LIST chunk after `data` (some recorders write one): the samples are still 1.5 s.
    const samples = pcmTone(pcm16k, 1.5);
    const list = Buffer.concat([Buffer.from('LIST'), Buffer.from([4, 0, 0, 0]), Buffer.from('INFO')]);
    const header = wavHeader(pcm16k, samples.length);
    header.writeUInt32LE(36 + samples.length + list.length, 4);
    const id = randomUUID();
    const res = await fetch(`${t.stack.host.url}${sttPath}`, {
      method: 'POST',
      headers: headers(id, 'audio/wav'),
      body: Uint8Array.from(Buffer.concat([header, samples, list])),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ DisplayText: expect.stringContaining('1.50 seconds') });
    expect((await event(id)).audioSeconds).toBe(1.5);
  });
});
