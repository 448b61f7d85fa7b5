// Kubernetes clients: @kubernetes/client-node's generic object API over keep-alive,
// CA-verifying connection pools. A `Channel` is one pool for one endpoint and CA; the
// registry keeps it for as long as lookups return that endpoint and CA, and closes a
// replaced one only once no request uses it. A `KubeClient` is what a deploy calls: it
// asks for the cluster's current channel on every attempt, refreshes the token once
// after a 401, and retries transient faults (429, 5xx, resets, timeouts) within a budget.
// A fenced KubeClient (a deploy's turn under the target's Lease) also bounds every write
// to the Lease it holds (`WriteFence`); one given a deadline (`until`) gives up every
// request at it, one already sent included.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
// client-node's and undici's modules one by one, not their indexes: the indexes load every
// API, auth provider, proxy agent and fetch() at start-up (issue 23; README, Performance).
import { ApiException } from '@kubernetes/client-node/dist/gen/apis/exception.js';
import { createConfiguration } from '@kubernetes/client-node/dist/gen/configuration.js';
import { HttpMethod, ResponseContext, SelfDecodingBody, wrapHttpLibrary, type RequestContext } from '@kubernetes/client-node/dist/gen/http/http.js';
import { ServerConfiguration } from '@kubernetes/client-node/dist/gen/servers.js';
import { KubernetesObjectApi } from '@kubernetes/client-node/dist/object.js';
import { PatchStrategy } from '@kubernetes/client-node/dist/patch.js';
import Agent from 'undici/lib/dispatcher/agent.js';
import undiciRequest from 'undici/lib/api/api-request.js';
import type { Dispatcher } from 'undici';
import { DeployError } from '../errors.ts';
import type { Connection } from './connection.ts';
import { retrying, retryAfterMs, type Backoff, type Verdict } from './retry.ts';

/** The manager of this deployer's own bookkeeping writes (Leases); applies use one manager per target. */
export const FIELD_MANAGER = 'gke-deployer';

export interface ClientTiming extends Backoff {
  /** One request, from sending to the end of the answer. */
  attemptTimeoutMs: number;
  /** How long one call keeps retrying transient faults. */
  budgetMs: number;
}

export const DEFAULT_TIMING: ClientTiming = { attemptTimeoutMs: 15_000, budgetMs: 8_000, baseMs: 100, capMs: 2_000 };

/** The deadline (epoch ms) of the KubeClient call whose request is being signed: the channel is shared, the call is not. */
const callDeadline = new AsyncLocalStorage<number>();

/**
 * Where a write must land by: a Lease held by the writer (src/apply/lock.ts). No write may
 * land once another instance could have taken the Lease, so every attempt of a write (and
 * every retry) is bounded by it, on both ends: the client gives up at that time, and so
 * does the API server (the `timeout` query parameter), which then abandons the request
 * (admission webhooks, its queues, the storage write) instead of landing it late.
 */
export interface WriteFence {
  /** Epoch ms by which a write starting now must have landed; renews the Lease first when too little is left, and throws once it is lost. */
  writeBy(): Promise<number>;
}

/** A write attempt shorter than this could not be answered anyway: the Lease is renewed first, or the write refused. */
export const MIN_WRITE_MS = 200;

/** One attempt of a write under a fence: how long it may take, at most. */
interface WriteLimit {
  timeoutMs: number;
}

/** The generic object API, plus the two things its public methods do not offer. */
class ObjectApi extends KubernetesObjectApi {
  /** The discovery lookup it already does (and caches) per instance. */
  async isNamespaced(apiVersion: string, kind: string): Promise<boolean | undefined> {
    return (await this.resource(apiVersion, kind))?.namespaced;
  }

  /**
   * The kind's resource name (its plural, as RBAC rules name it) and scope, as discovery lists
   * it; undefined when the server does not serve the kind at that apiVersion.
   */
  async resourceOf(apiVersion: string, kind: string): Promise<{ name: string; namespaced: boolean } | undefined> {
    try {
      await this.resource(apiVersion, kind);
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw err;
    }
    // Subresources (deployments/scale) carry their parent's kind: the resource itself has no slash.
    const found = this.apiVersionResourceCache[apiVersion]?.resources.find((r) => r.kind === kind && !r.name.includes('/'));
    return found && { name: found.name, namespaced: found.namespaced };
  }

  /** GET /apis, kept per instance like the library's resource lists: each group's versions, the preferred one first. */
  private groups: Promise<Map<string, string[]>> | undefined;

  /**
   * The versions the server serves of an API group, preferred first; none for a group it does
   * not serve. Asked again for a group the kept answer lacks (a CRD added since), or when `fresh`.
   */
  async servedVersions(group: string, fresh: boolean): Promise<string[]> {
    if (group === '') return ['v1']; // the core group: /api/v1
    const kept = this.groups;
    if (kept && !fresh) {
      const versions = (await kept).get(group);
      if (versions) return versions;
    }
    // Concurrent askers share one request.
    if (this.groups === kept) {
      const asked: Promise<Map<string, string[]>> = this.apiGroups().catch((err: unknown) => {
        if (this.groups === asked) this.groups = undefined;
        throw err;
      });
      this.groups = asked;
    }
    return (await this.groups!).get(group) ?? [];
  }

  private async apiGroups(): Promise<Map<string, string[]>> {
    type Version = { version?: string };
    const list = await this.getPath<{ groups?: { name?: string; versions?: Version[]; preferredVersion?: Version }[] }>('/apis');
    const groups = new Map<string, string[]>();
    for (const g of list.groups ?? []) {
      if (!g.name) continue;
      const preferred = g.preferredVersion?.version;
      const others = (g.versions ?? []).flatMap((v) => (v.version && v.version !== preferred ? [v.version] : []));
      groups.set(g.name, preferred ? [preferred, ...others] : others);
    }
    return groups;
  }

  /**
   * Server-side apply that sends the manifest as written. `patch()` first passes built-in
   * kinds through the library's typed models, which silently drop any field the models do
   * not know (a newer API field, or a typo). Strict field validation makes the API server
   * reject unknown fields instead of ignoring them.
   */
  async serverSideApply(obj: KubernetesObject, opts: ApplyOptions, limit?: WriteLimit): Promise<KubernetesObject> {
    const ctx = this.configuration.baseServer.makeRequestContext(await this.specUriPath(obj, 'patch'), HttpMethod.PATCH);
    bound(ctx, limit);
    ctx.setHeaderParam('Accept', 'application/json');
    ctx.setHeaderParam('Content-Type', PatchStrategy.ServerSideApply);
    ctx.setQueryParam('fieldManager', opts.fieldManager);
    ctx.setQueryParam('fieldValidation', 'Strict');
    if (opts.force) ctx.setQueryParam('force', 'true');
    if (opts.dryRun) ctx.setQueryParam('dryRun', 'All');
    ctx.setBody(JSON.stringify(obj)); // JSON is YAML: valid as application/apply-patch+yaml
    return this.requestPromise(ctx, RAW);
  }

  /** The live object as the server sent it: no typed model drops or reshapes a field. */
  async readRaw(obj: KubernetesObject): Promise<KubernetesObject> {
    return this.getPath(await this.specUriPath(header(obj), 'read'));
  }

  /** The URL path of a kind's collection in `namespace` (or cluster-wide). */
  collectionPath(apiVersion: string, kind: string, namespace?: string): Promise<string> {
    return this.specUriPath({ apiVersion, kind, metadata: { ...(namespace !== undefined && { namespace }) } }, 'list');
  }

  /** GET any path: JSON as parsed JSON, text (pod logs) as a string. */
  getPath<T>(path: string, query: Record<string, string> = {}): Promise<T> {
    const ctx = this.configuration.baseServer.makeRequestContext(path, HttpMethod.GET);
    ctx.setHeaderParam('Accept', 'application/json, */*;q=0.8');
    for (const [k, v] of Object.entries(query)) ctx.setQueryParam(k, v);
    return this.requestPromise(ctx, RAW) as Promise<T>;
  }

  /** POST (create) or PUT (replace) the object as written: no typed model reshapes it. */
  async write(obj: KubernetesObject, method: 'create' | 'replace', limit?: WriteLimit): Promise<KubernetesObject> {
    const ctx = this.configuration.baseServer.makeRequestContext(await this.specUriPath(obj, method), method === 'create' ? HttpMethod.POST : HttpMethod.PUT);
    bound(ctx, limit);
    ctx.setHeaderParam('Accept', 'application/json');
    ctx.setHeaderParam('Content-Type', 'application/json');
    ctx.setQueryParam('fieldManager', FIELD_MANAGER);
    ctx.setBody(JSON.stringify(obj));
    return this.requestPromise(ctx, RAW);
  }

  async jsonPatch(obj: KubernetesObject, ops: unknown[], limit?: WriteLimit): Promise<KubernetesObject> {
    const ctx = this.configuration.baseServer.makeRequestContext(await this.specUriPath(header(obj), 'patch'), HttpMethod.PATCH);
    bound(ctx, limit);
    ctx.setHeaderParam('Accept', 'application/json');
    ctx.setHeaderParam('Content-Type', PatchStrategy.JsonPatch);
    ctx.setQueryParam('fieldManager', FIELD_MANAGER);
    ctx.setBody(JSON.stringify(ops));
    return this.requestPromise(ctx, RAW);
  }

  /** DELETE with preconditions, dependents in the background (the library's delete() cannot be bounded). */
  async deleteExact(obj: KubernetesObject, preconditions: { uid: string; resourceVersion?: string }, limit?: WriteLimit): Promise<void> {
    const ctx = this.configuration.baseServer.makeRequestContext(await this.specUriPath(header(obj), 'delete'), HttpMethod.DELETE);
    bound(ctx, limit);
    ctx.setHeaderParam('Accept', 'application/json');
    ctx.setHeaderParam('Content-Type', 'application/json');
    ctx.setBody(JSON.stringify({ apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: 'Background', preconditions }));
    await this.requestPromise(ctx, RAW);
  }

  /** POST a policy/v1 Eviction to the Pod's `eviction` subresource (no Eviction kind to discover). */
  async evictExact(pod: KubernetesObject, preconditions: { uid: string }, limit?: WriteLimit): Promise<void> {
    const ctx = this.configuration.baseServer.makeRequestContext(`${await this.specUriPath(header(pod), 'read')}/eviction`, HttpMethod.POST);
    bound(ctx, limit);
    ctx.setHeaderParam('Accept', 'application/json');
    ctx.setHeaderParam('Content-Type', 'application/json');
    const { metadata } = header(pod);
    ctx.setBody(JSON.stringify({ apiVersion: 'policy/v1', kind: 'Eviction', metadata, deleteOptions: { preconditions } }));
    await this.requestPromise(ctx, RAW);
  }
}

/**
 * A write attempt that must end within `limit`: the client aborts it then, and the API
 * server is told the same (`timeout`, a Go duration), so it abandons the request rather
 * than land it after the writer's Lease could have passed to someone else.
 */
function bound(ctx: RequestContext, limit: WriteLimit | undefined): void {
  if (!limit) return;
  const ms = Math.max(1, Math.floor(limit.timeoutMs));
  ctx.setQueryParam('timeout', `${ms}ms`);
  ctx.setSignal(AbortSignal.timeout(ms));
}

/**
 * An abort's reason (a DOMException) as a plain Error of the same name: client-node's
 * discovery prefixes `message` on what it catches, which a DOMException's getter refuses
 * with a TypeError that hides the timeout.
 */
function writable(reason: unknown): unknown {
  return reason instanceof DOMException ? Object.assign(new Error(reason.message, { cause: reason }), { name: reason.name }) : reason;
}

/**
 * The transport: undici's request() on the channel's pool. client-node's default goes
 * through fetch(), whose WHATWG machinery (Request/Response/Headers objects, body streams)
 * measured ~0.5 ms of CPU per call; this sends the same request. Its errors take fetch's
 * shape (a TypeError whose cause is the network error), so retries judge them as before.
 */
const UNDICI_REQUEST = wrapHttpLibrary({
  async send(ctx: RequestContext): Promise<ResponseContext> {
    try {
      const url = new URL(ctx.getUrl());
      const res = await undiciRequest.call(ctx.getDispatcher() as Dispatcher, {
        origin: url.origin,
        path: url.pathname + url.search,
        method: ctx.getHttpMethod(),
        // Named in the API server's audit log.
        headers: { 'user-agent': 'gke-deployer', ...ctx.getHeaders() },
        body: ctx.getBody() as string | undefined,
        signal: ctx.getSignal(),
      });
      const body = Buffer.from(await res.body.arrayBuffer());
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(res.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
      return new ResponseContext(res.statusCode, headers, new SelfDecodingBody(Promise.resolve(body)));
    } catch (err) {
      const signal = ctx.getSignal();
      throw signal?.aborted ? writable(signal.reason) : new TypeError('fetch failed', { cause: err });
    }
  },
});

/** The serializer's pass-through type: responses stay plain JSON. */
const RAW = 'any';

export interface ApplyOptions {
  dryRun: boolean;
  force: boolean;
  fieldManager: string;
}

/** A channel that was closed between being handed out and being used: take the current one. */
class ChannelClosed extends Error {}

/** The lookup itself failed: it did its own retrying (or cannot be helped by any). */
class LookupFailed extends Error {}
/** The call's deadline passed before an attempt could be sent. */
class DeadlinePassed extends Error {}

/** One keep-alive pool and object API for one server, CA and client certificate. */
export class Channel {
  /** The latest lookup that resolved to this channel: its credentials sign each request. */
  private connection: Connection;
  private readonly agent: Agent;
  private readonly api: ObjectApi;
  private readonly attemptTimeoutMs: number;
  private active = 0;
  private retired = false;
  private closing: Promise<void> | undefined;

  constructor(connection: Connection, attemptTimeoutMs: number) {
    this.connection = connection;
    this.agent = new Agent({
      keepAliveTimeout: 30_000,
      // HTTP/1.1 with keep-alive, as the raw baseline: undici 8 would negotiate HTTP/2, which
      // measured ~10% more CPU per warm deploy (bench/, README Performance).
      allowH2: false,
      connect: {
        ...(connection.ca && { ca: connection.ca }),
        ...(connection.clientCert && { cert: connection.clientCert.cert, key: connection.clientCert.key }),
        rejectUnauthorized: true,
      },
    });
    this.attemptTimeoutMs = attemptTimeoutMs;
    this.api = new ObjectApi(
      createConfiguration({
        baseServer: new ServerConfiguration(connection.server.replace(/\/$/, ''), {}),
        httpApi: UNDICI_REQUEST,
        authMethods: { default: { getName: () => 'gke-deployer', applySecurityAuthentication: (ctx: RequestContext) => this.authenticate(ctx) } },
      }),
    );
  }

  /** Every request: the latest lookup's token, this pool, a timeout. */
  async authenticate(ctx: RequestContext): Promise<void> {
    const authorization = await this.connection.credentials.authorization();
    if (authorization) ctx.setHeaderParam('Authorization', authorization);
    ctx.setDispatcher(this.agent);
    // A bounded write (a fenced client) set a shorter limit already: both apply.
    const own = ctx.getSignal();
    const deadline = callDeadline.getStore();
    const timeout = AbortSignal.timeout(deadline === undefined ? this.attemptTimeoutMs : Math.max(1, Math.min(this.attemptTimeoutMs, deadline - Date.now())));
    ctx.setSignal(own ? AbortSignal.any([own, timeout]) : timeout);
  }

  get server(): string {
    return this.connection.server;
  }

  get current(): Connection {
    return this.connection;
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** Whether `connection` reaches the same server with the same trust and identity material. */
  fits(connection: Connection): boolean {
    const c = this.connection;
    if (connection === c) return true;
    return (
      connection.server === c.server &&
      sameBuffer(connection.ca, c.ca) &&
      sameBuffer(connection.clientCert?.cert, c.clientCert?.cert) &&
      sameBuffer(connection.clientCert?.key, c.clientCert?.key)
    );
  }

  /** A newer lookup with the same endpoint and CA: keep the pool, sign with its credentials. */
  adopt(connection: Connection): void {
    this.connection = connection;
  }

  async run<T>(fn: (api: ObjectApi) => Promise<T>): Promise<T> {
    if (this.closing) throw new ChannelClosed('channel closed');
    this.active++;
    try {
      return await fn(this.api);
    } finally {
      this.active--;
      if (this.retired && this.active === 0) void this.close();
    }
  }

  /** Replaced by a channel to another endpoint or CA: close once no request uses it. */
  retire(): void {
    this.retired = true;
    if (this.active === 0) void this.close();
  }

  close(): Promise<void> {
    // undici lets requests already dispatched finish before the pool closes.
    this.closing ??= this.agent.close().catch(() => {});
    return this.closing;
  }
}

function sameBuffer(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.equals(b));
}

/** Where a KubeClient gets the cluster's current channel, and reports a transport failure. */
export interface ChannelSource {
  channel(): Promise<Channel>;
  /** The connection failed at the transport level: its lookup may be stale. */
  failed(connection: Connection): void;
}

export class KubeClient {
  private readonly source: ChannelSource;
  private readonly timing: ClientTiming;
  private readonly signal: AbortSignal | undefined;
  private readonly fence: WriteFence | undefined;
  private readonly deadline: number | undefined;

  constructor(source: ChannelSource, timing: ClientTiming = DEFAULT_TIMING, signal?: AbortSignal, fence?: WriteFence, deadline?: number) {
    this.source = source;
    this.timing = timing;
    this.signal = signal;
    this.fence = fence;
    this.deadline = deadline;
  }

  /** The same client, its writes bounded by `fence` (a Lease this instance holds): see WriteFence. */
  fenced(fence: WriteFence): KubeClient {
    return new KubeClient(this.source, this.timing, this.signal, fence, this.deadline);
  }

  /** The same client, every request (retries and one already sent included) given up at `deadline` (epoch ms). */
  until(deadline: number): KubeClient {
    return Number.isFinite(deadline) ? new KubeClient(this.source, this.timing, this.signal, this.fence, deadline) : this;
  }

  isNamespaced(apiVersion: string, kind: string): Promise<boolean | undefined> {
    return this.call((api) => api.isNamespaced(apiVersion, kind));
  }

  /** Discovery (GET /api/v1, /apis/GROUP/VERSION, open to every authenticated user): the kind's resource name and scope, or undefined when not served. */
  resourceOf(apiVersion: string, kind: string): Promise<{ name: string; namespaced: boolean } | undefined> {
    return this.call((api) => api.resourceOf(apiVersion, kind));
  }

  /** The versions the cluster serves of an API group (`''` is the core group), preferred first; `[]` when it serves no such group. Kept per connection; `fresh` asks again. */
  servedVersions(group: string, fresh = false): Promise<string[]> {
    return this.call((api) => api.servedVersions(group, fresh));
  }

  /** The live object, or undefined when it does not exist. */
  async get(obj: KubernetesObject): Promise<KubernetesObject | undefined> {
    try {
      return await this.call((api) => api.readRaw(obj));
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw err;
    }
  }

  /** POST: 409 when the object exists (for locks, where "absent" must be checked and acted on at once). */
  create(obj: KubernetesObject): Promise<KubernetesObject> {
    return this.write((api, _retry, limit) => api.write(obj, 'create', limit));
  }

  /** PUT: 409 unless the object is still at the `metadata.resourceVersion` it carries. */
  replace(obj: KubernetesObject): Promise<KubernetesObject> {
    return this.write((api, _retry, limit) => api.write(obj, 'replace', limit));
  }

  /** RFC 6902 JSON patch (a `test` op makes it conditional). */
  jsonPatch(obj: KubernetesObject, ops: unknown[]): Promise<KubernetesObject> {
    return this.write((api, _retry, limit) => api.jsonPatch(obj, ops, limit));
  }

  /** A collection's items, with the list's resourceVersion to watch from. */
  async list(apiVersion: string, kind: string, namespace: string, query: Record<string, string> = {}): Promise<{ items: KubernetesObject[]; resourceVersion: string; path: string }> {
    const path = await this.call((api) => api.collectionPath(apiVersion, kind, namespace));
    const list = await this.call((api) => api.getPath<{ items?: KubernetesObject[]; metadata?: { resourceVersion?: string } }>(path, query));
    // List items carry no apiVersion/kind of their own.
    const items = (list.items ?? []).map((item) => ({ apiVersion, kind, ...item }));
    return { items, resourceVersion: list.metadata?.resourceVersion ?? '', path };
  }

  /** Plain-text GET, e.g. a Pod's log. */
  text(path: string, query: Record<string, string> = {}): Promise<string> {
    return this.call((api) => api.getPath<string>(path, query));
  }

  /**
   * One watch request (client-node's Watch over the cluster's current channel). Resolves
   * with an AbortController once the stream is open; `done` is called once when it ends.
   */
  async watch(path: string, query: Record<string, string>, onEvent: (type: string, obj: KubernetesObject) => void, done: (err: unknown) => void): Promise<AbortController> {
    const channel = await this.source.channel();
    const config = { getCurrentCluster: () => ({ server: channel.server.replace(/\/$/, '') }), applySecurityAuthentication: (ctx: RequestContext) => channel.authenticate(ctx) };
    // Loaded on the first watch: it brings undici's fetch(), which no deploy needs before.
    const { Watch } = await import('@kubernetes/client-node/dist/watch.js');
    return new Watch(config as unknown as KubeConfig).watch(path, query, (type: string, obj: KubernetesObject) => onEvent(type, obj), done);
  }

  /** The API server said 401 to a request made outside `call` (a watch). */
  async invalidateCredentials(): Promise<void> {
    (await this.source.channel()).current.credentials.invalidate();
  }

  /** Server-side apply: one PATCH, creates the object when absent. Idempotent, so safe to retry. */
  apply(obj: KubernetesObject, opts: ApplyOptions): Promise<KubernetesObject> {
    // A dry run persists nothing: no fence needed.
    if (opts.dryRun) return this.call((api) => api.serverSideApply(obj, opts));
    return this.write((api, _retry, limit) => api.serverSideApply(obj, opts, limit));
  }

  /**
   * Deletes exactly this object: the uid guards against a newer one of the same name, a
   * resourceVersion against a change since it was read. Dependents go in the background.
   */
  async delete(obj: KubernetesObject, preconditions: { uid: string; resourceVersion?: string }): Promise<void> {
    await this.write(async (api, retry, limit) => {
      try {
        await api.deleteExact(obj, preconditions, limit);
      } catch (err) {
        // A retry after an answer was lost: the first attempt deleted it.
        if (!(retry && err instanceof ApiException && err.code === 404)) throw err;
      }
    });
  }

  /**
   * Deletes exactly this Pod through the Eviction API, which honours its PodDisruptionBudgets:
   * `false` when a budget refuses (429 with a DisruptionBudget cause), an answer that is not
   * retried as a transient 429 is.
   */
  async evict(pod: KubernetesObject, uid: string): Promise<boolean> {
    return this.write(async (api, retry, limit) => {
      try {
        await api.evictExact(pod, { uid }, limit);
        return true;
      } catch (err) {
        if (err instanceof ApiException && err.code === 429 && bodyText(err).includes('DisruptionBudget')) return false;
        // A retry after an answer was lost: the first attempt evicted it.
        if (retry && err instanceof ApiException && err.code === 404) return true;
        throw err;
      }
    });
  }

  /**
   * A request that may change the cluster. Under a fence each attempt, retries included,
   * asks the fence first and must end before the Lease could pass to another instance.
   */
  private write<T>(fn: (api: ObjectApi, retry: boolean, limit: WriteLimit | undefined) => Promise<T>): Promise<T> {
    return this.call(fn, this.fence);
  }

  private async call<T>(fn: (api: ObjectApi, retry: boolean, limit: WriteLimit | undefined) => Promise<T>, fence?: WriteFence): Promise<T> {
    let refreshed = false;
    let server = '';
    let fenced = false;
    const deadline = this.deadline;
    const past = () => deadline !== undefined && Date.now() >= deadline;
    try {
      return await retrying(
        async (n) => {
          for (;;) {
            if (past()) throw new DeadlinePassed();
            const channel = await this.source.channel().catch((err: unknown) => Promise.reject(new LookupFailed('lookup failed', { cause: err })));
            server = channel.server;
            const connection = channel.current;
            // Asked right before sending, so the limit holds from the moment the request leaves.
            const limit = fence ? writeLimit(await fence.writeBy(), this.timing) : undefined;
            fenced = limit !== undefined && limit.timeoutMs < this.timing.attemptTimeoutMs;
            try {
              const run = () => channel.run((api) => fn(api, n > 0, limit));
              return await (deadline === undefined ? run() : callDeadline.run(deadline, run));
            } catch (err) {
              if (err instanceof ChannelClosed) continue;
              if (err instanceof ApiException && err.code === 401 && !refreshed) {
                // Expired or revoked token: refresh once. A second 401 is real.
                refreshed = true;
                connection.credentials.invalidate();
                continue;
              }
              // The endpoint may have moved or the CA rotated: the next attempt looks the cluster up again.
              if (isTransportError(err)) this.source.failed(connection);
              throw err;
            }
          }
        },
        { ...this.timing, deadline: Math.min(Date.now() + this.timing.budgetMs, deadline ?? Infinity), classify: verdict, ...(this.signal && { signal: this.signal }) },
      );
    } catch (err) {
      if (err instanceof LookupFailed) throw err.cause;
      if (err instanceof DeadlinePassed || (past() && isTimeout(err))) {
        throw new DeployError('CLUSTER_UNAVAILABLE', `the deadline came while waiting for the Kubernetes API${server ? ` at ${server}` : ''}: the request was given up`, { cause: err });
      }
      if (fenced && isTimeout(err)) {
        throw new DeployError('CLUSTER_UNAVAILABLE', `the Kubernetes API at ${server} did not answer a write before the target's Lease would run out; the write was abandoned (the API server was told to give up at the same time)`, { cause: err });
      }
      if (!isTransportError(err)) throw err;
      throw new DeployError('CLUSTER_UNAVAILABLE', `cannot reach the Kubernetes API at ${server}: ${transportDetail(err, this.timing)}`, { cause: err });
    }
  }
}

/** The attempt's limit: the client's own timeout, or less when the fence comes first. */
function writeLimit(by: number, timing: ClientTiming): WriteLimit {
  const left = by - Date.now();
  if (left < MIN_WRITE_MS) {
    throw new DeployError('CLUSTER_UNAVAILABLE', `too little of the target's Lease is left to send a write (${Math.max(0, Math.round(left))} ms); try again`);
  }
  return { timeoutMs: Math.min(timing.attemptTimeoutMs, left) };
}

/** The client gave up waiting (its own signal), or the API server did (504 for its `timeout`). */
function isTimeout(err: unknown): boolean {
  return (err as Error | undefined)?.name === 'TimeoutError' || (err instanceof ApiException && err.code === 504);
}

/** Not an answer from the API server: refused, reset, timed out, TLS verification failed, or no token to send. */
function isTransportError(err: unknown): boolean {
  return !(err instanceof ApiException || err instanceof DeployError || err instanceof ChannelClosed || err instanceof LookupFailed || err instanceof DeadlinePassed);
}

/** fetch's own failures: the request died on the way (undici's TypeError with a cause) or timed out. */
function isFetchFailure(err: unknown): boolean {
  return (err instanceof TypeError && err.cause !== undefined) || (err as Error | undefined)?.name === 'TimeoutError';
}

function causeCode(err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: unknown } }).cause;
  return typeof cause?.code === 'string' ? cause.code : undefined;
}

function transportDetail(err: unknown, timing: ClientTiming): string {
  if ((err as Error).name === 'TimeoutError') return `no answer within ${timing.attemptTimeoutMs} ms`;
  const cause = (err as { cause?: { message?: string } }).cause;
  return causeCode(err) ?? cause?.message ?? (err as Error).message;
}

/** TLS verification failures: retrying the same endpoint and CA cannot help. */
const TLS_FAILURE = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS|ERR_SSL|HOSTNAME/;

/**
 * What is worth another attempt. Every retried call is idempotent: reads, server-side
 * apply, and a uid-guarded delete. A 500 "failed to create typed patch object" is the
 * manifest's fault (it does not fit the kind's schema), so it is not retried.
 */
function verdict(err: unknown): Verdict {
  if (err instanceof ApiException) {
    const code = err.code;
    const headers = (err.headers ?? {}) as Record<string, string | undefined>;
    const afterMs = retryAfterMs(headers['retry-after']);
    const after = afterMs === undefined ? {} : { afterMs };
    if (code === 429 || code === 502 || code === 503 || code === 504) return { retry: true, ...after };
    if (code === 500) return { retry: !bodyText(err).includes('failed to create typed patch object') };
    return { retry: false };
  }
  return { retry: isFetchFailure(err) && !TLS_FAILURE.test(causeCode(err) ?? '') };
}

function bodyText(err: ApiException<unknown>): string {
  const body = err.body;
  if (typeof body === 'string') return body;
  try {
    return JSON.stringify(body) ?? '';
  } catch {
    return '';
  }
}

function header(obj: KubernetesObject) {
  const { apiVersion = '', kind = '', metadata } = obj;
  return { apiVersion, kind, metadata: { name: metadata?.name ?? '', ...(metadata?.namespace && { namespace: metadata.namespace }) } };
}

export { ApiException };
