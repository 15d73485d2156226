import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { RestAnswer } from './speech-session';

/**
 * Access tokens of the Speech simulator, all signed with a secret of its own so that it can check
 * them when asked to (`verifyTokens`):
 * - the token endpoint's (`POST /sts/v1.0/issueToken`): a short-lived token in the shape the
 *   service issues (a JWT), for the key;
 * - Entra ID's, standing in for the managed identity's token for the Cognitive Services scope
 *   (`issueEntraToken`). The service takes one bare on a custom-domain endpoint, and as
 *   `aad#<resource id>#<token>` on a regional one.
 */
export class SpeechTokens {
  readonly #secret = randomBytes(32);

  constructor(
    private readonly region: string,
    private readonly resourceId: string,
  ) {}

  /** The token endpoint's answer: a token valid for 10 minutes. */
  tokenAnswer(): RestAnswer {
    return (res, _session, headers) => {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', ...headers });
      res.end(
        this.#sign({
          region: this.region,
          'subscription-id': randomUUID(),
          iss: 'urn:ms.cognitiveservices',
          aud: `urn:ms.speechservices.${this.region}`,
          exp: seconds() + 600,
        }),
      );
    };
  }

  /** An Entra ID access token for the Cognitive Services scope, valid for `lifetimeSeconds`. */
  entraToken(lifetimeSeconds = 3600): string {
    return this.#sign({
      aud: 'https://cognitiveservices.azure.com',
      iss: 'https://sts.windows.net/00000000-0000-0000-0000-000000000000/',
      oid: randomUUID(),
      exp: seconds() + lifetimeSeconds,
    });
  }

  /**
   * Whether an `Authorization` header value carries a token of this simulator's that has not
   * expired: `Bearer <token>`, or `Bearer aad#<resource id>#<token>` naming this resource.
   */
  accepts(authorization: string | undefined): boolean {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!match?.[1]) return false;
    let token = match[1];
    if (token.startsWith('aad#')) {
      const parts = token.split('#');
      if (parts.length !== 3 || parts[1]?.toLowerCase() !== this.resourceId.toLowerCase()) return false;
      token = parts[2] ?? '';
    }
    return this.#verify(token);
  }

  #sign(claims: Record<string, unknown>): string {
    const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
    const unsigned = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode(claims)}`;
    return `${unsigned}.${this.#signature(unsigned).toString('base64url')}`;
  }

  #signature(unsigned: string): Buffer {
    return createHmac('sha256', this.#secret).update(unsigned).digest();
  }

  #verify(token: string): boolean {
    const [header, claims, signature, ...rest] = token.split('.');
    if (!header || !claims || signature === undefined || rest.length > 0) return false;
    const expected = this.#signature(`${header}.${claims}`);
    const given = Buffer.from(signature, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false;
    try {
      const { exp } = JSON.parse(Buffer.from(claims, 'base64url').toString('utf8')) as { exp?: unknown };
      return typeof exp === 'number' && exp > seconds();
    } catch {
      return false;
    }
  }
}

function seconds(): number {
  return Math.floor(Date.now() / 1000);
}
