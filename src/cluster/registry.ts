// One ClusterAccess per configured cluster, built on first use, and one KubeClient
// per live connection: a warm instance reuses lookups, tokens and sockets.
import type { ClusterManagerClient } from '@google-cloud/container';
import type { ClusterSpec } from '../config/schema.ts';
import { AdcToken } from './adc-token.ts';
import { KubeClient } from './client.ts';
import type { ClusterAccess } from './connection.ts';
import { containerApiClient } from './container-api.ts';
import { GkeAccess } from './gke.ts';
import { inClusterAccess } from './in-cluster.ts';
import { KubeconfigAccess } from './kubeconfig.ts';
import { StaticEndpointAccess } from './static-endpoint.ts';

export class ClusterRegistry {
  private readonly specs: ReadonlyMap<string, ClusterSpec>;
  private readonly accesses = new Map<string, ClusterAccess>();
  private readonly clients = new Map<string, KubeClient>();
  private containerApi: Promise<ClusterManagerClient> | undefined;
  private adc: AdcToken | undefined;

  constructor(specs: ReadonlyMap<string, ClusterSpec>) {
    this.specs = specs;
  }

  async client(name: string): Promise<KubeClient> {
    const access = this.access(name);
    const connection = await access.connect();
    let client = this.clients.get(name);
    if (!client?.uses(connection)) {
      void client?.close();
      client = new KubeClient(access, connection);
      this.clients.set(name, client);
    }
    return client;
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.close()));
    this.clients.clear();
    await (await this.containerApi)?.close();
  }

  private access(name: string): ClusterAccess {
    let access = this.accesses.get(name);
    if (access) return access;
    const spec = this.specs.get(name);
    if (!spec) throw new Error(`unknown cluster "${name}"`); // config validation makes this unreachable
    if ('gke' in spec) {
      // All GKE clusters are reached as the instance's own service account.
      this.adc ??= new AdcToken();
      access = new GkeAccess(spec.gke, () => (this.containerApi ??= containerApiClient()), this.adc);
    } else if ('endpoint' in spec) {
      access = new StaticEndpointAccess(spec.endpoint);
    } else if ('inCluster' in spec) {
      access = inClusterAccess(spec.inCluster === true ? undefined : spec.inCluster.serviceAccountDir);
    } else {
      access = new KubeconfigAccess(spec.kubeconfig.path, spec.kubeconfig.context);
    }
    this.accesses.set(name, access);
    return access;
  }
}
