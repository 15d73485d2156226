import { Redis } from 'ioredis';
import type { RedisServer } from '../../../local/services/redis';
import { startRedis } from '../../../local/services/redis';
import { watchRedisConnection, whenRedisReady } from '../../../shared/adapters/redis-ready';

/**
 * A Redis outage as the app's client lives through it: handled errors logged once per outage (not
 * ioredis's "Unhandled error event" per reconnect attempt), and however many callers wait for the
 * connection, no listener warning.
 */

jest.setTimeout(60_000);

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(() => server.stop());

describe('a Redis outage', () => {
  it('is logged once when it starts and once when it ends, with no unhandled errors or listener warnings', async () => {
    const lines: string[] = [];
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning.name);
    };
    process.on('warning', onWarning);
    const consoleError = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    const client = new Redis(server.url, {
      connectTimeout: 1_000,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: () => 100,
    });
    try {
      watchRedisConnection(client, (line) => lines.push(line));
      await whenRedisReady(client, AbortSignal.timeout(5_000));
      await server.kill();
      // Many requests wait for the connection at once, as they would under load.
      const waits = Array.from({ length: 50 }, () =>
        whenRedisReady(client, AbortSignal.timeout(1_500)).catch(() => 'not ready'),
      );
      expect(await Promise.all(waits)).toEqual(Array.from({ length: 50 }, () => 'not ready'));
      await new Promise((resolve) => setTimeout(resolve, 1_000)); // several reconnect attempts
      await server.restart();
      await whenRedisReady(client, AbortSignal.timeout(10_000));

      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(/^Redis down since \d{4}-\d{2}-\d{2}T[\d:.]+Z/);
      expect(lines[1]).toMatch(/^Redis back after [\d.]+ s/);
      expect(warnings).toEqual([]);
      expect(consoleError.mock.calls.map((c) => String(c[0]))).not.toContainEqual(
        expect.stringContaining('Unhandled error event'),
      );
    } finally {
      client.disconnect();
      consoleError.mockRestore();
      process.off('warning', onWarning);
    }
  });
});
