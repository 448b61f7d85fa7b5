// Google-signed OIDC ID tokens (Pub/Sub push, Cloud Scheduler, service-to-service
// calls): signature against Google's certs, issuer, audience, and a verified email
// on the allow-list.
import { OAuth2Client } from 'google-auth-library';
import { importX509, jwtVerify } from 'jose';
import type { Request } from '@google-cloud/functions-framework';
import type { CallerAuth, OidcSettings } from '../../config/schema.ts';
import { DeployError } from '../../errors.ts';
import { isRecord } from '../../guards.ts';
import { bearerToken } from '../http.ts';

/** As google-auth-library allows. */
const CLOCK_SKEW_S = 300;
const GOOGLE_ISSUERS = ['accounts.google.com', 'https://accounts.google.com'];
/** The Google Cloud CLI's OAuth client: the audience of `gcloud auth print-identity-token` for a user account. */
export const GCLOUD_CLIENT_ID = '32555940559.apps.googleusercontent.com';

type Reason = 'malformed' | 'unknown signing key' | 'expired' | 'not yet valid' | 'wrong issuer' | 'wrong audience' | 'bad signature';

interface Decoded {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

export class OidcVerifier {
  // One client per process: it caches the certs for as long as Google says.
  private readonly client: OAuth2Client;

  constructor(certsUrl?: string) {
    this.client = new OAuth2Client(certsUrl ? { endpoints: { oauth2FederatedSignonPemCertsUrl: certsUrl } } : {});
  }

  /**
   * Returns the caller's email; throws UNAUTHENTICATED with a fixed reason. The library's
   * messages quote the token (or its claims), and a caller may present any secret as a
   * bearer token, so none of its text reaches the answer or the log.
   */
  async verify(token: string | undefined, settings: OidcSettings): Promise<string> {
    const email = await this.verifiedEmail(token, [settings.audience]);
    if (!settings.serviceAccounts.includes(email)) {
      throw new DeployError('UNAUTHENTICATED', `caller ${email} is not an allowed service account`);
    }
    return email;
  }

  /**
   * A person or a service account (POST /approve): the verified email, for the caller to check
   * against its own list. A person's `gcloud auth print-identity-token` carries gcloud's own
   * OAuth client as its audience, which any gcloud user's token has too, so it is accepted for
   * user accounts only, and only alongside that list: a service account must use `audience`.
   */
  async verifyPerson(token: string | undefined, audience: string): Promise<string> {
    return this.verifiedEmail(token, [audience, GCLOUD_CLIENT_ID]);
  }

  private async verifiedEmail(token: string | undefined, audiences: string[]): Promise<string> {
    if (!token) throw new DeployError('UNAUTHENTICATED', 'missing bearer token (Authorization: Bearer <Google-signed ID token>)');
    const decoded = decode(token);
    if (!decoded) throw invalid('malformed');
    let kids: string[];
    try {
      kids = Object.keys((await this.client.getFederatedSignonCertsAsync()).certs);
    } catch {
      throw new DeployError('UNAUTHENTICATED', 'cannot verify ID tokens now: Google\'s signing certificates could not be fetched');
    }
    let payload;
    try {
      payload = (await this.client.verifyIdToken({ idToken: token, audience: audiences })).getPayload();
    } catch {
      throw invalid(reasonFor(decoded, kids, audiences));
    }
    if (!payload?.email || payload.email_verified !== true) {
      throw new DeployError('UNAUTHENTICATED', 'ID token has no verified email');
    }
    if (payload.aud === GCLOUD_CLIENT_ID && payload.email.endsWith('.gserviceaccount.com')) {
      throw new DeployError('UNAUTHENTICATED', 'invalid ID token: wrong audience (a service account must use the configured audience)');
    }
    return payload.email;
  }

  /**
   * Verifies a token as it stood at `at` rather than now: a queued intent's proof, judged at the
   * message's publishTime (Pub/Sub's clock, not the sender's), since a redelivery may come hours
   * after the token expired. The signing key must still be one Google publishes. Throws
   * UNAUTHENTICATED with a fixed reason, as verify does.
   */
  async verifyAt(token: string, expected: { audience: string; email: string }, at: Date): Promise<void> {
    const decoded = decode(token);
    if (!decoded) throw invalid('malformed');
    let certs: Record<string, string>;
    try {
      certs = (await this.client.getFederatedSignonCertsAsync()).certs as Record<string, string>;
    } catch {
      // Not the message's fault: delivered again, it is checked again.
      throw new DeployError('QUEUE_UNAVAILABLE', 'cannot verify the queued intent now: Google\'s signing certificates could not be fetched');
    }
    const kid = decoded.header.kid;
    const pem = typeof kid === 'string' ? certs[kid] : undefined;
    if (pem === undefined || decoded.header.alg !== 'RS256') throw invalid('unknown signing key');
    let claims;
    try {
      ({ payload: claims } = await jwtVerify(token, await importX509(pem, 'RS256'), {
        algorithms: ['RS256'], issuer: GOOGLE_ISSUERS, audience: expected.audience, currentDate: at, clockTolerance: CLOCK_SKEW_S,
        // Issued before the message was published (Google's tokens live an hour): not after it.
        maxTokenAge: 3600,
      }));
    } catch {
      throw invalid(reasonFor(decoded, Object.keys(certs), expected.audience, at.getTime() / 1000));
    }
    if (claims.email !== expected.email || claims.email_verified !== true) {
      throw new DeployError('UNAUTHENTICATED', `ID token is not the deployer's own (${expected.email})`);
    }
  }
}

function invalid(reason: Reason): DeployError {
  return new DeployError('UNAUTHENTICATED', `invalid ID token: ${reason}`);
}

/** Header and claims of a JWT, unverified; undefined when it is not one. */
function decode(token: string): Decoded | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const [header, payload] = parts.slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as unknown);
    return isRecord(header) && isRecord(payload) ? { header, payload } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Why the library refused the token, told from the token itself. Claims come first: a
 * token that is both forged and expired is reported expired, which tells a forger nothing.
 */
function reasonFor({ header, payload }: Decoded, kids: string[], audiences: string | string[], now = Date.now() / 1000): Reason {
  if (typeof header.kid !== 'string' || !kids.includes(header.kid)) return 'unknown signing key';
  if (typeof payload.exp !== 'number' || typeof payload.iat !== 'number') return 'malformed';
  if (now > payload.exp + CLOCK_SKEW_S) return 'expired';
  if (now < payload.iat - CLOCK_SKEW_S) return 'not yet valid';
  if (typeof payload.iss !== 'string' || !GOOGLE_ISSUERS.includes(payload.iss)) return 'wrong issuer';
  const aud = payload.aud;
  const wanted = ([] as string[]).concat(audiences);
  if (!wanted.some((a) => aud === a || (Array.isArray(aud) && aud.includes(a)))) return 'wrong audience';
  return 'bad signature';
}

/** A source's `authenticate` for a route protected by OIDC (or explicitly by nothing). */
export function oidcCaller(auth: CallerAuth, verifier: OidcVerifier): (req: Request) => Promise<string> {
  return (req) => (auth === 'none' ? Promise.resolve('unauthenticated') : verifier.verify(bearerToken(req), auth));
}
