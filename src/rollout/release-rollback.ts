// A failed OCI release is rolled back whole: the previous release (its artifact, by digest,
// with its image) is applied again, every object of it, and what the failed release added is
// deleted. Workloads it took over that no release had (a first release adopting a Deployment)
// get the pod-template restore, which stays the rollback of file and image-only targets,
// whose earlier manifests nobody kept. Never over someone else's newer change: as there, when
// anyone else touched what the failed release wrote, nothing is rolled back.
import type { KubernetesObject } from '@kubernetes/client-node';
import { ApiException } from '@kubernetes/client-node/dist/gen/apis/exception.js';
import type { KubeClient } from '../cluster/client.ts';
import type { Change } from '../apply/apply.ts';
import { apiError } from '../apply/errors.ts';
import { RESTORABLE, failingRevision, replaceBrokenPods, rollback, touchedBySomeoneElse, type RollbackOptions, type RollbackResult } from './rollback.ts';

/** Kind and name: the same object whatever version of its API a release names it by. */
const identity = (obj: KubernetesObject): string => `${(obj.apiVersion ?? '').split('/').slice(0, -1).join('/')}|${obj.kind ?? ''}|${obj.metadata?.name ?? ''}`;

/**
 * `previous`: the previous release rendered as it ran (its image and stamps), with the failed
 * event's stamps and the rolled-back mark, and the ApplySet parent recording it. The parent is
 * written last: until then it still names every kind a later prune must look at.
 */
export async function restoreRelease(client: KubeClient, changes: readonly Change[], previous: { objects: readonly KubernetesObject[]; parent: KubernetesObject }, fieldManager: string, opts: RollbackOptions & { namespace: string }): Promise<RollbackResult> {
  const written = changes.filter((c) => c.before === undefined || c.after.metadata?.resourceVersion !== c.before.metadata?.resourceVersion);
  const live = await Promise.all(written.map((c) => client.get(c.applied).catch((err: unknown) => { throw apiError(err, c.applied, 'read'); })));
  const failing = new Map<string, string>();
  for (const [i, c] of written.entries()) {
    const judged = touchedBySomeoneElse(c, live[i], fieldManager);
    if (typeof judged === 'string') return { ok: false, reason: judged };
    const revision = live[i]?.kind === 'StatefulSet' ? failingRevision(live[i]) : undefined;
    if (revision !== undefined) failing.set(identity(c.applied), revision);
  }
  // Namespaced kinds go to the target's namespace, as the apply stage put them.
  const objects = await Promise.all(previous.objects.map(async (o) => ((await client.isNamespaced(o.apiVersion ?? '', o.kind ?? '')) === false ? o : { ...o, metadata: { ...o.metadata, namespace: opts.namespace } })));
  const keep = new Set(objects.map(identity));
  const added = written.filter((c) => c.before === undefined && !keep.has(identity(c.applied)));
  const adopted = written.filter((c) => c.before !== undefined && !keep.has(identity(c.applied)) && RESTORABLE.has(c.applied.kind ?? ''));
  const restored: KubernetesObject[] = [];
  if (adopted.length > 0) {
    const undone = await rollback(client, adopted, fieldManager, opts);
    if (!undone.ok) return undone;
    restored.push(...undone.restored);
  }
  for (const obj of objects) {
    restored.push(await client.apply(obj, { dryRun: false, force: true, fieldManager }).catch((err: unknown) => { throw apiError(err, obj, 'roll back'); }));
  }
  for (const c of added) {
    await client.delete(c.applied, { uid: c.after.metadata?.uid ?? '' }).catch((err: unknown) => {
      if (!(err instanceof ApiException && err.code === 404)) throw apiError(err, c.applied, 'delete');
    });
  }
  await client.apply(previous.parent, { dryRun: false, force: true, fieldManager }).catch((err: unknown) => { throw apiError(err, previous.parent, 'roll back'); });
  // A StatefulSet leaves the failed revision's broken Pods in place (rollback.ts says why).
  for (const sts of restored) {
    const revision = sts.kind === 'StatefulSet' ? failing.get(identity(sts)) : undefined;
    if (revision !== undefined) await replaceBrokenPods(client, sts, revision, opts.deadline);
  }
  return { ok: true, restored, deleted: added.map((c) => c.applied) };
}
