import { join } from 'node:path';
import type { LocalHostOptions } from '../../../local/host/host';
import { LocalFunctionsHost } from '../../../local/host/host';

export const keys = { functionKey: 'fixture-function-key', masterKey: 'fixture-master-key' };

export async function startFixtureHost(
  timers: 'schedule' | 'manual' = 'manual',
  extra: Partial<LocalHostOptions> = {},
): Promise<LocalFunctionsHost> {
  const host = new LocalFunctionsHost({
    appRoot: join(__dirname, 'fixtures'),
    entryModules: [join(__dirname, 'fixtures', 'app')],
    port: 0,
    keys,
    timers,
    ...extra,
  });
  await host.start();
  return host;
}
