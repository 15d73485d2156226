import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { app } from '@azure/functions';
import { getAppContext } from '../../shared/app-context';
import { readAttribution } from '../../shared/attribution';
import type { SpeechCallContext } from '../../shared/speech-proxy';
import { recognizeShortAudio, synthesizeSpeech } from '../../shared/speech-proxy';
import { correlationIdOf, errorResponse, readBodyWithin } from '../http';

async function callContext(
  request: HttpRequest,
  startedAt: number,
): Promise<SpeechCallContext & { maxBytes: number }> {
  const appContext = await getAppContext();
  const { config } = appContext;
  return {
    attribution: readAttribution(request.headers, config.proxy.gatewaySecret),
    correlationId: correlationIdOf(request),
    startedAt,
    record: (event) => appContext.recordUsage(event),
    target: { endpoint: config.speech.endpoint, region: config.speech.region, key: config.speech.key },
    limits: config.speech,
    maxBytes: config.speech.maxAudioBytes,
  };
}

export async function postRecognition(
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  try {
    const call = await callContext(request, Date.now());
    const result = await recognizeShortAudio(
      {
        contentType: request.headers.get('content-type'),
        audio: await readBodyWithin(request, call.maxBytes),
        language: request.query.get('language'),
        format: request.query.get('format'),
      },
      call,
    );
    return result;
  } catch (error) {
    return errorResponse(error, context);
  }
}

export async function postSynthesis(
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  try {
    const call = await callContext(request, Date.now());
    const body = await readBodyWithin(request, 256 * 1024);
    return await synthesizeSpeech(
      {
        contentType: request.headers.get('content-type'),
        body: Buffer.from(body).toString('utf8'),
        outputFormat: request.headers.get('x-microsoft-outputformat'),
        voice: request.query.get('voice'),
      },
      call,
    );
  } catch (error) {
    return errorResponse(error, context);
  }
}

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
