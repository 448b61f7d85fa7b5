// One deploy of a target at a time, across every instance: a coordination.k8s.io Lease
// in the target's namespace, held while a deploy decides (stale? duplicate?) and writes.
// Cloud Run runs many instances, so an in-process mutex would not do. The Lease expires
// on its own if its holder dies; it is not held through the rollout wait.
import { randomBytes } from 'node:crypto';
import { ApiException, type KubernetesObject } from '@kubernetes/client-node';
import type { KubeClient } from '../cluster/client.ts';
import { DeployError } from '../errors.ts';
import { apiError } from './errors.ts';

/** Long enough for a decide-and-apply, short enough that a crashed holder frees it soon. */
export const LEASE_SECONDS = 30;

export interface Lock {
  release(): Promise<void>;
}

export function leaseName(target: string): string {
  return `gke-deployer.${target}`;
}

/** Waits for the Lease until `deadline`; then CLUSTER_UNAVAILABLE (retryable: a redelivery tries again). */
export async function lockTarget(client: KubeClient, namespace: string, target: string, requestId: string, deadline: number): Promise<Lock> {
  // Unique per attempt: a redelivery of the same request must not take the Lease for its own.
  const holder = `${requestId.slice(0, 100)}/${randomBytes(6).toString('hex')}`;
  const ref = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: leaseName(target), namespace } };
  const lease = (resourceVersion?: string): KubernetesObject & { spec: unknown } => ({
    ...ref,
    metadata: { ...ref.metadata, ...(resourceVersion !== undefined && { resourceVersion }) },
    spec: { holderIdentity: holder, leaseDurationSeconds: LEASE_SECONDS, acquireTime: microTime(), renewTime: microTime() },
  });
  for (let attempt = 0; ; attempt++) {
    try {
      const held = await client.create(lease());
      return { release: () => release(client, held) };
    } catch (err) {
      if (!(err instanceof ApiException && err.code === 409)) throw apiError(err, ref, 'lock (create Lease)');
    }
    const current = await client.get(ref).catch((err: unknown) => { throw apiError(err, ref, 'lock (read Lease)'); });
    // Ours already: a retried create (or take-over) whose first answer was lost.
    if (current && (current as { spec?: { holderIdentity?: string } }).spec?.holderIdentity === holder) return { release: () => release(client, current) };
    if (current && expired(current)) {
      // Its holder died mid-deploy: take it over, if nobody else did first.
      try {
        const held = await client.replace(lease(current.metadata?.resourceVersion));
        return { release: () => release(client, held) };
      } catch (err) {
        if (!(err instanceof ApiException && (err.code === 409 || err.code === 404))) throw apiError(err, ref, 'lock (take over Lease)');
      }
    }
    const wait = Math.random() * Math.min(1000, 50 * 2 ** Math.min(attempt, 5));
    if (Date.now() + wait > deadline) {
      throw new DeployError('CLUSTER_UNAVAILABLE', `another deploy of target "${target}" still holds Lease ${namespace}/${leaseName(target)}; try again`);
    }
    await new Promise((r) => setTimeout(r, wait));
  }
}

/** RFC 3339 with microseconds, as a Lease's MicroTime fields must be. */
function microTime(): string {
  return new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function expired(lease: KubernetesObject): boolean {
  const spec = (lease as { spec?: { renewTime?: string | Date; leaseDurationSeconds?: number } }).spec;
  const renewed = spec?.renewTime ? new Date(spec.renewTime).getTime() : 0;
  return renewed + (spec?.leaseDurationSeconds ?? LEASE_SECONDS) * 1000 < Date.now();
}

async function release(client: KubeClient, held: KubernetesObject): Promise<void> {
  // Only our own Lease: if it expired and was taken over, the resourceVersion no longer matches.
  await client.delete(held, { uid: held.metadata?.uid ?? '', resourceVersion: held.metadata?.resourceVersion ?? '' }).catch(() => undefined);
}
