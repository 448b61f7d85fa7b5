// One target on one cluster: cluster access → under the target's Lease: judge, release
// (pin the image, fetch an OCI target's manifests), [preDeploy Jobs], apply → rollout (wait,
// roll back on failure) → prune → DeployResult. pipeline.ts calls it once per cluster of the
// target.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Config, Target } from '../config/load.ts';
import type { ClusterRegistry } from '../cluster/registry.ts';
import { applyImage, applyObjects, objectKey, recordedImage, type Applied } from '../apply/apply.ts';
import { objectDiff } from '../apply/diff.ts';
import { apiError } from '../apply/errors.ts';
import { fieldManagerFor } from '../apply/field-manager.ts';
import { guardedApply, type Turn, type TurnOutcome } from '../apply/guarded.ts';
import { TargetLeases, type Knowledge, type Tenure } from '../apply/lock.ts';
import { anchorOf, eventOf, judge, recordedEvent, type Ancestry, type RecordedEvent, type Verdict } from '../apply/order.ts';
import { APPLYSET_ANNOTATIONS, applysetId, applysetParent, asMember, checkParent, formatGroupKinds, groupKind, memberKey, parentBody, parseGroupKinds, prune } from '../apply/applyset.ts';
import { ANNOTATIONS, releaseKey, renderManifests, stampAnnotations, type Stamp } from '../apply/render.ts';
import type { KubeClient } from '../cluster/client.ts';
import { DeployError, asDeployError } from '../errors.ts';
import { inSpan } from '../core/trace.ts';
import { field, isRecord } from '../guards.ts';
import { parseImage } from '../core/image-ref.ts';
import { authorize, checkNamespaces } from '../policy/policy.ts';
import { isManifestsRelease, parseManifestsRef, type Releases, type ReleasedManifests } from '../release/release.ts';
import { manifestsTag } from '../release/template.ts';
import { runPreDeploy } from '../rollout/pre-deploy.ts';
import { appliedEarlier } from '../rollout/resume.ts';
import { rollOut, type PreviousRelease } from '../rollout/rollout.ts';
import type { DeployContext, DeployIntent } from '../core/intent.ts';
import type { DeployResult, ObjectResult, ReleaseInfo } from '../core/result.ts';

export interface Deps {
  config: Config;
  clusters: ClusterRegistry;
  /** The instance's per-target Leases (src/apply/lock.ts); the app closes them on shutdown. */
  leases?: TargetLeases;
  /** Asks the Git host how two commits relate (src/policy/ancestry.ts); none: Git events are ordered by time. */
  ancestry?: Ancestry | undefined;
  /** Pins images by digest and fetches OCI manifests (src/release/); none: images deploy by tag, and OCI targets cannot. */
  releases?: Releases | undefined;
}

/** Deploys `target` to `target.cluster` (the caller picks the cluster by setting it). */
export type ClusterDeployer = (target: Target, intent: DeployIntent, ctx?: DeployContext) => Promise<DeployResult>;

/** Of the request's time, what is kept back for a rollback and its wait (at most a minute). */
const ROLLBACK_SHARE = 0.25;
const ROLLBACK_RESERVE_MAX_MS = 60_000;

/** What of `requestLeftMs` the rollout wait leaves for a rollback and its wait. */
export function rollbackReserveMs(requestLeftMs: number): number {
  return Math.min(ROLLBACK_RESERVE_MAX_MS, requestLeftMs * ROLLBACK_SHARE);
}

export function clusterDeployer({ clusters, leases = new TargetLeases(), ancestry, releases }: Pick<Deps, 'clusters' | 'leases' | 'ancestry' | 'releases'>): ClusterDeployer {
  return async (target, intent, ctx = {}) => {
    const started = Date.now();
    const deadline = ctx.deadline ?? Number.POSITIVE_INFINITY;
    const reconcile = intent.image === undefined;
    const oci = target.oci;
    // An event for the manifests artifact itself (a rule on its repository): those manifests,
    // with the image the target runs.
    const manifestsOnly = isManifestsRelease(intent, target);
    const fromRecord = reconcile || manifestsOnly;
    const event = eventOf(intent);
    const container = target.container !== undefined ? { container: target.container } : {};
    // The target's ApplySet (src/apply/applyset.ts): pruned, and for an OCI target the record of its releases.
    const set = target.prune || oci ? applySetOf(target.name, target.namespace) : undefined;
    // What the deploy writes: its image (authorized, pinned by digest) on the target's
    // manifests (files, or an OCI release fetched and pinned by digest) and preDeploy Jobs,
    // stamped. Planned under the Lease, after the event is judged (a stale or duplicate
    // event resolves nothing: its image may be gone from the registry by now). A reconcile
    // (and a manifests-only release) takes the image the target records, read under the
    // Lease: read before it, a deploy writing meanwhile would make it put back the image from
    // before that deploy. A reconcile stamps the recorded event, never a new one of its own,
    // so it never replaces a newer record.
    let image = '';
    let release: ReleaseInfo | undefined;
    let manifests: ReleasedManifests | undefined;
    let stamp: Stamp | undefined;
    let objects: KubernetesObject[] = [];
    let jobs: KubernetesObject[] = [];
    /** The ApplySet parent as this deploy found it: the previous release, and the kinds to prune. */
    let parentBefore: KubernetesObject | undefined;
    /** The kinds the set may hold: the parent's (what earlier releases applied) and these objects'. */
    const setKinds = (...lists: KubernetesObject[][]): Set<string> =>
      new Set([...parseGroupKinds(parentBefore?.metadata?.annotations?.[APPLYSET_ANNOTATIONS.containsGroupKinds]), ...lists.flat().map(groupKind)]);
    const render = (base: readonly KubernetesObject[], recorded?: Recorded): void => {
      stamp = { source: intent.source, image, requestId: recorded?.requestId ?? intent.requestId, ...(recorded?.event ?? event), ...(manifests && { manifests: manifests.ref }) };
      const rendered = target.deployment ? [] : renderManifests(base, { image, stamp, ...container });
      objects = set ? rendered.map((o) => asMember(o, set.id)) : rendered;
      jobs = target.preDeployJobs.length > 0 ? renderManifests(target.preDeployJobs, { image, stamp, ...container }) : [];
    };
    const registry = (): Releases => {
      if (!releases) throw new DeployError('INTERNAL', 'no registry access is configured');
      return releases;
    };
    /** Plans the deploy from what `reader` shows; whether the workload already runs the image (a reconcile's preDeploy Jobs then do not run). */
    const plan = async (reader: KubeClient, known?: Knowledge): Promise<{ running: boolean }> => {
      if (set) {
        parentBefore = known?.get(objectKey(set.parent)) ?? (await readObject(reader, set.parent));
        checkParent(parentBefore, set.id);
      }
      // The record: on the ApplySet parent for an OCI target, else on the target's objects.
      let recorded: (Recorded & { image: string; manifests?: string; live: KubernetesObject }) | undefined;
      if (fromRecord) {
        recorded = oci ? recordOn(parentBefore) : await recordOnObjects(reader);
        if (!recorded) {
          throw new DeployError('NOT_DEPLOYED', `nothing to ${reconcile ? 'reconcile' : 'release the manifests with'}: target "${target.name}" records no image deployed by gke-deployer; deploy an image first`);
        }
      }
      const asked = recorded?.image ?? intent.image!;
      authorize(intent, target, asked);
      const reference = !oci ? undefined : reconcile ? parseManifestsRef(recorded?.manifests)?.digest : manifestsOnly ? manifestsRef(intent.image!) : manifestsTagged;
      if (oci && reference === undefined) throw new DeployError('NOT_DEPLOYED', `nothing to reconcile: target "${target.name}" records no manifests artifact`);
      // The image's digest and the manifests artifact at once: two registry round trips in one.
      const [pinned, fetched] = await Promise.all([
        // Re-applied as recorded: a digest it was pinned to then, or the tag it was deployed by.
        recorded ? releases?.asRecorded(asked) : releases?.pinImage(asked, target.pinDigests),
        oci ? registry().manifests(oci.oci, reference!) : undefined,
      ]);
      image = pinned?.ref ?? asked;
      release = pinned?.info ?? { image: asked, pinned: false, notPinned: 'no registry access is configured' };
      if (fetched) {
        manifests = fetched;
        checkNamespaces(fetched.objects, target);
        release = { ...release, manifests: { artifact: fetched.artifact, digest: fetched.digest } };
      }
      render(manifests?.objects ?? target.objects, reconcile ? recorded : undefined);
      if (!reconcile) return { running: false };
      const live = oci ? (await recordedImage(reader, objects, target.namespace))?.live : recorded?.live;
      return { running: live !== undefined && runningImage(live, target.container) === image };
    };
    /** A file or image-only target's record: the first of its objects that names an image deployed by this deployer. */
    const recordOnObjects = async (reader: KubeClient) => {
      const recordObjects: KubernetesObject[] = target.deployment
        ? [{ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: target.deployment } }]
        : target.objects;
      const record = await recordedImage(reader, recordObjects, target.namespace);
      return record && { ...recordOf(record.live), image: record.image, live: record.live };
    };
    // What can be refused without the cluster or the registry is refused first: an image the
    // target does not allow, a manifests tag the event cannot fill.
    if (!fromRecord) authorize(intent, target, intent.image!);
    const manifestsTagged = oci && !fromRecord ? manifestsTag(oci.tag, intent, intent.image!) : undefined;
    // Every request of the deploy, one in flight included, ends by the request's deadline.
    const client = (await clusters.client(target.cluster)).until(deadline);
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
      ...(release && { release }),
      ...rest,
      elapsedMs: Date.now() - started,
    });
    // The rollout wait ends early enough to leave time for a rollback and its own wait.
    const requestLeft = deadline - started;
    const reserve = rollbackReserveMs(requestLeft);
    const rolloutEnd = started + target.rollout.timeout;
    const waitEnd = Math.min(rolloutEnd, deadline - reserve);
    const waitOpts = { namespace: target.namespace, started, deadline: waitEnd, ...(ctx.progress && { progress: ctx.progress }) };

    // Stale or duplicate: judged against the record under the lock, where it counts, before
    // anything runs (a stale event runs no preDeploy Job and resolves nothing). A look outside
    // it only where no lock is taken (a dry run). A reconcile judges nothing: it re-applies the
    // record it reads under the Lease. An OCI target's record is its ApplySet parent (its
    // objects are known only once its release is fetched).
    const anchor = oci
      ? set?.parent
      : target.deployment
        ? { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: target.deployment, namespace: target.namespace } }
        : inNamespace(anchorOf(target.objects), target.namespace);
    const anchorRef = reconcile ? undefined : anchor;
    const judged = async (): Promise<DeployResult | undefined> => {
      if (!anchorRef) return undefined;
      return settle(await judge(await readObject(client, anchorRef), event, intent.force, ancestry));
    };
    const verdict = (v: Verdict): DeployResult | undefined => {
      if (v.verdict === 'apply') return undefined;
      const asked = intent.image ?? '';
      // The recorded event's deploy was rolled back: so is its redelivery, and nothing is deployed again.
      if (v.verdict === 'duplicate' && v.rolledBack) {
        const reason = `event ${event.eventId} was already deployed and rolled back${v.rolledBack.restoredImage !== undefined ? ` to ${v.rolledBack.restoredImage}` : ''}; not deployed again`;
        return result('rolled-back', { image: asked, stage: 'rollout', reason, failedImage: asked, ...(v.rolledBack.restoredImage !== undefined && { restoredImage: v.rolledBack.restoredImage }), recorded: v.recorded, objects: [] });
      }
      const reason = v.verdict === 'duplicate'
        ? `event ${event.eventId} was already applied`
        : v.by === 'commit'
          ? `event ${event.eventId} deploys ${event.commit ?? ''}, which is behind ${v.recorded.commit ?? ''} of the applied event ${v.recorded.eventId}; force: true deploys it anyway`
          : `event ${event.eventId} (${event.eventTime}) is older than the applied event ${v.recorded.eventId} (${v.recorded.eventTime}); force: true deploys it anyway`;
      return result(v.verdict, { image: asked, reason, recorded: v.recorded, objects: [] });
    };
    const ref = { cluster: target.cluster, namespace: target.namespace, target: target.name };
    // A function: the image and the previous release are known once planned in the turn.
    const rolloutOpts = () => ({
      ...waitOpts, rolloutEnd, requestDeadline: deadline, timeoutMs: target.rollout.timeout, rollback: target.rollout.rollback, fieldManager, image, ...container,
      ...(previous && { previousRelease: previous }),
    });
    // The recorded event again: a redelivery, maybe of a deploy cut short before its rollout
    // ended (its instance stopped, or its request timed out). With a rollout wait, that rollout
    // is judged now and rolled back when it failed (src/rollout/resume.ts); a good one stays a
    // `duplicate`, nothing written.
    const settle = async (v: Verdict): Promise<DeployResult | undefined> => {
      const skipped = verdict(v);
      if (v.verdict !== 'duplicate' || v.rolledBack || intent.dryRun || !target.rollout.wait) return skipped;
      // The objects as that deploy sent them: its event's stamps are what a rollback keeps recorded.
      const base = target.deployment ? [] : oci ? await recordedObjects(client) : target.objects;
      const sent = base.length > 0 ? renderManifests(base, { image: intent.image!, stamp: { source: intent.source, image: intent.image!, requestId: intent.requestId, ...event }, ...container }) : [];
      const earlier = await appliedEarlier(client, sent, target.namespace, fieldManager, target.deployment);
      if (!earlier) return skipped;
      const { status, ...rest } = await rollOut(client, earlier, { ...rolloutOpts(), image: intent.image ?? image });
      if (status === 'ready' || status === 'applied') return skipped;
      leases.forget(ref);
      return result(status, { ...rest, image: intent.image ?? image, recorded: v.recorded });
    };
    /** The objects of the release the OCI target's parent records (a redelivery's rollout is judged on them). */
    const recordedObjects = async (reader: KubeClient): Promise<KubernetesObject[]> => {
      const recorded = parseManifestsRef((await readObject(reader, set!.parent))?.metadata?.annotations?.[ANNOTATIONS.manifests]);
      return recorded ? (await registry().manifests(recorded.repository, recorded.digest)).objects : [];
    };
    const apply = (writer: KubeClient, known?: Knowledge): Promise<Applied[]> => target.deployment
      ? applyImage(writer, { ...opts, deployment: target.deployment, image, stamp: stamp!, ...container })
      : applyObjects(writer, objects, { ...opts, ...(known && { known }) });
    /** The previous OCI release, rendered to be restored whole if this one fails. */
    let previous: PreviousRelease | undefined;
    // The turn, under the Lease: plan (resolve the release; a reconcile reads its record),
    // preDeploy Jobs, the ApplySet parent, the applies; every write through the turn's fenced
    // client. preDeploy Jobs run under the Lease, so one run per target at a time (the Lease is
    // kept alive while they run), and only for an image not already running (a reconcile that
    // re-applies the running image runs none).
    const turn = async ({ client: writer, known, anchor: judgedAnchor }: Turn): Promise<TurnOutcome<DeployResult>> => {
      const { running } = await plan(client, known);
      // The very release a rollback undid, and no other release since: refused before anything runs.
      const quarantine = intent.force ? undefined : quarantinedBy(judgedAnchor, releaseKey(image, manifests?.ref));
      if (quarantine) {
        const reason = `release ${releaseKey(image, manifests?.ref)} was rolled back (event ${quarantine}); not deployed again until another release deploys successfully, or /deploy with force: true`;
        return { result: result('quarantined', { reason, objects: [] }) };
      }
      if (jobs.length > 0 && !running) {
        const pre = await runPreDeploy(writer, jobs, { ...opts, ...waitOpts, target: target.name, requestId: intent.requestId, ...container });
        if (pre.state !== 'complete') {
          return { result: result(pre.state, { stage: 'preDeploy', reason: pre.reason ?? 'a preDeploy Job did not complete', preDeploy: pre.runs, objects: [] }) };
        }
      }
      let parent: KubernetesObject | undefined;
      if (set) {
        previous = oci && target.rollout.rollback ? await previousRelease() : undefined;
        // The parent names every kind the set may hold before any member is written (KEP-3659),
        // so a prune after a failure here still finds them.
        parent = await writer.apply(parentBody(set.parent, set.id, setKinds(objects), parentAnnotations()), { dryRun: false, force: true, fieldManager })
          .catch((err: unknown) => { throw apiError(err, set.parent, 'apply'); });
      }
      return { applied: await apply(writer, known), ...(parent && { known: [parent] }) };
    };
    /** The parent's record: this deploy's stamps (judged by the next deploy of an OCI target), and the release before it. */
    const parentAnnotations = (): Record<string, string> => {
      const { [ANNOTATIONS.changeCause]: _cause, ...stamps } = stampAnnotations(stamp!);
      const was = parentBefore?.metadata?.annotations ?? {};
      const changed = was[ANNOTATIONS.manifests] !== stamps[ANNOTATIONS.manifests] || was[ANNOTATIONS.image] !== stamps[ANNOTATIONS.image];
      const before = changed ? { image: was[ANNOTATIONS.image], manifests: was[ANNOTATIONS.manifests] } : { image: was[PREVIOUS.image], manifests: was[PREVIOUS.manifests] };
      return {
        ...stamps,
        ...(before.image !== undefined && { [PREVIOUS.image]: before.image }),
        ...(before.manifests !== undefined && { [PREVIOUS.manifests]: before.manifests }),
      };
    };
    /**
     * The release the parent records, as it ran (its image and stamps), marked as this event's
     * rollback: what a failed release is restored to. A first release has none: its parent
     * then records only the event, rolled back. When its artifact is gone from the registry,
     * its workloads get the pod-template restore and the parent records it again all the same
     * (never the failed release). None when it is this very release (the pod-template restore
     * then applies).
     */
    const previousRelease = async (): Promise<PreviousRelease | undefined> => {
      const was = parentBefore?.metadata?.annotations ?? {};
      const ref = parseManifestsRef(was[ANNOTATIONS.manifests]);
      const prevImage = was[ANNOTATIONS.image];
      if (!set || (was[ANNOTATIONS.manifests] === manifests?.ref && prevImage === image)) return undefined;
      const prev = ref && prevImage !== undefined ? await registry().manifests(ref.repository, ref.digest).catch(() => undefined) : undefined;
      // Its own stamps, with this event's: the failed event stays recorded, as handled (rolled back).
      const rolledBack = { ...event, rolledBack: event.eventId };
      const restored = prev ? renderManifests(prev.objects, { image: prevImage!, stamp: { source: was[ANNOTATIONS.source] ?? intent.source, image: prevImage!, requestId: was[ANNOTATIONS.requestId] ?? intent.requestId, ...rolledBack, manifests: prev.ref }, ...container }).map((o) => asMember(o, set.id)) : [];
      const recordedStamps = Object.fromEntries([ANNOTATIONS.source, ANNOTATIONS.image, ANNOTATIONS.requestId, ANNOTATIONS.manifests, ...Object.values(PREVIOUS)].flatMap((k) => (was[k] !== undefined ? [[k, was[k]]] : [])));
      const eventStamps = {
        [ANNOTATIONS.eventId]: event.eventId,
        [ANNOTATIONS.eventTime]: event.eventTime,
        ...(event.commit !== undefined && { [ANNOTATIONS.commit]: event.commit }),
        [ANNOTATIONS.rolledBack]: event.eventId,
        [ANNOTATIONS.failedRelease]: releaseKey(image, manifests?.ref),
      };
      const parent = parentBody(set.parent, set.id, setKinds(objects, restored), { ...recordedStamps, ...eventStamps });
      return { objects: restored, parent, ...(prevImage !== undefined && { image: prevImage }), ...(prev && { manifests: prev.ref }) };
    };

    let applied: Applied[];
    if (intent.dryRun) {
      // Nothing written, so no Lease: a dry run reads and judges as it goes.
      const early = await judged();
      if (early) return early;
      await plan(client);
      applied = await inSpan('apply', { 'gke_deployer.cluster': target.cluster, 'gke_deployer.namespace': target.namespace, 'gke_deployer.dry_run': true }, () => apply(client));
      const pruned = set && target.prune ? await pruneSet(client, true) : [];
      return result('dry-run', { objects: applied.map((a) => ({ ...a.report, diff: objectDiff(a.change.before, a.change.after) })), ...(pruned.length > 0 && { pruned }) });
    }
    const guarded = await inSpan('apply', { 'gke_deployer.cluster': target.cluster, 'gke_deployer.namespace': target.namespace }, () =>
      guardedApply(leases, client, { ...ref, deadline, anchor: anchorRef, event, force: intent.force === true, ancestry }, turn));
    if ('verdict' in guarded) return (await settle(guarded))!;
    if ('result' in guarded) return guarded.result;
    applied = guarded.applied;
    if (!target.rollout.wait) return result('applied', { objects: applied.map((a) => a.report) });

    const { status, ...rest } = await rollOut(client, applied, rolloutOpts());
    // A rollback may have written the target outside the Lease: forget what the instance knew.
    if (status !== 'ready' && status !== 'applied') {
      leases.forget(ref);
      return result(status, rest);
    }
    // Ready: what left the manifests goes now, never before and never on failure.
    return result(status, { ...rest, ...(set && target.prune && (await prunedUnderLease())) });

    /** `Kind/name` of the set's members not in this release: deleted, or in a dry run listed. */
    async function pruneSet(writer: KubeClient, dryRun: boolean): Promise<string[]> {
      const gone = await prune(writer, { id: set!.id, namespace: target.namespace, groupKinds: setKinds(objects), keep: new Set(objects.map(memberKey)), clusterScoped: target.clusterScoped, dryRun });
      return gone.map((o) => `${o.kind ?? ''}/${o.metadata?.name ?? ''}`);
    }
    /**
     * The prune, in a turn of its own under the Lease, and only while the parent still
     * records this deploy's event: a newer release applied meanwhile owns the set now, and
     * its objects are not this one's to delete. Then the parent names only this release's
     * kinds. The release is Ready whatever happens here: a prune that fails (RBAC without
     * `list` on a kind, the Lease held too long) is said in `notPruned`, not as the deploy's error.
     */
    async function prunedUnderLease(): Promise<Pick<DeployResult, 'pruned' | 'notPruned'>> {
      let tenure: Tenure | undefined;
      let learned: 'keep' | 'drop' = 'keep';
      try {
        tenure = await leases.acquire(client, ref, deadline);
        const fenced = client.fenced(tenure.fence);
        const live = await readObject(client, set!.parent);
        const a = live?.metadata?.annotations ?? {};
        if (a[ANNOTATIONS.eventId] !== stamp!.eventId || a[ANNOTATIONS.requestId] !== stamp!.requestId) {
          return { notPruned: `another deploy (event ${a[ANNOTATIONS.eventId] ?? 'unknown'}) has written the target since; what is in the set is its to prune` };
        }
        const pruned = await pruneSet(fenced, false);
        const kinds = new Set(objects.map(groupKind));
        if (formatGroupKinds(kinds) !== a[APPLYSET_ANNOTATIONS.containsGroupKinds]) {
          learned = 'drop';
          await fenced.apply(parentBody(set!.parent, set!.id, kinds, parentAnnotations()), { dryRun: false, force: true, fieldManager });
        }
        return pruned.length > 0 ? { pruned } : {};
      } catch (err) {
        learned = 'drop';
        const e = asDeployError(err);
        return { notPruned: `${e.code}: ${e.message}` };
      } finally {
        tenure?.done(learned);
      }
    }
  };
}

/** The rolled-back event whose release `key` is, when the anchor's record is that rollback. */
function quarantinedBy(anchor: KubernetesObject | undefined, key: string): string | undefined {
  const a = anchor?.metadata?.annotations;
  const rolledBack = a?.[ANNOTATIONS.rolledBack];
  return rolledBack !== undefined && rolledBack === a?.[ANNOTATIONS.eventId] && a[ANNOTATIONS.failedRelease] === key ? rolledBack : undefined;
}

/** The record an object carries: the deploy's request id and event. */
interface Recorded {
  requestId: string | undefined;
  event: RecordedEvent | undefined;
}

function recordOf(live: KubernetesObject): Recorded {
  return { requestId: live.metadata?.annotations?.[ANNOTATIONS.requestId], event: recordedEvent(live) };
}

/** An OCI target's record, on its ApplySet parent. */
function recordOn(parent: KubernetesObject | undefined): (Recorded & { image: string; manifests?: string; live: KubernetesObject }) | undefined {
  const a = parent?.metadata?.annotations;
  const image = a?.[ANNOTATIONS.image];
  if (!parent || image === undefined) return undefined;
  return { ...recordOf(parent), image, ...(a?.[ANNOTATIONS.manifests] !== undefined && { manifests: a[ANNOTATIONS.manifests] }), live: parent };
}

/** The release before the current one, kept on the ApplySet parent for people (`kubectl get cm -o yaml`). */
const PREVIOUS = { image: 'gke-deployer/previous-image', manifests: 'gke-deployer/previous-manifests' } as const;

/** A manifests-only release names its artifact by digest when it has one, else by tag. */
function manifestsRef(image: string): string {
  const ref = parseImage(image);
  return ref.digest ?? ref.tag!;
}

function applySetOf(target: string, namespace: string): { parent: KubernetesObject; id: string } {
  const parent = applysetParent(target, namespace);
  return { parent, id: applysetId(parent) };
}

function inNamespace(obj: KubernetesObject | undefined, namespace: string): KubernetesObject | undefined {
  return obj && { ...obj, metadata: { ...obj.metadata, namespace } };
}

async function readObject(client: KubeClient, ref: KubernetesObject): Promise<KubernetesObject | undefined> {
  return client.get(ref).catch((err: unknown) => { throw apiError(err, ref, 'read'); });
}

/** The image the live workload runs in the target's container (or its only container). */
function runningImage(live: KubernetesObject, container: string | undefined): string | undefined {
  const spec = live.kind === 'CronJob' ? field(live, 'spec', 'jobTemplate', 'spec', 'template', 'spec') : field(live, 'spec', 'template', 'spec');
  const raw = isRecord(spec) ? spec.containers : undefined;
  const containers = Array.isArray(raw) ? raw.filter(isRecord) : [];
  const c = container !== undefined ? containers.find((x) => x.name === container) : containers.length === 1 ? containers[0] : undefined;
  return typeof c?.image === 'string' ? c.image : undefined;
}
