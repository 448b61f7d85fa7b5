// Google-signed OIDC ID tokens (Pub/Sub push, Cloud Scheduler, service-to-service
// calls): signature against Google's certs, issuer, audience, and a verified email
// on the allow-list.
import { OAuth2Client } from 'google-auth-library';
import type { Request } from '@google-cloud/functions-framework';
import type { CallerAuth, OidcSettings } from '../../config/schema.ts';
import { DeployError } from '../../errors.ts';
import { bearerToken } from '../http.ts';

export class OidcVerifier {
  // One client per process: it caches the certs for as long as Google says.
  private readonly client: OAuth2Client;

  constructor(certsUrl?: string) {
    this.client = new OAuth2Client(certsUrl ? { endpoints: { oauth2FederatedSignonPemCertsUrl: certsUrl } } : {});
  }

  /** Returns the caller's email; throws UNAUTHENTICATED (never saying which check, to the caller, beyond a reason). */
  async verify(token: string | undefined, settings: OidcSettings): Promise<string> {
    if (!token) throw new DeployError('UNAUTHENTICATED', 'missing bearer token (Authorization: Bearer <Google-signed ID token>)');
    let payload;
    try {
      const ticket = await this.client.verifyIdToken({ idToken: token, audience: settings.audience });
      payload = ticket.getPayload();
    } catch (err) {
      throw new DeployError('UNAUTHENTICATED', `invalid ID token: ${(err as Error).message.split('\n')[0]?.slice(0, 200) ?? ''}`);
    }
    if (!payload?.email || payload.email_verified !== true) {
      throw new DeployError('UNAUTHENTICATED', 'ID token has no verified email');
    }
    if (!settings.serviceAccounts.includes(payload.email)) {
      throw new DeployError('UNAUTHENTICATED', `caller ${payload.email} is not an allowed service account`);
    }
    return payload.email;
  }
}

/** A source's `authenticate` for a route protected by OIDC (or explicitly by nothing). */
export function oidcCaller(auth: CallerAuth, verifier: OidcVerifier): (req: Request) => Promise<string> {
  return (req) => (auth === 'none' ? Promise.resolve('unauthenticated') : verifier.verify(bearerToken(req), auth));
}
