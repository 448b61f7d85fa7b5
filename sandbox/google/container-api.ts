// Fake GKE Container API: a plaintext gRPC google.container.v1.ClusterManager on
// 127.0.0.1, built from the .proto files shipped in @google-cloud/container, so the
// real ClusterManagerClient talks to it unchanged. Only GetCluster is implemented;
// every other method answers UNIMPLEMENTED (grpc-js does that for missing handlers).
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const require = createRequire(import.meta.url);

/** The two proto roots: the client's own, and google-gax's (google/api, google/rpc, …). */
export function containerProtoDirs(): string[] {
  // build/src/index.js → package root. google-gax's `exports` hides package.json,
  // so resolve its main entry and walk up, and resolve it from the client's folder
  // in case npm ever nests a different google-gax under @google-cloud/container.
  const containerMain = require.resolve('@google-cloud/container');
  const containerRoot = path.resolve(path.dirname(containerMain), '../..');
  const gaxMain = createRequire(containerMain).resolve('google-gax');
  const gaxRoot = path.resolve(path.dirname(gaxMain), '../..');
  return [path.join(containerRoot, 'build/protos'), path.join(gaxRoot, 'build/protos')];
}

export interface ClusterSpec {
  project: string;
  location: string;
  name: string;
  /** What GKE calls the endpoint; here 'host:port' of the sandbox kube-apiserver. */
  endpoint: string;
  /** The cluster CA as PEM; served base64-encoded, as GKE does. */
  caPem: string;
  /** currentMasterVersion; defaults to a GKE-style version string. */
  masterVersion?: string;
  /** ipEndpointsConfig.enablePublicEndpoint; default true. When false, `endpoint` is the private one (as on GKE). */
  publicEndpoint?: boolean;
  /** ipEndpointsConfig.privateEndpoint (and privateClusterConfig.privateEndpoint): 'host:port'. */
  privateEndpoint?: string;
  /** dnsEndpointConfig.endpoint: 'host:port' standing in for a *.gke.goog name. */
  dnsEndpoint?: string;
  /** dnsEndpointConfig.allowExternalTraffic; default false. */
  dnsAllowExternalTraffic?: boolean;
  /** fleet.membership, as projects/P/locations/L/memberships/M (served with GKE's //gkehub.googleapis.com/ prefix). */
  membership?: string;
}

export interface ContainerApi {
  /** 'host:port' of the gRPC server. */
  readonly endpoint: string;
  readonly host: string;
  readonly port: number;
  addCluster(spec: ClusterSpec): void;
  removeCluster(project: string, location: string, name: string): boolean;
  /** GetCluster calls seen, failed ones included. */
  getClusterCount(): number;
  /**
   * Makes every GetCluster answer this gRPC status (a name such as 'UNAVAILABLE'),
   * or behave normally again with null. Throws on an unknown name.
   */
  setFailure(code: string | null): void;
  getFailure(): string | null;
  /**
   * Also serves over TLS with this certificate (as Google does), on a port of its own: resolves
   * to its 'host:port'. The function reaches the sandbox's Container API there, with its real
   * channel credentials (TLS and the ADC token), never an insecure channel.
   */
  serveTls(pair: { cert: string; key: string }): Promise<string>;
  /** From now on every call must carry `authorization: Bearer <token>` with a token `owner` knows (UNAUTHENTICATED otherwise). */
  requireTokens(owner: (token: string) => string | undefined): void;
  /** Calls refused for a missing or unknown token. */
  unauthenticatedCount(): number;
  close(): Promise<void>;
}

interface GetClusterRequest {
  projectId?: string;
  zone?: string;
  clusterId?: string;
  name?: string;
}

// GKE-like texts for the statuses tests are most likely to inject.
const FAILURE_MESSAGES: Partial<Record<string, (name: string) => string>> = {
  PERMISSION_DENIED: (name) => `Required "container.clusters.get" permission(s) for "${name}".`,
  UNAVAILABLE: () => 'The service is currently unavailable.',
  UNAUTHENTICATED: () =>
    'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
  RESOURCE_EXHAUSTED: () => 'Quota exceeded for quota metric \'Read requests\' of service \'container.googleapis.com\'.',
};

/** Parses a gRPC status name ('UNAVAILABLE', case-insensitive) to its code; OK is refused. */
export function grpcStatusCode(name: string): number | undefined {
  const key = name.trim().toUpperCase();
  if (key === 'OK' || !Object.hasOwn(grpc.status, key)) return undefined;
  const code: unknown = grpc.status[key as keyof typeof grpc.status];
  return typeof code === 'number' ? code : undefined;
}

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function clusterKey(project: string, location: string, name: string): string {
  return `projects/${project}/locations/${location}/clusters/${name}`;
}

/** The resource name a request asks for, or an error text for INVALID_ARGUMENT. */
function requestedName(req: GetClusterRequest): { name: string } | { error: string } {
  if (req.name) {
    const m = /^projects\/([^/]+)\/locations\/([^/]+)\/clusters\/([^/]+)$/.exec(req.name);
    if (!m?.[1] || !m[2] || !m[3] || ![m[1], m[2], m[3]].every((s) => SEGMENT.test(s))) {
      return { error: `Invalid resource name "${req.name}"; expected projects/*/locations/*/clusters/*.` };
    }
    return { name: req.name };
  }
  // Deprecated form: project_id + zone + cluster_id (zone may be a region too).
  const { projectId = '', zone = '', clusterId = '' } = req;
  if (![projectId, zone, clusterId].every((s) => SEGMENT.test(s))) {
    return { error: 'Either name or all of project_id, zone and cluster_id must be set.' };
  }
  return { name: clusterKey(projectId, zone, clusterId) };
}

function clusterMessage(spec: ClusterSpec, created: Date): Record<string, unknown> {
  const selfLink = `https://container.googleapis.com/v1/${clusterKey(spec.project, spec.location, spec.name)}`;
  const id = createHash('sha256').update(selfLink).digest('hex').slice(0, 32);
  const publicOn = spec.publicEndpoint ?? true;
  return {
    name: spec.name,
    location: spec.location,
    zone: spec.location, // deprecated field; GKE mirrors the location into it
    selfLink,
    id,
    endpoint: spec.endpoint,
    masterAuth: { clusterCaCertificate: Buffer.from(spec.caPem, 'utf8').toString('base64') },
    status: 'RUNNING',
    currentMasterVersion: spec.masterVersion ?? '1.34.4-gke.1000',
    createTime: created.toISOString(),
    // The v1 field names GKE serves; the older privateClusterConfig mirrors the IP endpoints.
    controlPlaneEndpointsConfig: {
      ipEndpointsConfig: {
        enabled: true,
        enablePublicEndpoint: publicOn,
        ...(publicOn && { publicEndpoint: spec.endpoint }),
        ...(spec.privateEndpoint && { privateEndpoint: spec.privateEndpoint }),
      },
      ...(spec.dnsEndpoint && { dnsEndpointConfig: { endpoint: spec.dnsEndpoint, allowExternalTraffic: spec.dnsAllowExternalTraffic ?? false } }),
    },
    ...(spec.privateEndpoint && {
      privateClusterConfig: {
        enablePrivateNodes: true,
        enablePrivateEndpoint: !publicOn,
        privateEndpoint: spec.privateEndpoint,
        ...(publicOn && { publicEndpoint: spec.endpoint }),
      },
    }),
    ...(spec.membership && { fleet: { project: spec.project, membership: `//gkehub.googleapis.com/${spec.membership}` } }),
  };
}

// Parsing cluster_service.proto takes ~250 ms; do it once per process.
let serviceCache: grpc.ServiceDefinition | undefined;

function clusterManagerService(): grpc.ServiceDefinition {
  if (serviceCache) return serviceCache;
  const definition = protoLoader.loadSync('google/container/v1/cluster_service.proto', {
    includeDirs: containerProtoDirs(),
    keepCase: false,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  const service = definition['google.container.v1.ClusterManager'] as grpc.ServiceDefinition | undefined;
  if (!service) throw new Error('google.container.v1.ClusterManager not found in cluster_service.proto');
  serviceCache = service;
  return service;
}

export async function startContainerApi(): Promise<ContainerApi> {
  const service = clusterManagerService();
  const clusters = new Map<string, { spec: ClusterSpec; created: Date }>();
  let getClusterCalls = 0;
  let failure: { name: string; code: number } | null = null;

  let tokenOwner: ((token: string) => string | undefined) | undefined;
  let unauthenticated = 0;

  const getCluster: grpc.handleUnaryCall<GetClusterRequest, Record<string, unknown>> = (call, callback) => {
    getClusterCalls++;
    if (tokenOwner) {
      // As Google answers a call without valid credentials.
      const header = call.metadata.get('authorization')[0];
      const token = typeof header === 'string' ? /^Bearer (\S+)$/.exec(header)?.[1] : undefined;
      if (token === undefined || tokenOwner(token) === undefined) {
        unauthenticated++;
        callback({ code: grpc.status.UNAUTHENTICATED, details: 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.' });
        return;
      }
    }
    const req = call.request;
    const asked = requestedName(req);
    if (failure) {
      const resource = 'name' in asked ? asked.name : '';
      const message = FAILURE_MESSAGES[failure.name]?.(resource) ?? `sandbox: injected ${failure.name}`;
      callback({ code: failure.code, details: message });
      return;
    }
    if ('error' in asked) {
      callback({ code: grpc.status.INVALID_ARGUMENT, details: asked.error });
      return;
    }
    const entry = clusters.get(asked.name);
    if (!entry) {
      callback({ code: grpc.status.NOT_FOUND, details: `Not found: ${asked.name}.` });
      return;
    }
    callback(null, clusterMessage(entry.spec, entry.created));
  };

  const server = new grpc.Server();
  server.addService(service, { getCluster });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  const host = '127.0.0.1';

  return {
    endpoint: `${host}:${port}`,
    host,
    port,
    addCluster(spec) {
      for (const [field, value] of Object.entries({ project: spec.project, location: spec.location, name: spec.name })) {
        if (!SEGMENT.test(value)) throw new Error(`addCluster: invalid ${field} ${JSON.stringify(value)}`);
      }
      if (!/^[^\s/]+:\d{1,5}$/.test(spec.endpoint) && !/^[^\s/:]+$/.test(spec.endpoint)) {
        throw new Error(`addCluster: endpoint must be 'host' or 'host:port', got ${JSON.stringify(spec.endpoint)}`);
      }
      if (!spec.caPem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('addCluster: caPem must be a PEM certificate');
      clusters.set(clusterKey(spec.project, spec.location, spec.name), { spec: { ...spec }, created: new Date() });
    },
    removeCluster(project, location, name) {
      return clusters.delete(clusterKey(project, location, name));
    },
    getClusterCount: () => getClusterCalls,
    setFailure(name) {
      if (name === null) {
        failure = null;
        return;
      }
      const code = grpcStatusCode(name);
      if (code === undefined) throw new Error(`unknown gRPC status name ${JSON.stringify(name)}`);
      failure = { name: name.trim().toUpperCase(), code };
    },
    getFailure: () => failure?.name ?? null,
    serveTls: (pair) =>
      new Promise<string>((resolve, reject) => {
        const creds = grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(pair.cert), private_key: Buffer.from(pair.key) }], false);
        // Named `localhost` (the certificate's other name): TLS sends no IP address as a server name (RFC 6066; Node warns).
        server.bindAsync(`${host}:0`, creds, (err, p) => (err ? reject(err) : resolve(`localhost:${p}`)));
      }),
    requireTokens(owner) {
      tokenOwner = owner;
    },
    unauthenticatedCount: () => unauthenticated,
    async close() {
      // Graceful first; force after a moment so a stuck client cannot hold a test open.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
