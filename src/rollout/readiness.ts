// Whether an applied object has finished rolling out: one pure rule per kind, read from
// the live object's status. Modelled on kubectl's rollout status
// (k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go) and kstatus
// (sigs.k8s.io/cli-utils/pkg/kstatus/status/core.go). The watch loop calls `readiness()`;
// nothing here talks to a cluster.
import type { KubernetesObject } from '@kubernetes/client-node';
import { field, kindKey, list, num, str } from './fields.ts';

export type Readiness =
  | { state: 'ready'; message: string }
  | { state: 'applied'; message: string } // a kind with nothing to wait for
  | { state: 'progressing'; reason: string; message: string }
  /** Written, and nothing rolls it out until someone acts (a paused Deployment): neither ready nor failed. */
  | { state: 'paused'; message: string }
  | { state: 'failed'; reason: string; message: string };

type Rule = (live: KubernetesObject) => Readiness;

/** One rule per kind, keyed "group/Kind" (bare Kind for the core group): one table, in one file. */
export const READINESS: Record<string, Rule> = {
  'apps/Deployment': deployment,
  'apps/StatefulSet': statefulSet,
  'apps/DaemonSet': daemonSet,
  'batch/Job': job,
};

const applied: Rule = () => ({ state: 'applied', message: 'nothing to wait for' });

export function readiness(live: KubernetesObject): Readiness {
  return (READINESS[kindKey(live)] ?? applied)(live);
}

/** Whether this kind has a rule (so the rollout stage watches it). */
export function waitsFor(obj: KubernetesObject): boolean {
  return kindKey(obj) in READINESS;
}

const progressing = (reason: string, message: string): Readiness => ({ state: 'progressing', reason, message });

/**
 * Deployment: ready when
 * - metadata.generation ≤ status.observedGeneration (otherwise the numbers below are stale);
 * - status.updatedReplicas ≥ spec.replicas (default 1);
 * - status.replicas ≤ status.updatedReplicas (no old replicas left);
 * - status.availableReplicas ≥ status.updatedReplicas;
 * - condition Available=True;
 * - condition Progressing=True with reason NewReplicaSetAvailable, when a progress deadline is set
 *   (with progressDeadlineSeconds = 2^31-1 the controller never writes Progressing) and the
 *   Deployment is not paused (then the controller sets reason DeploymentPaused instead).
 * Failed when Progressing has reason ProgressDeadlineExceeded: the controller gave up waiting.
 * A ReplicaFailure=True condition (pods refused: quota, admission) stays progressing, with its message:
 * it can heal, and the progress deadline turns it into a failure if it does not.
 *
 * spec.replicas 0 needs no special case: the rollout is done once the controller has seen the
 * template and every old pod is gone; the controller then sets Available and
 * NewReplicaSetAvailable as for any other size.
 * spec.paused: the controller neither creates the new ReplicaSet nor checks the deadline, so
 * waiting could only end in a timeout. A paused Deployment whose rollout is not complete is
 * `paused`: neither ready (none of the new template runs) nor failed (it rolls out once resumed).
 * Once its rollout is complete (a pause with nothing new to roll out) it is ready as usual.
 */
function deployment(live: KubernetesObject): Readiness {
  const name = live.metadata?.name ?? '';
  const stale = notObserved(live, 'deployment spec update');
  if (stale) return stale;
  const progress = condition(live, 'Progressing');
  if (progress?.reason === 'ProgressDeadlineExceeded') {
    return {
      state: 'failed',
      reason: 'ProgressDeadlineExceeded',
      message: `deployment "${name}" exceeded its progress deadline${progress.message ? `: ${progress.message}` : ''}`,
    };
  }
  const paused = field(live, 'spec', 'paused') === true;
  const pending = deploymentPending(live, progress, paused);
  if (!pending) {
    const available = num(live, 'status', 'availableReplicas') ?? 0;
    return { state: 'ready', message: `deployment "${name}" successfully rolled out: ${available} of ${num(live, 'spec', 'replicas') ?? 1} replicas available` };
  }
  if (paused) {
    return { state: 'paused', message: `deployment "${name}" is paused: the new template rolls out once it is resumed (kubectl rollout resume)` };
  }
  const failure = condition(live, 'ReplicaFailure');
  if (failure?.status === 'True') return progressing(failure.reason ?? 'ReplicaFailure', `Waiting for rollout to finish: ${failure.message ?? 'pods cannot be created'}`);
  return pending;
}

/** Why the rollout is not complete yet, or undefined when it is. */
function deploymentPending(live: KubernetesObject, progress: Condition | undefined, paused: boolean): Readiness | undefined {
  const wanted = num(live, 'spec', 'replicas') ?? 1;
  const replicas = num(live, 'status', 'replicas') ?? 0;
  const updated = num(live, 'status', 'updatedReplicas') ?? 0;
  const available = num(live, 'status', 'availableReplicas') ?? 0;
  const wait = 'Waiting for rollout to finish';
  if (updated < wanted) return progressing('LessUpdated', `${wait}: ${updated} out of ${wanted} new replicas have been updated`);
  if (replicas > updated) return progressing('OldReplicas', `${wait}: ${replicas - updated} old replicas are pending termination`);
  if (available < updated) return progressing('LessAvailable', `${wait}: ${available} of ${updated} updated replicas are available`);
  const avail = condition(live, 'Available');
  if (avail?.status !== 'True') return progressing('NotAvailable', `${wait}: deployment is not Available${avail?.message ? ` (${avail.message})` : ''}`);
  const deadline = num(live, 'spec', 'progressDeadlineSeconds');
  const hasDeadline = deadline !== undefined && deadline !== 2 ** 31 - 1;
  if (hasDeadline && !paused && !(progress?.status === 'True' && progress.reason === 'NewReplicaSetAvailable')) {
    return progressing('NewReplicaSetNotAvailable', `${wait}: new replica set not yet reported available${progress?.message ? ` (${progress.message})` : ''}`);
  }
  return undefined;
}

/**
 * StatefulSet: after the generation is observed,
 * - updateStrategy OnDelete: ready at once (pods take the new template only when deleted);
 * - status.replicas ≤ spec.replicas (scaled-down pods gone) and status.readyReplicas ≥ spec.replicas
 *   (status has no per-revision ready count, so as kubectl every pod must be ready);
 * - with rollingUpdate.partition P > 0: status.updatedReplicas ≥ spec.replicas − P (the ordinals ≥ P);
 *   otherwise status.updatedReplicas ≥ spec.replicas;
 * - status.availableReplicas ≥ spec.replicas (differs from ready only with minReadySeconds);
 * - without a partition, status.updateRevision = currentRevision (the controller sets
 *   currentRevision once every pod is updated and ready).
 * The controller writes no conditions, so a StatefulSet never fails here; its pods do (podFailure).
 */
function statefulSet(live: KubernetesObject): Readiness {
  const stale = notObserved(live, 'statefulset spec update');
  if (stale) return stale;
  if (str(live, 'spec', 'updateStrategy', 'type') === 'OnDelete') {
    return { state: 'ready', message: 'OnDelete update strategy: pods take the new template only when they are deleted; not waiting for them' };
  }
  const wanted = num(live, 'spec', 'replicas') ?? 1;
  const replicas = num(live, 'status', 'replicas') ?? 0;
  const ready = num(live, 'status', 'readyReplicas') ?? 0;
  const available = num(live, 'status', 'availableReplicas') ?? ready;
  const updated = num(live, 'status', 'updatedReplicas') ?? 0;
  const partition = num(live, 'spec', 'updateStrategy', 'rollingUpdate', 'partition') ?? 0;
  const updateRevision = str(live, 'status', 'updateRevision') ?? '';
  if (replicas > wanted) return progressing('ExtraPods', `Waiting for ${replicas - wanted} pods to be terminated`);
  if (ready < wanted) return progressing('LessReady', `Waiting for ${wanted - ready} pods to be ready`);
  const target = Math.max(wanted - partition, 0);
  if (partition > 0 && updated < target) {
    return progressing('PartitionRollout', `Waiting for partitioned roll out to finish: ${updated} out of ${target} new pods have been updated`);
  }
  if (updated < target) return progressing('LessUpdated', `Waiting for rolling update to finish: ${updated} out of ${wanted} pods have been updated to revision ${updateRevision}`);
  if (available < wanted) return progressing('LessAvailable', `Waiting for ${wanted - available} ready pods to be available (minReadySeconds)`);
  if (partition > 0) return { state: 'ready', message: `partitioned roll out complete: ${updated} new pods have been updated (partition ${partition})` };
  if (updateRevision === '' || updateRevision !== str(live, 'status', 'currentRevision')) {
    return progressing('RevisionMismatch', `waiting for statefulset rolling update to complete ${updated} pods at revision ${updateRevision}`);
  }
  return { state: 'ready', message: `statefulset rolling update complete ${wanted} pods at revision ${updateRevision}` };
}

/**
 * DaemonSet: after the generation is observed,
 * - updateStrategy OnDelete: ready at once (pods take the new template only when deleted);
 * - status.desiredNumberScheduled present (else the controller has not counted nodes yet);
 * - status.updatedNumberScheduled ≥ desiredNumberScheduled;
 * - status.numberAvailable ≥ desiredNumberScheduled (as kubectl: the count is per node, not per revision).
 */
function daemonSet(live: KubernetesObject): Readiness {
  const name = live.metadata?.name ?? '';
  const stale = notObserved(live, 'daemon set spec update');
  if (stale) return stale;
  if (str(live, 'spec', 'updateStrategy', 'type') === 'OnDelete') {
    return { state: 'ready', message: 'OnDelete update strategy: pods take the new template only when they are deleted; not waiting for them' };
  }
  const desired = num(live, 'status', 'desiredNumberScheduled');
  if (desired === undefined) return progressing('NotObserved', 'Waiting for the daemon set controller to count its nodes');
  const updated = num(live, 'status', 'updatedNumberScheduled') ?? 0;
  const available = num(live, 'status', 'numberAvailable') ?? 0;
  const wait = `Waiting for daemon set "${name}" rollout to finish`;
  if (updated < desired) return progressing('LessUpdated', `${wait}: ${updated} out of ${desired} new pods have been updated`);
  if (available < desired) return progressing('LessAvailable', `${wait}: ${available} of ${desired} updated pods are available`);
  return { state: 'ready', message: `daemon set "${name}" successfully rolled out (${desired} pods)` };
}

/**
 * Job: Complete=True → ready; Failed=True → failed with the condition's reason and message.
 * FailureTarget=True counts as failed too: the controller has decided (backoff limit, pod failure
 * policy, deadline) and only waits for the pods to terminate before it writes Failed.
 * Anything else is progressing: a running Job is not done, a suspended one (spec.suspend) waits
 * with reason Suspended, and one with no status yet has not started.
 */
function job(live: KubernetesObject): Readiness {
  const failed = [condition(live, 'Failed'), condition(live, 'FailureTarget')].find((c) => c?.status === 'True');
  if (failed) {
    return { state: 'failed', reason: failed.reason ?? 'JobFailed', message: failed.message ?? 'Job has failed' };
  }
  const counts = `${num(live, 'status', 'active') ?? 0} active, ${num(live, 'status', 'succeeded') ?? 0} succeeded, ${num(live, 'status', 'failed') ?? 0} failed`;
  if (condition(live, 'Complete')?.status === 'True') return { state: 'ready', message: `Job completed (${counts})` };
  if (field(live, 'spec', 'suspend') === true) return progressing('Suspended', 'Job is suspended: it runs once spec.suspend is false');
  if (field(live, 'status', 'startTime') === undefined) return progressing('NotStarted', 'Waiting for the Job to start');
  return progressing('Running', `Waiting for the Job to complete: ${counts}`);
}

/** Waiting reasons of a container that will not clear without a change (image, config, code). */
const STUCK = new Set(['ImagePullBackOff', 'ErrImagePull', 'CrashLoopBackOff', 'CreateContainerConfigError', 'CreateContainerError', 'InvalidImageName']);

/**
 * Why a pod is failing, if it is in a state that will not heal by itself: a container or init
 * container waiting with a STUCK reason, or, in a pod with restartPolicy Never, a container that
 * exited non-zero (it will not be restarted). Pending and ContainerCreating are normal.
 */
export function podFailure(pod: KubernetesObject): { reason: string; message: string; container: string } | undefined {
  const statuses = [...list(pod, 'status', 'initContainerStatuses'), ...list(pod, 'status', 'containerStatuses')];
  for (const s of statuses) {
    const waiting = field(s, 'state', 'waiting');
    const reason = str(waiting, 'reason');
    if (reason !== undefined && STUCK.has(reason)) {
      const detail = str(waiting, 'message');
      return { reason, message: detail ? `${reason}: ${detail}` : reason, container: str(s, 'name') ?? '' };
    }
  }
  // A pod being deleted has its containers killed (exit 137/143): that is not a failure.
  if (str(pod, 'spec', 'restartPolicy') !== 'Never' || pod.metadata?.deletionTimestamp) return undefined;
  // Sidecars (init containers with restartPolicy Always) restart whatever the pod's policy.
  const sidecars = new Set(list(pod, 'spec', 'initContainers').filter((c) => str(c, 'restartPolicy') === 'Always').map((c) => str(c, 'name')));
  for (const s of statuses) {
    const name = str(s, 'name') ?? '';
    const terminated = field(s, 'state', 'terminated');
    const exitCode = num(terminated, 'exitCode');
    if (exitCode !== undefined && exitCode !== 0 && !sidecars.has(name)) {
      const reason = str(terminated, 'reason') ?? 'Error';
      const detail = str(terminated, 'message');
      return { reason, message: `${reason}: exit code ${exitCode}${detail ? `: ${detail}` : ''}`, container: name };
    }
  }
  return undefined;
}

/**
 * Progressing while the controller has not seen the current spec: metadata.generation >
 * status.observedGeneration, or either is missing ("can't tell" is never ready).
 */
function notObserved(live: KubernetesObject, what: string): Readiness | undefined {
  const generation = live.metadata?.generation;
  const observed = num(live, 'status', 'observedGeneration');
  if (generation === undefined || observed === undefined || generation > observed) return progressing('NotObserved', `Waiting for ${what} to be observed`);
  return undefined;
}

interface Condition {
  type: string;
  status?: string;
  reason?: string;
  message?: string;
}

function condition(live: unknown, type: string): Condition | undefined {
  const found = list(live, 'status', 'conditions').find((c) => str(c, 'type') === type);
  if (found === undefined) return undefined;
  return { type, status: str(found, 'status'), reason: str(found, 'reason'), message: str(found, 'message') };
}
