import net from 'node:net';
import type * as Ports from '../../../local/services/ports';
import { getFreePort } from '../../../local/services/ports';
import { startRedis } from '../../../local/services/redis';

// The port handed out as free is taken by someone else before redis-server binds it.
const mockPicks: number[] = [];
jest.mock('../../../local/services/ports', () => {
  const actual = jest.requireActual<typeof Ports>('../../../local/services/ports');
  return { getFreePort: jest.fn(() => Promise.resolve(mockPicks.shift() ?? actual.getFreePort())) };
});

it('retries on another port when the picked one is taken before redis-server binds it', async () => {
  const squatter = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  const taken = (squatter.address() as net.AddressInfo).port;
  mockPicks.push(taken);
  try {
    const redis = await startRedis();
    await redis.stop();
    expect(redis.port).not.toBe(taken);
    expect(jest.mocked(getFreePort)).toHaveBeenCalledTimes(2);
  } finally {
    await new Promise((resolve) => squatter.close(resolve));
  }
});
