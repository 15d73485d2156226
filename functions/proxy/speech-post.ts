import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { app } from '@azure/functions';
import { appServices } from '../../shared/config/composition';
import type { SpeechCallContext } from '../../shared/metering/speech-proxy';
import { recognizeShortAudio, synthesizeSpeech } from '../../shared/metering/speech-proxy';
import { correlationIdFor, readBodyWithin, withErrors } from '../http';
import { attributionOf, budgetOf } from './attributed';

/** Largest SSML or text body accepted for synthesis. */
const MAX_SYNTHESIS_BODY_BYTES = 256 * 1024;

async function callContext(
  request: HttpRequest,
  context: InvocationContext,
  startedAt: number,
): Promise<SpeechCallContext> {
  const services = await appServices();
  const { config } = services;
  return {
    attribution: attributionOf(request, services, context),
    correlationId: correlationIdFor(request),
    startedAt,
    record: (event) => services.recordUsage(event),
    upstream: services.speechUpstream(),
    budget: budgetOf(services, context),
    limits: config.speech,
  };
}

export const postRecognition = withErrors(
  async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const call = await callContext(request, context, Date.now());
    return recognizeShortAudio(
      {
        contentType: request.headers.get('content-type'),
        audio: await readBodyWithin(request, call.limits.maxAudioBytes),
        language: request.query.get('language'),
        format: request.query.get('format'),
      },
      call,
    );
  },
);

export const postSynthesis = withErrors(
  async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const call = await callContext(request, context, Date.now());
    const body = await readBodyWithin(request, MAX_SYNTHESIS_BODY_BYTES);
    return synthesizeSpeech(
      {
        contentType: request.headers.get('content-type'),
        body: Buffer.from(body).toString('utf8'),
        outputFormat: request.headers.get('x-microsoft-outputformat'),
        voice: request.query.get('voice'),
      },
      call,
    );
  },
);

// Azure Speech's own REST paths (short-audio recognition and synthesis).
app.http('speechRecognition', {
  route: 'speech/recognition/conversation/cognitiveservices/v1',
  methods: ['POST'],
  authLevel: 'function',
  handler: postRecognition,
});
app.http('speechSynthesis', {
  route: 'cognitiveservices/v1',
  methods: ['POST'],
  authLevel: 'function',
  handler: postSynthesis,
});
