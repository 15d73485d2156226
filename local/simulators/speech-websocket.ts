import { randomUUID } from 'node:crypto';
import type { RawData, WebSocket } from 'ws';
import { pauseWhileOpen } from './http';

/**
 * The WebSocket protocol of `microsoft-cognitiveservices-speech-sdk`, server side: its framing.
 * Recognition (speech-recognition-ws.ts) and synthesis (speech-synthesis.ts) speak it.
 *
 * Framing (WebsocketMessageFormatter in the SDK): a text message is `Name: value\r\n` header lines,
 * an empty line, then the body; a binary message is a 2-byte big-endian header length, the same
 * header block (ASCII), then the payload. Every message carries `Path` and `X-RequestId`; replies
 * reuse the turn's request id, or the SDK drops them.
 */

export interface SpeechMessage {
  /** Lower case. */
  path: string;
  requestId: string;
  /** Names in lower case. */
  headers: Record<string, string>;
  body: Buffer;
}

export function parseMessage(data: RawData, isBinary: boolean): SpeechMessage {
  const buffer = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
  let headerText: string;
  let body: Buffer;
  if (isBinary) {
    const length = buffer.length >= 2 ? buffer.readUInt16BE(0) : 0;
    headerText = buffer.toString('latin1', 2, 2 + length);
    body = buffer.subarray(2 + length);
  } else {
    const text = buffer.toString('utf8');
    const split = text.indexOf('\r\n\r\n');
    headerText = split < 0 ? text : text.slice(0, split);
    body = Buffer.from(split < 0 ? '' : text.slice(split + 4), 'utf8');
  }
  const headers: Record<string, string> = {};
  for (const line of headerText.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return {
    path: (headers.path ?? '').toLowerCase(),
    requestId: headers['x-requestid'] ?? '',
    headers,
    body,
  };
}

function headerBlock(path: string, requestId: string, contentType: string, extra: Record<string, string>) {
  let block = `X-RequestId: ${requestId}\r\nX-Timestamp: ${new Date().toISOString()}\r\nPath: ${path}\r\nContent-Type: ${contentType}\r\n`;
  for (const [name, value] of Object.entries(extra)) block += `${name}: ${value}\r\n`;
  return block;
}

export function sendText(ws: WebSocket, path: string, requestId: string, body: unknown): void {
  if (ws.readyState !== ws.OPEN) return;
  ws.send(
    `${headerBlock(path, requestId, 'application/json; charset=utf-8', {})}\r\n${JSON.stringify(body)}`,
  );
}

export function sendBinary(
  ws: WebSocket,
  path: string,
  requestId: string,
  contentType: string,
  body: Buffer,
  extra: Record<string, string>,
): void {
  if (ws.readyState !== ws.OPEN) return;
  const header = Buffer.from(headerBlock(path, requestId, contentType, extra), 'latin1');
  const prefix = Buffer.alloc(2);
  prefix.writeUInt16BE(header.length);
  ws.send(Buffer.concat([prefix, header, body]));
}

/** A service tag or stream id: a UUID without dashes. */
export function serviceTag(): string {
  return randomUUID().replace(/-/g, '');
}

/** Waits `ms` while the socket stays open; false when it closed first (or was not open). */
export function wsPause(ws: WebSocket, ms: number): Promise<boolean> {
  return pauseWhileOpen(ms, ws, () => ws.readyState === ws.OPEN);
}
