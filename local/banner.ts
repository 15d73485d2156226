import { relative } from 'node:path';
import { FUNCTION_KEY_HEADER, GATEWAY_HEADERS } from '../shared/contracts/gateway-headers';
import { reportPath } from '../shared/contracts/report-paths';
import { APP_ROLES } from '../shared/contracts/roles';
import type { LocalCredentials } from './gateway';
import { EXAMPLE_CALLER } from './gateway';
import { isEmbeddingModel, isReasoningModel } from './simulators/openai-text';
import type { LocalStack } from './stack';

/** The API version the examples use (one the simulator and Azure OpenAI both accept). */
export const EXAMPLE_API_VERSION = '2024-10-21';

/** What `npm start` prints once the stack is up: what runs where, and how to call it. */
export function startupScreen(
  stack: LocalStack,
  elapsedMs: number,
  options: { requestLog: boolean; now?: Date } = { requestLog: true },
): string {
  const { host, settings, credentials } = stack;
  const base = host.url;
  const month = (options.now ?? new Date()).toISOString().slice(0, 7);
  const urlWidth = Math.max(
    0,
    ...host.httpFunctions.map((f) => f.url.length),
    ...host.timerFunctions.map((t) => t.name.length),
  );
  const methodsWidth = Math.max(6, ...host.httpFunctions.map((f) => f.methods.join(',').length));
  const gateway = gatewaySecretShown(credentials);
  const label = (text: string): string => `  ${text.padEnd(17)}`;
  const sub = (text: string): string => `    ${text.padEnd(15)}`;
  const headerRows: Array<[string, string, string]> = [
    [FUNCTION_KEY_HEADER, credentials.functionKey, ''],
    [GATEWAY_HEADERS.gatewayKey, gateway, ''],
    [GATEWAY_HEADERS.subscription, EXAMPLE_CALLER.subscription, 'required: the APIM subscription'],
    [GATEWAY_HEADERS.department, EXAMPLE_CALLER.department, 'else charged to "unassigned"'],
    [GATEWAY_HEADERS.app, EXAMPLE_CALLER.app, 'else the subscription'],
  ];
  const nameWidth = Math.max(...headerRows.map((r) => r[0].length));
  const valueWidth = Math.max(...headerRows.map((r) => r[1].length));
  const report = (format: 'csv' | 'json' | 'html'): string =>
    `${base}/api/reports/${reportPath({ kind: 'monthly', period: month, format })}`;

  const lines = [
    '',
    `AI chargeback: local stack up in ${(elapsedMs / 1000).toFixed(1)} s`,
    '',
    `${label('Functions host')}${base}`,
    ...host.httpFunctions.map(
      (f) => `    ${f.methods.join(',').padEnd(methodsWidth)}  ${f.url.padEnd(urlWidth)}  ${f.authLevel}`,
    ),
    ...host.timerFunctions.map(
      (t) =>
        `    ${'timer'.padEnd(methodsWidth)}  ${t.name.padEnd(urlWidth)}  ${t.schedule}  (next ${t.next?.toISOString()})`,
    ),
    '',
    '  Stand-ins',
    ...stack.standIns.map((s) => `    ${s.name.padEnd(24)} ${s.url}${s.detail ? `  (${s.detail})` : ''}`),
    ...stack.configured.map((c) => `    ${c.name.padEnd(24)} ${c.url}  (configured)`),
    '',
    `${label('Keys')}function: ${credentials.functionKey}   master: ${credentials.masterKey}`,
    `${label('Local data')}${relative(process.cwd(), settings.LOCAL_DATA_DIR) || '.'}${stack.settingsFile ? `   settings from ${relative(process.cwd(), stack.settingsFile)}` : ''}`,
    '',
    `${label('Gateway headers')}what APIM adds in Azure; send them yourself here`,
    ...headerRows.map(([name, value, note]) =>
      `    ${name.padEnd(nameWidth)}  ${value.padEnd(valueWidth)}  ${note}`.trimEnd(),
    ),
    `${label('Azure OpenAI')}${base}/api/openai   (openai SDK: AzureOpenAI endpoint ${base}/api)`,
    `${sub('deployments')}${deploymentsLine(stack)}`,
    `${label('Azure Speech')}${base}/api/cognitiveservices/v1   (text to speech)`,
    `${label('')}${base}/api/speech/recognition/conversation/cognitiveservices/v1?language=en-US   (speech to text)`,
    `${label('Finance API')}the key and gateway headers above, plus ${GATEWAY_HEADERS.roles}: ${APP_ROLES.finance}`,
    `${sub('list')}${base}/api/reports?period=${month}`,
    `${sub('download')}${report('html')}   (also .csv, .json; after a chargeback run)`,
    '',
    '  Try:',
    `    curl ${base}/api/live`,
    `    curl -H '${FUNCTION_KEY_HEADER}: ${credentials.functionKey}' ${base}/api/health`,
    ...chatCurl(base, credentials).map((line) => `    ${line}`),
    '',
    `  ${options.requestLog ? 'Requests are logged below, one line each. ' : ''}Ctrl-C stops everything.`,
    '',
  ];
  return lines.join('\n');
}

/** The gateway secret as the banner shows it: a stand-in for one configured for real. */
function gatewaySecretShown(credentials: LocalCredentials): string {
  return credentials.gatewaySecretIsLocal ? credentials.gatewaySecret : '<your GATEWAY_SHARED_SECRET>';
}

function deploymentsLine(stack: LocalStack): string {
  const deployments = stack.openAiSimulator?.deployments;
  if (!deployments)
    return `those of ${stack.configured.find((c) => c.name === 'Azure OpenAI')?.url ?? 'AZURE_OPENAI_ENDPOINT'}`;
  const names = Object.entries(deployments);
  const chat = names.filter(([, model]) => !isEmbeddingModel(model));
  const embeddings = names.filter(([, model]) => isEmbeddingModel(model));
  const chatNames = chat.map(([name, model]) => (isReasoningModel(model) ? `${name} (reasoning)` : name));
  return `${chatNames.join(', ')}; embeddings: ${embeddings.map(([name]) => name).join(', ')}`;
}

/** A chat completion with curl, through the proxy, as the example caller. */
export function chatCurl(base: string, credentials: LocalCredentials): string[] {
  return [
    `curl '${base}/api/openai/deployments/gpt-4o-mini/chat/completions?api-version=${EXAMPLE_API_VERSION}' \\`,
    `  -H '${FUNCTION_KEY_HEADER}: ${credentials.functionKey}' -H '${GATEWAY_HEADERS.gatewayKey}: ${gatewaySecretShown(credentials)}' \\`,
    `  -H '${GATEWAY_HEADERS.subscription}: ${EXAMPLE_CALLER.subscription}' -H '${GATEWAY_HEADERS.department}: ${EXAMPLE_CALLER.department}' \\`,
    `  -H '${GATEWAY_HEADERS.app}: ${EXAMPLE_CALLER.app}' -H 'content-type: application/json' \\`,
    `  -d '{"messages":[{"role":"user","content":"Hello"}]}'`,
  ];
}
