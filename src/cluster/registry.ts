// One ClusterAccess per configured cluster, built on first use, and one channel (a
// keep-alive pool) per endpoint and CA: a warm instance reuses lookups, tokens and
// sockets. A lookup that returns the same endpoint and CA keeps the channel; one that
// returns another retires the old channel, which closes once its last request is done.
import type { ClusterManagerClient } from '@google-cloud/container';
import type { ClusterSpec } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import { AdcToken } from './adc-token.ts';
import { Channel, DEFAULT_TIMING, KubeClient, type ChannelSource, type ClientTiming } from './client.ts';
import type { ClusterAccess, Connection } from './connection.ts';
import { containerApiClient } from './container-api.ts';
import { GkeAccess } from './gke.ts';
import { inClusterAccess } from './in-cluster.ts';
import { KubeconfigAccess } from './kubeconfig.ts';
import { StaticEndpointAccess } from './static-endpoint.ts';

/** The channels of one cluster. */
class ClusterChannels implements ChannelSource {
  private readonly access: ClusterAccess;
  private readonly attemptTimeoutMs: number;
  private current: Channel | undefined;
  private closed = false;

  constructor(access: ClusterAccess, attemptTimeoutMs: number) {
    this.access = access;
    this.attemptTimeoutMs = attemptTimeoutMs;
  }

  async channel(): Promise<Channel> {
    const connection = await this.access.connect();
    if (this.closed) throw new Error('the cluster registry is closed');
    const channel = this.current;
    if (channel && !channel.closed && channel.fits(connection)) {
      channel.adopt(connection);
      return channel;
    }
    // Requests still running on the old channel finish there; it closes after the last.
    channel?.retire();
    this.current = new Channel(connection, this.attemptTimeoutMs);
    return this.current;
  }

  failed(connection: Connection): void {
    this.access.invalidate(connection);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.current?.close();
  }
}

export interface RegistryOptions {
  log?: Logger;
  /** Read for CONNECT_GATEWAY_ENDPOINT. */
  env?: Record<string, string | undefined>;
}

export class ClusterRegistry {
  private readonly specs: ReadonlyMap<string, ClusterSpec>;
  private readonly timing: ClientTiming;
  private readonly clusters = new Map<string, ClusterChannels>();
  private containerApi: Promise<ClusterManagerClient> | undefined;
  private adc: AdcToken | undefined;
  private readonly opts: RegistryOptions;

  /** The instance's ADC access token, one for every GKE cluster and the registry (src/release/). */
  adcToken(): AdcToken {
    return (this.adc ??= new AdcToken());
  }

  /** `timing` overrides the request timeout and retry budget (tests make them short). */
  constructor(specs: ReadonlyMap<string, ClusterSpec>, timing: Partial<ClientTiming> = {}, opts: RegistryOptions = {}) {
    this.specs = specs;
    this.opts = opts;
    this.timing = { ...DEFAULT_TIMING, ...timing };
  }

  /**
   * A client for one deploy. `signal` stops its retries (e.g. the request's deadline).
   * Looks the cluster up (or reuses the lookup) first, so a lookup failure surfaces here.
   */
  async client(name: string, opts: { signal?: AbortSignal } = {}): Promise<KubeClient> {
    let cluster = this.clusters.get(name);
    if (!cluster) {
      cluster = new ClusterChannels(this.access(name), this.timing.attemptTimeoutMs);
      this.clusters.set(name, cluster);
    }
    await cluster.channel();
    return new KubeClient(cluster, this.timing, opts.signal);
  }

  async close(): Promise<void> {
    await Promise.all([...this.clusters.values()].map((c) => c.close()));
    this.clusters.clear();
    await (await this.containerApi)?.close();
  }

  private access(name: string): ClusterAccess {
    const spec = this.specs.get(name);
    if (!spec) throw new Error(`unknown cluster "${name}"`); // config validation makes this unreachable
    if ('gke' in spec) {
      // All GKE clusters are reached as the instance's own service account.
      const adc = this.adcToken();
      const { budgetMs, baseMs, capMs } = this.timing;
      return new GkeAccess(spec.gke, () => (this.containerApi ??= containerApiClient(this.opts.env ?? process.env, adc.auth)), adc, { budgetMs, baseMs, capMs }, {
        ...(this.opts.log && { log: this.opts.log }),
        connectGateway: (this.opts.env ?? process.env).CONNECT_GATEWAY_ENDPOINT,
      });
    }
    if ('endpoint' in spec) return new StaticEndpointAccess(spec.endpoint);
    if ('inCluster' in spec) return inClusterAccess(spec.inCluster === true ? undefined : spec.inCluster.serviceAccountDir);
    return new KubeconfigAccess(spec.kubeconfig.path, spec.kubeconfig.context);
  }
}
