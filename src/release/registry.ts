// An OCI Distribution client for the registries the deployer may send its Google access
// token to: Artifact Registry (`*-docker.pkg.dev`), Container Registry (`gcr.io`,
// `*.gcr.io`) and, for the sandbox, REGISTRY_HOST. Auth is Artifact Registry's Docker v2
// token flow: a 401 challenge names the token endpoint, which trades Basic
// `oauth2accesstoken:<ADC access token>` for a bearer scoped to one repository's pull.
// HTTPS only, verified by Node's trust store (NODE_EXTRA_CA_CERTS included); no token ever
// goes into an error message or a log line. Every body read is bounded and every digest
// checked against the bytes, so what a deploy pins is what it applies.
import { createHash } from 'node:crypto';
import { DeployError, type ErrorCode } from '../errors.ts';
import { isRecord } from '../guards.ts';

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

const ACCEPT = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifest, MEDIA_TYPES.dockerList].join(', ');

/** A manifest is small JSON; more than this is not one a deploy should read. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export const DEFAULT_TIMEOUT_MS = 15_000;
/** A token endpoint's answer is a few hundred bytes. */
const MAX_TOKEN_ANSWER_BYTES = 64 * 1024;
const MAX_REDIRECTS = 5;
/** The Docker token spec's lifetime when `expires_in` is absent. */
const DEFAULT_BEARER_SECONDS = 60;
const USER = 'oauth2accesstoken';
const READER_ROLE = "the deployer's service account needs roles/artifactregistry.reader on the repository";

const DIGEST = /^sha256:[a-f0-9]{64}$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const HOST = /^[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]{1,5})?$/;
const NAME = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);

/** `HOST/NAME`: the first path component is the registry host (as in `europe-docker.pkg.dev/p/r/app`). */
export function splitRepository(repository: string): { host: string; name: string } {
  const slash = repository.indexOf('/');
  const host = slash > 0 ? repository.slice(0, slash) : '';
  const name = slash > 0 ? repository.slice(slash + 1) : '';
  if (!HOST.test(host) || !NAME.test(name) || repository.length > 512) {
    throw new DeployError('BAD_REQUEST', `"${repository.slice(0, 200)}" is not a registry repository (HOST/NAME, lower-case name)`);
  }
  return { host, name };
}

/**
 * Whether the deployer may ask this repository's registry for digests and blobs: it sends
 * its ADC access token there, so only Google's registries and the one REGISTRY_HOST qualify.
 */
export function pinnable(repository: string, env: NodeJS.ProcessEnv = process.env): { ok: true } | { ok: false; reason: string } {
  const slash = repository.indexOf('/');
  const first = slash > 0 ? repository.slice(0, slash) : '';
  // distribution/reference: a first component without '.' or ':' (and not localhost) is a Docker Hub path.
  if (first === '' || (!first.includes('.') && !first.includes(':') && first !== 'localhost')) {
    return { ok: false, reason: `${repository} is on Docker Hub, where the deployer's Google access token does not reach` };
  }
  const host = first.toLowerCase();
  const extra = env.REGISTRY_HOST?.trim().toLowerCase();
  if (/^[a-z0-9-]+-docker\.pkg\.dev$/.test(host) || host === 'gcr.io' || /^[a-z0-9-]+\.gcr\.io$/.test(host) || (extra && host === extra)) {
    return { ok: true };
  }
  return {
    ok: false,
    reason: `${host} is not Artifact Registry (*-docker.pkg.dev), gcr.io${extra ? ` or REGISTRY_HOST (${extra})` : ''}: the deployer sends its Google access token only there`,
  };
}

export interface RegistryClientOptions {
  /** An ADC access token (no "Bearer " prefix). */
  token: () => Promise<string>;
  /** Per request, body included. Default 15 s. */
  timeoutMs?: number;
}

export interface Resolved {
  digest: string;
  mediaType: string;
  size: number;
}

export interface FetchedManifest {
  mediaType: string;
  json: Record<string, unknown>;
  size: number;
}

type NotFoundCode = Extract<ErrorCode, 'IMAGE_NOT_FOUND' | 'MANIFESTS_NOT_FOUND'>;

interface Bearer {
  header: string;
  refreshAt: number;
}

interface Target {
  repository: string;
  host: string;
  name: string;
}

const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const mediaTypeOf = (res: Response): string => (res.headers.get('content-type') ?? '').split(';')[0]!.trim();

/** Cancels a body nobody reads, so its connection goes back to the pool. */
async function discard(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // Already closed or aborted: nothing left to free.
  }
}

export class RegistryClient {
  private readonly token: () => Promise<string>;
  private readonly timeoutMs: number;
  /** Bearer per `host/name`, until shortly before it expires. */
  private readonly bearers = new Map<string, Bearer>();
  /** One token flow per `host/name` at a time: concurrent requests share it. */
  private readonly flows = new Map<string, Promise<string>>();

  constructor(opts: RegistryClientOptions) {
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** The digest `reference` (a tag or `sha256:…`) names now; `notFound` is the code when it names nothing. */
  async resolve(repository: string, reference: string, opts: { notFound: NotFoundCode }): Promise<Resolved> {
    const target = this.target(repository);
    if (!TAG.test(reference) && !DIGEST.test(reference)) {
      throw new DeployError('BAD_REQUEST', `"${reference.slice(0, 200)}" is not a tag or a sha256 digest`);
    }
    const what = `${repository}${DIGEST.test(reference) ? '@' : ':'}${reference}`;
    const path = `manifests/${reference}`;
    const head = await this.request(target, 'HEAD', path, ACCEPT, what);
    try {
      this.check(head, target, what, opts.notFound);
    } finally {
      await discard(head);
    }
    let digest = head.headers.get('docker-content-digest') ?? '';
    let mediaType = mediaTypeOf(head);
    let size = Number(head.headers.get('content-length') ?? NaN);
    if (!DIGEST.test(digest) || !Number.isSafeInteger(size)) {
      // Not every registry answers a HEAD with the digest: the bytes say it.
      const body = await this.get(target, path, ACCEPT, what, opts.notFound, MAX_MANIFEST_BYTES, 'MANIFESTS_INVALID');
      digest = sha256(body.bytes);
      mediaType = body.mediaType || mediaType;
      size = body.bytes.length;
    }
    if (DIGEST.test(reference) && digest !== reference) {
      throw new DeployError('REGISTRY_ERROR', `registry ${target.host}: ${what} was answered with digest ${digest}`);
    }
    return { digest, mediaType, size };
  }

  /** The manifest with this digest, its bytes checked against the digest. */
  async manifest(repository: string, digest: string, opts: { notFound?: NotFoundCode } = {}): Promise<FetchedManifest> {
    const target = this.target(repository);
    const what = this.digestRef(repository, digest);
    const body = await this.get(target, `manifests/${digest}`, ACCEPT, what, opts.notFound ?? 'MANIFESTS_NOT_FOUND', MAX_MANIFEST_BYTES, 'MANIFESTS_INVALID');
    this.verify(target, what, digest, body.bytes);
    let json: unknown;
    try {
      json = JSON.parse(body.bytes.toString('utf8'));
    } catch {
      throw new DeployError('MANIFESTS_INVALID', `${what}: the manifest is not JSON`);
    }
    if (!isRecord(json)) throw new DeployError('MANIFESTS_INVALID', `${what}: the manifest is not a JSON object`);
    const declared = typeof json.mediaType === 'string' ? json.mediaType : '';
    return { mediaType: declared || body.mediaType, json, size: body.bytes.length };
  }

  /**
   * The blob with this digest, at most `maxBytes`: a blob declared or streamed bigger is
   * refused (MANIFESTS_INVALID) without being read whole.
   */
  async blob(repository: string, digest: string, maxBytes: number): Promise<Buffer> {
    const target = this.target(repository);
    const what = this.digestRef(repository, digest);
    const body = await this.get(target, `blobs/${digest}`, '*/*', what, undefined, maxBytes, 'MANIFESTS_INVALID');
    this.verify(target, what, digest, body.bytes);
    return body.bytes;
  }

  private target(repository: string): Target {
    return { repository, ...splitRepository(repository) };
  }

  private digestRef(repository: string, digest: string): string {
    if (!DIGEST.test(digest)) throw new DeployError('BAD_REQUEST', `"${digest.slice(0, 100)}" is not a sha256 digest`);
    return `${repository}@${digest}`;
  }

  private verify(target: Target, what: string, digest: string, bytes: Buffer): void {
    const actual = sha256(bytes);
    if (actual !== digest) throw new DeployError('REGISTRY_ERROR', `registry ${target.host}: ${what}: the content's digest is ${actual}`);
  }

  /** A GET whose body is read whole, up to `max` bytes (`tooBig` is the code past that). */
  private async get(
    target: Target,
    path: string,
    accept: string,
    what: string,
    notFound: NotFoundCode | undefined,
    max: number,
    tooBig: ErrorCode,
  ): Promise<{ bytes: Buffer; mediaType: string }> {
    const res = await this.request(target, 'GET', path, accept, what);
    try {
      this.check(res, target, what, notFound);
    } catch (err) {
      await discard(res);
      throw err;
    }
    const mediaType = mediaTypeOf(res);
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > max) {
      await discard(res);
      throw new DeployError(tooBig, `${what} is ${declared} bytes, over the ${max}-byte bound`);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of res.body ?? []) {
        total += (chunk as Uint8Array).byteLength;
        if (total > max) {
          await discard(res);
          throw new DeployError(tooBig, `${what} is over the ${max}-byte bound (stopped reading at ${total} bytes)`);
        }
        chunks.push(Buffer.from(chunk as Uint8Array));
      }
    } catch (err) {
      if (err instanceof DeployError) throw err;
      throw this.unavailable(target, what, err);
    }
    return { bytes: Buffer.concat(chunks, total), mediaType };
  }

  /** Maps a final status: 2xx passes; anything else throws the code release.md gives it. */
  private check(res: Response, target: Target, what: string, notFound: NotFoundCode | undefined): void {
    const status = res.status;
    if (status >= 200 && status < 300) return;
    if (status === 404) {
      if (notFound) throw new DeployError(notFound, `${what} was not found in the registry`);
      throw new DeployError('REGISTRY_ERROR', `registry ${target.host}: ${what} is missing (HTTP 404)`);
    }
    if (status === 401 || status === 403) {
      throw new DeployError('REGISTRY_ERROR', `registry ${target.host} refused to let the deployer read ${target.repository} (HTTP ${status}): ${READER_ROLE}`);
    }
    if (status === 429 || status >= 500) {
      throw new DeployError('REGISTRY_UNAVAILABLE', `registry ${target.host} answered HTTP ${status} for ${what}`);
    }
    throw new DeployError('REGISTRY_ERROR', `registry ${target.host} answered HTTP ${status} for ${what}`);
  }

  /**
   * One registry request with auth: the cached bearer if any; on a 401, one token flow
   * (a stale cached bearer is dropped first) and one more try. Each try has its own
   * deadline, which also bounds reading its body.
   */
  private async request(target: Target, method: 'GET' | 'HEAD', path: string, accept: string, what: string): Promise<Response> {
    const url = `https://${target.host}/v2/${target.name}/${path}`;
    const key = `${target.host}/${target.name}`;
    const cached = this.bearers.get(key);
    const first = cached && Date.now() < cached.refreshAt ? cached.header : undefined;
    const res = await this.send(target, url, method, accept, first, AbortSignal.timeout(this.timeoutMs), what);
    if (res.status !== 401) return res;
    const challenge = res.headers.get('www-authenticate') ?? '';
    await discard(res);
    if (first !== undefined && this.bearers.get(key)?.header === first) this.bearers.delete(key);
    const authorization = await this.authorize(target, key, challenge);
    return this.send(target, url, method, accept, authorization, AbortSignal.timeout(this.timeoutMs), what);
  }

  /** The Authorization header a challenge asks for. */
  private async authorize(target: Target, key: string, challenge: string): Promise<string> {
    const scheme = /^\s*(\w+)/.exec(challenge)?.[1]?.toLowerCase();
    if (scheme === 'basic') return `Basic ${Buffer.from(`${USER}:${await this.accessToken(target)}`).toString('base64')}`;
    if (scheme !== 'bearer') {
      throw new DeployError('REGISTRY_ERROR', `registry ${target.host} answered 401 without a Bearer or Basic challenge: ${READER_ROLE}`);
    }
    const running = this.flows.get(key);
    if (running) return running;
    const flow = this.tokenFlow(target, key, challenge).finally(() => this.flows.delete(key));
    this.flows.set(key, flow);
    return flow;
  }

  private async tokenFlow(target: Target, key: string, challenge: string): Promise<string> {
    const params = new Map<string, string>();
    for (const m of challenge.matchAll(/(\w+)\s*=\s*"([^"]*)"/g)) params.set(m[1]!.toLowerCase(), m[2]!);
    let realm: URL;
    try {
      realm = new URL(params.get('realm') ?? '');
    } catch {
      throw new DeployError('REGISTRY_ERROR', `registry ${target.host}: its Bearer challenge names no token endpoint`);
    }
    // The access token goes to the token endpoint: only over TLS, and only to the registry's own host.
    if (realm.protocol !== 'https:' || realm.host.toLowerCase() !== target.host.toLowerCase()) {
      throw new DeployError('REGISTRY_ERROR', `registry ${target.host}: its token endpoint ${realm.origin} is not https://${target.host}; the access token is not sent there`);
    }
    const service = params.get('service');
    if (service !== undefined) realm.searchParams.set('service', service);
    realm.searchParams.set('scope', `repository:${target.name}:pull`);
    const basic = `Basic ${Buffer.from(`${USER}:${await this.accessToken(target)}`).toString('base64')}`;
    const what = `the token for ${target.repository}`;
    const issuedAt = Date.now();
    const res = await this.send(target, realm.href, 'GET', 'application/json', basic, AbortSignal.timeout(this.timeoutMs), what, false);
    if (res.status === 401 || res.status === 403) {
      await discard(res);
      throw new DeployError('REGISTRY_ERROR', `registry ${target.host} refused the deployer's access token for ${target.repository} (HTTP ${res.status}): ${READER_ROLE}`);
    }
    let answer: unknown;
    try {
      this.check(res, target, what, undefined);
      const text = await this.readText(res, MAX_TOKEN_ANSWER_BYTES);
      answer = JSON.parse(text);
    } catch (err) {
      await discard(res);
      if (err instanceof DeployError) throw err;
      if (err instanceof SyntaxError || err instanceof RangeError) throw new DeployError('REGISTRY_ERROR', `registry ${target.host}: the token endpoint's answer is not a token`);
      throw this.unavailable(target, what, err);
    }
    const token = isRecord(answer) ? (answer.token ?? answer.access_token) : undefined;
    if (typeof token !== 'string' || token === '') throw new DeployError('REGISTRY_ERROR', `registry ${target.host}: the token endpoint's answer holds no token`);
    const expiresIn = isRecord(answer) && typeof answer.expires_in === 'number' && answer.expires_in > 0 ? answer.expires_in : DEFAULT_BEARER_SECONDS;
    const lifetimeMs = expiresIn * 1000;
    const header = `Bearer ${token}`;
    // Refresh a little early (a quarter of the lifetime, at most a minute) so no request carries a just-expired bearer.
    this.bearers.set(key, { header, refreshAt: issuedAt + lifetimeMs - Math.min(60_000, lifetimeMs / 4) });
    return header;
  }

  private async accessToken(target: Target): Promise<string> {
    try {
      return await this.token();
    } catch (err) {
      if (err instanceof DeployError) throw err;
      throw new DeployError('REGISTRY_UNAVAILABLE', `no access token for registry ${target.host}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  private async readText(res: Response, max: number): Promise<string> {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of res.body ?? []) {
      total += (chunk as Uint8Array).byteLength;
      if (total > max) throw new RangeError('answer too large');
      chunks.push(Buffer.from(chunk as Uint8Array));
    }
    return Buffer.concat(chunks, total).toString('utf8');
  }

  /**
   * One HTTPS exchange, following redirects by hand (a blob may live on a storage host):
   * HTTPS only, and the Authorization header never leaves the origin it was made for.
   */
  private async send(
    target: Target,
    url: string,
    method: 'GET' | 'HEAD',
    accept: string,
    authorization: string | undefined,
    signal: AbortSignal,
    what: string,
    followRedirects = true,
  ): Promise<Response> {
    let current = new URL(url);
    const origin = current.origin;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { accept };
      if (authorization !== undefined && current.origin === origin) headers.authorization = authorization;
      let res: Response;
      try {
        res = await fetch(current, { method, headers, redirect: 'manual', signal });
      } catch (err) {
        throw this.unavailable(target, what, err);
      }
      const location = res.headers.get('location');
      if (!followRedirects || res.status < 300 || res.status >= 400 || location === null) return res;
      await discard(res);
      if (hop >= MAX_REDIRECTS) throw new DeployError('REGISTRY_ERROR', `registry ${target.host}: more than ${MAX_REDIRECTS} redirects for ${what}`);
      const next = new URL(location, current);
      if (next.protocol !== 'https:') throw new DeployError('REGISTRY_ERROR', `registry ${target.host}: ${what} redirects to ${next.protocol}// (HTTPS only)`);
      current = next;
    }
  }

  /** A network error or timeout; a TLS verification failure is configuration, not luck. */
  private unavailable(target: Target, what: string, err: unknown): DeployError {
    if (err instanceof DeployError) return err;
    if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
      return new DeployError('REGISTRY_UNAVAILABLE', `registry ${target.host} did not answer within ${this.timeoutMs} ms (${what})`);
    }
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
    const code = isRecord(cause) && typeof cause.code === 'string' ? cause.code : '';
    const detail = cause instanceof Error ? cause.message : String(cause);
    if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) {
      return new DeployError('REGISTRY_ERROR', `registry ${target.host}: TLS verification failed (${code}: ${detail}); the deployer trusts the system store and NODE_EXTRA_CA_CERTS`);
    }
    return new DeployError('REGISTRY_UNAVAILABLE', `registry ${target.host} unreachable (${what}): ${code ? `${code}: ` : ''}${detail}`, { cause: err });
  }
}
