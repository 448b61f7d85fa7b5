// Restores the workloads a failed deploy changed to what they ran before, with
// server-side apply under the deployer's own field manager (a JSON-patch undo would
// move field ownership away from it). Never over someone else's newer change.
import type { KubernetesObject } from '@kubernetes/client-node';
import { ApiException } from '@kubernetes/client-node/dist/gen/apis/exception.js';
import type { KubeClient } from '../cluster/client.ts';
import { apiError, describe } from '../apply/errors.ts';
import { ANNOTATIONS, EVENT_STAMPS, STAMP_KEYS, releaseKey } from '../apply/render.ts';
import type { Change } from '../apply/apply.ts';
import { DeployError } from '../errors.ts';
import { judgeChanges, withoutFields } from './ownership.ts';
import { podFailure } from './readiness.ts';
import { listWatch } from './watch.ts';

export type RollbackResult =
  | { ok: true; restored: KubernetesObject[]; deleted: KubernetesObject[] }
  | { ok: false; reason: string };

/** Workload kinds a rollback restores (a Job is not rolled back: it ran). */
export const RESTORABLE: ReadonlySet<string> = new Set(['Deployment', 'StatefulSet', 'DaemonSet']);

/** Re-reads allowed when the object moves between our read and our write (status updates do that). */
const ATTEMPTS = 5;

export interface RollbackOptions {
  /** Epoch ms: a StatefulSet's broken Pods are replaced one at a time until then at most. */
  deadline: number;
}

/**
 * All or nothing: when any changed workload was touched by someone else since the
 * deploy wrote it, none is rolled back (a half-restored target is a state nobody chose).
 */
export async function rollback(client: KubeClient, changes: readonly Change[], fieldManager: string, opts: RollbackOptions): Promise<RollbackResult> {
  // What earlier attempts already put back: their own writes, not to be judged again as
  // someone else's change, nor written twice.
  const done = new Map<number, { restored: KubernetesObject } | { deleted: KubernetesObject }>();
  // A StatefulSet's failed revision, as first read: once restored, its status names the restored one.
  const failedRevision = new Map<number, string>();
  for (let attempt = 1; ; attempt++) {
    const todo = [...changes.entries()].filter(([i]) => !done.has(i));
    const current = await Promise.all(todo.map(([, c]) => client.get(c.applied).catch((err: unknown) => { throw apiError(err, c.applied, 'read'); })));
    // Only after a 409 can some be restored already: a refusal then says which (the state is mixed).
    const already = done.size > 0 ? `; already restored: ${[...done.keys()].map((i) => describe(changes[i]!.applied)).join(', ')}` : '';
    const leaveOut = new Map<number, readonly (readonly string[])[]>();
    const ours = new Set<number>();
    for (const [j, [i, c]] of todo.entries()) {
      const live = current[j];
      const revision = live?.kind === 'StatefulSet' ? failingRevision(live) : undefined;
      if (revision !== undefined && !failedRevision.has(i)) failedRevision.set(i, revision);
      // Our own restore, written by an earlier attempt whose answer was lost (the retry of a
      // write conditional on a resourceVersion then answers 409): done, not someone's change.
      if (live && c.before !== undefined && isOurRestore(c, live)) {
        ours.add(i);
        continue;
      }
      const judged = touchedBySomeoneElse(c, live, fieldManager);
      if (typeof judged === 'string') return { ok: false, reason: `${judged}${already}` };
      leaveOut.set(i, judged.leaveOut);
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
          const restored = ours.has(i) ? live : await client.apply(restoreBody(c, precondition.resourceVersion, leaveOut.get(i) ?? []), { dryRun: false, force: true, fieldManager });
          done.set(i, { restored });
          const revision = failedRevision.get(i);
          if (live.kind === 'StatefulSet' && revision !== undefined) await replaceBrokenPods(client, live, revision, opts.deadline);
        }
      }
      const results = changes.map((_, i) => done.get(i)!);
      return { ok: true, restored: results.flatMap((r) => ('restored' in r ? [r.restored] : [])), deleted: results.flatMap((r) => ('deleted' in r ? [r.deleted] : [])) };
    } catch (err) {
      // 409: the object moved between our read and our write (a controller's status update,
      // a person, or our own write whose answer was lost). Read again and decide again.
      if (err instanceof ApiException && err.code === 409 && attempt < ATTEMPTS) continue;
      throw err instanceof DeployError ? err : apiError(err, changes[0]!.applied, 'roll back');
    }
  }
}

/**
 * Why this workload must not be rolled back, if someone else changed it after the deploy;
 * otherwise the fields to leave out of the restore. Only the fields the deploy's field
 * manager applied count (src/rollout/ownership.ts): not what controllers write (status, a
 * revision annotation), nor a scaler's replicas (an HPA, `kubectl scale`), which the restore
 * leaves as they are.
 */
export function touchedBySomeoneElse(c: Change, live: KubernetesObject | undefined, fieldManager: string): string | { leaveOut: (readonly string[])[] } {
  if (live === undefined) return `${describe(c.applied)} was deleted after this deploy wrote it; not rolled back`;
  const replaced = live.metadata?.uid !== c.after.metadata?.uid;
  const judged = replaced ? { changed: true as const, by: [] } : judgeChanges(live, fieldManager, c.after);
  if (!judged.changed) return { leaveOut: judged.leaveOut };
  const by = judged.by.join(', ');
  return `${describe(c.applied)} was ${replaced ? 'replaced' : 'changed'}${by ? ` by ${by}` : ''} after this deploy wrote it; not rolled back, so that newer change stands`;
}

/** Whether the live object carries the stamps our restore of this deploy writes. */
function isOurRestore(c: Change, live: KubernetesObject): boolean {
  if (live.metadata?.uid !== c.after.metadata?.uid) return false;
  const expected = restoreBody(c, '', []).metadata?.annotations ?? {};
  const actual = live.metadata?.annotations ?? {};
  return expected[ANNOTATIONS.rolledBack] !== undefined && [...STAMP_KEYS].every((k) => expected[k] === actual[k]);
}

/**
 * What we applied, with the pod template (or for an image-only target, the image) it
 * replaced and the stamps it had; `resourceVersion` makes the write conditional.
 */
function restoreBody(c: Change, resourceVersion: string, leaveOut: readonly (readonly string[])[]): KubernetesObject {
  const before = c.before as KubernetesObject & { spec?: { template?: PodTemplate } };
  const applied = structuredClone(c.applied) as KubernetesObject & { spec?: { template?: PodTemplate } };
  const annotations = Object.fromEntries(Object.entries(applied.metadata?.annotations ?? {}).filter(([k]) => !STAMP_KEYS.has(k)));
  for (const [k, v] of Object.entries(before.metadata?.annotations ?? {})) if (STAMP_KEYS.has(k)) annotations[k] = v;
  // The failed event stays recorded: it was handled (rolled back), so its redelivery or a
  // replay is not deployed again and an older event stays stale.
  // All of its stamps: a commit the failed event did not carry is not left from the one before.
  for (const k of EVENT_STAMPS) {
    const v = applied.metadata?.annotations?.[k];
    if (v !== undefined) annotations[k] = v;
    else delete annotations[k];
  }
  // Says the recorded event ended in this rollback: its redelivery answers `rolled-back` again
  // (src/apply/order.ts), and a retry of this write recognises it as its own.
  const failedEvent = applied.metadata?.annotations?.[ANNOTATIONS.eventId];
  const failedImage = applied.metadata?.annotations?.[ANNOTATIONS.image];
  if (failedEvent !== undefined) annotations[ANNOTATIONS.rolledBack] = failedEvent;
  else delete annotations[ANNOTATIONS.rolledBack];
  // The release that failed: quarantined while this rollback is the record.
  if (failedEvent !== undefined && failedImage !== undefined) annotations[ANNOTATIONS.failedRelease] = releaseKey(failedImage, applied.metadata?.annotations?.[ANNOTATIONS.manifests]);
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
  return withoutFields({ ...applied, metadata: { ...applied.metadata, annotations, resourceVersion } }, leaveOut);
}

interface PodTemplate {
  metadata?: Record<string, unknown>;
  spec?: { containers?: { name: string; image?: string }[] };
}

/** A StatefulSet's revision that is rolling out (and failed), while not every Pod runs it. */
export function failingRevision(sts: KubernetesObject): string | undefined {
  const status = (sts as { status?: { updateRevision?: string; currentRevision?: string } }).status;
  return status?.updateRevision && status.updateRevision !== status.currentRevision ? status.updateRevision : undefined;
}

/**
 * A StatefulSet does not replace a broken Pod of the failed revision by itself once the
 * template is restored (the Kubernetes docs' "forced rollback"): it waits for that Pod to
 * become Ready, which it never will. So those Pods are replaced, and only those: not Ready,
 * or stuck (readiness.ts podFailure). A Ready Pod of the failed revision is the controller's
 * to roll back, one at a time, as it rolls out. Like the controller, one Pod at a time,
 * highest ordinal first, the next only once the previous one's replacement is Ready; each
 * through the Eviction API, so a PodDisruptionBudget is honoured.
 */
export async function replaceBrokenPods(client: KubeClient, sts: KubernetesObject, revision: string, deadline: number): Promise<void> {
  const namespace = sts.metadata?.namespace ?? '';
  const labels = (sts as { spec?: { selector?: { matchLabels?: Record<string, string> } } }).spec?.selector?.matchLabels ?? {};
  const labelSelector = [...Object.entries(labels).map(([k, v]) => `${k}=${v}`), `controller-revision-hash=${revision}`].join(',');
  const tried = new Set<string>();
  while (Date.now() < deadline) {
    const { items } = await client.list('v1', 'Pod', namespace, { labelSelector });
    const broken = items
      .filter((pod) => pod.metadata?.ownerReferences?.some((o) => o.uid === sts.metadata?.uid) && !pod.metadata.deletionTimestamp && !tried.has(pod.metadata.uid ?? ''))
      .filter((pod) => !isReady(pod) || podFailure(pod) !== undefined)
      .sort((a, b) => ordinal(b) - ordinal(a));
    const pod = broken[0];
    if (!pod) return;
    const uid = pod.metadata?.uid ?? '';
    tried.add(uid);
    let evicted: boolean;
    try {
      evicted = await client.evict(pod, uid);
    } catch (err) {
      // Gone, or replaced by the controller meanwhile (the uid precondition): nothing to do.
      if (err instanceof ApiException && (err.code === 404 || err.code === 409)) continue;
      throw err;
    }
    if (!evicted) {
      // A budget that refuses: a Pod that is not Ready counts as unavailable already, so
      // deleting it costs no availability; a Ready one is left to the controller.
      if (isReady(pod)) continue;
      await client.delete(pod, { uid }).catch((err: unknown) => {
        if (!(err instanceof ApiException && err.code === 404)) throw err;
      });
    }
    if (!(await replaced(client, pod, deadline))) return;
  }
}

/** Waits (a watch) until a new Pod of the same name is Ready; false when the deadline comes first. */
async function replaced(client: KubeClient, pod: KubernetesObject, deadline: number): Promise<boolean> {
  const controller = new AbortController();
  const name = pod.metadata?.name ?? '';
  let resolve!: (ok: boolean) => void;
  const result = new Promise<boolean>((r) => (resolve = r));
  const timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
  const spec = { apiVersion: 'v1', kind: 'Pod', namespace: pod.metadata?.namespace ?? '', fieldSelector: `metadata.name=${name}` };
  listWatch(client, spec, (type, obj) => {
    if (type !== 'DELETED' && obj.metadata?.uid !== pod.metadata?.uid && isReady(obj)) resolve(true);
  }, controller.signal).catch(() => resolve(false));
  try {
    return await result;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

function isReady(pod: KubernetesObject): boolean {
  const conditions = (pod as { status?: { conditions?: { type?: string; status?: string }[] } }).status?.conditions ?? [];
  return !pod.metadata?.deletionTimestamp && conditions.some((c) => c.type === 'Ready' && c.status === 'True');
}

/** A StatefulSet Pod's ordinal: the number its name ends with. */
function ordinal(pod: KubernetesObject): number {
  const m = /-(\d+)$/.exec(pod.metadata?.name ?? '');
  return m ? Number(m[1]) : -1;
}

/** The image of the target container before the deploy, for the answer. */
export function imageBefore(c: Change, container?: string): string | undefined {
  const containers = (c.before as { spec?: { template?: PodTemplate } } | undefined)?.spec?.template?.spec?.containers ?? [];
  return (container !== undefined ? containers.find((x) => x.name === container) : containers[0])?.image ?? c.before?.metadata?.annotations?.[ANNOTATIONS.image];
}
