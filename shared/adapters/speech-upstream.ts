import { randomUUID } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import * as sdk from 'microsoft-cognitiveservices-speech-sdk';
import { WebsocketMessageAdapter } from 'microsoft-cognitiveservices-speech-sdk/distrib/lib/src/common.browser/WebsocketMessageAdapter.js';
import { Agent, errors as undiciErrors, request as undiciRequest } from 'undici';
import { ApiError } from '../contracts/api-errors';
import type {
  PcmAudioFormat,
  RecognitionFormat,
  SpeechOutputFormat,
  SpeechUpstream,
} from '../metering/speech-proxy';

// Where Node has a built-in WebSocket (Node 22), the SDK takes it instead of its `ws` client. On
// it, a refused connection (a wrong key, a 429, a 5xx) never ends the recognition or synthesis:
// the call hangs until the host kills it. The `ws` client reports the refusal, as on Node 20, and
// makes its upgrade request with node:http, which is what lets a refusal be read (see below).
WebsocketMessageAdapter.forceNpmWebSocket = true;

export interface SpeechTarget {
  /**
   * The Speech host: a custom domain (`https://<name>.cognitiveservices.azure.com`), a regional
   * host (`https://<region>.api.cognitive.microsoft.com`), or the local simulator. Without it,
   * the regional hosts of `region`.
   */
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

/** How a call authenticates: the key, or an `Authorization: Bearer` value (Entra ID). */
type Credential = { key: string } | { bearer: string };

/** One Speech SDK operation (a recognizer or a synthesizer, made for one call). */
interface SdkOperation<R> {
  /** Its connection's events: any message from the service restarts the wait for the next. */
  connection: sdk.Connection;
  run(): Promise<R>;
  succeeded(result: R): boolean;
  close(): void;
}

/**
 * Azure Speech through the Speech SDK (WAV recognition, synthesis) and the short-audio REST API
 * (Ogg Opus), on every path alike:
 * - a wait for the service longer than `timeoutMs` (for the answer's headers or the next chunk on
 *   REST, for the connection or the next message on the SDK's WebSocket) is a 504;
 * - the service's 429, 503 and 504 keep their status and `retry-after`/`retry-after-ms`; its
 *   refusal of the app's own credential (401/403), a missing resource (404) and its other failures
 *   are a 502, which does not blame the caller; other 4xx keep their status;
 * - no answer names an internal address or URL, nor carries the SDK's raw error text: those go in
 *   the error's `detail`, which is logged.
 * Auth: SPEECH_KEY when set, else an Entra ID token from the managed identity, as
 * `aad#<SPEECH_RESOURCE_ID>#<token>` when the resource id is set (required on a regional endpoint)
 * and bare on a custom domain.
 */
export class SdkSpeechUpstream implements SpeechUpstream {
  /** REST connections, kept alive; connecting is bounded by the upstream timeout too. */
  readonly #pool: Agent;

  constructor(private readonly target: SpeechTarget) {
    this.#pool = new Agent({ keepAliveTimeout: 30_000, connect: { timeout: target.timeoutMs } });
  }

  async recognizePcm(
    pcm: Buffer,
    wav: PcmAudioFormat,
    language: string,
    format: RecognitionFormat,
  ): Promise<Record<string, unknown>> {
    const result = await this.#sdkCall<sdk.SpeechRecognitionResult>('stt', (config) => {
      config.speechRecognitionLanguage = language;
      config.outputFormat = format === 'detailed' ? sdk.OutputFormat.Detailed : sdk.OutputFormat.Simple;
      const stream = sdk.AudioInputStream.createPushStream(
        sdk.AudioStreamFormat.getWaveFormatPCM(wav.sampleRate, wav.bitsPerSample, wav.channels),
      );
      stream.write(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.byteLength) as ArrayBuffer);
      stream.close();
      const recognizer = new sdk.SpeechRecognizer(config, sdk.AudioConfig.fromStreamInput(stream));
      return {
        connection: sdk.Connection.fromRecognizer(recognizer),
        run: () =>
          new Promise<sdk.SpeechRecognitionResult>((resolve, reject) =>
            recognizer.recognizeOnceAsync(resolve, reject),
          ),
        succeeded: (done) => done.reason !== sdk.ResultReason.Canceled,
        close: () => recognizer.close(),
      };
    });
    const json = result.properties.getProperty(sdk.PropertyId.SpeechServiceResponse_JsonResult);
    return json ? (JSON.parse(json) as Record<string, unknown>) : { RecognitionStatus: 'NoMatch' };
  }

  async recognizeCompressed(
    audio: Buffer,
    contentType: string,
    language: string,
    format: RecognitionFormat,
  ): Promise<Record<string, unknown>> {
    const auth = await this.restAuthHeaders();
    const { timeoutMs } = this.target;
    const url = speechUrl(
      this.target,
      'stt',
      '/speech/recognition/conversation/cognitiveservices/v1',
      'https',
    );
    url.search = new URLSearchParams({ language, format }).toString();
    let status: number;
    let headers: IncomingHttpHeaders;
    let text: string;
    try {
      const response = await undiciRequest(url, {
        method: 'POST',
        headers: {
          'content-type': contentType,
          ...auth,
        },
        body: audio,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        dispatcher: this.#pool,
      });
      status = response.statusCode;
      headers = response.headers;
      text = await response.body.text();
    } catch (error) {
      throw error instanceof undiciErrors.HeadersTimeoutError ||
        error instanceof undiciErrors.BodyTimeoutError ||
        error instanceof undiciErrors.ConnectTimeoutError
        ? timedOut(timeoutMs, describe(error))
        : new ApiError(502, 'BadGateway', 'Azure Speech could not be reached.', null, {}, describe(error));
    }
    if (status !== 200) throw refusal(status, headers, text);
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new ApiError(
        502,
        'BadGateway',
        'Azure Speech answered with a body that is not JSON.',
        null,
        {},
        text,
      );
    }
  }

  async synthesize(ssml: string, outputFormat: SpeechOutputFormat): Promise<Buffer> {
    const result = await this.#sdkCall<sdk.SpeechSynthesisResult>('tts', (config) => {
      config.speechSynthesisOutputFormat = SDK_OUTPUT_FORMATS[outputFormat];
      const synthesizer = new sdk.SpeechSynthesizer(config, null);
      return {
        connection: sdk.Connection.fromSynthesizer(synthesizer),
        run: () =>
          new Promise<sdk.SpeechSynthesisResult>((resolve, reject) =>
            synthesizer.speakSsmlAsync(ssml, resolve, reject),
          ),
        succeeded: (done) => done.reason === sdk.ResultReason.SynthesizingAudioCompleted,
        close: () => synthesizer.close(),
      };
    });
    return Buffer.from(result.audioData);
  }

  /**
   * Runs one SDK operation: a 504 once the service has been silent for `timeoutMs` (the operation
   * is then closed and its hung connection attempt aborted), and its failure mapped like a REST
   * answer from the status and headers of the refused WebSocket upgrade when there was one.
   */
  async #sdkCall<R extends sdk.SpeechRecognitionResult | sdk.SpeechSynthesisResult>(
    service: 'stt' | 'tts',
    open: (config: sdk.SpeechConfig) => SdkOperation<R>,
  ): Promise<R> {
    const tag = randomUUID();
    const config = await this.#sdkConfig(service, tag);
    const { timeoutMs } = this.target;
    const upgrade = watchUpgrade(tag);
    let operation: SdkOperation<R> | undefined;
    let timer: NodeJS.Timeout | undefined;
    let finished = false;
    let connected = false;
    let silent = false;
    try {
      const current = open(config);
      operation = current;
      const silence = new Promise<never>((_resolve, reject) => {
        const wait = (): void => {
          clearTimeout(timer);
          if (finished) return;
          timer = setTimeout(() => {
            silent = true;
            reject(
              timedOut(
                timeoutMs,
                connected
                  ? 'Speech SDK: the service stopped sending'
                  : 'Speech SDK: the WebSocket connection was not answered',
              ),
            );
          }, timeoutMs);
        };
        current.connection.connected = () => {
          connected = true;
          wait();
        };
        current.connection.messageReceived = wait;
        wait();
      });
      const work = current.run();
      // Whichever loses the race settles later, unobserved.
      work.catch(() => undefined);
      silence.catch(() => undefined);
      const result = await Promise.race([work, silence]);
      if (current.succeeded(result)) return result;
      const cancellation = sdk.CancellationDetails.fromResult(result);
      throw sdkFailure(upgrade, cancellation.ErrorCode, cancellation.errorDetails);
    } catch (error) {
      throw error instanceof ApiError ? error : sdkFailure(upgrade, undefined, describe(error));
    } finally {
      finished = true;
      clearTimeout(timer);
      // Closing a recognizer or synthesizer waits for its connection to open: a handshake the
      // service never answers is aborted first, so that neither the socket nor the SDK's
      // operation outlives the call.
      if (silent) for (const request of upgrade.requests) request.destroy();
      try {
        operation?.close();
      } catch {
        // already closed
      }
      unwatchUpgrade(tag);
    }
  }

  async #sdkConfig(service: 'stt' | 'tts', tag: string): Promise<sdk.SpeechConfig> {
    const credential = await this.#credential();
    const url = this.#websocketUrl(service);
    url.searchParams.set(CALL_TAG, tag);
    let config: sdk.SpeechConfig;
    if ('key' in credential) {
      config = sdk.SpeechConfig.fromEndpoint(url, credential.key);
    } else {
      // Sent as `Authorization: Bearer <token>`.
      config = sdk.SpeechConfig.fromEndpoint(url);
      config.authorizationToken = credential.bearer;
    }
    // One connection attempt, as on the REST path: the SDK would otherwise retry a refused
    // connection four times at once, a rate-limited service included. The caller retries, after
    // the `retry-after` it is given.
    config.setProperty('SPEECH-Error-MaxRetryCount', '0');
    return config;
  }

  /**
   * The key, or an Entra ID token: `aad#<resource id>#<token>` with SPEECH_RESOURCE_ID, else
   * bare, which only a custom-domain endpoint takes. Fetched for every call: the token source
   * caches it and renews it before it expires.
   */
  /** The headers that authenticate a REST call to the service (the key, or the Entra token). */
  async restAuthHeaders(): Promise<Record<string, string>> {
    const credential = await this.#credential();
    return 'key' in credential
      ? { 'Ocp-Apim-Subscription-Key': credential.key }
      : { authorization: `Bearer ${credential.bearer}` };
  }

  async #credential(): Promise<Credential> {
    const { key, resourceId, entraToken, endpoint } = this.target;
    if (key) return { key };
    if (!entraToken) {
      throw new ApiError(500, 'ConfigurationError', 'Azure Speech needs SPEECH_KEY or an Entra ID identity.');
    }
    if (!resourceId && (!endpoint || isRegionalHost(new URL(endpoint).hostname))) {
      throw new ApiError(
        500,
        'ConfigurationError',
        'Azure Speech with Entra ID on a regional endpoint needs SPEECH_RESOURCE_ID (or a custom-domain SPEECH_ENDPOINT, or SPEECH_KEY).',
      );
    }
    let token: string;
    try {
      token = await entraToken();
    } catch (error) {
      throw new ApiError(
        502,
        'BadGateway',
        'The service could not get its Entra ID token for Azure Speech.',
        null,
        {},
        describe(error),
      );
    }
    return { bearer: resourceId ? `aad#${resourceId}#${token}` : token };
  }

  #websocketUrl(service: 'stt' | 'tts'): URL {
    const path =
      service === 'stt'
        ? '/speech/recognition/conversation/cognitiveservices/v1'
        : '/cognitiveservices/websocket/v1';
    return speechUrl(this.target, service, path, 'wss');
  }
}

/** Azure AI services custom domains (public cloud, US Government, China). */
function isCustomDomainHost(hostname: string): boolean {
  return /\.cognitiveservices\.azure\.(com|us|cn)$/i.test(hostname);
}

/**
 * The URL of a Speech path for a service: on a regional endpoint `{region}.{service}.speech.microsoft.com`;
 * on a custom domain (`*.cognitiveservices.azure.com`, as private endpoints require) the service is
 * the first element of the path, as Microsoft's private-endpoint guide prescribes; any other
 * endpoint (the local simulator, a proxy) is used as given. `wss` turns http(s) into ws(s).
 */
export function speechUrl(
  target: { endpoint?: string; region?: string },
  service: 'stt' | 'tts',
  path: string,
  protocol: 'https' | 'wss',
): URL {
  const base = target.endpoint
    ? new URL(target.endpoint)
    : new URL(`https://${target.region ?? ''}.${service}.speech.microsoft.com`);
  const prefix = isCustomDomainHost(base.hostname) ? `/${service}` : '';
  const url = new URL(`${base.pathname.replace(/\/$/, '')}${prefix}${path}`, base);
  if (protocol === 'wss') url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  return url;
}

/** Azure Speech's regional hosts (public cloud, US Government, China); any other is a custom domain. */
function isRegionalHost(hostname: string): boolean {
  return /\.(api\.cognitive\.microsoft\.com|api\.cognitive\.microsoft\.us|api\.cognitive\.azure\.cn|speech\.microsoft\.com|speech\.azure\.us|speech\.azure\.cn)$/i.test(
    hostname,
  );
}

// ---- answers -----------------------------------------------------------------------------------

function timedOut(timeoutMs: number, detail?: string): ApiError {
  return new ApiError(
    504,
    'GatewayTimeout',
    `Azure Speech did not answer within ${timeoutMs} ms.`,
    null,
    {},
    detail,
  );
}

function credentialRefused(status: number | undefined, detail: string): ApiError {
  return new ApiError(
    502,
    'BadGateway',
    `Azure Speech refused the service's own credential${status ? ` (${status})` : ''}; the request was not at fault.`,
    null,
    {},
    detail,
  );
}

/** The headers of the service's answer that tell a caller when to retry, as it sent them. */
function retryHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const passed: Record<string, string> = {};
  for (const name of ['retry-after', 'retry-after-ms']) {
    const value = headers[name];
    const first = Array.isArray(value) ? value[0] : value;
    if (first) passed[name] = first;
  }
  return passed;
}

/** The service's refusal (a REST answer or a refused WebSocket upgrade) as the caller is answered. */
function refusal(status: number, headers: IncomingHttpHeaders, detail: string): ApiError {
  const retry = retryHeaders(headers);
  const after = retry['retry-after'];
  switch (status) {
    case 429:
      return new ApiError(
        429,
        'TooManyRequests',
        `Azure Speech is rate limiting requests.${after && /^\d+$/.test(after) ? ` Please retry after ${after} second${after === '1' ? '' : 's'}.` : ''}`,
        null,
        retry,
        detail,
      );
    case 503:
      return new ApiError(
        503,
        'ServiceUnavailable',
        'Azure Speech is temporarily unavailable.',
        null,
        retry,
        detail,
      );
    case 504:
      return new ApiError(504, 'GatewayTimeout', 'Azure Speech timed out.', null, retry, detail);
    case 401:
    case 403:
      return credentialRefused(status, detail);
    default:
      if (status >= 400 && status < 500 && status !== 404) {
        return new ApiError(
          status,
          'UpstreamError',
          `Azure Speech refused the request (${status}).`,
          null,
          retry,
          detail,
        );
      }
      return new ApiError(
        502,
        'BadGateway',
        `Azure Speech failed the request (${status}).`,
        null,
        retry,
        detail,
      );
  }
}

/** A failed SDK operation: by its refused upgrade when there was one, else by the SDK's error code. */
function sdkFailure(upgrade: Upgrade, code: sdk.CancellationErrorCode | undefined, detail: string): ApiError {
  if (upgrade.answer) return refusal(upgrade.answer.status, upgrade.answer.headers, detail);
  switch (code) {
    case sdk.CancellationErrorCode.AuthenticationFailure:
    case sdk.CancellationErrorCode.Forbidden:
      return credentialRefused(undefined, detail);
    case sdk.CancellationErrorCode.TooManyRequests:
      return refusal(429, {}, detail);
    case sdk.CancellationErrorCode.BadRequestParameters:
      return new ApiError(
        400,
        'BadRequest',
        'Azure Speech refused the request as invalid.',
        null,
        {},
        detail,
      );
    case sdk.CancellationErrorCode.ServiceTimeout:
      return new ApiError(504, 'GatewayTimeout', 'Azure Speech timed out.', null, {}, detail);
    default:
      return new ApiError(
        502,
        'BadGateway',
        'Azure Speech could not be reached, or failed the request.',
        null,
        {},
        detail,
      );
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

// ---- the SDK's WebSocket upgrades ----------------------------------------------------------------
//
// The Speech SDK reports a refused WebSocket upgrade (a 429, a 5xx, a 401) only as a cancellation
// reading "Unable to contact server. StatusCode: 1006, <url> Reason: Unexpected server response:
// 429": neither the status as such nor the answer's headers (`retry-after`). That upgrade is an
// ordinary node:http request, made by the `ws` client (forceNpmWebSocket above), so Node's
// documented diagnostics channels of the HTTP client see it: `http.client.request.start` gives the
// request, `http.client.response.finish` the answer when it was not an upgrade.
//
// Each SDK call tags its endpoint URL with a query parameter of its own (CALL_TAG=<uuid>; the SDK
// keeps the endpoint's query, and the service ignores parameters it does not know) and registers
// the tag while it runs. The two subscribers are installed only while at least one SDK call runs;
// they skip any request that does not carry a registered tag, and only read: they never change a
// request or an answer. Concurrent calls therefore each see their own upgrade, and a call that
// times out can abort its own hung handshake.

const CALL_TAG = 'metering-call';
const REQUEST_START = 'http.client.request.start';
const RESPONSE_FINISH = 'http.client.response.finish';

interface Upgrade {
  /** The call's upgrade requests (the synthesizer retries a refused one once). */
  requests: ClientRequest[];
  /** The answer to the latest request, when it was refused rather than upgraded. */
  answer?: { status: number; headers: IncomingHttpHeaders };
}

const upgrades = new Map<string, Upgrade>();

function upgradeOf(request: ClientRequest): Upgrade | undefined {
  const path = request.path;
  if (!path.includes(`${CALL_TAG}=`)) return undefined;
  const tag = new URLSearchParams(path.slice(path.indexOf('?') + 1)).get(CALL_TAG);
  return tag === null ? undefined : upgrades.get(tag);
}

function onRequestStart(message: unknown): void {
  const { request } = message as { request: ClientRequest };
  const upgrade = upgradeOf(request);
  if (!upgrade) return;
  upgrade.requests.push(request);
  delete upgrade.answer;
}

function onResponseFinish(message: unknown): void {
  const { request, response } = message as { request: ClientRequest; response: IncomingMessage };
  const upgrade = upgradeOf(request);
  if (upgrade && response.statusCode !== undefined) {
    upgrade.answer = { status: response.statusCode, headers: response.headers };
  }
}

function watchUpgrade(tag: string): Upgrade {
  if (upgrades.size === 0) {
    subscribe(REQUEST_START, onRequestStart);
    subscribe(RESPONSE_FINISH, onResponseFinish);
  }
  const upgrade: Upgrade = { requests: [] };
  upgrades.set(tag, upgrade);
  return upgrade;
}

function unwatchUpgrade(tag: string): void {
  if (upgrades.delete(tag) && upgrades.size === 0) {
    unsubscribe(REQUEST_START, onRequestStart);
    unsubscribe(RESPONSE_FINISH, onResponseFinish);
  }
}
