// Fake Google identity on one loopback HTTP server: the GCE/Cloud Run metadata server
// (as gcp-metadata/google-auth-library call it), Google's OIDC signing certs, the
// kube-apiserver token webhook that maps Google access tokens to SA emails (as GKE
// does), plus test-only endpoints to mint tokens and turn runtime knobs.
// POST /metadata-server {serviceAccount} starts (once per identity) another loopback
// metadata server whose default service account is that identity: what an instance of a
// service running as it sees, so a test can run the function as a fresh identity.
// Tokens are never logged; with `tokenLog`, each one minted is appended to that file, for the
// test suite's leak check (test/support/leaks.ts) to look for in the function's outputs.
import { appendFileSync } from 'node:fs';
import http from 'node:http';
import { once } from 'node:events';
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { selfSignedCertPem } from './x509.ts';

export interface GoogleStats {
  containerApi: { getCluster: number; unauthenticated: number };
  /** `lastExpiresAt`: when the last metadata-server token expires (ms since the epoch; 0 before the first). */
  metadata: { token: number; lastExpiresAt: number };
  /** TokenReviews answered unauthenticated because of rejectNextTokenReviews. */
  tokenReview: { rejected: number };
  /** Requests per API front (sandbox/fronts.ts), once attached. */
  fronts?: Record<string, number>;
  /** The OCI registry front (sandbox/registry.ts), once attached: requests proxied, bearer tokens issued, 401s. */
  registry?: Record<string, number>;
}

/** How /control and /stats reach the Container API fake (wired by startGoogleFakes). */
export interface ContainerApiLink {
  getClusterCount(): number;
  /** Calls refused for a missing or unknown access token. */
  unauthenticatedCount(): number;
  /** Throws on an unknown gRPC status name. */
  setFailure(code: string | null): void;
  getFailure(): string | null;
}

export interface IdentityServerOptions {
  project: string;
  /** Email of the default service account the metadata server hands out tokens for. */
  serviceAccount: string;
  /** Lifetime of metadata-server access tokens; default 3600. */
  tokenLifetimeSeconds?: number;
  containerApi?: ContainerApiLink;
  /** A file each minted access and ID token is appended to, one a line (the sandbox's MINTED_TOKENS). */
  tokenLog?: string;
}

/** The sandbox folder's file of every token its identity server minted (test/support/leaks.ts reads it). */
export const MINTED_TOKENS = 'minted-tokens';

export interface IdTokenRequest {
  audience: string;
  email: string;
  /** Default true. */
  emailVerified?: boolean;
  /** Default 3600; negative makes an already-expired token. */
  expiresInSeconds?: number;
  /** Default https://accounts.google.com */
  issuer?: string;
  /** Sign with a key that is not in the certs (the header still names the real kid). */
  signWithUnknownKey?: boolean;
}

export interface TokenReviewStatus {
  authenticated: boolean;
  user?: { username: string; uid: string; groups: string[] };
  audiences?: string[];
  error?: string;
}

export interface ControlState {
  tokenLifetimeSeconds: number;
  containerApiFailure: string | null;
  /** Which CA's certificate each API front serves ('public' | 'cluster'), once attached. */
  frontCa?: Record<string, string>;
  /** How many of each front's next requests are answered 401. */
  frontUnauthorized?: Record<string, number>;
  /** How many of the next TokenReviews of metadata-server tokens answer unauthenticated (a revoked token), then back to normal. */
  rejectNextTokenReviews: number;
}

/** How /control and /stats reach the API fronts, which start after the control plane. */
export interface FrontsLink {
  counts(): Record<string, number>;
  /** Throws on an unknown front or CA name. */
  setCa(change: Record<string, string>): Record<string, string>;
  /** Answer each front's next n requests 401. Throws on an unknown front or a bad count. */
  unauthorized(change: Record<string, number>): Record<string, number>;
}

export interface IdentityServer {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** 127.0.0.1:PORT, the value for GCE_METADATA_HOST. */
  readonly metadataHost: string;
  readonly project: string;
  readonly serviceAccount: string;
  mintAccessToken(email: string, lifetimeSeconds?: number): { token: string; expiresIn: number };
  mintIdToken(req: IdTokenRequest): string;
  /** A metadata server whose default service account is `email` (one per identity, reused). */
  metadataServerFor(email: string): Promise<{ metadataHost: string }>;
  reviewToken(token: string, audiences?: string[]): TokenReviewStatus;
  /** The identity of an unexpired access token this server minted, else undefined. No side effects (unlike reviewToken's revocation knob). */
  accessTokenOwner(token: string): string | undefined;
  /** Applies the same knobs as POST /control; throws on invalid values. */
  control(change: Partial<ControlState>): ControlState;
  stats(): GoogleStats;
  attachFronts(link: FrontsLink): void;
  attachRegistry(link: { counts(): Record<string, number> }): void;
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024;
const CERTS_MAX_AGE = 3600;
const MAX_LIFETIME = 10 * 365 * 86_400;
const EMAIL = /^[^@\s"\\]{1,64}@[A-Za-z0-9.-]{1,190}$/;
const TOKEN_REVIEW_VERSIONS = new Set(['authentication.k8s.io/v1', 'authentication.k8s.io/v1beta1']);

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** A stable 21-digit id per email, shaped like a Google service account's unique id. */
export function uniqueIdFor(email: string): string {
  const n = BigInt('0x' + createHash('sha256').update(email.toLowerCase()).digest('hex').slice(0, 16));
  return '1' + (n % 10n ** 20n).toString().padStart(20, '0');
}

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) {
      req.resume();
      reject(new HttpError(413, `body exceeds ${MAX_BODY} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (over) return; // keep draining so the 413 can be written back
      if (size > MAX_BODY) {
        over = true;
        reject(new HttpError(413, `body exceeds ${MAX_BODY} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function readJsonObject(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const body = await readBody(req);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new HttpError(400, 'body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

function onlyKeys(body: Record<string, unknown>, allowed: string[]): void {
  const extra = Object.keys(body).filter((k) => !allowed.includes(k));
  if (extra.length > 0) throw new HttpError(400, `unknown field(s): ${extra.join(', ')}`);
}

function str(body: Record<string, unknown>, key: string, opts: { required: true; max?: number }): string;
function str(body: Record<string, unknown>, key: string, opts: { required: false; max?: number }): string | undefined;
function str(body: Record<string, unknown>, key: string, opts: { required: boolean; max?: number }): string | undefined {
  const v = body[key];
  if (v === undefined && !opts.required) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > (opts.max ?? 2048)) {
    throw new HttpError(400, `${key} must be a non-empty string`);
  }
  return v;
}

function int(v: unknown, key: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new HttpError(400, `${key} must be an integer in [${min}, ${max}]`);
  }
  return v;
}

function email(v: unknown, key = 'email'): string {
  if (typeof v !== 'string' || !EMAIL.test(v)) throw new HttpError(400, `${key} must be an email address`);
  return v;
}

export async function startIdentityServer(opts: IdentityServerOptions): Promise<IdentityServer> {
  const project = opts.project;
  if (!/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(project)) throw new Error(`invalid project id ${JSON.stringify(project)}`);
  const defaultSa = email(opts.serviceAccount, 'serviceAccount');
  let tokenLifetime = int(opts.tokenLifetimeSeconds ?? 3600, 'tokenLifetimeSeconds', 1, MAX_LIFETIME);
  const containerApi = opts.containerApi;
  let fronts: FrontsLink | undefined;
  let registry: { counts(): Record<string, number> } | undefined;

  // Signing key for ID tokens, served as an X.509 cert (v1) and a JWK (v3). The
  // unknown key signs forged tokens for bad-signature tests.
  const signing = generateKeyPairSync('rsa', { modulusLength: 2048 });
  let unknownKey: KeyObject | undefined; // made on first use: RSA keygen costs ~50 ms
  const kid = createHash('sha1').update(signing.publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
  const certPem = selfSignedCertPem({
    publicKey: signing.publicKey,
    privateKey: signing.privateKey,
    commonName: 'federated-signon.system.gserviceaccount.com',
    validDays: 14,
  });
  const jwk = { ...signing.publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };

  const tokens = new Map<string, { email: string; expiresAt: number; metadata: boolean }>();
  let metadataTokenFetches = 0;
  let lastExpiresAt = 0;
  let rejectNext = 0;
  let rejected = 0;

  function mintAccessToken(who: string, lifetimeSeconds = tokenLifetime, metadata = false): { token: string; expiresIn: number } {
    email(who);
    int(lifetimeSeconds, 'lifetimeSeconds', -MAX_LIFETIME, MAX_LIFETIME);
    const now = Date.now();
    if (tokens.size > 10_000) {
      // Forget tokens that expired over an hour ago; they review as unknown then.
      for (const [t, info] of tokens) if (info.expiresAt < now - 3_600_000) tokens.delete(t);
    }
    const token = `ya29.sandbox.${randomBytes(24).toString('base64url')}`;
    tokens.set(token, { email: who, expiresAt: now + lifetimeSeconds * 1000, metadata });
    minted(token);
    return { token, expiresIn: lifetimeSeconds };
  }

  function signJwt(payload: Record<string, unknown>, key: KeyObject): string {
    const header = b64url(JSON.stringify({ alg: 'RS256', kid, typ: 'JWT' }));
    const body = b64url(JSON.stringify(payload));
    return minted(`${header}.${body}.${b64url(sign('sha256', Buffer.from(`${header}.${body}`), key))}`);
  }

  function minted(token: string): string {
    if (opts.tokenLog) appendFileSync(opts.tokenLog, `${token}\n`);
    return token;
  }

  function mintIdToken(req: IdTokenRequest, full = true): string {
    const who = email(req.email);
    if (typeof req.audience !== 'string' || req.audience.length === 0) throw new HttpError(400, 'audience must be a non-empty string');
    const now = Math.floor(Date.now() / 1000);
    const exp = now + int(req.expiresInSeconds ?? 3600, 'expiresInSeconds', -MAX_LIFETIME, MAX_LIFETIME);
    // An already-expired token was issued an hour before it expired.
    const iat = exp > now ? now : exp - 3600;
    const uid = uniqueIdFor(who);
    // Claim set of Pub/Sub push, Cloud Scheduler and metadata-server ID tokens.
    const payload: Record<string, unknown> = { aud: req.audience, azp: uid };
    if (full) {
      payload.email = who;
      payload.email_verified = req.emailVerified ?? true;
    }
    Object.assign(payload, { exp, iat, iss: req.issuer ?? 'https://accounts.google.com', sub: uid });
    const key = req.signWithUnknownKey
      ? (unknownKey ??= generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey)
      : signing.privateKey;
    return signJwt(payload, key);
  }

  function reviewToken(token: string, audiences?: string[]): TokenReviewStatus {
    const info = tokens.get(token);
    if (!info) return { authenticated: false, error: 'invalid token: not issued by this identity server' };
    if (info.expiresAt <= Date.now()) return { authenticated: false, error: 'invalid token: expired' };
    // Only metadata-server tokens (what the function uses): tokens tests mint by hand stay good.
    if (info.metadata && rejectNext > 0) {
      rejectNext--;
      rejected++;
      tokens.delete(token); // revoked for good, whatever the API server's cache does
      return { authenticated: false, error: 'invalid token: revoked' };
    }
    return {
      authenticated: true,
      user: { username: info.email, uid: uniqueIdFor(info.email), groups: ['system:authenticated'] },
      // The token is good for whatever the API server presents it for.
      ...(audiences && audiences.length > 0 ? { audiences } : {}),
    };
  }

  function control(change: Partial<ControlState>): ControlState {
    // Validate everything before changing anything: a rejected request changes nothing.
    const lifetime = change.tokenLifetimeSeconds === undefined
      ? tokenLifetime
      : int(change.tokenLifetimeSeconds, 'tokenLifetimeSeconds', 1, MAX_LIFETIME);
    if (change.containerApiFailure !== undefined) {
      const v = change.containerApiFailure;
      if (v !== null && typeof v !== 'string') throw new HttpError(400, 'containerApiFailure must be a string or null');
      if (!containerApi) throw new HttpError(400, 'no Container API fake is wired to this identity server');
      try {
        containerApi.setFailure(v);
      } catch (err) {
        throw new HttpError(400, err instanceof Error ? err.message : String(err));
      }
    }
    let frontCa: Record<string, string> | undefined;
    if (change.frontCa !== undefined) {
      const v: unknown = change.frontCa;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'frontCa must be an object');
      if (!fronts) throw new HttpError(400, 'no API fronts are attached to this identity server');
      try {
        frontCa = fronts.setCa(v as Record<string, string>);
      } catch (err) {
        throw new HttpError(400, err instanceof Error ? err.message : String(err));
      }
    }
    let frontUnauthorized: Record<string, number> | undefined;
    if (change.frontUnauthorized !== undefined) {
      const v: unknown = change.frontUnauthorized;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'frontUnauthorized must be an object');
      if (!fronts) throw new HttpError(400, 'no API fronts are attached to this identity server');
      try {
        frontUnauthorized = fronts.unauthorized(v as Record<string, number>);
      } catch (err) {
        throw new HttpError(400, err instanceof Error ? err.message : String(err));
      }
    }
    const reject = change.rejectNextTokenReviews === undefined ? rejectNext : int(change.rejectNextTokenReviews, 'rejectNextTokenReviews', 0, 100);
    tokenLifetime = lifetime;
    rejectNext = reject;
    return {
      tokenLifetimeSeconds: tokenLifetime,
      containerApiFailure: containerApi?.getFailure() ?? null,
      rejectNextTokenReviews: rejectNext,
      ...(frontCa && { frontCa }),
      ...(frontUnauthorized && { frontUnauthorized }),
    };
  }

  const stats = (): GoogleStats => ({
    containerApi: { getCluster: containerApi?.getClusterCount() ?? 0, unauthenticated: containerApi?.unauthenticatedCount() ?? 0 },
    metadata: { token: metadataTokenFetches, lastExpiresAt },
    tokenReview: { rejected },
    ...(fronts && { fronts: fronts.counts() }),
    ...(registry && { registry: registry.counts() }),
  });

  function metadata(sa: string, req: http.IncomingMessage, url: URL, res: http.ServerResponse): void {
    // The real server refuses requests without the header, and proxied ones (SSRF guard).
    if (req.headers['metadata-flavor'] !== 'Google') {
      throw new HttpError(403, 'Missing required header "Metadata-Flavor": "Google"');
    }
    if (req.headers['x-forwarded-for'] !== undefined) throw new HttpError(403, 'Request had X-Forwarded-For header');
    if (req.method !== 'GET') throw new HttpError(405, 'Method not allowed');
    const key = url.pathname.replace(/^\/computeMetadata\/v1\/?/, '').replace(/\/$/, '');
    const text = (body: string): void => {
      res.writeHead(200, { 'Content-Type': 'application/text' }).end(body);
    };
    switch (key) {
      case 'instance':
        return text('attributes/\nhostname\nid\nregion\nservice-accounts/\nzone\n');
      case 'project/project-id':
        return text(project);
      case 'project/numeric-project-id':
        return text(uniqueIdFor(`project:${project}`).slice(0, 12));
      case 'universe/universe-domain':
        return text('googleapis.com');
    }
    const account = /^instance\/service-accounts\/([^/]+)\/(email|token|identity)$/.exec(key);
    if (!account || (account[1] !== 'default' && account[1] !== sa)) throw new HttpError(404, 'Not Found');
    switch (account[2]) {
      case 'email':
        return text(sa);
      case 'token': {
        metadataTokenFetches++;
        const { token, expiresIn } = mintAccessToken(sa, tokenLifetime, true);
        lastExpiresAt = tokens.get(token)?.expiresAt ?? 0;
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ access_token: token, expires_in: expiresIn, token_type: 'Bearer' }));
        return;
      }
      default: {
        const audience = url.searchParams.get('audience');
        if (!audience) throw new HttpError(400, 'non-empty audience parameter required');
        return text(mintIdToken({ audience, email: sa }, url.searchParams.get('format') === 'full'));
      }
    }
  }

  async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname.startsWith('/computeMetadata/')) return metadata(defaultSa, req, url, res);
    const json = (status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void => {
      res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(body));
    };
    const cacheable = { 'Cache-Control': `public, max-age=${CERTS_MAX_AGE}, must-revalidate, no-transform` };
    switch (`${req.method} ${url.pathname}`) {
      case 'GET /oauth2/v1/certs':
        return json(200, { [kid]: certPem }, cacheable);
      case 'GET /oauth2/v3/certs':
        return json(200, { keys: [jwk] }, cacheable);
      case 'GET /stats':
        return json(200, stats());
      case 'POST /control': {
        const body = await readJsonObject(req);
        onlyKeys(body, ['tokenLifetimeSeconds', 'containerApiFailure', 'rejectNextTokenReviews', 'frontCa', 'frontUnauthorized']);
        return json(200, control(body));
      }
      case 'POST /metadata-server': {
        const body = await readJsonObject(req);
        onlyKeys(body, ['serviceAccount']);
        return json(200, await metadataServerFor(email(body.serviceAccount, 'serviceAccount')));
      }
      case 'POST /access-token': {
        const body = await readJsonObject(req);
        onlyKeys(body, ['email', 'lifetimeSeconds']);
        const lifetime = body.lifetimeSeconds === undefined ? undefined : int(body.lifetimeSeconds, 'lifetimeSeconds', -MAX_LIFETIME, MAX_LIFETIME);
        return json(200, mintAccessToken(email(body.email), lifetime));
      }
      case 'POST /id-token': {
        const body = await readJsonObject(req);
        onlyKeys(body, ['audience', 'email', 'emailVerified', 'expiresInSeconds', 'issuer', 'signWithUnknownKey']);
        for (const k of ['emailVerified', 'signWithUnknownKey']) {
          if (body[k] !== undefined && typeof body[k] !== 'boolean') throw new HttpError(400, `${k} must be a boolean`);
        }
        const token = mintIdToken({
          audience: str(body, 'audience', { required: true }),
          email: email(body.email),
          emailVerified: body.emailVerified as boolean | undefined,
          expiresInSeconds: body.expiresInSeconds === undefined ? undefined : int(body.expiresInSeconds, 'expiresInSeconds', -MAX_LIFETIME, MAX_LIFETIME),
          issuer: str(body, 'issuer', { required: false }),
          signWithUnknownKey: body.signWithUnknownKey as boolean | undefined,
        });
        return json(200, { token });
      }
      case 'POST /tokenreview': {
        // kube-apiserver --authentication-token-webhook-config-file; v1 or v1beta1
        // (the flag --authentication-token-webhook-version picks), answered in kind.
        const body = await readJsonObject(req);
        const apiVersion = body.apiVersion;
        if (typeof apiVersion !== 'string' || !TOKEN_REVIEW_VERSIONS.has(apiVersion) || body.kind !== 'TokenReview') {
          throw new HttpError(400, 'expected a TokenReview of authentication.k8s.io/v1 or v1beta1');
        }
        const spec = body.spec as { token?: unknown; audiences?: unknown } | undefined;
        if (typeof spec?.token !== 'string') throw new HttpError(400, 'spec.token must be a string');
        let audiences: string[] | undefined;
        if (spec.audiences !== undefined && spec.audiences !== null) {
          if (!Array.isArray(spec.audiences) || !spec.audiences.every((a) => typeof a === 'string')) {
            throw new HttpError(400, 'spec.audiences must be a list of strings');
          }
          audiences = spec.audiences;
        }
        return json(200, { apiVersion, kind: 'TokenReview', status: reviewToken(spec.token, audiences) });
      }
    }
    const known = ['/oauth2/v1/certs', '/oauth2/v3/certs', '/stats', '/control', '/metadata-server', '/access-token', '/id-token', '/tokenreview'];
    if (known.includes(url.pathname)) throw new HttpError(405, 'Method not allowed');
    throw new HttpError(404, 'Not Found');
  }

  /** A loopback server answering with `handler`; errors become JSON answers with their status. */
  async function listen(handler: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void> | void): Promise<{ server: http.Server; host: string }> {
    const server = http.createServer((req, res) => {
      // As the real metadata server does; harmless on the other endpoints.
      res.setHeader('Metadata-Flavor', 'Google');
      Promise.resolve()
        .then(() => handler(req, res))
        .catch((err: unknown) => {
          const status = err instanceof HttpError ? err.status : 500;
          const message = err instanceof Error ? err.message : String(err);
          if (res.headersSent) {
            res.destroy();
            return;
          }
          if (status === 413) res.setHeader('Connection', 'close');
          res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' }).end(JSON.stringify({ error: message }));
        });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('identity server has no port');
    return { server, host: `127.0.0.1:${addr.port}` };
  }

  // Metadata servers of other identities, one per email, started on first request.
  const instances = new Map<string, Promise<{ server: http.Server; host: string }>>();
  async function metadataServerFor(who: string): Promise<{ metadataHost: string }> {
    const sa = email(who, 'serviceAccount');
    let started = instances.get(sa);
    if (!started) {
      if (instances.size >= 100) throw new HttpError(429, 'at most 100 metadata servers per identity server');
      started = listen((req, res) => {
        const url = new URL(req.url ?? '/', 'http://127.0.0.1');
        if (!url.pathname.startsWith('/computeMetadata/')) throw new HttpError(404, 'Not Found');
        metadata(sa, req, url, res);
      });
      instances.set(sa, started);
    }
    return { metadataHost: (await started).host };
  }

  const { server, host: metadataHost } = await listen(route);

  return {
    url: `http://${metadataHost}`,
    metadataHost,
    project,
    serviceAccount: defaultSa,
    mintAccessToken,
    mintIdToken: (req) => mintIdToken(req),
    metadataServerFor,
    reviewToken,
    accessTokenOwner(token) {
      const info = tokens.get(token);
      return info && info.expiresAt > Date.now() ? info.email : undefined;
    },
    control,
    stats,
    attachFronts(link) {
      fronts = link;
    },
    attachRegistry(link) {
      registry = link;
    },
    async close() {
      const servers = [server, ...(await Promise.all(instances.values())).map((i) => i.server)];
      await Promise.all(
        servers.map((s) => {
          const closed = new Promise<void>((resolve) => s.close(() => resolve()));
          s.closeAllConnections();
          return closed;
        }),
      );
    },
  };
}
