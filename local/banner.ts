import { relative } from 'node:path';
import { FUNCTION_KEY_HEADER, GATEWAY_HEADERS } from '../shared/contracts/gateway-headers';
import { reportPath } from '../shared/contracts/report-paths';
import { APIM_APIS, APIM_POLICY_FOLDER } from '../shared/contracts/apim';
import type { LocalCredentials } from './credentials';
import { EXAMPLE_CALLER } from './credentials';
import { LOCAL_TOKEN_PATH } from './gateway/server';
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
  const label = (text: string): string => `  ${text.padEnd(17)}`;
  const sub = (text: string): string => `    ${text.padEnd(15)}`;
  const gateway = stack.gateway.url;
  const { subscriptions, users } = stack.gatewayConfig;
  const keyWidth = Math.max(...subscriptions.map((s) => `${s.product}/${s.name}`.length));
  const report = (format: 'csv' | 'json' | 'html'): string =>
    `${gateway}/${APIM_APIS.chargeback.path}/reports/${reportPath({ kind: 'monthly', period: month, format })}`;
  const example = subscriptions.find((s) => s.product === EXAMPLE_CALLER.department) ?? subscriptions[0];

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
    `${label('Gateway')}${gateway}   the ${APIM_POLICY_FOLDER}/ policies, executed as API Management runs them`,
    `${sub('keys')}one per app (subscription); department = its product`,
    ...subscriptions.map((s) => `      ${`${s.product}/${s.name}`.padEnd(keyWidth)}  ${s.key}`),
    `${sub('tokens')}${users.map((u) => `${u.name} (${u.roles.join(', ')})`).join('; ')}:`,
    `      curl -s ${gateway}${LOCAL_TOKEN_PATH}/<user>   (Authorization: Bearer <token>)`,
    `${label('Azure OpenAI')}new AzureOpenAI({ endpoint: '${gateway}', apiKey: '<key>', apiVersion: '${EXAMPLE_API_VERSION}' })`,
    `${sub('deployments')}${deploymentsLine(stack)}`,
    `${label('Azure Speech')}${gateway}/${APIM_APIS.speech.path}/cognitiveservices/v1   (text to speech; ${APIM_APIS.speech.subscriptionKey.header}: <key>)`,
    `${label('')}${gateway}/${APIM_APIS.speech.path}/speech/recognition/conversation/cognitiveservices/v1?language=en-US`,
    `${label('Finance API')}${gateway}/${APIM_APIS.chargeback.path}/reports?period=${month}   (finance token)`,
    `${sub('download')}${report('html')}   (also .csv, .json; after a chargeback run)`,
    `${label('Admin API')}${gateway}/${APIM_APIS.chargeback.path}/chargeback/admin/config   (admin token; see docs/admin-api.md)`,
    `${label('Behind it')}${base}/api/...   (the functions; only the gateway's credentials open them:`,
    `${label('')}${FUNCTION_KEY_HEADER}: ${credentials.functionKey}, ${GATEWAY_HEADERS.gatewayKey}: ${gatewaySecretShown(credentials)})`,
    '',
    '  Try:',
    `    curl ${base}/api/live`,
    `    curl -H '${FUNCTION_KEY_HEADER}: ${credentials.functionKey}' ${base}/api/health`,
    ...chatCurl(gateway, example?.key ?? '<key>').map((line) => `    ${line}`),
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

/** A chat completion with curl, through the local gateway, with an app's subscription key. */
export function chatCurl(gateway: string, key: string): string[] {
  return [
    `curl '${gateway}/${APIM_APIS.openai.path}/deployments/gpt-4o-mini/chat/completions?api-version=${EXAMPLE_API_VERSION}' \\`,
    `  -H '${APIM_APIS.openai.subscriptionKey.header}: ${key}' -H 'content-type: application/json' \\`,
    `  -d '{"messages":[{"role":"user","content":"Hello"}]}'`,
  ];
}
