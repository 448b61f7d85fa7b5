// The rollout stage: wait for what was applied; when it fails, roll back and wait for
// that; say how it ended (a paused Deployment: `paused`, not rolled back). Knows nothing of
// where the deploy came from.
import { inSpan } from '../core/trace.ts';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { KubeClient } from '../cluster/client.ts';
import type { Applied } from '../apply/apply.ts';
import type { DeployResult, ObjectResult } from '../core/result.ts';
import { jobLogTail } from './job-logs.ts';
import { restoreRelease } from './release-rollback.ts';
import { RESTORABLE, imageBefore, rollback } from './rollback.ts';
import { waitForRollout, type WaitOptions, type WaitResult } from './wait.ts';

export interface RolloutOptions extends WaitOptions {
  /** When `rollout.timeout` passes: the wait's own `deadline` is earlier when the request ends first. */
  rolloutEnd: number;
  /** The request's deadline: the rollback's wait ends by then. */
  requestDeadline: number;
  timeoutMs: number;
  rollback: boolean;
  fieldManager: string;
  /** The image deployed (the failed one, if it fails). */
  image: string;
  container?: string;
  /** An OCI target with a release before this one: a failure restores that release whole (release-rollback.ts). */
  previousRelease?: PreviousRelease;
}

export interface PreviousRelease {
  /** Its objects as they ran, with the failed event's stamps and the rolled-back mark; none when there was none or its artifact is gone (its workloads then get the pod-template restore). */
  objects: KubernetesObject[];
  /** The ApplySet parent recording it again (with the same stamps). */
  parent: KubernetesObject;
  /** None for a first release: what it added is deleted, and nothing else was released before it. */
  image?: string;
  /** `repo@sha256:…`; none when its artifact could not be read again. */
  manifests?: string;
}

export type RolloutOutcome = Pick<DeployResult, 'status' | 'stage' | 'reason' | 'failedImage' | 'restoredImage' | 'restoredManifests' | 'objects' | 'rolledBack' | 'deleted' | 'logs'>;

export async function rollOut(client: KubeClient, applied: readonly Applied[], o: RolloutOptions): Promise<RolloutOutcome> {
  const reports = applied.map((a) => a.report);
  const waited = await inSpan('wait', { 'gke_deployer.namespace': o.namespace }, async (set) => {
    const w = await waitForRollout(client, applied.map((a) => a.change.after), o);
    set({ 'gke_deployer.state': w.state });
    return w;
  });
  const objects = merge(reports, waited);
  if (waited.state === 'ready') {
    return { status: applied.some((a) => RESTORABLE.has(a.report.kind) || a.report.kind === 'Job') ? 'ready' : 'applied', objects };
  }
  // Written, not rolled out: nothing failed, so nothing is rolled back (and a rollback would
  // not roll out either while the Deployment stays paused). The pause is someone's decision.
  if (waited.state === 'paused') return { status: 'paused', stage: 'rollout', reason: waited.reason ?? 'a Deployment is paused', objects };
  // Out of time before the rollout said either way, with the request ending: unknown state.
  if (waited.state === 'timed-out' && o.deadline < o.rolloutEnd) {
    return { status: 'timed-out', stage: 'rollout', reason: waited.reason ?? 'the request deadline came first', objects };
  }
  const reason = waited.state === 'timed-out' ? `Timeout: ${o.timeoutMs / 1000}s passed; ${waited.reason ?? ''}` : (waited.reason ?? 'the rollout failed');
  const logs = await failedJobLogs(client, applied, waited, o);
  const failed = (extra: Partial<RolloutOutcome> = {}): RolloutOutcome => ({ status: 'failed', stage: 'rollout', reason, failedImage: o.image, objects, ...(logs && { logs }), ...extra });

  const changes = applied.filter((a) => RESTORABLE.has(a.report.kind) && (a.report.action === 'created' || a.report.action === 'configured')).map((a) => a.change);
  if (!o.rollback) return failed();
  const release = o.previousRelease;
  if (changes.length === 0 && !release) return failed({ reason: `${reason} (nothing to roll back: no workload this deploy changed has a known earlier state)` });
  const restoredImage = release ? release.image : imageBefore(changes[0]!, o.container);
  // One deadline for the rollback and its wait (a StatefulSet's broken Pods are replaced within it).
  const rollbackEnd = Math.min(Date.now() + o.timeoutMs, o.requestDeadline);
  const done = await inSpan('rollback', { 'gke_deployer.namespace': o.namespace, 'gke_deployer.reason': reason }, async () => {
    const undone = release
      ? await restoreRelease(client, applied.map((a) => a.change), release, o.fieldManager, { deadline: rollbackEnd, namespace: o.namespace })
      : await rollback(client, changes, o.fieldManager, { deadline: rollbackEnd });
    return undone.ok ? { ...undone, again: await waitForRollout(client, undone.restored, { ...o, deadline: rollbackEnd }) } : undone;
  });
  if (!done.ok) return failed({ reason: `${reason}; ${done.reason}` });
  const { again, ...undone } = done;
  const rolledBack = merge(
    undone.restored.map((obj) => ({ kind: obj.kind ?? '', name: obj.metadata?.name ?? '', namespace: o.namespace, action: 'configured' as const })),
    again,
  );
  if (again.state !== 'ready') {
    return failed({ stage: 'rollback', reason: `${reason}; the rollback did not become ready: ${again.reason ?? again.state}`, rolledBack });
  }
  return {
    status: 'rolled-back',
    stage: 'rollout',
    reason,
    failedImage: o.image,
    ...(restoredImage !== undefined && { restoredImage }),
    ...(release?.manifests !== undefined && { restoredManifests: release.manifests }),
    objects,
    rolledBack,
    ...(undone.deleted.length > 0 && { deleted: undone.deleted.map((obj) => `${obj.kind ?? ''}/${obj.metadata?.name ?? ''}`) }),
  };
}

function merge(reports: readonly ObjectResult[], waited: WaitResult): ObjectResult[] {
  return reports.map((r) => {
    const w = waited.objects.find((x) => x.kind === r.kind && x.name === r.name);
    return w ? { ...r, readiness: w.readiness, message: w.message, ...(w.readyMs !== undefined && { readyMs: w.readyMs }) } : { ...r };
  });
}

/** A target that runs a Job: its failure is explained by the Job's own log. */
async function failedJobLogs(client: KubeClient, applied: readonly Applied[], waited: WaitResult, o: RolloutOptions): Promise<string[] | undefined> {
  const job = applied.find((a) => a.report.kind === 'Job' && waited.objects.some((x) => x.kind === 'Job' && x.name === a.report.name && x.readiness === 'failed'));
  return job ? jobLogTail(client, job.change.after, o.namespace, o.container) : undefined;
}
