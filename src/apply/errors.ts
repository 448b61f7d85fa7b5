// What the API server said, as an error the caller can act on.
import type { KubernetesObject } from '@kubernetes/client-node';
import { ApiException } from '@kubernetes/client-node/dist/gen/apis/exception.js';
import { DeployError } from '../errors.ts';

export function describe(obj: KubernetesObject): string {
  const ns = obj.metadata?.namespace ? `${obj.metadata.namespace}/` : '';
  return `${obj.kind ?? '?'} ${ns}${obj.metadata?.name ?? '?'}`;
}

export function statusMessage(err: ApiException<unknown>): string {
  const body = err.body;
  if (typeof body === 'string') {
    try {
      const status = JSON.parse(body) as { message?: unknown };
      if (typeof status.message === 'string') return status.message;
    } catch {
      return body.slice(0, 500);
    }
  }
  if (typeof body === 'object' && body !== null && 'message' in body && typeof body.message === 'string') return body.message;
  return `HTTP ${err.code}`;
}

export function apiError(err: unknown, obj: KubernetesObject, verb: string): DeployError {
  if (!(err instanceof ApiException)) {
    return err instanceof DeployError ? err : new DeployError('INTERNAL', `${verb} ${describe(obj)}: ${String(err)}`, { cause: err });
  }
  const what = `${verb} ${describe(obj)}`;
  const message = statusMessage(err);
  switch (err.code) {
    case 409:
      return new DeployError(
        'CONFLICT',
        `${what}: ${message}. Another field manager owns these fields; change them through that manager, or set "force: true" on the target to take them over.`,
        { cause: err },
      );
    case 400:
    case 422:
      return new DeployError('INVALID_MANIFEST', `${what}: ${message}`, { cause: err });
    case 401:
      // Refused after a fresh token too (src/cluster/client.ts refreshes once): the token is
      // not one this cluster accepts (expired file, another project's identity), so RBAC would not help.
      return new DeployError(
        'CLUSTER_FORBIDDEN',
        `${what}: the cluster did not accept the deployer's credential (401 ${message}); check the identity it authenticates with (ADC, tokenFile, kubeconfig user)`,
        { cause: err },
      );
    case 403:
      return new DeployError(
        'CLUSTER_FORBIDDEN',
        `${what}: the cluster refused the deployer's identity (${message}); grant it RBAC rights on this resource`,
        { cause: err },
      );
    case 404:
      return new DeployError('NOT_FOUND', `${what}: ${message}`, { cause: err });
    case 500:
      // Server-side apply answers 500 when a manifest does not fit the kind's schema
      // (an unknown or misspelt field): that is the manifest's fault, not the server's.
      if (message.includes('failed to create typed patch object')) {
        return new DeployError('INVALID_MANIFEST', `${what}: ${message}`, { cause: err });
      }
      return new DeployError('CLUSTER_UNAVAILABLE', `${what}: ${message}`, { cause: err });
    case 429:
      return new DeployError('CLUSTER_UNAVAILABLE', `${what}: the API server is throttling (${message})`, { cause: err });
    default:
      return new DeployError(err.code >= 500 ? 'CLUSTER_UNAVAILABLE' : 'CLUSTER_ERROR', `${what}: ${message}`, { cause: err });
  }
}
