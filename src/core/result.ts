// What a deploy answers, whatever triggered it.
// The ground floor: value types every stage shares, importing nothing above them.
import type { ErrorCode } from '../errors.ts';

/** What the apply stage did with one object. */
export type Action = 'created' | 'configured' | 'unchanged' | 'replaced';

export interface AppliedObject {
  kind: string;
  name: string;
  namespace?: string;
  action: Action;
}

/** Where one object's rollout stands, as the rollout stage judges it. */
export type ReadinessState = 'ready' | 'applied' | 'progressing' | 'paused' | 'failed';

/**
 * ready       the rollout finished: every workload is ready (Jobs complete)
 * applied     applied, nothing waited for (`rollout.wait: false`, or no kind with a readiness rule)
 * rolled-back the rollout failed and every changed workload was restored and is ready again
 * failed      the deploy failed and was not (or could not be) rolled back; `reason` says why
 * timed-out   the wait ran out of time before the rollout ended either way
 * paused      written, not rolled out: a Deployment is paused (`spec.paused`), so its controller
 *             rolls nothing out until someone resumes it; nothing rolled back
 * dry-run     nothing changed; `diff` per object says what would
 * stale       skipped: the workload records a newer event (`recorded`); nothing written
 * duplicate   skipped: the workload records this very event; nothing written
 * held        not deployed yet: a deploy window is closed or an approval is awaited; recorded in
 *             the cluster (src/control/), deployed when the hold ends; nothing else written
 * superseded  not deployed: a newer intent for the target replaced this held one (or was
 *             already held when this older one came)
 * quarantined refused: this very release was rolled back on the target, and no other release
 *             has deployed successfully since; `force: true` on /deploy deploys it anyway
 * expired     not deployed: held for approval longer than `approval.expireAfter`
 * rejected    not deployed: an approver answered POST /reject
 *
 * Every table that maps a status (src/report/outcome.ts, src/sources/answers.ts, the GitHub and
 * GitLab states, the chat headlines) is a Record over this list, so a status added here does not
 * compile until each one places it.
 */
export const DEPLOY_STATUSES = ['ready', 'applied', 'rolled-back', 'failed', 'timed-out', 'paused', 'dry-run', 'stale', 'duplicate', 'held', 'superseded', 'quarantined', 'expired', 'rejected'] as const;
export type DeployStatus = (typeof DEPLOY_STATUSES)[number];

export interface ObjectResult extends AppliedObject {
  readiness?: ReadinessState;
  message?: string;
  /** Milliseconds from the start of the deploy until the object was first seen ready. */
  readyMs?: number;
  /** Dry run: unified diff of the live object against the would-be one ("" when equal). */
  diff?: string;
}

export interface JobRun {
  name: string;
  /** `running`: still going when another run failed. */
  status: 'complete' | 'failed' | 'timed-out' | 'running';
  reason?: string;
  message?: string;
  /** The last lines of the failed Job's Pod log, where the cluster serves it. */
  logs?: string[];
}

/** What a deploy released: the image as asked for and whether it was pinned, and an OCI target's manifests artifact. */
export interface ReleaseInfo {
  /** The image as the intent named it (DeployResult.image is what was applied: pinned when `pinned`). */
  image: string;
  /** The image was applied by digest (`repo:tag@sha256:…`). */
  pinned: boolean;
  /** Why the image was applied by tag only. */
  notPinned?: string;
  /** An OCI target's manifests: the artifact fetched by tag and applied by digest. */
  manifests?: { artifact: string; digest: string };
}

export interface DeployResult {
  status: DeployStatus;
  target: string;
  cluster: string;
  namespace: string;
  image: string;
  requestId: string;
  dryRun: boolean;
  /** True when the image was the one the workload recorded (a reconcile). */
  reconciled?: boolean;
  /** How the image was pinned and which manifests artifact was applied (absent when nothing was resolved, e.g. stale). */
  release?: ReleaseInfo;
  /** Stale or duplicate: the event the workload records. */
  recorded?: { eventId: string; eventTime: string };
  /** Where a failed deploy stopped. */
  stage?: 'preDeploy' | 'rollout' | 'rollback';
  reason?: string;
  failedImage?: string;
  restoredImage?: string;
  preDeploy?: JobRun[];
  objects: ObjectResult[];
  /** Readiness of the restored workloads after a rollback. */
  rolledBack?: ObjectResult[];
  /** What the failed deploy had created, deleted by the rollback (`Kind/name`): its workloads; for an OCI release, every object it added. */
  deleted?: string[];
  /** A rolled-back OCI release: the previous release's manifests artifact, re-applied whole (`repo@sha256:…`). */
  restoredManifests?: string;
  /** Objects that left the manifests, deleted once the release was Ready (`Kind/name`); a dry run: what would be. */
  pruned?: string[];
  /** Ready, but the prune did not run or did not finish: why (the release stands; the next deploy prunes again). */
  notPruned?: string;
  /** The last lines of a failed Job's Pod log (a target that runs a Job). */
  logs?: string[];
  /** Held (or, for superseded/expired/rejected, the hold that ended): what waits, and for what. */
  hold?: HoldInfo;
  /** Deployed outside the target's windows by break-glass (`override`): who and why. */
  override?: { by: string; reason: string };
  elapsedMs: number;
}

export interface HoldInfo {
  /** The held event: what POST /approve and /reject name. */
  eventId: string;
  heldAt: string;
  /** Until then an approval may come; after it the hold is `expired`. */
  expiresAt?: string;
  approvedBy?: string;
}

/**
 * One cluster of a target on several clusters: a DeployStatus, or
 * skipped     `strategy: sequential` stopped at an earlier cluster's failure; nothing was
 *             read or written here
 */
export type ClusterStatus = DeployStatus | 'skipped';

/** A cluster's part of a multi-cluster deploy: its DeployResult without what the whole answer already says. */
export interface ClusterResult extends Omit<DeployResult, 'status' | 'target' | 'namespace' | 'image' | 'requestId' | 'dryRun' | 'reconciled'> {
  status: ClusterStatus;
  /** A reconcile: the image this cluster recorded and re-applied (clusters may differ). */
  image?: string;
  /** The cluster's deploy ended in an error (e.g. CLUSTER_UNAVAILABLE): `status` is `failed`. */
  error?: { code: ErrorCode; message: string; retryable: boolean };
}

/** What a target configured with `clusters:` answers: one result per cluster, in the configured order. */
export interface FanOutResult {
  /** The worst of the clusters' statuses (src/report/outcome.ts, WORST_FIRST). */
  status: DeployStatus;
  target: string;
  namespace: string;
  /** The intent's image; for a reconcile, the image every cluster recorded, when they agree. */
  image?: string;
  requestId: string;
  dryRun: boolean;
  reconciled?: boolean;
  strategy: 'parallel' | 'sequential';
  clusters: ClusterResult[];
  /** Deployed outside the target's windows by break-glass (`override`): who and why. */
  override?: { by: string; reason: string };
  elapsedMs: number;
}

/** What the pipeline answers for one intent: a single-cluster target's result, or a fan-out's. */
export type TargetResult = DeployResult | FanOutResult;
