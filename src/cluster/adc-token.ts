// Application Default Credentials access tokens (the metadata server on Cloud Run).
import { inSpan } from '../core/trace.ts';
import { GoogleAuth } from 'google-auth-library';
import { shared, type Credentials } from './connection.ts';

const SCOPES = ['https://www.googleapis.com/auth/cloud-platform'];
const MAX_MARGIN_MS = 5 * 60_000;

export class AdcToken implements Credentials {
  /** Shared with the Container API client: one token for the instance, fetched once. */
  readonly auth: GoogleAuth;
  private cached: { header: string; refreshAt: number } | undefined;
  /** Set by a 401: the library's own cached copy must be dropped too. */
  private rejected = false;
  private readonly refresh = shared(() => this.fetch());

  constructor(auth = new GoogleAuth({ scopes: SCOPES })) {
    this.auth = auth;
  }

  async authorization(): Promise<string> {
    if (this.cached && Date.now() < this.cached.refreshAt) return this.cached.header;
    return this.refresh();
  }

  invalidate(): void {
    this.cached = undefined;
    this.rejected = true;
  }

  private async fetch(): Promise<string> {
    const client = await this.auth.getClient();
    if (this.rejected) {
      // Mark the library's copy expired (keeping its refresh state), or it would hand
      // back the token the cluster just refused.
      client.credentials = { ...client.credentials, expiry_date: 1 };
      this.rejected = false;
    }
    const fetchedAt = Date.now();
    const { token } = await inSpan('token', {}, () => client.getAccessToken());
    if (!token) throw new Error('Application Default Credentials returned no access token');
    // The library's fixed 5-minute eager-refresh margin would refetch a short-lived
    // token on every call; a quarter of the lifetime (at most 5 minutes) fits any lifetime.
    const expiry = client.credentials.expiry_date ?? fetchedAt + 60_000;
    const margin = Math.min(MAX_MARGIN_MS, Math.max(0, expiry - fetchedAt) / 4);
    const header = `Bearer ${token}`;
    this.cached = { header, refreshAt: expiry - margin };
    return header;
  }
}
