/**
 * `npm start`: the whole pipeline on this machine, with no Azure account. Starts the stand-ins that
 * are not configured, the local Functions host on the compiled app, prints one screen, logs one line
 * per request (`--no-request-log`: not), and stops everything on Ctrl-C.
 */
import { startupScreen } from './banner';
import type { LocalStack } from './stack';
import { startLocalStack } from './stack';

/** Every line the stack logs, stamped as Core Tools stamps its own: `[2026-12-02T10:15:03.120Z] …`. */
function log(line: string): void {
  console.log(`[${new Date().toISOString()}] ${line}`);
}

async function main(): Promise<void> {
  const started = Date.now();
  const requestLog = !process.argv.includes('--no-request-log');
  let stack: LocalStack;
  try {
    stack = await startLocalStack({
      persist: true,
      mode: 'compiled',
      timers: 'schedule',
      readSettingsFile: true,
      log,
      requestLog: requestLog ? log : undefined,
    });
  } catch (error) {
    console.error(
      `\nThe local stack did not start.\n${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  }
  console.log(startupScreen(stack, Date.now() - started, { requestLog }));

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

void main();
