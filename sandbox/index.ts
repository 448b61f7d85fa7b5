// The sandbox: a real Kubernetes control plane (etcd, kube-apiserver, controllers,
// scheduler, kwok nodes), fakes of Google's own endpoints (metadata/identity, Container
// API), the Pub/Sub emulator and an OCI registry behind Artifact Registry's auth, all on loopback. Usable as a library and by cli.ts.
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ensureBinaries, ensureRegistryBinaries } from './binaries.ts';
import { makeFrontCerts } from './front-certs.ts';
import { startFronts, type Fronts } from './fronts.ts';
import { startGoogleFakes, type GoogleFakes } from './google/index.ts';
import { MINTED_TOKENS } from './google/identity.ts';
import { startControlPlane, type ControlPlane } from './kube/index.ts';
import { isRunning } from './process.ts';
import { startPubsubEmulator, type PubsubEmulator } from './pubsub.ts';
import { startRegistry, type Registry } from './registry.ts';

export const PROJECT = 'sandbox-project';
export const LOCATION = 'europe-west1';
export const CLUSTER = 'sandbox';
/** A second cluster (the same apiserver) whose public endpoint is disabled: reached by its DNS or internal endpoint. */
export const PRIVATE_CLUSTER = 'sandbox-private';
/** Fleet memberships of the two clusters (Connect gateway). */
export const MEMBERSHIPS = { cluster: `projects/${PROJECT}/locations/${LOCATION}/memberships/${CLUSTER}`, privateCluster: `projects/${PROJECT}/locations/${LOCATION}/memberships/${PRIVATE_CLUSTER}` };
/** Where the extra clusters of `clusters: n` sit: `sandbox-2` in the first of these, and so on. */
const EXTRA_LOCATIONS = ['us-central1', 'asia-northeast1', 'australia-southeast1'];
/** The most control planes one sandbox starts (each is ~5 processes and a few hundred MB). */
export const MAX_CLUSTERS = EXTRA_LOCATIONS.length + 1;
/** The identity the function runs as (the metadata server's default service account). */
export const DEPLOYER_SA = `deployer@${PROJECT}.iam.gserviceaccount.com`;

/** One control plane of the sandbox, registered in the Container API fake under `name` at `location`. */
export interface SandboxCluster {
  name: string;
  location: string;
  /** Admin kubeconfig of this cluster. */
  kubeconfig: string;
  /** This cluster's own CA. */
  caFile: string;
  server: string;
}

/** What sandbox.json holds: everything a test or the function needs to use the sandbox. */
export interface SandboxInfo {
  dir: string;
  /** Admin kubeconfig, for kubectl. */
  kubeconfig: string;
  kubectl: string;
  server: string;
  caFile: string;
  project: string;
  location: string;
  cluster: string;
  serviceAccount: string;
  /** A client certificate and key (PEM files) of serviceAccount, signed by caFile's CA: the deployer's RBAC without a token. */
  clientCert: { certFile: string; keyFile: string };
  /** Environment that makes the function use the sandbox (NODE_EXTRA_CA_CERTS: the public CA, read at process start). */
  env: Record<string, string>;
  /** The cluster whose public endpoint is disabled (DNS endpoint open to external traffic, internal endpoint). */
  privateCluster: string;
  /** The "public" CA: what the DNS front and the gateway front chain to (stands in for the system trust store). */
  publicCaFile: string;
  /** The serving certificate the public CA signed (127.0.0.1, localhost): a test's own TLS fake can present it. */
  publicCert: { certFile: string; keyFile: string };
  /** The API fronts to the same apiserver. dns and internal are host:port; connectGateway is the gateway's base URL. */
  fronts: { dns: string; internal: string; connectGateway: string };
  /** Fleet memberships (projects/P/locations/L/memberships/M) of `cluster` and `privateCluster`. */
  memberships: { cluster: string; privateCluster: string };
  /** GET: { containerApi: { getCluster }, metadata: { token }, fronts: { dns, internal, connectGateway }, registry: { proxied, tokens, unauthorized, manifestGets, manifestHeads, blobGets } } */
  stats: string;
  /** POST {identity}/id-token {audience, email} → {token}; POST {identity}/access-token {email} → {token}. */
  identity: string;
  /** PEM certs URL for OIDC verification (auth.certsUrl). */
  certsUrl: string;
  /** POST {tokenLifetimeSeconds?, containerApiFailure?, frontCa?: {dns?|internal?|connectGateway?: 'public'|'cluster'}} */
  control: string;
  pubsub?: string;
  /**
   * The OCI registry (sandbox/registry.ts): host is 127.0.0.1:PORT, serving TLS with caFile (the
   * public CA); images and artifacts are HOST/REPO/NAME:TAG. It takes an access token from the
   * metadata fake as AR does (Basic oauth2accesstoken:TOKEN via /v2/token, or directly).
   * oras is the oras CLI built with it, for tests and `npm run sandbox` users.
   */
  registry: { host: string; caFile: string; oras: string };
  /** Every cluster, the first being the one the keys above describe (`cluster`, `server`, `kubeconfig`…). */
  clusters: SandboxCluster[];
  pids: number[];
}

export interface Sandbox {
  info: SandboxInfo;
  controlPlane: ControlPlane;
  /** One per cluster, in the order of `info.clusters` (the first is `controlPlane`). */
  controlPlanes: ControlPlane[];
  google: GoogleFakes;
  pubsub?: PubsubEmulator;
  fronts: Fronts;
  registry: Registry;
  stop(): Promise<void>;
}

export interface SandboxOptions {
  dir: string;
  /** Start the Pub/Sub emulator (a JVM: a few seconds and ~300 MB). Default true. */
  pubsub?: boolean;
  tokenLifetimeSeconds?: number;
  /** How many independent control planes (own etcd, apiserver, controllers, kwok, CA). Default 1. */
  clusters?: number;
  /**
   * The "public" CA to sign the fronts' and Container API's certificates with, instead of a new
   * one: a second sandbox in a test process that trusts the first's (gRPC reads its roots once).
   */
  publicCa?: { caFile: string; caKeyFile: string };
  log?: (line: string) => void;
}

export async function startSandbox(opts: SandboxOptions): Promise<Sandbox> {
  const log = opts.log ?? (() => {});
  const count = opts.clusters ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > MAX_CLUSTERS) throw new Error(`clusters must be an integer from 1 to ${MAX_CLUSTERS}, got ${count}`);
  const dir = path.resolve(opts.dir);
  await prepareDir(dir);
  const [binDir, registryBinDir] = await Promise.all([ensureBinaries(), ensureRegistryBinaries()]);
  const started = Date.now();

  const google = await startGoogleFakes({
    project: PROJECT,
    serviceAccount: DEPLOYER_SA,
    ...(opts.tokenLifetimeSeconds && { tokenLifetimeSeconds: opts.tokenLifetimeSeconds }),
    // Every token the function could hold (its ADC tokens above all), for the suite's leak check.
    tokenLog: path.join(dir, MINTED_TOKENS),
  });
  const stops: (() => Promise<void>)[] = [() => google.close()];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  };
  try {
    // The extra clusters start alongside the first; each has its own folder, ports and CA.
    const startKube = (i: number) => {
      const tag = i === 0 ? '' : `${CLUSTER}-${i + 1}: `;
      return startControlPlane({ dir: path.join(dir, i === 0 ? 'kube' : `kube-${i + 1}`), binDir, tokenWebhookUrl: `${google.identityUrl}/tokenreview`, clientUser: DEPLOYER_SA, log: (l) => log(tag + l) }).then((cp) => {
        stops.push(() => cp.stop());
        return cp;
      });
    };
    const [controlPlanes, pubsub] = await Promise.all([
      Promise.all(Array.from({ length: count }, (_, i) => startKube(i))),
      opts.pubsub === false
        ? undefined
        : startPubsubEmulator({ dir: path.join(dir, 'pubsub'), project: PROJECT }).then((ps) => {
            stops.push(() => ps.stop());
            log(`pubsub emulator ready (${(ps.startMs / 1000).toFixed(1)}s)`);
            return ps;
          }),
    ]);
    const controlPlane = controlPlanes[0] as ControlPlane;

    // Like roles/container.developer on GKE: the deployer may edit namespaced objects anywhere.
    for (const cp of controlPlanes) {
      const grant = await cp.kubectl(['create', 'clusterrolebinding', 'gke-deployer-edit', '--clusterrole=edit', `--user=${DEPLOYER_SA}`]);
      if (grant.code !== 0) throw new Error(`granting the deployer RBAC failed: ${grant.stderr}`);
    }

    const certs = await makeFrontCerts(controlPlane.dir, controlPlane, opts.publicCa);
    // The Container API as Google serves it: TLS (the public CA, like Google's roots) and the caller's access token checked on every call.
    const containerApiEndpoint = await google.containerApi.serveTls(certs.public);
    google.containerApi.requireTokens((t) => google.identity.accessTokenOwner(t));
    const fronts = await startFronts({ upstream: controlPlane.server, upstreamCa: controlPlane.caPem, certs, memberships: () => Object.values(MEMBERSHIPS) });
    stops.push(() => fronts.close());
    google.identity.attachFronts(fronts);
    const registry = await startRegistry({ dir: path.join(dir, 'registry'), binDir: registryBinDir, cert: certs.public, accessTokenOwner: (t) => google.identity.accessTokenOwner(t) });
    stops.push(() => registry.close());
    google.identity.attachRegistry(registry);

    const server = new URL(controlPlane.server);
    // The public cluster's DNS endpoint refuses external traffic, so `auto` keeps using its public IP.
    google.addCluster({ project: PROJECT, location: LOCATION, name: CLUSTER, endpoint: server.host, caPem: controlPlane.caPem, dnsEndpoint: fronts.dns, membership: MEMBERSHIPS.cluster });
    google.addCluster({
      project: PROJECT,
      location: LOCATION,
      name: PRIVATE_CLUSTER,
      // With the public endpoint off, GKE's legacy `endpoint` field holds the private one.
      endpoint: fronts.internal,
      publicEndpoint: false,
      privateEndpoint: fronts.internal,
      dnsEndpoint: fronts.dns,
      dnsAllowExternalTraffic: true,
      membership: MEMBERSHIPS.privateCluster,
      caPem: controlPlane.caPem,
    });
    // The extra clusters: public IP endpoint only, each with its own CA.
    const clusters: SandboxCluster[] = controlPlanes.map((cp, i) => ({
      name: i === 0 ? CLUSTER : `${CLUSTER}-${i + 1}`,
      location: i === 0 ? LOCATION : (EXTRA_LOCATIONS[i - 1] as string),
      kubeconfig: cp.kubeconfig,
      caFile: cp.caFile,
      server: cp.server,
    }));
    clusters.forEach((c, i) => {
      if (i > 0) google.addCluster({ project: PROJECT, location: c.location, name: c.name, endpoint: new URL(c.server).host, caPem: (controlPlanes[i] as ControlPlane).caPem });
    });

    const info: SandboxInfo = {
      dir,
      kubeconfig: controlPlane.kubeconfig,
      kubectl: path.join(binDir, 'kubectl'),
      server: controlPlane.server,
      caFile: controlPlane.caFile,
      project: PROJECT,
      location: LOCATION,
      cluster: CLUSTER,
      serviceAccount: DEPLOYER_SA,
      clientCert: { certFile: controlPlane.clientCert!.certFile, keyFile: controlPlane.clientCert!.keyFile },
      privateCluster: PRIVATE_CLUSTER,
      publicCaFile: certs.publicCaFile,
      publicCert: { certFile: path.join(controlPlane.dir, 'front-public.crt'), keyFile: path.join(controlPlane.dir, 'front-public.key') },
      fronts: { dns: fronts.dns, internal: fronts.internal, connectGateway: fronts.connectGateway },
      memberships: MEMBERSHIPS,
      env: {
        GCE_METADATA_HOST: google.identity.metadataHost,
        GOOGLE_CLOUD_PROJECT: PROJECT,
        CONTAINER_API_ENDPOINT: containerApiEndpoint,
        CONNECT_GATEWAY_ENDPOINT: fronts.connectGateway,
        NODE_EXTRA_CA_CERTS: certs.publicCaFile,
        // gRPC's own roots file: grpc-js does not verify against Node's store with NODE_EXTRA_CA_CERTS (measured), so its
        // Container API connection trusts the public CA through this, as Google's roots are trusted on Cloud Run.
        GRPC_DEFAULT_SSL_ROOTS_FILE_PATH: certs.publicCaFile,
        // The sandbox's registry: the function pins images there and fetches releases from it with its ADC token.
        REGISTRY_HOST: registry.host,
        ...(pubsub && { PUBSUB_EMULATOR_HOST: pubsub.host }),
      },
      stats: `${google.identityUrl}/stats`,
      identity: google.identityUrl,
      certsUrl: `${google.identityUrl}/oauth2/v1/certs`,
      control: `${google.identityUrl}/control`,
      ...(pubsub && { pubsub: pubsub.host }),
      registry: { host: registry.host, caFile: certs.publicCaFile, oras: path.join(registryBinDir, 'oras') },
      clusters,
      pids: [process.pid, ...controlPlanes.flatMap((cp) => cp.processes().map((p) => p.pid)), ...(pubsub?.proc.child.pid ? [pubsub.proc.child.pid] : []), ...(registry.proc.child.pid ? [registry.proc.child.pid] : [])],
    };
    await writeFile(path.join(dir, 'sandbox.json'), `${JSON.stringify(info, null, 2)}\n`);
    log(`sandbox ready in ${((Date.now() - started) / 1000).toFixed(1)}s (binaries already built)`);
    return { info, controlPlane, controlPlanes, google, fronts, registry, ...(pubsub && { pubsub }), stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * Clears the state of an earlier, stopped sandbox. Refuses a folder that holds anything
 * else, or whose sandbox is still running: a mistyped SANDBOX_DIR must never delete files.
 */
async function prepareDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const entries = await readdir(dir);
  if (entries.length === 0) return;
  if (!entries.includes('sandbox.json')) {
    throw new Error(`${dir} is not empty and holds no sandbox.json: refusing to use it as a sandbox folder`);
  }
  const running = (await readSandboxInfo(dir)).pids.filter(isRunning);
  if (running.length > 0) throw new Error(`a sandbox is still running in ${dir} (pids ${running.join(', ')}); stop it or set SANDBOX_DIR`);
  for (const entry of entries.filter((e) => ['sandbox.json', 'kube', 'pubsub', 'registry', MINTED_TOKENS].includes(e) || /^kube-\d+$/.test(e))) await rm(path.join(dir, entry), { recursive: true, force: true });
}

export async function readSandboxInfo(dir: string): Promise<SandboxInfo> {
  return JSON.parse(await readFile(path.join(dir, 'sandbox.json'), 'utf8')) as SandboxInfo;
}

export function defaultSandboxDir(): string {
  return path.resolve(process.env.SANDBOX_DIR ?? '.sandbox');
}
