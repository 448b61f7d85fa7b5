// `gke:` clusters: endpoint and CA from the Container API, access token from ADC.
import { inSpan } from '../core/trace.ts';
import type { ClusterManagerClient } from '@google-cloud/container';
import { DeployError } from '../errors.ts';
import type { Logger } from '../core/log.ts';
import { caFile, loadCa } from './ca-file.ts';
import { shared, type ClusterAccess, type Connection, type Credentials } from './connection.ts';
import { chooseEndpoint, offeredEndpoints, type EndpointChoice } from './gke-endpoint.ts';
import { retrying, type Backoff } from './retry.ts';

export interface GkeSpec {
  project: string;
  location: string;
  name: string;
  cacheTtlSeconds: number;
  /** Default 'auto'. */
  endpoint?: EndpointChoice | undefined;
  membership?: string | undefined;
}

export interface GkeOptions {
  /** Where the endpoint choice is logged, once per lookup. */
  log?: Logger;
  /** CONNECT_GATEWAY_ENDPOINT (https://host[:port]) replaces connectgateway.googleapis.com, as CONTAINER_API_ENDPOINT does for the Container API. */
  connectGateway?: string | undefined;
}

/** How long one getCluster may take, and how long a lookup keeps retrying. */
export interface LookupTiming extends Backoff {
  attemptTimeoutMs: number;
  budgetMs: number;
}

const DEFAULT_LOOKUP_TIMING: LookupTiming = { attemptTimeoutMs: 10_000, budgetMs: 8_000, baseMs: 100, capMs: 2_000 };

// gRPC status codes that mean "try again later" rather than "fix your config".
const TRANSIENT_GRPC = new Set([4 /* DEADLINE_EXCEEDED */, 8 /* RESOURCE_EXHAUSTED */, 13 /* INTERNAL */, 14 /* UNAVAILABLE */]);
// Of those, the ones worth retrying at once: quota (8) and server bugs (13) rarely clear in seconds.
const RETRY_GRPC = new Set([4, 14]);

export class GkeAccess implements ClusterAccess {
  private readonly spec: GkeSpec;
  private readonly containerApi: () => Promise<ClusterManagerClient>;
  private readonly credentials: Credentials;
  private cached: { connection: Connection; expiresAt: number } | undefined;
  private readonly lookup = shared(() => this.fetch());
  private readonly timing: LookupTiming;
  private readonly opts: GkeOptions;

  constructor(spec: GkeSpec, containerApi: () => Promise<ClusterManagerClient>, credentials: Credentials, timing: Partial<LookupTiming> = {}, opts: GkeOptions = {}) {
    this.spec = spec;
    this.opts = opts;
    this.containerApi = containerApi;
    this.credentials = credentials;
    this.timing = { ...DEFAULT_LOOKUP_TIMING, ...timing };
  }

  get resourceName(): string {
    return `projects/${this.spec.project}/locations/${this.spec.location}/clusters/${this.spec.name}`;
  }

  async connect(): Promise<Connection> {
    if (this.cached && Date.now() < this.cached.expiresAt) return this.cached.connection;
    return this.lookup();
  }

  invalidate(connection?: Connection): void {
    if (!connection || connection === this.cached?.connection) this.cached = undefined;
  }

  private async fetch(): Promise<Connection> {
    let cluster;
    try {
      const client = await this.containerApi();
      // Our own retries (the library's would keep at it for its whole timeout): a deploy
      // source would rather answer "retry later" soon (Pub/Sub redelivers).
      const grpcCode = (err: unknown) => (err as { code?: unknown }).code;
      [cluster] = await inSpan('lookup', { 'gke_deployer.cluster': this.resourceName }, () => retrying(() => client.getCluster({ name: this.resourceName }, { timeout: this.timing.attemptTimeoutMs, retry: null }), {
        ...this.timing,
        deadline: Date.now() + this.timing.budgetMs,
        classify: (err) => ({ retry: RETRY_GRPC.has(grpcCode(err) as number) }),
      }));
    } catch (err) {
      const { code, details } = err as { code?: unknown; details?: unknown };
      const detail = typeof details === 'string' && details !== '' ? details : (err as Error).message;
      const transient = typeof code === 'number' && TRANSIENT_GRPC.has(code);
      throw new DeployError(
        transient ? 'CONTAINER_API_UNAVAILABLE' : 'CONTAINER_API_ERROR',
        `Container API getCluster ${this.resourceName} failed: ${detail}`,
        { cause: err },
      );
    }
    const chosen = chooseEndpoint(this.spec.endpoint ?? 'auto', offeredEndpoints(cluster), {
      resource: this.resourceName,
      membership: this.spec.membership,
      gateway: this.opts.connectGateway,
    });
    // Only IP endpoints present the cluster CA; the DNS endpoint and the gateway carry
    // publicly trusted certificates, checked against the system store (no CA file).
    let ca: Buffer | undefined;
    if (chosen.usesClusterCa) {
      const caB64 = cluster.masterAuth?.clusterCaCertificate;
      if (!caB64) throw new DeployError('CONTAINER_API_ERROR', `cluster ${this.resourceName} has no CA certificate (status ${String(cluster.status)})`);
      ca = loadCa(caFile(Buffer.from(caB64, 'base64')));
    }
    this.opts.log?.('INFO', `cluster ${this.resourceName}: using the ${chosen.kind} endpoint (${chosen.reason})`, { endpointKind: chosen.kind, server: chosen.server });
    const connection: Connection = { server: chosen.server, ...(ca && { ca }), credentials: this.credentials };
    this.cached = { connection, expiresAt: Date.now() + this.spec.cacheTtlSeconds * 1000 };
    return connection;
  }
}
