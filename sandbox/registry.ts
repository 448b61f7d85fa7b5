// The sandbox's OCI registry: the CNCF Distribution registry (built by build-registry.sh)
// on plain HTTP on loopback, behind a TLS front that speaks Artifact Registry's auth.
// AR takes a Google access token three ways, and so does the front:
//   - the Docker v2 token flow: GET /v2/ → 401 `WWW-Authenticate: Bearer realm=…/v2/token`,
//     then GET (or POST, OAuth2 password grant) /v2/token with Basic
//     `oauth2accesstoken:<access token>` → {token, access_token, expires_in};
//   - `Authorization: Basic oauth2accesstoken:<access token>` on any /v2/ request;
//   - `Authorization: Bearer <access token>` on any /v2/ request (AR's curl examples).
// Only access tokens the sandbox's metadata/identity fake minted (and not expired) count:
// a made-up or foreign token gets 401. Every user may read and write every repository
// (no IAM here). The Authorization header is never forwarded, and no token is logged.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { KeyPair } from './front-certs.ts';
import { forward } from './forward.ts';
import { freePort, startProcess, waitFor, type Proc } from './process.ts';

export interface RegistryOptions {
  /** Folder for the config, the blobs and the log. */
  dir: string;
  /** Folder holding the `registry` binary. */
  binDir: string;
  /** Serving certificate of the TLS front (for 127.0.0.1). */
  cert: KeyPair;
  /** Owner of an unexpired access token minted by the identity fake, else undefined. */
  accessTokenOwner: (token: string) => string | undefined;
  /** Lifetime of the front's own bearer tokens. Default 3600 s (AR's). */
  tokenLifetimeSeconds?: number;
}

// A type, not an interface: /stats takes it as a Record<string, number>.
export type RegistryCounts = {
  /** Requests the front passed to the registry. */
  proxied: number;
  /** Bearer tokens the token endpoint issued. */
  tokens: number;
  /** Requests answered 401. */
  unauthorized: number;
  /** Proxied GET /v2/…/manifests/… (a manifest fetched: what a warm deploy must not do). */
  manifestGets: number;
  /** Proxied HEAD /v2/…/manifests/… (tag → digest resolution: expected on every new deploy). */
  manifestHeads: number;
  /** Proxied GET /v2/…/blobs/… (a config or layer fetched). */
  blobGets: number;
};

export interface Registry {
  /** 127.0.0.1:PORT of the TLS front: images are HOST/REPO/NAME:TAG. */
  readonly host: string;
  readonly proc: Proc;
  counts(): RegistryCounts;
  close(): Promise<void>;
}

const USER = 'oauth2accesstoken';
const MAX_FORM = 16 * 1024;

export async function startRegistry(opts: RegistryOptions): Promise<Registry> {
  await mkdir(path.join(opts.dir, 'data'), { recursive: true });
  const port = await freePort();
  const config = path.join(opts.dir, 'config.yml');
  // relativeurls: upload Locations must not name the plain-HTTP address behind the front.
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: info',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${JSON.stringify(path.join(opts.dir, 'data'))}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '  relativeurls: true',
      '',
    ].join('\n'),
  );
  const proc = startProcess({
    name: 'registry',
    command: path.join(opts.binDir, 'registry'),
    args: ['serve', config],
    logFile: path.join(opts.dir, 'registry.log'),
    // No telemetry exporters: nothing listens for them here.
    env: { ...process.env, OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none' },
  });
  const agent = new http.Agent({ keepAlive: true });
  let front: https.Server | undefined;
  try {
    await waitFor(
      'the registry',
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}/v2/`);
        await res.body?.cancel();
        return res.status === 200;
      },
      { timeoutMs: 30_000, proc },
    );

    const lifetime = opts.tokenLifetimeSeconds ?? 3600;
    const issued = new Map<string, number>(); // front token → expiry (ms)
    const counts: RegistryCounts = { proxied: 0, tokens: 0, unauthorized: 0, manifestGets: 0, manifestHeads: 0, blobGets: 0 };
    let host = '';

    const googleToken = (token: string) => token.length > 0 && opts.accessTokenOwner(token) !== undefined;
    const basicToken = (value: string): boolean => {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      return colon > 0 && decoded.slice(0, colon) === USER && googleToken(decoded.slice(colon + 1));
    };
    const authorized = (header: string | undefined): boolean => {
      const m = /^(\w+) +(\S+)$/.exec(header ?? '');
      if (!m) return false;
      const [, scheme = '', value = ''] = m;
      if (scheme.toLowerCase() === 'basic') return basicToken(value);
      if (scheme.toLowerCase() !== 'bearer') return false;
      const expiry = issued.get(value);
      if (expiry !== undefined) return expiry > Date.now();
      return googleToken(value);
    };

    const errors = (res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}) => {
      if (status === 401) counts.unauthorized++;
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ errors: [{ code, message }] }));
    };

    const challenge = (url: URL, method: string): string => {
      let value = `Bearer realm="https://${host}/v2/token",service="${host}"`;
      const repo = /^\/v2\/(.+)\/(manifests|blobs|tags|referrers)\//.exec(url.pathname)?.[1];
      if (repo && /^[a-z0-9._/-]+$/.test(repo)) value += `,scope="repository:${repo}:${method === 'GET' || method === 'HEAD' ? 'pull' : 'pull,push'}"`;
      return value;
    };

    const issue = (res: ServerResponse) => {
      const now = Date.now();
      if (issued.size > 10_000) for (const [t, exp] of issued) if (exp <= now) issued.delete(t);
      const token = `sandbox-registry.${randomBytes(24).toString('base64url')}`;
      issued.set(token, now + lifetime * 1000);
      counts.tokens++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: lifetime, issued_at: new Date(now).toISOString() }));
    };

    const tokenEndpoint = async (req: IncomingMessage, res: ServerResponse) => {
      if (req.method === 'GET') {
        req.resume();
        const m = /^basic +(\S+)$/i.exec(req.headers.authorization ?? '');
        if (m && basicToken(m[1] ?? '')) return issue(res);
        return errors(res, 401, 'UNAUTHORIZED', `authentication required: Basic ${USER}:<Google access token>`);
      }
      if (req.method === 'POST') {
        // OAuth2 password grant (what some clients send instead of GET with Basic).
        let body = '';
        for await (const chunk of req) {
          body += (chunk as Buffer).toString('utf8');
          if (body.length > MAX_FORM) return errors(res, 400, 'DENIED', 'form too large');
        }
        const form = new URLSearchParams(body);
        if (form.get('grant_type') === 'password' && form.get('username') === USER && googleToken(form.get('password') ?? '')) return issue(res);
        return errors(res, 401, 'UNAUTHORIZED', `authentication required: grant_type=password, username=${USER}, password=<Google access token>`);
      }
      req.resume();
      return errors(res, 405, 'UNSUPPORTED', 'GET or POST only');
    };

    const toRegistry = (req: IncomingMessage, res: ServerResponse, url: URL) => {
      counts.proxied++;
      // By kind, so a test can tell a fetch (GET) from a tag resolution (HEAD).
      const kind = /^\/v2\/.+\/(manifests|blobs)\/[^/]+$/.exec(url.pathname)?.[1];
      if (kind === 'manifests' && req.method === 'GET') counts.manifestGets++;
      else if (kind === 'manifests' && req.method === 'HEAD') counts.manifestHeads++;
      else if (kind === 'blobs' && req.method === 'GET') counts.blobGets++;
      const headers = { ...req.headers };
      delete headers.authorization;
      forward(req, res, (onAnswer) => http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers, agent }, onAnswer), 'sandbox registry front');
    };

    const server = https.createServer({ ...opts.cert }, (req, res) => {
      const method = req.method ?? 'GET';
      const url = new URL(req.url ?? '/', `https://${host}`);
      if (url.pathname === '/v2/token') {
        tokenEndpoint(req, res).catch((err: unknown) => errors(res, 500, 'UNKNOWN', err instanceof Error ? err.message : String(err)));
        return;
      }
      if (url.pathname !== '/v2' && !url.pathname.startsWith('/v2/')) {
        req.resume();
        return errors(res, 404, 'NOT_FOUND', 'sandbox registry: only /v2/ is served');
      }
      if (!authorized(req.headers.authorization)) {
        req.resume();
        return errors(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': challenge(url, method), 'docker-distribution-api-version': 'registry/2.0' });
      }
      toRegistry(req, res, url);
    });
    front = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('registry front has no port');
    host = `127.0.0.1:${addr.port}`;
    return {
      host,
      proc,
      counts: () => ({ ...counts }),
      async close() {
        agent.destroy();
        await new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        });
        await proc.stop();
      },
    };
  } catch (err) {
    front?.close();
    agent.destroy();
    await proc.stop();
    throw err;
  }
}
