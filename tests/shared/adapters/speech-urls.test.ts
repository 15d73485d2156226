import { speechUrl } from '../../../shared/adapters/speech-upstream';

/**
 * Where each Speech call goes. A regional endpoint is `{region}.{stt|tts}.speech.microsoft.com`;
 * a custom domain (required for private endpoints, and for Entra ID tokens without a resource id)
 * takes the service as the first element of the path instead: Microsoft's private-endpoint guide
 * turns `wss://westeurope.stt.speech.microsoft.com/speech/recognition/...` into
 * `wss://my-private-link-speech.cognitiveservices.azure.com/stt/speech/recognition/...`. Any
 * other endpoint (the local simulator, a proxy) is used as given.
 */

const STT = '/speech/recognition/conversation/cognitiveservices/v1';

it.each([
  [{ region: 'westeurope' }, 'stt', STT, 'https', `https://westeurope.stt.speech.microsoft.com${STT}`],
  [
    { region: 'westeurope' },
    'tts',
    '/cognitiveservices/websocket/v1',
    'wss',
    'wss://westeurope.tts.speech.microsoft.com/cognitiveservices/websocket/v1',
  ],
  [
    { endpoint: 'https://my-private-link-speech.cognitiveservices.azure.com' },
    'stt',
    STT,
    'wss',
    `wss://my-private-link-speech.cognitiveservices.azure.com/stt${STT}`,
  ],
  [
    { endpoint: 'https://my-private-link-speech.cognitiveservices.azure.com/' },
    'tts',
    '/cognitiveservices/voices/list',
    'https',
    'https://my-private-link-speech.cognitiveservices.azure.com/tts/cognitiveservices/voices/list',
  ],
  [
    { endpoint: 'https://speech-gov.cognitiveservices.azure.us' },
    'tts',
    '/cognitiveservices/v1',
    'https',
    'https://speech-gov.cognitiveservices.azure.us/tts/cognitiveservices/v1',
  ],
  [{ endpoint: 'http://127.0.0.1:7345' }, 'stt', STT, 'https', `http://127.0.0.1:7345${STT}`],
  [
    { endpoint: 'http://127.0.0.1:7345' },
    'tts',
    '/cognitiveservices/websocket/v1',
    'wss',
    'ws://127.0.0.1:7345/cognitiveservices/websocket/v1',
  ],
] as const)('%j %s %s over %s → %s', (target, service, path, protocol, expected) => {
  expect(speechUrl(target, service, path, protocol).toString()).toBe(expected);
});
