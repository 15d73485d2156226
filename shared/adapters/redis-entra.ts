import type { AccessToken } from '@azure/identity';
import type { Redis } from 'ioredis';
import { ensureError } from '../contracts/api-errors';

/** The scope of Entra ID tokens for Azure Managed Redis (and Azure Cache for Redis). */
export const REDIS_ENTRA_SCOPE = 'https://redis.azure.com/.default';

/** How long before a token expires it is renewed (and every connection re-authenticated). */
const REFRESH_BEFORE_MS = 5 * 60_000;
/** After a failed renewal, the next try. */
const RETRY_MS = 30_000;

export interface RedisEntraOptions {
  /** The identity's object (principal) id: the Redis user name Entra ID authentication expects. */
  username: string;
  /** A fresh token for REDIS_ENTRA_SCOPE (the app's managed identity). */
  token: () => Promise<AccessToken>;
  refreshBeforeMs?: number;
  log?: (line: string) => void;
  now?: () => number;
}

/**
 * Entra ID authentication for Redis: a client connects with the identity's object id as user name
 * and an access token as password; before the token expires a new one is fetched, every client
 * re-authenticates its open connection with it (`AUTH`), and it becomes the password any
 * reconnection uses. Without the renewal Redis closes connections whose token expired, and a
 * reconnection with the old token is refused.
 */
export class RedisEntraAuth {
  readonly #clients = new Set<Redis>();
  #current: AccessToken | undefined;
  #timer: NodeJS.Timeout | undefined;
  #fetching: Promise<AccessToken> | undefined;
  #closed = false;

  constructor(private readonly options: RedisEntraOptions) {}

  /** Gives a client (created with `lazyConnect: true`) its credentials, then connects it. */
  async connect(client: Redis): Promise<void> {
    const token = await this.#token();
    this.#clients.add(client);
    client.options.username = this.options.username;
    client.options.password = token.token;
    client.once('end', () => this.#clients.delete(client));
    await client.connect();
  }

  /** Stops renewing (the app is shutting down). */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#clients.clear();
  }

  /** Renews the token now and re-authenticates every client (the timer's job; exposed for tests). */
  async renew(): Promise<void> {
    const token = await this.#fetch();
    await Promise.all(
      [...this.#clients].map(async (client) => {
        client.options.password = token.token;
        if (client.status === 'ready') await client.call('AUTH', this.options.username, token.token);
      }),
    );
  }

  async #token(): Promise<AccessToken> {
    return this.#current ?? this.#fetch();
  }

  #fetch(): Promise<AccessToken> {
    this.#fetching ??= this.options
      .token()
      .then((token) => {
        this.#current = token;
        this.#schedule(token.expiresOnTimestamp - (this.options.refreshBeforeMs ?? REFRESH_BEFORE_MS));
        return token;
      })
      .finally(() => {
        this.#fetching = undefined;
      });
    return this.#fetching;
  }

  #schedule(at: number): void {
    if (this.#closed) return;
    if (this.#timer) clearTimeout(this.#timer);
    const now = this.options.now?.() ?? Date.now();
    this.#timer = setTimeout(
      () => {
        this.renew().catch((error: unknown) => {
          this.options.log?.(
            `Redis Entra ID token renewal failed (${ensureError(error).message}); trying again in ${RETRY_MS / 1000} s.`,
          );
          this.#schedule((this.options.now?.() ?? Date.now()) + RETRY_MS);
        });
      },
      Math.max(1000, at - now),
    );
    this.#timer.unref();
  }
}
