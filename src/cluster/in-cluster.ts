// `inCluster:` the pod's own service account, as every in-cluster client does:
// KUBERNETES_SERVICE_HOST/PORT plus the mounted token and CA.
import path from 'node:path';
import { DeployError } from '../errors.ts';
import { StaticEndpointAccess } from './static-endpoint.ts';

export const DEFAULT_SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export function inClusterAccess(serviceAccountDir = DEFAULT_SERVICE_ACCOUNT_DIR, env = process.env): StaticEndpointAccess {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new DeployError('CLUSTER_UNAVAILABLE', 'inCluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not running in a pod?)');
  }
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return new StaticEndpointAccess({
    server: `https://${hostPart}:${port}`,
    caFile: path.join(serviceAccountDir, 'ca.crt'),
    tokenFile: path.join(serviceAccountDir, 'token'),
  });
}
