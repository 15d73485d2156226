import type { HttpExchange, LocalFunctionsHost } from './host/host';
import { appServices } from '../shared/config/composition';
import { UNASSIGNED_DEPARTMENT } from '../shared/contracts/department';
import { GATEWAY_HEADERS } from '../shared/contracts/gateway-headers';
import type { UsageEvent } from '../shared/contracts/usage-event';

/**
 * The local stack's request log: one line per request the host answered, as Core Tools logs
 * executions. A metering proxy's line says who it was billed to and what was recorded, e.g.
 *
 *   POST /api/openai/deployments/gpt-4o-mini/chat/completions 200 research/chat-app gpt-4o-mini 1,234 tokens (1,000 in, 234 out) 182 ms
 *   POST /api/speech/recognition/conversation/cognitiveservices/v1 200 customer-support/voicebot stt 12.4 s audio 950 ms
 *
 * and any other request gets a shorter one (`GET /api/health 200 35 ms`). The figures are the
 * usage event the proxy recorded for the request, exactly (see observeRecordedUsage).
 */

/** The annotation holding the usage event a request recorded. */
export const USAGE_ANNOTATION = 'usage';

/**
 * Attaches every usage event the app records to the HTTP request it was recorded for (the
 * composition root's `recordUsage`, which every proxy records through), so that request's log line
 * can show it. The app is unchanged: the event is still recorded, and a failure still surfaces.
 * Call once the host has started (its start-up hook built the app's services).
 */
export async function observeRecordedUsage(host: LocalFunctionsHost): Promise<void> {
  const services = await appServices();
  const record = services.recordUsage.bind(services);
  services.recordUsage = async (event: UsageEvent): Promise<void> => {
    await record(event);
    host.annotate(USAGE_ANNOTATION, event);
  };
}

/** The log line of one request, without a timestamp (the log adds it). */
export function requestLogLine(exchange: HttpExchange): string {
  const { method, path, status, durationMs, incomplete } = exchange;
  const head = `${method} ${path} ${status === 0 ? '-' : status}`;
  const tail = `${Math.round(durationMs).toLocaleString('en-US')} ms${incomplete ? ' (response cut short)' : ''}`;
  const event = exchange.annotations[USAGE_ANNOTATION] as UsageEvent | undefined;
  if (event) {
    return `${head} ${event.department}/${event.appId} ${usageOf(event)} ${tail}`;
  }
  const subscription = header(exchange, GATEWAY_HEADERS.subscription);
  if (subscription !== undefined) {
    // A proxy call that recorded nothing: refused, or failed upstream. Who it was for, as sent.
    const department = header(exchange, GATEWAY_HEADERS.department) ?? UNASSIGNED_DEPARTMENT;
    const app = header(exchange, GATEWAY_HEADERS.app) ?? subscription;
    const deployment = exchange.params.deployment;
    return `${head} ${department}/${app}${deployment ? ` ${deployment}` : ''} no usage recorded ${tail}`;
  }
  return `${head} ${tail}`;
}

function usageOf(event: UsageEvent): string {
  switch (event.api) {
    case 'stt':
      return `stt ${seconds(event.audioSeconds)} audio`;
    case 'tts':
      return `tts ${count(event.billableCharacters)} characters (${seconds(event.audioSeconds)} audio)`;
    case 'embeddings':
      return `${event.deployment} ${tokens(event.promptTokens, event.estimated)}`;
    case 'chat':
    case 'responses': {
      const input = `${count(event.promptTokens)} in${event.cachedTokens > 0 ? ` incl. ${count(event.cachedTokens)} cached` : ''}`;
      const output = `${count(event.completionTokens)} out${event.reasoningTokens > 0 ? ` incl. ${count(event.reasoningTokens)} reasoning` : ''}`;
      const total = tokens(event.promptTokens + event.completionTokens, event.estimated);
      const estimated = event.estimated ? ', estimated' : '';
      return `${event.deployment} ${total} (${input}, ${output}${estimated})${event.streamed ? ' streamed' : ''}`;
    }
  }
}

function tokens(n: number, estimated: boolean): string {
  return `${estimated ? '~' : ''}${count(n)} ${n === 1 ? 'token' : 'tokens'}`;
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

function seconds(s: number): string {
  return `${s.toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 })} s`;
}

function header(exchange: HttpExchange, name: string): string | undefined {
  const value = exchange.requestHeaders[name];
  const first = (Array.isArray(value) ? value[0] : value)?.trim();
  return first ? first : undefined;
}
