// Turns a target's manifests into what gets applied: the deploy's image on the target
// container of every pod template, and annotations saying what deployed it.
import type { KubernetesObject } from '@kubernetes/client-node';
import { DeployError } from '../errors.ts';
import { field, isRecord } from '../guards.ts';

export const ANNOTATIONS = {
  source: 'gke-deployer/source',
  image: 'gke-deployer/image',
  requestId: 'gke-deployer/request-id',
  /** The event that set the current image, and when it happened: what stale and duplicate are judged by. */
  eventId: 'gke-deployer/event-id',
  eventTime: 'gke-deployer/event-time',
  /** The Git commit the event deploys (`github:owner/repo@sha`, `gitlab:group/project@sha`): Git events are ordered by it. */
  commit: 'gke-deployer/commit',
  /** An OCI target's manifests artifact, by digest (`repo@sha256:…`): with the image, the release. */
  manifests: 'gke-deployer/manifests',
  changeCause: 'kubernetes.io/change-cause',
  /** Written by a rollback only: the id of the recorded event whose deploy it undid (order.ts answers its redelivery `rolled-back`). */
  rolledBack: 'gke-deployer/rolled-back',
  /**
   * Written by a rollback with `rolledBack`: the release that failed (releaseKey). While the
   * recorded event is the rolled-back one, that release is quarantined (src/deploy/cluster-deploy.ts).
   */
  failedRelease: 'gke-deployer/failed-release',
} as const;

/** Every annotation a deploy stamps: what tells one deploy of an object from another. */
export const STAMP_KEYS: ReadonlySet<string> = new Set(Object.values(ANNOTATIONS));

/**
 * The stamps that record the event (what stale and duplicate are judged by, and whether its
 * deploy was rolled back): they travel together, so a reconcile or a rollback that keeps the
 * recorded event keeps all of them.
 */
export const EVENT_STAMPS = [ANNOTATIONS.eventId, ANNOTATIONS.eventTime, ANNOTATIONS.commit, ANNOTATIONS.rolledBack, ANNOTATIONS.failedRelease] as const;

/**
 * What a release is, for quarantine: the image by digest when it was pinned (whatever its tag),
 * else as named, and an OCI release's manifests artifact (`repo@sha256:…`).
 */
export function releaseKey(image: string, manifests?: string): string {
  const at = image.indexOf('@');
  const ref = at < 0 ? image : `${image.slice(0, at).replace(/:[^/:]+$/, '')}${image.slice(at)}`;
  return manifests === undefined ? ref : `${ref} ${manifests}`;
}

/** A commit of a Git host's repository, as the commit stamp names it. */
export interface CommitRef {
  host: string;
  repository: string;
  sha: string;
}

export function commitStamp(c: CommitRef): string {
  return `${c.host}:${c.repository}@${c.sha}`;
}

/** The stamp read back; anything else (hand-edited, truncated) is no commit. */
export function parseCommitStamp(value: string | undefined): CommitRef | undefined {
  const m = value === undefined ? null : /^([a-z]+):([^@\s]+)@([0-9a-f]{40}|[0-9a-f]{64})$/.exec(value);
  return m ? { host: m[1]!, repository: m[2]!, sha: m[3]! } : undefined;
}

export interface Stamp {
  source: string;
  image: string;
  requestId: string;
  eventId: string;
  eventTime: string;
  /** commitStamp() of the event's commit; absent for events that deploy no commit (direct, Pub/Sub, Scheduler). */
  commit?: string;
  /** The manifests artifact (`repo@sha256:…`) of an OCI target. */
  manifests?: string;
  /** A whole-release rollback's stamps: the event whose deploy it undid. */
  rolledBack?: string;
}

/** Where each workload kind keeps its pod spec. */
const POD_SPEC: Record<string, readonly string[]> = {
  Deployment: ['spec', 'template', 'spec'],
  StatefulSet: ['spec', 'template', 'spec'],
  DaemonSet: ['spec', 'template', 'spec'],
  Job: ['spec', 'template', 'spec'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
};

export function isWorkload(obj: KubernetesObject): boolean {
  return (obj.kind ?? '') in POD_SPEC;
}

export function stampAnnotations(stamp: Stamp): Record<string, string> {
  return {
    [ANNOTATIONS.source]: stamp.source,
    [ANNOTATIONS.image]: stamp.image,
    [ANNOTATIONS.requestId]: stamp.requestId,
    [ANNOTATIONS.eventId]: stamp.eventId,
    [ANNOTATIONS.eventTime]: stamp.eventTime,
    // Absent when the event has none: the apply then drops a commit an earlier deploy stamped.
    ...(stamp.commit !== undefined && { [ANNOTATIONS.commit]: stamp.commit }),
    ...(stamp.manifests !== undefined && { [ANNOTATIONS.manifests]: stamp.manifests }),
    ...(stamp.rolledBack !== undefined && { [ANNOTATIONS.rolledBack]: stamp.rolledBack }),
    // Without the request id, so an identical deploy leaves it as it was.
    [ANNOTATIONS.changeCause]: `gke-deployer: ${stamp.source} deployed ${stamp.image}`,
  };
}

export function renderManifests(
  objects: readonly KubernetesObject[],
  opts: { image: string; container?: string; stamp: Stamp },
): KubernetesObject[] {
  let imagesSet = 0;
  const rendered = objects.map((original) => {
    const obj = structuredClone(original);
    obj.metadata = { ...obj.metadata, annotations: { ...obj.metadata?.annotations, ...stampAnnotations(opts.stamp) } };
    const path = POD_SPEC[obj.kind ?? ''];
    const podSpec = path ? dig(obj, path) : undefined;
    const containers = podSpec?.containers;
    if (!Array.isArray(containers)) return obj;
    const named = containers.filter((c): c is Record<string, unknown> => isRecord(c));
    let target: Record<string, unknown> | undefined;
    if (opts.container !== undefined) {
      target = named.find((c) => c.name === opts.container);
    } else if (named.length === 1) {
      target = named[0];
    } else {
      throw new DeployError(
        'INVALID_MANIFEST',
        `${obj.kind}/${obj.metadata.name ?? ''} has ${named.length} containers: set the target's "container" to say which one gets the image`,
      );
    }
    if (target) {
      target.image = opts.image;
      imagesSet++;
    }
    return obj;
  });
  if (imagesSet === 0) {
    throw new DeployError(
      'CONTAINER_NOT_FOUND',
      opts.container !== undefined
        ? `no pod template in the target's manifests has a container named "${opts.container}"`
        : "the target's manifests have no Deployment, StatefulSet, DaemonSet, Job or CronJob to set the image on",
    );
  }
  return rendered;
}

function dig(obj: unknown, path: readonly string[]): Record<string, unknown> | undefined {
  const v = field(obj, ...path);
  return isRecord(v) ? v : undefined;
}
