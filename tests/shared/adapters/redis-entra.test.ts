import type { AccessToken } from '@azure/identity';
import { Redis } from 'ioredis';
import type { RedisServer } from '../../../local/services/redis';
import { startRedis } from '../../../local/services/redis';
import { RedisEntraAuth } from '../../../shared/adapters/redis-entra';

/**
 * Entra ID authentication against a real redis-server whose ACL stands in for Azure Managed Redis:
 * the user is the identity's object id, its password the current access token. When the token is
 * renewed (before it expires), the server stops taking the old one; connections made afterwards
 * must use the new one.
 */

const USER = '6f1c2d3e-0000-4000-8000-0000000000a1';
let server: RedisServer;
let admin: Redis;

beforeAll(async () => {
  server = await startRedis();
  admin = new Redis(server.url);
});
afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

/** Tokens issued one after the other, each valid for `lifetimeMs`; the server takes only the latest. */
function issuer(lifetimeMs: number): { token: () => Promise<AccessToken>; issued: string[] } {
  const issued: string[] = [];
  return {
    issued,
    token: async () => {
      const token = `entra-token-${issued.length + 1}-${Math.random().toString(36).slice(2)}`;
      issued.push(token);
      await admin.call('ACL', 'SETUSER', USER, 'on', 'resetpass', `>${token}`, '~*', '&*', '+@all');
      return { token, expiresOnTimestamp: Date.now() + lifetimeMs };
    },
  };
}

function client(): Redis {
  const redis = new Redis(server.url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  });
  redis.on('error', () => undefined);
  return redis;
}

async function reconnected(redis: Redis): Promise<string> {
  // The server drops the identity's connections; the client reconnects with its current password.
  await admin.call('CLIENT', 'KILL', 'USER', USER);
  for (let i = 0; i < 100 && redis.status !== 'ready'; i++) await new Promise((r) => setTimeout(r, 20));
  for (let i = 0; i < 100; i++) {
    try {
      return await redis.ping();
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return 'never ready';
}

it('connects with the token, renews it before it expires, and reconnects with the new one', async () => {
  // Expires in 2 s, renewed 1.5 s before: the renewal fires about 0.5 s after connecting.
  const tokens = issuer(2000);
  const auth = new RedisEntraAuth({ username: USER, token: tokens.token, refreshBeforeMs: 1500 });
  const redis = client();
  try {
    await auth.connect(redis);
    expect(await redis.call('ACL', 'WHOAMI')).toBe(USER);
    for (let i = 0; i < 100 && tokens.issued.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(tokens.issued.length).toBeGreaterThanOrEqual(2);
    // The open connection re-authenticated with the new token (AUTH), and a reconnection uses it.
    expect(await redis.call('ACL', 'WHOAMI')).toBe(USER);
    expect(await reconnected(redis)).toBe('PONG');
  } finally {
    auth.close();
    redis.disconnect();
  }
});

it('without the renewal a reconnection is refused (the old token is no longer taken)', async () => {
  const tokens = issuer(3_600_000);
  const auth = new RedisEntraAuth({ username: USER, token: tokens.token });
  const redis = client();
  try {
    await auth.connect(redis);
    expect(await redis.ping()).toBe('PONG');
    // Another instance of the identity renews: the server now takes only the newer token.
    await tokens.token();
    expect(await reconnected(redis)).toBe('never ready');
    // Renewing puts this client right again.
    await auth.renew();
    expect(await reconnected(redis)).toBe('PONG');
  } finally {
    auth.close();
    redis.disconnect();
  }
}, 20_000);
