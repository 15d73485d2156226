import net from 'node:net';
import { getFreePort } from '../../../local/services/ports';

it('hands out a loopback port that can be bound right away', async () => {
  const port = await getFreePort();
  expect(port).toBeGreaterThan(0);
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  await new Promise((resolve) => server.close(resolve));
});
