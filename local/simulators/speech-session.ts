import type http from 'node:http';

/** How one Speech request or connection is answered, and where the audio it bills is counted. */
export interface SpeechSession {
  /** Delay between chunks of synthesized audio. */
  chunkDelayMs: number;
  /** Drop the connection half-way through the answer (on a WebSocket, through its first turn). */
  cut: boolean;
  onAudioReceived(seconds: number): void;
  /** Called for completed syntheses only. */
  onAudioSynthesized(seconds: number, characters: number): void;
}

/**
 * The answer to a validated REST request, written once the request's fault let it through
 * (`headers` are the ones every answer carries).
 */
export type RestAnswer = (
  res: http.ServerResponse,
  session: SpeechSession,
  headers: http.OutgoingHttpHeaders,
) => void | Promise<void>;
