import type { UsageEvent } from '../../../shared/contracts/usage-event';
import type { SpeechCallContext, SpeechUpstream } from '../../../shared/metering/speech-proxy';
import { synthesizeSpeech } from '../../../shared/metering/speech-proxy';

/**
 * The audio Azure Speech synthesized is the service's, not the caller's: a WAV the strict reader
 * refuses must not turn a served (and charged) synthesis into a 400 with nothing recorded.
 */
function contextWith(audio: Buffer, recorded: UsageEvent[]): SpeechCallContext {
  const upstream: SpeechUpstream = {
    recognizePcm: () => Promise.reject(new Error('not used')),
    recognizeCompressed: () => Promise.reject(new Error('not used')),
    synthesize: () => Promise.resolve(audio),
  };
  return {
    attribution: { subscriptionId: 'sub-1', appId: 'app-1', department: 'research', unassigned: false },
    correlationId: 'tts-1',
    startedAt: Date.now(),
    record: (event) => {
      recorded.push(event);
      return Promise.resolve();
    },
    upstream,
    limits: { maxAudioBytes: 1 << 20, maxAudioSeconds: 60, maxCharacters: 10_000 },
  };
}

it('records a synthesis whose WAV the reader refuses, with the audio length estimated from its size', async () => {
  // A RIFF header whose data chunk is followed by a chunk running past the end: refused by readWav.
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + 32_000, 4);
  header.write('WAVE', 8, 'latin1');
  header.write('fmt ', 12, 'latin1');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(16_000, 24);
  header.writeUInt32LE(32_000, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(32_000, 40);
  const broken = Buffer.concat([header, Buffer.alloc(32_000), Buffer.from('LIST\xff\xff\x00\x00', 'latin1')]);
  const recorded: UsageEvent[] = [];
  const result = await synthesizeSpeech(
    {
      contentType: 'text/plain',
      body: 'Hello there.',
      outputFormat: 'riff-16khz-16bit-mono-pcm',
      voice: null,
    },
    contextWith(broken, recorded),
  );
  expect(result.status).toBe(200);
  expect(recorded).toHaveLength(1);
  expect(recorded[0]?.billableCharacters).toBe(12);
  expect(recorded[0]?.audioSeconds).toBeCloseTo(1, 1);
});
