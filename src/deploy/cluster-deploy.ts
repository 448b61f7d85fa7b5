// One target on one cluster: cluster access → [preDeploy Jobs] → apply → rollout (wait,
// roll back on failure) → DeployResult. pipeline.ts calls it once per cluster of the target.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Config, Target } from '../config/load.ts';
import type { ClusterRegistry } from '../cluster/registry.ts';
import { applyImage, applyObjects, recordedImage, type Applied } from '../apply/apply.ts';
import { objectDiff } from '../apply/diff.ts';
import { apiError } from '../apply/errors.ts';
import { fieldManagerFor } from '../apply/field-manager.ts';
import { guardedApply } from '../apply/guarded.ts';
import { TargetLeases, type Knowledge } from '../apply/lock.ts';
import { anchorOf, judge, type Verdict } from '../apply/order.ts';
import { renderManifests, type Stamp } from '../apply/render.ts';
import { DeployError } from '../errors.ts';
import { authorize } from '../policy/policy.ts';
import { runPreDeploy } from '../rollout/pre-deploy.ts';
import { appliedEarlier } from '../rollout/resume.ts';
import { rollOut } from '../rollout/rollout.ts';
import type { DeployIntent } from './intent.ts';
import type { DeployResult, ObjectResult } from './result.ts';

export interface Deps {
  config: Config;
  clusters: ClusterRegistry;
  /** The instance's per-target Leases (src/apply/lock.ts); the app closes them on shutdown. */
  leases?: TargetLeases;
}

export interface DeployContext {
  /** Epoch ms by which the deploy must have answered; waits end before it. */
  deadline?: number;
  /** Progress lines while waiting. */
  progress?: (message: string) => void;
}

/** Deploys `target` to `target.cluster` (the caller picks the cluster by setting it). */
export type ClusterDeployer = (target: Target, intent: DeployIntent, ctx?: DeployContext) => Promise<DeployResult>;

/** Of the request's time, what is kept back for a rollback and its wait (at most a minute). */
const ROLLBACK_SHARE = 0.25;
const ROLLBACK_RESERVE_MAX_MS = 60_000;

export function clusterDeployer({ clusters, leases = new TargetLeases() }: Pick<Deps, 'clusters' | 'leases'>): ClusterDeployer {
  return async (target, intent, ctx = {}) => {
    const started = Date.now();
    const deadline = ctx.deadline ?? Number.POSITIVE_INFINITY;
    const reconcile = intent.image === undefined;
    // A deploy is judged before any network call; only a reconcile must first ask the
    // cluster which image it is re-applying.
    let imageRef = intent.image;
    if (imageRef === undefined) {
      const client = await clusters.client(target.cluster);
      const objects: KubernetesObject[] = target.deployment
        ? [{ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: target.deployment } }]
        : target.objects;
      imageRef = await recordedImage(client, objects, target.namespace);
      if (imageRef === undefined) {
        throw new DeployError('NOT_DEPLOYED', `nothing to reconcile: no object of target "${target.name}" records an image deployed by gke-deployer; deploy an image first`);
      }
    }
    const { image } = authorize(intent, target, imageRef);
    const event = { eventId: intent.eventId, eventTime: intent.eventTime };
    const stamp: Stamp = { source: intent.source, image: image.ref, requestId: intent.requestId, ...event };
    const container = target.container !== undefined ? { container: target.container } : {};
    const objects = target.deployment ? [] : renderManifests(target.objects, { image: image.ref, stamp, ...container });
    const jobs = target.preDeployJobs.length > 0 ? renderManifests(target.preDeployJobs, { image: image.ref, stamp, ...container }) : [];
    const client = await clusters.client(target.cluster);
    // Reconciling means taking back fields someone changed by hand, so it forces.
    const fieldManager = fieldManagerFor(target.name);
    const opts = { namespace: target.namespace, clusterScoped: target.clusterScoped, force: target.force || reconcile, dryRun: intent.dryRun, reconcile, fieldManager };
    const result = (status: DeployResult['status'], rest: Partial<DeployResult> & { objects: ObjectResult[] }): DeployResult => ({
      status,
      target: target.name,
      cluster: target.cluster,
      namespace: target.namespace,
      image: image.ref,
      requestId: intent.requestId,
      dryRun: intent.dryRun,
      ...(reconcile && { reconciled: true }),
      ...rest,
      elapsedMs: Date.now() - started,
    });
    // The rollout wait ends early enough to leave time for a rollback and its own wait.
    const requestLeft = deadline - started;
    const reserve = Math.min(ROLLBACK_RESERVE_MAX_MS, requestLeft * ROLLBACK_SHARE);
    const rolloutEnd = started + target.rollout.timeout;
    const waitEnd = Math.min(rolloutEnd, deadline - reserve);
    const waitOpts = { namespace: target.namespace, started, deadline: waitEnd, ...(ctx.progress && { progress: ctx.progress }) };

    // Stale or duplicate: judged against the record on the live workload under the lock, where
    // it counts. A look before it only pays where something runs first (a stale event runs no
    // preDeploy Job) or where no lock is taken (a dry run).
    const anchor = target.deployment ? { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: target.deployment } } : anchorOf(objects);
    const anchorRef = anchor && !reconcile ? { ...anchor, metadata: { ...anchor.metadata, namespace: target.namespace } } : undefined;
    const judged = async (): Promise<DeployResult | undefined> => {
      if (!anchorRef) return undefined;
      const live = await client.get(anchorRef).catch((err: unknown) => { throw apiError(err, anchorRef, 'read'); });
      return settle(judge(live, event, intent.force));
    };
    const verdict = (v: Verdict): DeployResult | undefined => {
      if (v.verdict === 'apply') return undefined;
      const reason = v.verdict === 'duplicate'
        ? `event ${event.eventId} was already applied`
        : `event ${event.eventId} (${event.eventTime}) is older than the applied event ${v.recorded.eventId} (${v.recorded.eventTime}); force: true deploys it anyway`;
      return result(v.verdict, { reason, recorded: v.recorded, objects: [] });
    };
    const ref = { cluster: target.cluster, namespace: target.namespace, target: target.name };
    const rolloutOpts = { ...waitOpts, rolloutEnd, requestDeadline: deadline, timeoutMs: target.rollout.timeout, rollback: target.rollout.rollback, fieldManager, image: image.ref, ...container };
    // The recorded event again: a redelivery, maybe of a deploy cut short before its rollout
    // ended (its instance stopped, or its request timed out). With a rollout wait, that rollout
    // is judged now and rolled back when it failed (src/rollout/resume.ts); a good one stays a
    // `duplicate`, nothing written.
    const settle = async (v: Verdict): Promise<DeployResult | undefined> => {
      const skipped = verdict(v);
      if (v.verdict !== 'duplicate' || intent.dryRun || !target.rollout.wait) return skipped;
      const earlier = await appliedEarlier(client, objects, target.namespace, fieldManager, target.deployment);
      if (!earlier) return skipped;
      const { status, ...rest } = await rollOut(client, earlier, rolloutOpts);
      if (status === 'ready' || status === 'applied') return skipped;
      leases.forget(ref);
      return result(status, { ...rest, recorded: v.recorded });
    };
    const early = intent.dryRun || jobs.length > 0 ? await judged() : undefined;
    if (early) return early;

    if (jobs.length > 0 && !intent.dryRun) {
      const pre = await runPreDeploy(client, jobs, { ...opts, ...waitOpts, requestId: intent.requestId, ...container });
      if (pre.state !== 'complete') {
        return result(pre.state, { stage: 'preDeploy', reason: pre.reason ?? 'a preDeploy Job did not complete', preDeploy: pre.runs, objects: [] });
      }
    }

    const apply = (known?: Knowledge): Promise<Applied[]> => target.deployment
      ? applyImage(client, { ...opts, deployment: target.deployment, image: image.ref, stamp, ...container })
      : applyObjects(client, objects, { ...opts, ...(known && { known }) });
    let applied: Applied[];
    if (intent.dryRun) applied = await apply();
    else {
      const guarded = await guardedApply(leases, client, { ...ref, deadline, anchor: anchorRef, event, force: intent.force === true }, apply);
      if ('verdict' in guarded) return (await settle(guarded))!;
      applied = guarded.applied;
    }
    if (intent.dryRun) {
      return result('dry-run', { objects: applied.map((a) => ({ ...a.report, diff: objectDiff(a.change.before, a.change.after) })) });
    }
    if (!target.rollout.wait) return result('applied', { objects: applied.map((a) => a.report) });

    const { status, ...rest } = await rollOut(client, applied, rolloutOpts);
    // A rollback may have written the target outside the Lease: forget what the instance knew.
    if (status !== 'ready' && status !== 'applied') leases.forget(ref);
    return result(status, rest);
  };
}

