// Shared-secret webhook checks. GitHub signs the raw body (HMAC-SHA256, X-Hub-Signature-256);
// GitLab sends the configured token itself (X-Gitlab-Token). Both are compared in constant
// time, and no message ever repeats the header, the secret or the expected value.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { DeployError } from '../../errors.ts';

const HUB_SIGNATURE = /^sha256=([0-9a-f]{64})$/i;

/** The secret from the environment. A trailing line break (a secret file written with echo) is not part of it. */
export function secretFromEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name]?.replace(/[\r\n]+$/, '');
  // load.ts refuses to start without it; this guards callers that skip the loader.
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

export function verifyHubSignature(secret: string, body: Buffer, header: string | string[] | undefined): void {
  if (typeof header !== 'string' || header === '') {
    throw new DeployError('UNAUTHENTICATED', 'missing X-Hub-Signature-256 header: give the GitHub webhook a secret');
  }
  const hex = HUB_SIGNATURE.exec(header.trim())?.[1];
  if (hex === undefined) throw new DeployError('UNAUTHENTICATED', 'malformed X-Hub-Signature-256 header: want sha256=<64 hex digits>');
  const expected = createHmac('sha256', secret).update(body).digest();
  // Both are 32 bytes here, so timingSafeEqual cannot throw on a length mismatch.
  if (!timingSafeEqual(expected, Buffer.from(hex, 'hex'))) {
    throw new DeployError('UNAUTHENTICATED', 'X-Hub-Signature-256 does not match the body: wrong secret, or the body was altered');
  }
}

export function verifyToken(expected: string, header: string | string[] | undefined, headerName: string): void {
  if (typeof header !== 'string' || header === '') throw new DeployError('UNAUTHENTICATED', `missing ${headerName} header: give the webhook a secret token`);
  // Digests have one length whatever the input, so neither the comparison's time nor an
  // early length check tells the caller anything about the token.
  if (!timingSafeEqual(digest(header), digest(expected))) throw new DeployError('UNAUTHENTICATED', `wrong ${headerName}`);
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
