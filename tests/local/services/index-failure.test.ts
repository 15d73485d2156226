import type * as Cosmos from '../../../local/services/cosmos';
import type * as Redis from '../../../local/services/redis';
import { startBackingServices } from '../../../local/services';
import { descendants } from './helpers';

// Redis fails once the others are (nearly) up; the Cosmos emulator's stop() is watched.
jest.mock('../../../local/services/redis', () => ({
  ...jest.requireActual<typeof Redis>('../../../local/services/redis'),
  startRedis: () =>
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error('redis-server exited during start-up')), 1500),
    ),
}));
const mockCosmosStops: Array<jest.Mock> = [];
jest.mock('../../../local/services/cosmos', () => {
  const actual = jest.requireActual<typeof Cosmos>('../../../local/services/cosmos');
  return {
    ...actual,
    startCosmos: async (...args: Parameters<typeof actual.startCosmos>) => {
      const server = await actual.startCosmos(...args);
      const stop = jest.fn(() => server.stop());
      mockCosmosStops.push(stop);
      return { ...server, stop };
    },
  };
});

it('stops the services that did start when one fails, and names the one that failed', async () => {
  const before = descendants(process.pid);
  const error = await startBackingServices().then(
    () => new Error('started although Redis failed'),
    (e: unknown) => e as Error,
  );
  expect(error.message).toBe(
    'Could not start the backing services:\n  - Redis failed to start: redis-server exited during start-up',
  );
  expect(mockCosmosStops).toHaveLength(1);
  expect(mockCosmosStops[0]).toHaveBeenCalledTimes(1);
  expect(descendants(process.pid)).toEqual(before); // Azurite is gone too
});
