// Command lines of the control-plane processes. Everything binds 127.0.0.1 on ports
// chosen by the caller; every client verifies TLS against the sandbox CA.
import type { Certs } from './certs.ts';

export interface Layout {
  dir: string;
  etcdDir: string;
  adminKubeconfig: string;
  tokenFile: string;
  webhookKubeconfig: string;
  stagesFile: string;
  /** kwok's ClusterLogs (logs.ts). */
  logsConfigFile: string;
}

export interface Ports {
  etcdClient: number;
  etcdPeer: number;
  apiserver: number;
  controllerManager: number;
  scheduler: number;
  /** kwok's kubelet server: the fake Node's kubeletEndpoint (logs). */
  kubelet: number;
}

export function etcdArgs(l: Layout, p: Ports): string[] {
  const client = `http://127.0.0.1:${p.etcdClient}`;
  const peer = `http://127.0.0.1:${p.etcdPeer}`;
  return [
    '--name=sandbox',
    `--data-dir=${l.etcdDir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=sandbox=${peer}`,
    // Test data: durability is not worth the fsync latency.
    '--unsafe-no-fsync=true',
    '--log-level=warn',
  ];
}

export function apiserverArgs(
  l: Layout,
  p: Ports,
  c: Certs,
  webhookCacheTtl: string,
): string[] {
  return [
    `--etcd-servers=http://127.0.0.1:${p.etcdClient}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${p.apiserver}`,
    // Set so nothing is written to the default /var/run/kubernetes.
    `--cert-dir=${l.dir}/apiserver`,
    `--tls-cert-file=${c.certFile}`,
    `--tls-private-key-file=${c.keyFile}`,
    '--authorization-mode=RBAC',
    // Admin: a static token in group system:masters.
    `--token-auth-file=${l.tokenFile}`,
    // Client certificates signed by the sandbox CA: their CN is the user (kubeconfig client-certificate auth).
    `--client-ca-file=${c.caFile}`,
    // Everyone else (Google identities): TokenReview against the fake, with a short
    // cache so an expired or revoked token really gets 401 soon after. On top of this
    // the apiserver caches successful token authentications for a fixed 10s (no flag),
    // so a revoked token may keep working for up to ~10s.
    `--authentication-token-webhook-config-file=${l.webhookKubeconfig}`,
    '--authentication-token-webhook-version=v1',
    `--authentication-token-webhook-cache-ttl=${webhookCacheTtl}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${c.saKeyFile}`,
    `--service-account-signing-key-file=${c.saKeyFile}`,
    '--service-cluster-ip-range=10.96.0.0/16',
    '--allow-privileged=true',
    // Pod logs: the apiserver dials the Node's InternalIP (kwok's --node-ip) at its
    // kubeletEndpoint port, and verifies kwok's certificate against the sandbox CA.
    // kwok's server asks for no client certificate, so none is configured.
    '--kubelet-preferred-address-types=InternalIP',
    `--kubelet-certificate-authority=${c.caFile}`,
    // The "kubernetes" Endpoints may not hold a loopback address; nothing needs it here.
    '--endpoint-reconciler-type=none',
    '--profiling=false',
  ];
}

/** Flags shared by kube-controller-manager and kube-scheduler. */
function componentArgs(l: Layout, c: Certs, port: number): string[] {
  return [
    `--kubeconfig=${l.adminKubeconfig}`,
    `--authentication-kubeconfig=${l.adminKubeconfig}`,
    `--authorization-kubeconfig=${l.adminKubeconfig}`,
    // No client-CA configmap exists (the apiserver has no --client-ca-file): don't look for it.
    '--authentication-skip-lookup=true',
    '--bind-address=127.0.0.1',
    `--secure-port=${port}`,
    // Serve with the sandbox cert so the readiness probe can verify it.
    `--tls-cert-file=${c.certFile}`,
    `--tls-private-key-file=${c.keyFile}`,
    '--leader-elect=false',
    '--profiling=false',
  ];
}

export function controllerManagerArgs(l: Layout, p: Ports, c: Certs): string[] {
  return [
    ...componentArgs(l, c, p.controllerManager),
    // ServiceAccount tokens and the kube-root-ca.crt ConfigMap.
    `--root-ca-file=${c.caFile}`,
    `--service-account-private-key-file=${c.saKeyFile}`,
    '--controllers=*',
  ];
}

export function schedulerArgs(l: Layout, p: Ports, c: Certs): string[] {
  return componentArgs(l, c, p.scheduler);
}

export function kwokArgs(l: Layout, p: Ports, c: Certs): string[] {
  return [
    `--kubeconfig=${l.adminKubeconfig}`,
    // Each control plane runs its own kwok, so it may own every Node there.
    '--manage-all-nodes=true',
    `--config=${l.stagesFile}`,
    `--config=${l.logsConfigFile}`,
    // The kubelet API (pod logs): kwok puts --node-ip in the Node's addresses and
    // --node-port in status.daemonEndpoints.kubeletEndpoint; it would listen on
    // 0.0.0.0 unless --server-address says otherwise.
    '--node-ip=127.0.0.1',
    `--node-port=${p.kubelet}`,
    `--server-address=127.0.0.1:${p.kubelet}`,
    `--tls-cert-file=${c.kubeletCertFile}`,
    `--tls-private-key-file=${c.kubeletKeyFile}`,
    '--node-lease-duration-seconds=40',
    '--cidr=10.244.0.1/16',
  ];
}
