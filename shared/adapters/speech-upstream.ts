import * as sdk from 'microsoft-cognitiveservices-speech-sdk';
import { WebsocketMessageAdapter } from 'microsoft-cognitiveservices-speech-sdk/distrib/lib/src/common.browser/WebsocketMessageAdapter.js';
import { request as undiciRequest } from 'undici';
import { ApiError } from '../contracts/api-errors';
import type {
  PcmAudioFormat,
  RecognitionFormat,
  SpeechOutputFormat,
  SpeechUpstream,
} from '../metering/speech-proxy';

// Where Node has a built-in WebSocket (Node 22), the SDK takes it instead of its `ws` client. On
// it, a refused connection (a wrong key, a 429, a 5xx) never ends the recognition or synthesis:
// the call hangs until the host kills it. The `ws` client reports the refusal, as on Node 20.
WebsocketMessageAdapter.forceNpmWebSocket = true;

export interface SpeechTarget {
  /** Regional host (`https://<region>.api.cognitive.microsoft.com`-style) or the local simulator. */
  endpoint?: string;
  region?: string;
  key?: string;
  /** The account's ARM id: with an Entra token on a regional endpoint, the token is `aad#<id>#<token>`. */
  resourceId?: string;
  /** An Entra ID access token for the Cognitive Services scope (the managed identity), cached and refreshed before expiry. */
  entraToken?: () => Promise<string>;
  /** Longest wait for the service on every path (UPSTREAM_TIMEOUT_MS); a timeout is a 504. */
  timeoutMs: number;
}

const SDK_OUTPUT_FORMATS: Record<SpeechOutputFormat, sdk.SpeechSynthesisOutputFormat> = {
  'riff-16khz-16bit-mono-pcm': sdk.SpeechSynthesisOutputFormat.Riff16Khz16BitMonoPcm,
  'riff-24khz-16bit-mono-pcm': sdk.SpeechSynthesisOutputFormat.Riff24Khz16BitMonoPcm,
  'raw-16khz-16bit-mono-pcm': sdk.SpeechSynthesisOutputFormat.Raw16Khz16BitMonoPcm,
  'raw-24khz-16bit-mono-pcm': sdk.SpeechSynthesisOutputFormat.Raw24Khz16BitMonoPcm,
  'audio-16khz-32kbitrate-mono-mp3': sdk.SpeechSynthesisOutputFormat.Audio16Khz32KBitRateMonoMp3,
  'audio-24khz-48kbitrate-mono-mp3': sdk.SpeechSynthesisOutputFormat.Audio24Khz48KBitRateMonoMp3,
};

/** Azure Speech through the Speech SDK (WAV recognition, synthesis) and the short-audio REST API (Ogg Opus). */
export class SdkSpeechUpstream implements SpeechUpstream {
  constructor(private readonly target: SpeechTarget) {}

  async recognizePcm(
    pcm: Buffer,
    wav: PcmAudioFormat,
    language: string,
    format: RecognitionFormat,
  ): Promise<Record<string, unknown>> {
    const config = this.#config('stt');
    config.speechRecognitionLanguage = language;
    config.outputFormat = format === 'detailed' ? sdk.OutputFormat.Detailed : sdk.OutputFormat.Simple;
    const stream = sdk.AudioInputStream.createPushStream(
      sdk.AudioStreamFormat.getWaveFormatPCM(wav.sampleRate, wav.bitsPerSample, wav.channels),
    );
    stream.write(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.byteLength) as ArrayBuffer);
    stream.close();
    const recognizer = new sdk.SpeechRecognizer(config, sdk.AudioConfig.fromStreamInput(stream));
    try {
      const result = await new Promise<sdk.SpeechRecognitionResult>((resolve, reject) =>
        recognizer.recognizeOnceAsync(resolve, reject),
      );
      if (result.reason === sdk.ResultReason.Canceled) {
        const details = sdk.CancellationDetails.fromResult(result);
        throw new ApiError(
          502,
          'UpstreamError',
          'Azure Speech cancelled the recognition.',
          null,
          {},
          details.errorDetails,
        );
      }
      const json = result.properties.getProperty(sdk.PropertyId.SpeechServiceResponse_JsonResult);
      return json ? (JSON.parse(json) as Record<string, unknown>) : { RecognitionStatus: 'NoMatch' };
    } finally {
      recognizer.close();
    }
  }

  async recognizeCompressed(
    audio: Buffer,
    contentType: string,
    language: string,
    format: RecognitionFormat,
  ): Promise<Record<string, unknown>> {
    const base = this.target.endpoint ?? `https://${this.target.region}.stt.speech.microsoft.com`;
    const url = `${base}/speech/recognition/conversation/cognitiveservices/v1?language=${encodeURIComponent(language)}&format=${format}`;
    const response = await undiciRequest(url, {
      method: 'POST',
      headers: { 'content-type': contentType, 'Ocp-Apim-Subscription-Key': this.target.key ?? '' },
      body: audio,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
    const text = await response.body.text();
    if (response.statusCode !== 200) {
      // The service's own credential failing (401/403) or the service failing is not the caller's
      // doing: a 502. A caller's own error (400, 429...) keeps its status.
      const own = response.statusCode === 401 || response.statusCode === 403 || response.statusCode >= 500;
      throw new ApiError(
        own ? 502 : response.statusCode,
        'UpstreamError',
        `Azure Speech answered ${response.statusCode}.`,
        null,
        {},
        text,
      );
    }
    return JSON.parse(text) as Record<string, unknown>;
  }

  async synthesize(ssml: string, outputFormat: SpeechOutputFormat): Promise<Buffer> {
    const config = this.#config('tts');
    config.speechSynthesisOutputFormat = SDK_OUTPUT_FORMATS[outputFormat];
    const synthesizer = new sdk.SpeechSynthesizer(config, null);
    try {
      const result = await new Promise<sdk.SpeechSynthesisResult>((resolve, reject) =>
        synthesizer.speakSsmlAsync(ssml, resolve, reject),
      );
      if (result.reason !== sdk.ResultReason.SynthesizingAudioCompleted) {
        throw new ApiError(
          502,
          'UpstreamError',
          'Azure Speech did not synthesize the text.',
          null,
          {},
          result.errorDetails,
        );
      }
      return Buffer.from(result.audioData);
    } finally {
      synthesizer.close();
    }
  }

  #config(service: 'stt' | 'tts'): sdk.SpeechConfig {
    if (!this.target.key) {
      throw new ApiError(500, 'ConfigurationError', 'SPEECH_KEY is required for Azure Speech calls.');
    }
    return sdk.SpeechConfig.fromEndpoint(this.#websocketUrl(service), this.target.key);
  }

  #websocketUrl(service: 'stt' | 'tts'): URL {
    const path =
      service === 'stt'
        ? '/speech/recognition/conversation/cognitiveservices/v1'
        : '/cognitiveservices/websocket/v1';
    if (this.target.endpoint) return new URL(path, this.target.endpoint.replace(/^http/, 'ws'));
    return new URL(`wss://${this.target.region}.${service}.speech.microsoft.com${path}`);
  }
}
