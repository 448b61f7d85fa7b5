// Restores the workloads a failed deploy changed to what they ran before, with
// server-side apply under the deployer's own field manager (a JSON-patch undo would
// move field ownership away from it). Never over someone else's newer change.
import { isDeepStrictEqual } from 'node:util';
import { ApiException, type KubernetesObject } from '@kubernetes/client-node';
import type { KubeClient } from '../cluster/client.ts';
import { apiError, describe } from '../apply/errors.ts';
import { ANNOTATIONS, STAMP_KEYS } from '../apply/render.ts';
import type { Change } from '../apply/apply.ts';
import { DeployError } from '../errors.ts';

export type RollbackResult =
  | { ok: true; restored: KubernetesObject[]; deleted: KubernetesObject[] }
  | { ok: false; reason: string };

/** Re-reads allowed when the object moves between our read and our write (status updates do that). */
const ATTEMPTS = 5;

/**
 * All or nothing: when any changed workload was touched by someone else since the
 * deploy wrote it, none is rolled back (a half-restored target is a state nobody chose).
 */
export async function rollback(client: KubeClient, changes: readonly Change[], fieldManager: string): Promise<RollbackResult> {
  // What earlier attempts already put back: their own writes, not to be judged again as
  // someone else's change, nor written twice.
  const done = new Map<number, { restored: KubernetesObject } | { deleted: KubernetesObject }>();
  for (let attempt = 1; ; attempt++) {
    const todo = [...changes.entries()].filter(([i]) => !done.has(i));
    const current = await Promise.all(todo.map(([, c]) => client.get(c.applied).catch((err: unknown) => { throw apiError(err, c.applied, 'read'); })));
    // Only after a 409 can some be restored already: a refusal then says which (the state is mixed).
    const already = done.size > 0 ? `; already restored: ${[...done.keys()].map((i) => describe(changes[i]!.applied)).join(', ')}` : '';
    for (const [j, [, c]] of todo.entries()) {
      const refusal = touchedBySomeoneElse(c, current[j], fieldManager);
      if (refusal) return { ok: false, reason: `${refusal}${already}` };
    }
    try {
      for (const [j, [i, c]] of todo.entries()) {
        const live = current[j]!;
        const precondition = { uid: live.metadata?.uid ?? '', resourceVersion: live.metadata?.resourceVersion ?? '' };
        if (c.before === undefined) {
          // It did not exist before the deploy: deleting it is the state before.
          await client.delete(c.applied, precondition);
          done.set(i, { deleted: c.applied });
        } else {
          done.set(i, { restored: await client.apply(restoreBody(c, precondition.resourceVersion), { dryRun: false, force: true, fieldManager }) });
          if (live.kind === 'StatefulSet') await replaceBrokenPods(client, live);
        }
      }
      const results = changes.map((_, i) => done.get(i)!);
      return { ok: true, restored: results.flatMap((r) => ('restored' in r ? [r.restored] : [])), deleted: results.flatMap((r) => ('deleted' in r ? [r.deleted] : [])) };
    } catch (err) {
      // 409: the object moved between our read and our write (a controller's status update,
      // or a person). Read again and decide again.
      if (err instanceof ApiException && err.code === 409 && attempt < ATTEMPTS) continue;
      throw err instanceof DeployError ? err : apiError(err, changes[0]!.applied, 'roll back');
    }
  }
}

/**
 * Why this workload must not be rolled back, if someone else changed it after the deploy.
 * Not resourceVersion or generation: the controllers move both (status, and the revision
 * annotation a Deployment controller writes counts as a generation). What counts is the
 * spec and the labels and annotations people set.
 */
function touchedBySomeoneElse(c: Change, live: KubernetesObject | undefined, fieldManager: string): string | undefined {
  if (live === undefined) return `${describe(c.applied)} was deleted after this deploy wrote it; not rolled back`;
  if (live.metadata?.uid === c.after.metadata?.uid && isDeepStrictEqual(intent(live), intent(c.after))) return undefined;
  const by = lastWriter(live, c.after, fieldManager);
  return `${describe(c.applied)} was changed${by ? ` by ${by}` : ''} after this deploy wrote it; not rolled back, so that newer change stands`;
}

/** What people and tools set on a workload, without what its controller writes. */
function intent(obj: KubernetesObject): unknown {
  const own = (m: Record<string, string> | undefined) => Object.fromEntries(Object.entries(m ?? {}).filter(([k]) => !k.startsWith('deployment.kubernetes.io/')));
  return { spec: (obj as { spec?: unknown }).spec, labels: own(obj.metadata?.labels), annotations: own(obj.metadata?.annotations) };
}

/** Who wrote since our apply: managedFields entries (not status) that are new or changed since then. */
function lastWriter(live: KubernetesObject, after: KubernetesObject, fieldManager: string): string | undefined {
  // An entry that only lost fields to a later writer keeps its time: only new times count.
  const stamp = (m: { manager?: string; operation?: string; subresource?: string; time?: unknown }) => `${m.manager ?? ''}|${m.operation ?? ''}|${m.subresource ?? ''}|${String(m.time)}`;
  const then = new Set((after.metadata?.managedFields ?? []).map(stamp));
  const writers = (live.metadata?.managedFields ?? []).filter((m) => m.manager !== fieldManager && m.subresource !== 'status' && !then.has(stamp(m)));
  return writers.map((m) => m.manager).filter((m, i, all) => m !== undefined && all.indexOf(m) === i).join(', ') || undefined;
}

/**
 * What we applied, with the pod template (or for an image-only target, the image) it
 * replaced and the stamps it had; `resourceVersion` makes the write conditional.
 */
function restoreBody(c: Change, resourceVersion: string): KubernetesObject {
  const before = c.before as KubernetesObject & { spec?: { template?: PodTemplate } };
  const applied = structuredClone(c.applied) as KubernetesObject & { spec?: { template?: PodTemplate } };
  const annotations = Object.fromEntries(Object.entries(applied.metadata?.annotations ?? {}).filter(([k]) => !STAMP_KEYS.has(k)));
  for (const [k, v] of Object.entries(before.metadata?.annotations ?? {})) if (STAMP_KEYS.has(k)) annotations[k] = v;
  // The failed event stays recorded: it was handled (rolled back), so its redelivery or a
  // replay is a duplicate and an older event stays stale, instead of failing all over again.
  for (const k of [ANNOTATIONS.eventId, ANNOTATIONS.eventTime]) {
    const v = applied.metadata?.annotations?.[k];
    if (v !== undefined) annotations[k] = v;
  }
  const template = applied.spec?.template;
  if (template && c.imageOnly) {
    // Only the image field is ours: restore just that.
    for (const container of template.spec?.containers ?? []) {
      const was = before.spec?.template?.spec?.containers?.find((x) => x.name === container.name);
      if (was) container.image = was.image;
    }
  } else if (applied.spec && before.spec?.template) {
    applied.spec.template = before.spec.template;
  }
  return { ...applied, metadata: { ...applied.metadata, annotations, resourceVersion } };
}

interface PodTemplate {
  metadata?: Record<string, unknown>;
  spec?: { containers?: { name: string; image?: string }[] };
}

/**
 * A StatefulSet does not replace a Pod of the failed revision by itself once the template
 * is restored (the Kubernetes docs' "forced rollback"): it waits for that Pod to become
 * Ready, which it never will. Deleting those Pods lets the controller recreate them from
 * the restored revision.
 */
async function replaceBrokenPods(client: KubeClient, failed: KubernetesObject): Promise<void> {
  const status = (failed as { status?: { updateRevision?: string; currentRevision?: string } }).status;
  const labels = (failed as { spec?: { selector?: { matchLabels?: Record<string, string> } } }).spec?.selector?.matchLabels ?? {};
  const bad = status?.updateRevision;
  if (!bad || bad === status.currentRevision) return;
  const selector = [...Object.entries(labels).map(([k, v]) => `${k}=${v}`), `controller-revision-hash=${bad}`].join(',');
  const { items } = await client.list('v1', 'Pod', failed.metadata?.namespace ?? '', { labelSelector: selector });
  for (const pod of items) {
    if (!pod.metadata?.ownerReferences?.some((o) => o.uid === failed.metadata?.uid)) continue;
    await client.delete(pod, { uid: pod.metadata.uid ?? '' }).catch((err: unknown) => {
      if (!(err instanceof ApiException && err.code === 404)) throw err;
    });
  }
}

/** The image of the target container before the deploy, for the answer. */
export function imageBefore(c: Change, container?: string): string | undefined {
  const containers = (c.before as { spec?: { template?: PodTemplate } } | undefined)?.spec?.template?.spec?.containers ?? [];
  return (container !== undefined ? containers.find((x) => x.name === container) : containers[0])?.image ?? c.before?.metadata?.annotations?.[ANNOTATIONS.image];
}
