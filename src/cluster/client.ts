// A Kubernetes client for one cluster connection: @kubernetes/client-node's generic
// object API over one keep-alive, CA-verifying connection pool, with the token asked
// for on every request (so refreshes need no new client) and one retry after a 401.
import {
  ApiException,
  HttpMethod,
  KubernetesObjectApi,
  PatchStrategy,
  ServerConfiguration,
  Watch,
  createConfiguration,
  type KubeConfig,
  type KubernetesObject,
  type RequestContext,
} from '@kubernetes/client-node';
import { Agent } from 'undici';
import { DeployError } from '../errors.ts';
import type { ClusterAccess, Connection } from './connection.ts';

/** The manager of this deployer's own bookkeeping writes (Leases); applies use one manager per target. */
export const FIELD_MANAGER = 'gke-deployer';
const REQUEST_TIMEOUT_MS = 30_000;

/** The generic object API, plus the two things its public methods do not offer. */
class ObjectApi extends KubernetesObjectApi {
  /** The discovery lookup it already does (and caches) per instance. */
  async isNamespaced(apiVersion: string, kind: string): Promise<boolean | undefined> {
    return (await this.resource(apiVersion, kind))?.namespaced;
  }

  /**
   * Server-side apply that sends the manifest as written. `patch()` first passes built-in
   * kinds through the library's typed models, which silently drop any field the models do
   * not know (a newer API field, or a typo). Strict field validation makes the API server
   * reject unknown fields instead of ignoring them.
   */
  async serverSideApply(obj: KubernetesObject, opts: ApplyOptions): Promise<KubernetesObject> {
    const ctx = this.configuration.baseServer.makeRequestContext(await this.specUriPath(obj, 'patch'), HttpMethod.PATCH);
    ctx.setHeaderParam('Accept', 'application/json');
    ctx.setHeaderParam('Content-Type', PatchStrategy.ServerSideApply);
    ctx.setQueryParam('fieldManager', opts.fieldManager);
    ctx.setQueryParam('fieldValidation', 'Strict');
    if (opts.force) ctx.setQueryParam('force', 'true');
    if (opts.dryRun) ctx.setQueryParam('dryRun', 'All');
    ctx.setBody(JSON.stringify(obj)); // JSON is YAML: valid as application/apply-patch+yaml
    return this.requestPromise(ctx, RAW);
  }

  /** POST (create) or PUT (replace) the object as written: no typed model reshapes it. */
  async write(obj: KubernetesObject, method: 'create' | 'replace'): Promise<KubernetesObject> {
    const ctx = this.configuration.baseServer.makeRequestContext(await this.specUriPath(obj, method), method === 'create' ? HttpMethod.POST : HttpMethod.PUT);
    ctx.setHeaderParam('Accept', 'application/json');
    ctx.setHeaderParam('Content-Type', 'application/json');
    ctx.setQueryParam('fieldManager', FIELD_MANAGER);
    ctx.setBody(JSON.stringify(obj));
    return this.requestPromise(ctx, RAW);
  }

  async jsonPatch(obj: KubernetesObject, ops: unknown[]): Promise<KubernetesObject> {
    const ctx = this.configuration.baseServer.makeRequestContext(await this.specUriPath(header(obj), 'patch'), HttpMethod.PATCH);
    ctx.setHeaderParam('Accept', 'application/json');
    ctx.setHeaderParam('Content-Type', PatchStrategy.JsonPatch);
    ctx.setQueryParam('fieldManager', FIELD_MANAGER);
    ctx.setBody(JSON.stringify(ops));
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
}

/** The serializer's pass-through type: responses stay plain JSON. */
const RAW = 'any';

export interface ApplyOptions {
  dryRun: boolean;
  force: boolean;
  fieldManager: string;
}

export class KubeClient {
  private readonly access: ClusterAccess;
  private readonly connection: Connection;
  private readonly agent: Agent;
  private readonly api: ObjectApi;

  constructor(access: ClusterAccess, connection: Connection) {
    this.access = access;
    this.connection = connection;
    this.agent = new Agent({
      keepAliveTimeout: 30_000,
      connect: {
        ...(connection.ca && { ca: connection.ca }),
        ...(connection.clientCert && { cert: connection.clientCert.cert, key: connection.clientCert.key }),
        rejectUnauthorized: true,
      },
    });
    this.api = new ObjectApi(
      createConfiguration({
        baseServer: new ServerConfiguration(connection.server.replace(/\/$/, ''), {}),
        authMethods: { default: { getName: () => 'gke-deployer', applySecurityAuthentication: (ctx: RequestContext) => this.authenticate(ctx) } },
      }),
    );
  }

  /** Every request: the current token (so refreshes need no new client), this connection's pool, a timeout. */
  private async authenticate(ctx: RequestContext): Promise<void> {
    const authorization = await this.connection.credentials.authorization();
    if (authorization) ctx.setHeaderParam('Authorization', authorization);
    ctx.setDispatcher(this.agent);
    ctx.setSignal(AbortSignal.timeout(REQUEST_TIMEOUT_MS));
  }

  get server(): string {
    return this.connection.server;
  }

  /** Whether this client was built for `connection` (a new lookup gives a new client). */
  uses(connection: Connection): boolean {
    return this.connection === connection;
  }

  isNamespaced(apiVersion: string, kind: string): Promise<boolean | undefined> {
    return this.call(() => this.api.isNamespaced(apiVersion, kind));
  }

  /** The live object, or undefined when it does not exist. */
  async get(obj: KubernetesObject): Promise<KubernetesObject | undefined> {
    try {
      return await this.call(() => this.api.readRaw(obj));
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw err;
    }
  }

  /** POST: fails with 409 when the object exists (for locks, where "absent" must be checked and acted on at once). */
  create(obj: KubernetesObject): Promise<KubernetesObject> {
    return this.call(() => this.api.write(obj, 'create'));
  }

  /** PUT: fails with 409 unless the object is still at the `metadata.resourceVersion` it carries. */
  replace(obj: KubernetesObject): Promise<KubernetesObject> {
    return this.call(() => this.api.write(obj, 'replace'));
  }

  /** RFC 6902 JSON patch (a `test` op makes it conditional). */
  jsonPatch(obj: KubernetesObject, ops: unknown[]): Promise<KubernetesObject> {
    return this.call(() => this.api.jsonPatch(obj, ops));
  }

  /** Server-side apply: one PATCH, creates the object when absent. */
  apply(obj: KubernetesObject, opts: ApplyOptions): Promise<KubernetesObject> {
    return this.call(() => this.api.serverSideApply(obj, opts));
  }

  /**
   * Deletes exactly this object: the uid guards against a newer one of the same name, a
   * resourceVersion against a change since it was read. Dependents go in the background.
   */
  async delete(obj: KubernetesObject, preconditions: { uid: string; resourceVersion?: string }): Promise<void> {
    await this.call(() => this.api.delete(header(obj), undefined, undefined, undefined, undefined, 'Background', { preconditions }));
  }

  /** A collection's items, with the list's resourceVersion to watch from. */
  async list(apiVersion: string, kind: string, namespace: string, query: Record<string, string> = {}): Promise<{ items: KubernetesObject[]; resourceVersion: string; path: string }> {
    const path = await this.call(() => this.api.collectionPath(apiVersion, kind, namespace));
    const list = await this.call(() => this.api.getPath<{ items?: KubernetesObject[]; metadata?: { resourceVersion?: string } }>(path, query));
    // List items carry no apiVersion/kind of their own.
    const items = (list.items ?? []).map((item) => ({ apiVersion, kind, ...item }));
    return { items, resourceVersion: list.metadata?.resourceVersion ?? '', path };
  }

  /** Plain-text GET, e.g. a Pod's log. */
  text(path: string, query: Record<string, string> = {}): Promise<string> {
    return this.call(() => this.api.getPath<string>(path, query));
  }

  /**
   * One watch request (client-node's Watch over this client's connection and credentials).
   * Resolves with an AbortController once the stream is open; `done` is called once when it ends.
   */
  watch(path: string, query: Record<string, string>, onEvent: (type: string, obj: KubernetesObject) => void, done: (err: unknown) => void): Promise<AbortController> {
    const config = { getCurrentCluster: () => ({ server: this.server.replace(/\/$/, '') }), applySecurityAuthentication: (ctx: RequestContext) => this.authenticate(ctx) };
    return new Watch(config as unknown as KubeConfig).watch(path, query, (type: string, obj: KubernetesObject) => onEvent(type, obj), done);
  }

  /** The API server said 401 to a request made outside `call` (a watch). */
  invalidateCredentials(): void {
    this.connection.credentials.invalidate();
  }

  close(): Promise<void> {
    return this.agent.close();
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof ApiException && err.code === 401)) throw this.transportError(err);
    }
    // Expired or revoked token: refresh once. A second 401 is real.
    this.connection.credentials.invalidate();
    try {
      return await fn();
    } catch (err) {
      throw this.transportError(err);
    }
  }

  private transportError(err: unknown): unknown {
    if (err instanceof ApiException || err instanceof DeployError) return err;
    // fetch failed: refused, reset, timed out, or TLS verification failed. The endpoint
    // may have moved or the CA rotated, so the next call looks the cluster up again.
    this.access.invalidate();
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.code ?? cause?.message ?? (err as Error).message;
    return new DeployError('CLUSTER_UNAVAILABLE', `cannot reach the Kubernetes API at ${this.server}: ${detail}`, { cause: err });
  }
}

function header(obj: KubernetesObject) {
  const { apiVersion = '', kind = '', metadata } = obj;
  return { apiVersion, kind, metadata: { name: metadata?.name ?? '', ...(metadata?.namespace && { namespace: metadata.namespace }) } };
}

export { ApiException };
