/**
 * `npm start`: the whole pipeline on this machine, with no Azure account. Starts the stand-ins that
 * are not configured, the local Functions host on the compiled app, prints one screen, and stops
 * everything on Ctrl-C.
 */
import { relative } from 'node:path';
import type { LocalStack } from './stack';
import { startLocalStack } from './stack';

async function main(): Promise<void> {
  const started = Date.now();
  let stack: LocalStack;
  try {
    stack = await startLocalStack({
      persist: true,
      mode: 'compiled',
      timers: 'schedule',
      readSettingsFile: true,
      log: (line) => console.log(`${new Date().toISOString()} ${line}`),
    });
  } catch (error) {
    console.error(
      `\nThe local stack did not start.\n${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  }
  console.log(startupScreen(stack, Date.now() - started));

  let signals = 0;
  const shutdown = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      console.error('Forced exit.');
      process.exit(130);
    }
    console.log(`\n${signal}: stopping the local stack...`);
    stack.stop().then(
      () => {
        console.log('Stopped.');
        process.exit(0);
      },
      (error: unknown) => {
        console.error(`Stop failed: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

function startupScreen(stack: LocalStack, elapsedMs: number): string {
  const { host, settings } = stack;
  const pad = (text: string, width: number): string => text.padEnd(width);
  const lines = [
    '',
    `AI chargeback: local stack up in ${(elapsedMs / 1000).toFixed(1)} s`,
    '',
    `  Functions host   ${host.url}`,
    ...host.httpFunctions.map((f) => `    ${pad(f.methods.join(','), 10)} ${pad(f.url, 60)} ${f.authLevel}`),
    ...host.timerFunctions.map(
      (t) => `    timer      ${pad(t.name, 60)} ${t.schedule}  (next ${t.next?.toISOString()})`,
    ),
    '',
    '  Stand-ins',
    ...stack.standIns.map((s) => `    ${pad(s.name, 24)} ${s.url}${s.detail ? `  (${s.detail})` : ''}`),
    ...stack.configured.map((c) => `    ${pad(c.name, 24)} ${c.url}  (configured)`),
    '',
    `  Keys             function: ${settings.LOCAL_FUNCTION_KEY}   master: ${settings.LOCAL_MASTER_KEY}`,
    `  Local data       ${relative(process.cwd(), settings.LOCAL_DATA_DIR) || '.'}${stack.settingsFile ? `   settings from ${relative(process.cwd(), stack.settingsFile)}` : ''}`,
    '',
    '  Try:',
    `    curl ${host.url}/api/health`,
    '',
    '  Ctrl-C stops everything.',
    '',
  ];
  return lines.join('\n');
}

void main();
