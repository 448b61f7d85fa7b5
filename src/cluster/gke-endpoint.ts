// Which control-plane endpoint of a GKE cluster to reach, from what getCluster reports.
// Pure: no I/O, so the rules are unit-tested (test/unit/gke-endpoint.test.ts).
import { DeployError } from '../errors.ts';

export type EndpointKind = 'dns' | 'public' | 'internal' | 'connect-gateway';
export type EndpointChoice = 'auto' | EndpointKind;

/** The parts of the v1 `Cluster` message this reads (protobuf decoding leaves '' / null for unset fields). */
export interface ClusterEndpoints {
  endpoint?: string | null;
  privateClusterConfig?: { enablePrivateEndpoint?: boolean | null; privateEndpoint?: string | null; publicEndpoint?: string | null } | null;
  controlPlaneEndpointsConfig?: {
    dnsEndpointConfig?: { endpoint?: string | null; allowExternalTraffic?: boolean | null } | null;
    ipEndpointsConfig?: { enabled?: boolean | null; enablePublicEndpoint?: boolean | null; publicEndpoint?: string | null; privateEndpoint?: string | null } | null;
  } | null;
  fleet?: { membership?: string | null } | null;
}

/** What the cluster offers: the address of each reachable kind. */
export interface Offered {
  dns?: string;
  /** Set when a DNS endpoint exists but refuses traffic from outside the VPC. */
  dnsInternalOnly?: string;
  public?: string;
  internal?: string;
  /** projects/P/locations/L/memberships/M */
  membership?: string;
}

export interface Chosen {
  kind: EndpointKind;
  /** https://… base URL of the Kubernetes API (a path prefix for the gateway). */
  server: string;
  /** IP endpoints are verified against the cluster CA; the others against the system trust store. */
  usesClusterCa: boolean;
  reason: string;
}

export const CONNECT_GATEWAY = 'https://connectgateway.googleapis.com';

const set = (s: string | null | undefined): string | undefined => (s ? s : undefined);

export function offeredEndpoints(cluster: ClusterEndpoints): Offered {
  const offered: Offered = {};
  const dns = cluster.controlPlaneEndpointsConfig?.dnsEndpointConfig;
  if (set(dns?.endpoint)) {
    if (dns?.allowExternalTraffic === true) offered.dns = dns.endpoint!;
    else offered.dnsInternalOnly = dns!.endpoint!;
  }
  const ip = cluster.controlPlaneEndpointsConfig?.ipEndpointsConfig;
  const legacy = cluster.privateClusterConfig;
  if (ip?.enabled !== false) {
    // The newer ipEndpointsConfig wins; without it, privateClusterConfig says whether
    // the legacy `endpoint` field is public (it holds the private IP when it is not).
    const publicOn = typeof ip?.enablePublicEndpoint === 'boolean' ? ip.enablePublicEndpoint : legacy?.enablePrivateEndpoint !== true;
    const publicAddress = set(ip?.publicEndpoint) ?? set(legacy?.publicEndpoint) ?? set(cluster.endpoint);
    if (publicOn && publicAddress) offered.public = publicAddress;
    const internal = set(ip?.privateEndpoint) ?? set(legacy?.privateEndpoint);
    if (internal) offered.internal = internal;
  }
  const membership = set(cluster.fleet?.membership);
  if (membership) offered.membership = normalMembership(membership);
  return offered;
}

/** `//gkehub.googleapis.com/projects/…` (how getCluster spells it) → `projects/…`. */
export function normalMembership(name: string): string {
  return name.replace(/^\/\/gkehub\.googleapis\.com\//, '');
}

/** The kinds on offer, for messages: "dns (x.gke.goog), internal (10.0.0.2)". */
export function describeOffered(offered: Offered): string {
  const parts: string[] = [];
  if (offered.dns) parts.push(`dns (${offered.dns})`);
  if (offered.public) parts.push(`public (${offered.public})`);
  if (offered.internal) parts.push(`internal (${offered.internal})`);
  if (offered.membership) parts.push(`connect-gateway (${offered.membership})`);
  const text = parts.length > 0 ? parts.join(', ') : 'no endpoint';
  return offered.dnsInternalOnly ? `${text}; its DNS endpoint ${offered.dnsInternalOnly} does not allow external traffic` : text;
}

/**
 * The endpoint to use. `auto`: the DNS endpoint when it allows external traffic, then
 * the public IP, then the internal IP. An explicit kind the cluster does not offer is a
 * CLUSTER_ERROR naming what it does offer: never a silent fallback.
 */
export function chooseEndpoint(choice: EndpointChoice, offered: Offered, opts: { resource: string; membership?: string | undefined; gateway?: string | undefined }): Chosen {
  const ip = (address: string) => `https://${address}`;
  const refuse = (why: string): never => {
    throw new DeployError('CLUSTER_ERROR', `cluster ${opts.resource}: ${why}; it offers ${describeOffered(offered)} (set clusters.<name>.gke.endpoint)`);
  };
  switch (choice) {
    case 'auto':
      if (offered.dns) return { kind: 'dns', server: ip(offered.dns), usesClusterCa: false, reason: 'the DNS endpoint allows external traffic' };
      if (offered.public) {
        return { kind: 'public', server: ip(offered.public), usesClusterCa: true, reason: `${offered.dnsInternalOnly ? 'the DNS endpoint does not allow external traffic' : 'no DNS endpoint'}; the public IP endpoint is enabled` };
      }
      if (offered.internal) {
        return { kind: 'internal', server: ip(offered.internal), usesClusterCa: true, reason: 'no DNS endpoint open to external traffic and no public IP endpoint; the internal IP endpoint needs a VPC path (Direct VPC egress)' };
      }
      return refuse('no endpoint this deployer can reach');
    case 'dns':
      if (offered.dns) return { kind: 'dns', server: ip(offered.dns), usesClusterCa: false, reason: 'configured' };
      return refuse(offered.dnsInternalOnly ? 'its DNS endpoint does not allow external traffic (allowExternalTraffic)' : 'no DNS-based endpoint');
    case 'public':
      if (offered.public) return { kind: 'public', server: ip(offered.public), usesClusterCa: true, reason: 'configured' };
      return refuse('the public IP endpoint is disabled');
    case 'internal':
      if (offered.internal) return { kind: 'internal', server: ip(offered.internal), usesClusterCa: true, reason: 'configured' };
      return refuse('no internal IP endpoint');
    case 'connect-gateway': {
      const membership = opts.membership ? normalMembership(opts.membership) : offered.membership;
      if (!membership) return refuse('not registered to a fleet (no fleet.membership) and no gke.membership configured');
      const m = /^projects\/([^/]+)\/locations\/([^/]+)\/memberships\/([^/]+)$/.exec(membership);
      if (!m) return refuse(`membership ${membership} is not projects/P/locations/L/memberships/M`);
      const base = (opts.gateway ?? CONNECT_GATEWAY).replace(/\/$/, '');
      if (!base.startsWith('https://')) return refuse(`CONNECT_GATEWAY_ENDPOINT must be an https:// URL, got ${base}`);
      return {
        kind: 'connect-gateway',
        server: `${base}/v1/projects/${m[1]}/locations/${m[2]}/gkeMemberships/${m[3]}`,
        usesClusterCa: false,
        reason: opts.membership ? 'configured, membership from gke.membership' : "configured, membership from the cluster's fleet registration",
      };
    }
  }
}
