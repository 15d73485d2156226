import { Cluster } from 'ioredis';

/**
 * A cluster-aware client for a Redis that exposes its shards (REDIS_CLUSTER=true): Azure Managed
 * Redis with the OSS clustering policy, or a self-managed Redis Cluster. It starts from the URL's
 * node and learns the others; over TLS (`rediss:`) every node is reached by the host name it
 * announces, with certificate checks on that name.
 */
export function clusterClient(
  url: string,
  password: string | undefined,
  options: {
    connectTimeout: number;
    commandTimeout: number;
    maxRetriesPerRequest: number;
    enableAutoPipelining: boolean;
  },
): Cluster {
  const seed = new URL(url);
  const tls = seed.protocol === 'rediss:';
  return new Cluster([{ host: seed.hostname, port: Number(seed.port || (tls ? 6380 : 6379)) }], {
    // A down Redis must fail fast, not queue commands forever (usage then goes to the spool).
    enableOfflineQueue: false,
    enableAutoPipelining: options.enableAutoPipelining,
    // TLS certificates name hosts, not the addresses DNS resolves them to.
    ...(tls
      ? {
          dnsLookup: (address: string, callback: (err: null, address: string) => void) =>
            callback(null, address),
        }
      : {}),
    redisOptions: {
      password,
      connectTimeout: options.connectTimeout,
      commandTimeout: options.commandTimeout,
      maxRetriesPerRequest: options.maxRetriesPerRequest,
      ...(tls ? { tls: { servername: seed.hostname } } : {}),
    },
  });
}
