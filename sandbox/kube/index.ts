// A real Kubernetes control plane on loopback: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok (fake kubelets) with one fake Node.
// Deployments get ReplicaSets and Pods that turn Ready, so `kubectl rollout status`
// works; image tags "fail-pull*" / "crash*" / "fail-exit*" make Pods fail (see
// kwok-stages.yaml). kwok also serves the kubelet API, so pod logs work (logs.ts).
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freePort, startProcess, waitFor, type Proc } from '../process.ts';
import {
  apiserverArgs,
  controllerManagerArgs,
  etcdArgs,
  kwokArgs,
  schedulerArgs,
  type Layout,
  type Ports,
} from './args.ts';
import { makeCerts, type Certs } from './certs.ts';
import { request } from './http.ts';
import { writeLogsConfig } from './logs.ts';
import { run, type RunResult } from './run.ts';

export interface ControlPlaneOptions {
  /** State folder (created): certs, etcd data, kubeconfigs, one log per process. */
  dir: string;
  /** Folder holding etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok. */
  binDir: string;
  /** TokenReview endpoint for non-admin bearer tokens, e.g. http://127.0.0.1:P/tokenreview. */
  tokenWebhookUrl: string;
  /** How long the apiserver caches a TokenReview answer. Default '2s'. */
  webhookCacheTtl?: string;
  /** Make a client certificate for this user (the CA is the apiserver's --client-ca-file). */
  clientUser?: string;
  /** Progress lines (never contain a token). */
  log?: (line: string) => void;
}

export interface ControlPlane {
  /** https://127.0.0.1:PORT */
  readonly server: string;
  readonly caPem: string;
  readonly caFile: string;
  /** The cluster CA's private key (the sandbox's other fronts get certificates from it). */
  readonly caKeyFile: string;
  /** Bearer token of `admin` (group system:masters). */
  readonly adminToken: string;
  /** The client certificate of `clientUser`, when asked for. */
  readonly clientCert: Certs['client'];
  /** Admin kubeconfig, usable by kubectl and client libraries. */
  readonly kubeconfig: string;
  readonly dir: string;
  /** Name of the fake Node kwok keeps Ready. */
  readonly nodeName: string;
  /** Milliseconds to ready, per component and 'total' (from the call to ready). */
  readonly timings: Readonly<Record<string, number>>;
  /** The processes running now (name and pid). */
  processes(): { name: string; pid: number }[];
  /** Runs the sandbox's kubectl as admin. */
  kubectl(args: string[]): Promise<RunResult>;
  /** Stops kube-apiserver only; its port then refuses connections. */
  stopApiserver(): Promise<void>;
  /** Starts kube-apiserver again on the same port and data; resolves once ready. */
  startApiserver(): Promise<void>;
  /** Stops every process, controllers first, etcd last. */
  stop(): Promise<void>;
}

const NODE_NAME = 'kwok-node-0';
const START_TIMEOUT_MS = 90_000;
const stagesFile = fileURLToPath(new URL('./kwok-stages.yaml', import.meta.url));

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const log = opts.log ?? (() => {});
  const t0 = Date.now();
  const dir = path.resolve(opts.dir);
  const bin = (name: string) => path.join(opts.binDir, name);
  const l: Layout = {
    dir,
    etcdDir: path.join(dir, 'etcd'),
    adminKubeconfig: path.join(dir, 'admin.kubeconfig'),
    tokenFile: path.join(dir, 'tokens.csv'),
    webhookKubeconfig: path.join(dir, 'token-webhook.kubeconfig'),
    stagesFile,
    logsConfigFile: path.join(dir, 'kwok-logs', 'cluster-logs.yaml'),
  };
  await mkdir(path.join(dir, 'apiserver'), { recursive: true });
  await mkdir(path.join(dir, 'kwok-home'), { recursive: true });

  const ports: Ports = {
    etcdClient: await freePort(),
    etcdPeer: await freePort(),
    apiserver: await freePort(),
    controllerManager: await freePort(),
    scheduler: await freePort(),
    kubelet: await freePort(),
  };
  const server = `https://127.0.0.1:${ports.apiserver}`;
  const adminToken = randomBytes(24).toString('hex');
  const timings: Record<string, number> = {};
  const procs = new Map<string, Proc>();
  const stopping = new Set<string>();
  let caPem = '';
  let certs!: Certs;

  const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
  const start = (name: string, args: string[], env?: NodeJS.ProcessEnv): Proc => {
    const proc = startProcess({ name, command: bin(name), args, logFile: path.join(dir, `${name}.log`), env });
    procs.set(name, proc);
    stopping.delete(name);
    proc.child.once('exit', (code, signal) => {
      if (!stopping.has(name)) log(`${name} exited unexpectedly (${code ?? signal}); see ${proc.logFile}`);
    });
    return proc;
  };
  const stopProc = async (name: string, graceMs?: number) => {
    const proc = procs.get(name);
    if (!proc) return;
    stopping.add(name);
    await proc.stop(graceMs);
    procs.delete(name);
  };
  const api = (p: string, init: { method?: string; body?: unknown; contentType?: string } = {}) =>
    request(server + p, { ca: caPem, token: adminToken, ...init });
  const ready = async (name: string, since: number, check: () => Promise<boolean>, proc?: Proc) => {
    await waitFor(`${name} ready`, check, { timeoutMs: START_TIMEOUT_MS, proc, intervalMs: 100 });
    const ms = (timings[name] = Date.now() - since);
    log(`${name} ready (${secs(ms)})`);
  };

  const startApiserver = async () => {
    if (procs.has('kube-apiserver')) throw new Error('kube-apiserver is already running');
    const since = Date.now();
    const proc = start('kube-apiserver', apiserverArgs(l, ports, certs, opts.webhookCacheTtl ?? '2s'));
    // /readyz includes the RBAC bootstrap post-start hook.
    await ready('kube-apiserver', since, async () => (await api('/readyz')).status === 200, proc);
  };

  const stopAll = async () => {
    await Promise.all(['kwok', 'kube-scheduler', 'kube-controller-manager'].map(stopProc));
    await stopProc('kube-apiserver');
    await stopProc('etcd');
  };

  try {
    // Certificates and etcd do not depend on each other.
    const etcdSince = Date.now();
    const etcd = start('etcd', etcdArgs(l, ports));
    const etcdReady = ready(
      'etcd',
      etcdSince,
      async () => {
        const res = await fetch(`http://127.0.0.1:${ports.etcdClient}/health`);
        return res.ok && ((await res.json()) as { health?: string }).health === 'true';
      },
      etcd,
    );
    etcdReady.catch(() => {}); // awaited below; this only stops an early failure counting as unhandled
    certs = await makeCerts(dir, NODE_NAME, opts.clientUser);
    caPem = await readFile(certs.caFile, 'utf8');
    await Promise.all([
      writeConfigFiles(l, server, certs, adminToken, opts.tokenWebhookUrl),
      writeLogsConfig(l.logsConfigFile),
      etcdReady,
    ]);

    await startApiserver();

    // The rest only talk to the apiserver, so they start together.
    const since = Date.now();
    const kcm = start('kube-controller-manager', controllerManagerArgs(l, ports, certs));
    const sched = start('kube-scheduler', schedulerArgs(l, ports, certs));
    // kwok reads ~/.kwok/kwok.yaml if it exists; a private HOME keeps it out.
    const kwok = start('kwok', kwokArgs(l, ports, certs), { ...process.env, HOME: path.join(dir, 'kwok-home') });
    const healthz = (port: number) => async () =>
      (await request(`https://127.0.0.1:${port}/healthz`, { ca: caPem })).status === 200;
    await createNode(api, ports.kubelet);
    await Promise.all([
      ready('kube-controller-manager', since, healthz(ports.controllerManager), kcm),
      ready('kube-scheduler', since, healthz(ports.scheduler), sched),
      // Ready and untainted: kwok posts the status, the node lifecycle controller
      // then lifts the not-ready taint that admission put on the new Node.
      ready('kwok node', since, () => nodeSchedulable(api), kwok),
      // kwok's kubelet server, checked against the sandbox CA as the apiserver will.
      ready('kwok kubelet', since, healthz(ports.kubelet), kwok),
      // ServiceAccount admission rejects Pods until the namespace has "default".
      ready('default serviceaccount', since, async () => (await api('/api/v1/namespaces/default/serviceaccounts/default')).status === 200, kcm),
      // "edit"/"view" are aggregated: their rules are filled in by the controller manager.
      ready('aggregated roles', since, () => rolesAggregated(api), kcm),
    ]);
    timings.total = Date.now() - t0;
    log(`control plane ready at ${server} (${secs(timings.total)} total)`);
  } catch (err) {
    await stopAll();
    throw err;
  }

  return {
    server,
    caPem,
    caFile: certs.caFile,
    caKeyFile: certs.caKeyFile,
    adminToken,
    clientCert: certs.client,
    kubeconfig: l.adminKubeconfig,
    dir,
    nodeName: NODE_NAME,
    timings,
    processes: () =>
      [...procs.values()]
        .filter((p) => !p.exited && p.child.pid !== undefined)
        .map((p) => ({ name: p.name, pid: p.child.pid as number })),
    kubectl: (args) =>
      run(bin('kubectl'), [`--kubeconfig=${l.adminKubeconfig}`, ...args], {
        // A private discovery cache: ports get reused by later sandboxes.
        env: { ...process.env, KUBECACHEDIR: path.join(dir, 'kubectl-cache') },
      }),
    stopApiserver: async () => {
      // While clients hold watches, a graceful apiserver shutdown waits for them (up to
      // its 60s request timeout); an outage test wants it gone now, like a crash.
      await stopProc('kube-apiserver', 500);
      log('kube-apiserver stopped');
    },
    startApiserver,
    stop: async () => {
      await stopAll();
      log('control plane stopped');
    },
  };
}

async function writeConfigFiles(l: Layout, server: string, certs: Certs, adminToken: string, webhookUrl: string) {
  const kubeconfig = (name: string, cluster: Record<string, string>, user: Record<string, string>) =>
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name, cluster }],
      users: [{ name: 'user', user }],
      contexts: [{ name, context: { cluster: name, user: 'user', namespace: 'default' } }],
      'current-context': name,
    });
  // Files holding the admin token are private to this user.
  await Promise.all([
    writeFile(l.tokenFile, `${adminToken},admin,admin,"system:masters"\n`, { mode: 0o600 }),
    writeFile(
      l.adminKubeconfig,
      kubeconfig('sandbox', { server, 'certificate-authority': certs.caFile }, { token: adminToken }),
      { mode: 0o600 },
    ),
    // Plain http is fine: the webhook is the local Google identity fake.
    writeFile(l.webhookKubeconfig, kubeconfig('token-webhook', { server: webhookUrl }, {})),
  ]);
}

type Api = (p: string, init?: { method?: string; body?: unknown; contentType?: string }) => Promise<{ status: number; body: string }>;

async function createNode(api: Api, kubeletPort: number): Promise<void> {
  // Where the apiserver finds the kubelet API (pod logs): kwok writes the same values
  // (--node-ip, --node-port), but only while the Node is not Ready yet.
  const endpoint = {
    addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
    daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } },
  };
  const res = await api('/api/v1/nodes', {
    method: 'POST',
    body: {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: NODE_NAME,
        labels: {
          'kubernetes.io/hostname': NODE_NAME,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          type: 'kwok',
        },
        annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'kwok.x-k8s.io/node': 'fake' },
      },
      // kwok's node-initialize stage keeps allocatable/capacity given at creation. Room for
      // the Pods of a whole test run (a real node's 110 filled up and left Pods Pending).
      status: {
        allocatable: { cpu: '1000', memory: '4Ti', pods: '2000' },
        capacity: { cpu: '1000', memory: '4Ti', pods: '2000' },
        ...endpoint,
      },
    },
  });
  if (res.status === 201) return;
  // 409: the node survives in etcd when the same dir is started again, still Ready, so
  // kwok would not rewrite its (now stale) kubelet port for minutes.
  if (res.status !== 409) throw new Error(`creating node: HTTP ${res.status} ${res.body}`);
  const patched = await api(`/api/v1/nodes/${NODE_NAME}/status`, {
    method: 'PATCH',
    contentType: 'application/merge-patch+json',
    body: { status: endpoint },
  });
  if (patched.status !== 200) throw new Error(`updating node: HTTP ${patched.status} ${patched.body}`);
}

async function nodeSchedulable(api: Api): Promise<boolean> {
  const res = await api(`/api/v1/nodes/${NODE_NAME}`);
  if (res.status !== 200) return false;
  const node = JSON.parse(res.body) as {
    spec?: { taints?: { effect: string }[] };
    status?: { conditions?: { type: string; status: string }[] };
  };
  const isReady = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  const blocked = node.spec?.taints?.some((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute') ?? false;
  return isReady && !blocked;
}

async function rolesAggregated(api: Api): Promise<boolean> {
  const res = await api('/apis/rbac.authorization.k8s.io/v1/clusterroles/edit');
  if (res.status !== 200) return false;
  const role = JSON.parse(res.body) as { rules?: unknown[] | null };
  return (role.rules?.length ?? 0) > 0;
}
