// One target on one cluster: cluster access → under the target's Lease: judge, [preDeploy
// Jobs], apply → rollout (wait, roll back on failure) → DeployResult. pipeline.ts calls it
// once per cluster of the target.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Config, Target } from '../config/load.ts';
import type { ClusterRegistry } from '../cluster/registry.ts';
import { applyImage, applyObjects, recordedImage, type Applied } from '../apply/apply.ts';
import { objectDiff } from '../apply/diff.ts';
import { apiError } from '../apply/errors.ts';
import { fieldManagerFor } from '../apply/field-manager.ts';
import { guardedApply, type Turn, type TurnOutcome } from '../apply/guarded.ts';
import { TargetLeases, type Knowledge } from '../apply/lock.ts';
import { anchorOf, judge, recordedEvent, type Ancestry, type RecordedEvent, type Verdict } from '../apply/order.ts';
import { ANNOTATIONS, commitStamp, renderManifests, type Stamp } from '../apply/render.ts';
import type { KubeClient } from '../cluster/client.ts';
import { DeployError } from '../errors.ts';
import { field, isRecord } from '../guards.ts';
import { authorize } from '../policy/policy.ts';
import { runPreDeploy } from '../rollout/pre-deploy.ts';
import { appliedEarlier } from '../rollout/resume.ts';
import { rollOut } from '../rollout/rollout.ts';
import type { DeployContext, DeployIntent } from '../core/intent.ts';
import type { DeployResult, ObjectResult } from '../core/result.ts';

export interface Deps {
  config: Config;
  clusters: ClusterRegistry;
  /** The instance's per-target Leases (src/apply/lock.ts); the app closes them on shutdown. */
  leases?: TargetLeases;
  /** Asks the Git host how two commits relate (src/policy/ancestry.ts); none: Git events are ordered by time. */
  ancestry?: Ancestry | undefined;
}

/** Deploys `target` to `target.cluster` (the caller picks the cluster by setting it). */
export type ClusterDeployer = (target: Target, intent: DeployIntent, ctx?: DeployContext) => Promise<DeployResult>;

/** Of the request's time, what is kept back for a rollback and its wait (at most a minute). */
const ROLLBACK_SHARE = 0.25;
const ROLLBACK_RESERVE_MAX_MS = 60_000;

export function clusterDeployer({ clusters, leases = new TargetLeases(), ancestry }: Pick<Deps, 'clusters' | 'leases' | 'ancestry'>): ClusterDeployer {
  return async (target, intent, ctx = {}) => {
    const started = Date.now();
    const deadline = ctx.deadline ?? Number.POSITIVE_INFINITY;
    const reconcile = intent.image === undefined;
    const event = { eventId: intent.eventId, eventTime: intent.eventTime, ...(intent.commit && { commit: commitStamp(intent.commit) }) };
    const container = target.container !== undefined ? { container: target.container } : {};
    // What the deploy writes: its image (authorized) on the target's manifests and preDeploy
    // Jobs, stamped. A deploy's image is the intent's, planned before any network call. A
    // reconcile's is the one the target records, read under the Lease (plan() in the turn):
    // read before it, a deploy writing meanwhile would make the reconcile put back the image
    // from before that deploy. A reconcile stamps the recorded event, never a new one of its
    // own, so it never replaces a newer record.
    let image = '';
    let stamp: Stamp | undefined;
    let objects: KubernetesObject[] = [];
    let jobs: KubernetesObject[] = [];
    const plan = (imageRef: string, recorded?: { requestId: string | undefined; event: RecordedEvent | undefined }): void => {
      image = authorize(intent, target, imageRef).image.ref;
      stamp = { source: intent.source, image, requestId: recorded?.requestId ?? intent.requestId, ...(recorded?.event ?? event) };
      objects = target.deployment ? [] : renderManifests(target.objects, { image, stamp, ...container });
      jobs = target.preDeployJobs.length > 0 ? renderManifests(target.preDeployJobs, { image, stamp, ...container }) : [];
    };
    if (intent.image !== undefined) plan(intent.image);
    /** A reconcile's plan, from the record read with `reader`; whether the workload already runs that image. */
    const planReconcile = async (reader: KubeClient): Promise<{ running: boolean }> => {
      const recordObjects: KubernetesObject[] = target.deployment
        ? [{ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: target.deployment } }]
        : target.objects;
      const record = await recordedImage(reader, recordObjects, target.namespace);
      if (record === undefined) {
        throw new DeployError('NOT_DEPLOYED', `nothing to reconcile: no object of target "${target.name}" records an image deployed by gke-deployer; deploy an image first`);
      }
      plan(record.image, { requestId: record.live.metadata?.annotations?.[ANNOTATIONS.requestId], event: recordedEvent(record.live) });
      return { running: runningImage(record.live, target.container) === image };
    };
    const client = await clusters.client(target.cluster);
    // Reconciling means taking back fields someone changed by hand, so it forces.
    const fieldManager = fieldManagerFor(target.name);
    const opts = { namespace: target.namespace, clusterScoped: target.clusterScoped, force: target.force || reconcile, dryRun: intent.dryRun, reconcile, fieldManager };
    const result = (status: DeployResult['status'], rest: Partial<DeployResult> & { objects: ObjectResult[] }): DeployResult => ({
      status,
      target: target.name,
      cluster: target.cluster,
      namespace: target.namespace,
      image,
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
    // it counts, before anything runs (a stale event runs no preDeploy Job). A look outside it
    // only where no lock is taken (a dry run). A reconcile judges nothing: it re-applies the
    // record it reads under the Lease.
    const anchor = target.deployment ? { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: target.deployment } } : anchorOf(objects);
    const anchorRef = anchor && !reconcile ? { ...anchor, metadata: { ...anchor.metadata, namespace: target.namespace } } : undefined;
    const judged = async (): Promise<DeployResult | undefined> => {
      if (!anchorRef) return undefined;
      const live = await client.get(anchorRef).catch((err: unknown) => { throw apiError(err, anchorRef, 'read'); });
      return settle(await judge(live, event, intent.force, ancestry));
    };
    const verdict = (v: Verdict): DeployResult | undefined => {
      if (v.verdict === 'apply') return undefined;
      // The recorded event's deploy was rolled back: so is its redelivery, and nothing is deployed again.
      if (v.verdict === 'duplicate' && v.rolledBack) {
        const reason = `event ${event.eventId} was already deployed and rolled back${v.rolledBack.restoredImage !== undefined ? ` to ${v.rolledBack.restoredImage}` : ''}; not deployed again`;
        return result('rolled-back', { stage: 'rollout', reason, failedImage: image, ...(v.rolledBack.restoredImage !== undefined && { restoredImage: v.rolledBack.restoredImage }), recorded: v.recorded, objects: [] });
      }
      const reason = v.verdict === 'duplicate'
        ? `event ${event.eventId} was already applied`
        : v.by === 'commit'
          ? `event ${event.eventId} deploys ${event.commit ?? ''}, which is behind ${v.recorded.commit ?? ''} of the applied event ${v.recorded.eventId}; force: true deploys it anyway`
          : `event ${event.eventId} (${event.eventTime}) is older than the applied event ${v.recorded.eventId} (${v.recorded.eventTime}); force: true deploys it anyway`;
      return result(v.verdict, { reason, recorded: v.recorded, objects: [] });
    };
    const ref = { cluster: target.cluster, namespace: target.namespace, target: target.name };
    // A function: a reconcile learns its image in the turn.
    const rolloutOpts = () => ({ ...waitOpts, rolloutEnd, requestDeadline: deadline, timeoutMs: target.rollout.timeout, rollback: target.rollout.rollback, fieldManager, image, ...container });
    // The recorded event again: a redelivery, maybe of a deploy cut short before its rollout
    // ended (its instance stopped, or its request timed out). With a rollout wait, that rollout
    // is judged now and rolled back when it failed (src/rollout/resume.ts); a good one stays a
    // `duplicate`, nothing written.
    const settle = async (v: Verdict): Promise<DeployResult | undefined> => {
      const skipped = verdict(v);
      if (v.verdict !== 'duplicate' || v.rolledBack || intent.dryRun || !target.rollout.wait) return skipped;
      const earlier = await appliedEarlier(client, objects, target.namespace, fieldManager, target.deployment);
      if (!earlier) return skipped;
      const { status, ...rest } = await rollOut(client, earlier, rolloutOpts());
      if (status === 'ready' || status === 'applied') return skipped;
      leases.forget(ref);
      return result(status, { ...rest, recorded: v.recorded });
    };
    const apply = (writer: KubeClient, known?: Knowledge): Promise<Applied[]> => target.deployment
      ? applyImage(writer, { ...opts, deployment: target.deployment, image, stamp: stamp!, ...container })
      : applyObjects(writer, objects, { ...opts, ...(known && { known }) });
    // The turn, under the Lease: (a reconcile reads its record), preDeploy Jobs, the applies;
    // every write through the turn's fenced client. preDeploy Jobs run under the Lease, so
    // one run per target at a time (the Lease is kept alive while they run), and only for
    // an image not already running (a reconcile that re-applies the running image runs none).
    const turn = async ({ client: writer, known }: Turn): Promise<TurnOutcome<DeployResult>> => {
      const running = reconcile ? (await planReconcile(client)).running : false;
      if (jobs.length > 0 && !running) {
        const pre = await runPreDeploy(writer, jobs, { ...opts, ...waitOpts, target: target.name, requestId: intent.requestId, ...container });
        if (pre.state !== 'complete') {
          return { result: result(pre.state, { stage: 'preDeploy', reason: pre.reason ?? 'a preDeploy Job did not complete', preDeploy: pre.runs, objects: [] }) };
        }
      }
      return { applied: await apply(writer, known) };
    };
    let applied: Applied[];
    if (intent.dryRun) {
      // Nothing written, so no Lease: a dry run reads and judges as it goes.
      if (reconcile) await planReconcile(client);
      const early = await judged();
      if (early) return early;
      applied = await apply(client);
    } else {
      const guarded = await guardedApply(leases, client, { ...ref, deadline, anchor: anchorRef, event, force: intent.force === true, ancestry }, turn);
      if ('verdict' in guarded) return (await settle(guarded))!;
      if ('result' in guarded) return guarded.result;
      applied = guarded.applied;
    }
    if (intent.dryRun) {
      return result('dry-run', { objects: applied.map((a) => ({ ...a.report, diff: objectDiff(a.change.before, a.change.after) })) });
    }
    if (!target.rollout.wait) return result('applied', { objects: applied.map((a) => a.report) });

    const { status, ...rest } = await rollOut(client, applied, rolloutOpts());
    // A rollback may have written the target outside the Lease: forget what the instance knew.
    if (status !== 'ready' && status !== 'applied') leases.forget(ref);
    return result(status, rest);
  };
}

/** The image the live workload runs in the target's container (or its only container). */
function runningImage(live: KubernetesObject, container: string | undefined): string | undefined {
  const spec = live.kind === 'CronJob' ? field(live, 'spec', 'jobTemplate', 'spec', 'template', 'spec') : field(live, 'spec', 'template', 'spec');
  const raw = isRecord(spec) ? spec.containers : undefined;
  const containers = Array.isArray(raw) ? raw.filter(isRecord) : [];
  const c = container !== undefined ? containers.find((x) => x.name === container) : containers.length === 1 ? containers[0] : undefined;
  return typeof c?.image === 'string' ? c.image : undefined;
}
