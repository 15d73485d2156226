import { generateKeyPairSync, randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { ValidatedToken } from './policies';

/**
 * The local stand-in for Entra ID: it signs access tokens (RS256, v2.0 issuer of the tenant) for
 * the users in the gateway's configuration, and `validate-azure-ad-token` checks them as APIM
 * checks Entra's: signature, issuer of the tenant, audience, lifetime. A key pair per gateway
 * start: tokens from an earlier start are refused.
 */
export class LocalEntra {
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;

  constructor(
    private readonly tenantId: string,
    /** The client application the tokens are issued to (their `azp` claim). */
    private readonly clientAppId: string,
  ) {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = pair.privateKey;
    this.publicKey = pair.publicKey;
  }

  static issuer(tenantId: string): string {
    return `https://login.microsoftonline.com/${tenantId}/v2.0`;
  }

  /** An access token for a user, with app roles, for an audience; valid for `lifetimeSeconds`. */
  issue(
    user: { oid: string; name: string; roles: readonly string[] },
    audience: string,
    lifetimeSeconds = 3600,
    clientAppId = this.clientAppId,
  ): string {
    return jwt.sign(
      {
        oid: user.oid,
        name: user.name,
        roles: [...user.roles],
        tid: this.tenantId,
        azp: clientAppId,
        uti: randomUUID(),
      },
      this.privateKey,
      {
        algorithm: 'RS256',
        issuer: LocalEntra.issuer(this.tenantId),
        audience,
        subject: user.oid,
        expiresIn: lifetimeSeconds,
        keyid: 'local',
      },
    );
  }

  validate(token: string, tenantId: string, audiences: readonly string[]): Promise<ValidatedToken> {
    const [first, ...rest] = audiences;
    const payload = jwt.verify(token, this.publicKey, {
      algorithms: ['RS256'],
      issuer: LocalEntra.issuer(tenantId),
      ...(first === undefined ? {} : { audience: [first, ...rest] as [string, ...string[]] }),
    });
    if (typeof payload === 'string') throw new Error('the token has no claims');
    const claims: Record<string, string[]> = {};
    for (const [name, value] of Object.entries(payload)) {
      claims[name] = (Array.isArray(value) ? value : [value]).map((v: unknown) => String(v));
    }
    return Promise.resolve({ claims });
  }
}
