import { randomUUID } from 'node:crypto';
import type { RestAnswer } from './speech-session';

/**
 * The token endpoint (`POST /sts/v1.0/issueToken`): a short-lived access token in the shape the
 * service issues (a JWT). The simulator accepts any bearer token, so this one is never checked.
 */
export function tokenAnswer(region: string): RestAnswer {
  return (res, _session, headers) => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', ...headers });
    res.end(issueToken(region));
  };
}

function issueToken(region: string): string {
  const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return [
    encode({ alg: 'HS256', typ: 'JWT' }),
    encode({
      region,
      'subscription-id': randomUUID(),
      iss: 'urn:ms.cognitiveservices',
      aud: `urn:ms.speechservices.${region}`,
      exp: now + 600,
    }),
    Buffer.from(randomUUID()).toString('base64url'),
  ].join('.');
}
