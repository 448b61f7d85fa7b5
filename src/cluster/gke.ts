// `gke:` clusters: endpoint and CA from the Container API, access token from ADC.
import type { ClusterManagerClient } from '@google-cloud/container';
import { DeployError } from '../errors.ts';
import { caFile, loadCa } from './ca-file.ts';
import { shared, type ClusterAccess, type Connection, type Credentials } from './connection.ts';

export interface GkeSpec {
  project: string;
  location: string;
  name: string;
  cacheTtlSeconds: number;
}

const LOOKUP_TIMEOUT_MS = 10_000;

// gRPC status codes that mean "try again later" rather than "fix your config".
const TRANSIENT_GRPC = new Set([4 /* DEADLINE_EXCEEDED */, 8 /* RESOURCE_EXHAUSTED */, 13 /* INTERNAL */, 14 /* UNAVAILABLE */]);

export class GkeAccess implements ClusterAccess {
  private readonly spec: GkeSpec;
  private readonly containerApi: () => Promise<ClusterManagerClient>;
  private readonly credentials: Credentials;
  private cached: { connection: Connection; expiresAt: number } | undefined;
  private readonly lookup = shared(() => this.fetch());

  constructor(spec: GkeSpec, containerApi: () => Promise<ClusterManagerClient>, credentials: Credentials) {
    this.spec = spec;
    this.containerApi = containerApi;
    this.credentials = credentials;
  }

  get resourceName(): string {
    return `projects/${this.spec.project}/locations/${this.spec.location}/clusters/${this.spec.name}`;
  }

  async connect(): Promise<Connection> {
    if (this.cached && Date.now() < this.cached.expiresAt) return this.cached.connection;
    return this.lookup();
  }

  invalidate(): void {
    this.cached = undefined;
  }

  private async fetch(): Promise<Connection> {
    let cluster;
    try {
      // The library's default retries UNAVAILABLE for ~30 s; a deploy source would rather
      // answer "retry later" sooner (Pub/Sub redelivers, webhooks are retried by the sender).
      [cluster] = await (await this.containerApi()).getCluster({ name: this.resourceName }, { timeout: LOOKUP_TIMEOUT_MS });
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
    const endpoint = cluster.endpoint;
    const caB64 = cluster.masterAuth?.clusterCaCertificate;
    if (!endpoint || !caB64) {
      throw new DeployError('CONTAINER_API_ERROR', `cluster ${this.resourceName} has no endpoint or CA (status ${String(cluster.status)})`);
    }
    const connection: Connection = {
      server: `https://${endpoint}`,
      ca: loadCa(caFile(Buffer.from(caB64, 'base64'))),
      credentials: this.credentials,
    };
    this.cached = { connection, expiresAt: Date.now() + this.spec.cacheTtlSeconds * 1000 };
    return connection;
  }
}
