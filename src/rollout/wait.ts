// Waits until every applied workload is ready, one has failed, or time is up. Watches
// the workloads, and the Pods (plus ReplicaSets / ControllerRevisions, to tell which
// Pods belong to the new revision) so that a Pod that cannot start fails the rollout at
// once instead of at the progress deadline.
import type { KubernetesObject } from '@kubernetes/client-node';
import { ApiException } from '@kubernetes/client-node/dist/gen/apis/exception.js';
import { statusMessage } from '../apply/errors.ts';
import type { KubeClient } from '../cluster/client.ts';
import { num } from './fields.ts';
import { podFailure, readiness, waitsFor } from './readiness.ts';
import { isNewRevisionPod, type Owned } from './revision.ts';
import { listWatch, type EventType, type WatchSpec } from './watch.ts';
import type { ReadinessState } from '../core/result.ts';

export interface ObjectReadiness {
  kind: string;
  name: string;
  readiness: ReadinessState;
  message: string;
  /** Milliseconds from `started` until first seen ready. */
  readyMs?: number;
}

export interface WaitResult {
  /** `paused`: everything else is ready, and a paused Deployment waits for someone to resume it. */
  state: 'ready' | 'paused' | 'failed' | 'timed-out';
  /** Why it failed (`ImagePullBackOff: Back-off pulling image "…"`, `ProgressDeadlineExceeded: …`) or is paused. */
  reason?: string;
  objects: ObjectReadiness[];
}

export interface WaitOptions {
  namespace: string;
  /** Epoch ms: give up (timed-out) at this moment. */
  deadline: number;
  /** Epoch ms the deploy started, for `readyMs`. */
  started: number;
  /** Called every `progressEveryMs` while waiting, with what is still pending. */
  progress?: (message: string) => void;
  progressEveryMs?: number;
}

const key = (o: KubernetesObject) => `${o.kind ?? ''}/${o.metadata?.name ?? ''}`;
const POD = { apiVersion: 'v1', kind: 'Pod' };
const REPLICA_SET = { apiVersion: 'apps/v1', kind: 'ReplicaSet' };
const CONTROLLER_REVISION = { apiVersion: 'apps/v1', kind: 'ControllerRevision' };
/** A Job's Pods exiting non-zero is what backoffLimit is for: only Pods that cannot run (or keep crashing) fail it early. */
const JOB_FATAL = new Set(['ImagePullBackOff', 'ErrImagePull', 'CrashLoopBackOff', 'CreateContainerConfigError', 'CreateContainerError', 'InvalidImageName']);

export async function waitForRollout(client: KubeClient, objects: readonly KubernetesObject[], opts: WaitOptions): Promise<WaitResult> {
  const waited = objects.filter(waitsFor);
  const status = new Map<string, ObjectReadiness>(
    objects.map((o) => [key(o), { kind: o.kind ?? '', name: o.metadata?.name ?? '', ...(waitsFor(o) ? { readiness: 'progressing', message: 'not seen yet' } : { readiness: 'applied', message: 'nothing to wait for' }) }]),
  );
  if (waited.length === 0) return { state: 'ready', objects: [...status.values()] };

  const live = new Map<string, KubernetesObject>();
  const pods = new Map<string, KubernetesObject>();
  const owned: Required<Owned> = { replicaSets: [], controllerRevisions: [] };
  const replicaSets = new Map<string, KubernetesObject>();
  const revisions = new Map<string, KubernetesObject>();
  const controller = new AbortController();
  let settle!: (r: WaitResult) => void;
  const done = new Promise<WaitResult>((resolve) => (settle = resolve));
  const finish = (state: WaitResult['state'], reason?: string) => {
    if (controller.signal.aborted) return;
    controller.abort();
    settle({ state, ...(reason !== undefined && { reason }), objects: [...status.values()] });
  };

  const evaluate = () => {
    if (controller.signal.aborted) return;
    let pending = 0;
    const paused: string[] = [];
    for (const w of waited) {
      const entry = status.get(key(w))!;
      const obj = live.get(key(w));
      if (!obj) {
        pending++;
        continue;
      }
      const r = readiness(obj);
      entry.message = r.message;
      if (r.state === 'failed') {
        entry.readiness = 'failed';
        return finish('failed', `${r.reason}: ${r.message}`);
      }
      const failure = podFailureOf(obj);
      if (failure) {
        entry.readiness = 'failed';
        entry.message = failure;
        return finish('failed', failure);
      }
      if (r.state === 'ready' || r.state === 'applied') {
        if (entry.readiness !== 'ready') entry.readyMs = Date.now() - opts.started;
        entry.readiness = 'ready';
      } else if (r.state === 'paused') {
        // Nothing changes until someone resumes it: waiting on would only time out.
        entry.readiness = 'paused';
        paused.push(r.message);
      } else {
        entry.readiness = 'progressing';
        pending++;
      }
    }
    // Ready only on a whole view: a Pods list refused for good fails the wait even when the
    // workload's own status says Ready first (a wait that cannot see Pods cannot judge them).
    if (pending === 0 && unlisted.size === 0) finish(paused.length > 0 ? 'paused' : 'ready', paused.length > 0 ? paused.join('; ') : undefined);
  };

  /** The first Pod of the workload's new revision that cannot start, as a reason. */
  const podFailureOf = (workload: KubernetesObject): string | undefined => {
    // Until the controller has seen the new spec, "the new revision" still names the old one.
    const generation = num(workload, 'metadata', 'generation');
    const observed = num(workload, 'status', 'observedGeneration');
    if (generation !== undefined && (observed === undefined || observed < generation)) return undefined;
    for (const pod of pods.values()) {
      const failure = podFailure(pod);
      if (!failure) continue;
      if (workload.kind === 'Job' && !JOB_FATAL.has(failure.reason)) continue;
      if (isNewRevisionPod(workload, pod, owned)) return `${failure.message} (Pod ${pod.metadata?.name ?? '?'}, container ${failure.container})`;
    }
    return undefined;
  };

  const store = (map: Map<string, KubernetesObject>, after?: () => void) => (type: EventType, obj: KubernetesObject) => {
    const id = obj.metadata?.uid ?? key(obj);
    if (type === 'DELETED') map.delete(id);
    else map.set(id, obj);
    after?.();
    evaluate();
  };

  const streams: { spec: WatchSpec; onEvent: (type: EventType, obj: KubernetesObject) => void }[] = [];
  const byKind = new Map<string, KubernetesObject[]>();
  for (const w of waited) byKind.set(`${w.apiVersion ?? ''}|${w.kind ?? ''}`, [...(byKind.get(`${w.apiVersion ?? ''}|${w.kind ?? ''}`) ?? []), w]);
  for (const group of byKind.values()) {
    const { apiVersion = '', kind = '' } = group[0]!;
    const names = new Set(group.map((o) => o.metadata?.name));
    streams.push({
      spec: { apiVersion, kind, namespace: opts.namespace, ...(group.length === 1 && { fieldSelector: `metadata.name=${group[0]!.metadata?.name ?? ''}` }) },
      onEvent: (type, obj) => {
        if (!names.has(obj.metadata?.name)) return;
        if (type === 'DELETED') live.delete(key(obj));
        else live.set(key(obj), obj);
        evaluate();
      },
    });
  }
  const labelSelector = waited.length === 1 ? podSelector(waited[0]!) : undefined;
  const scoped = (spec: Omit<WatchSpec, 'namespace'>): WatchSpec => ({ ...spec, namespace: opts.namespace, ...(labelSelector && { labelSelector }) });
  streams.push({ spec: scoped(POD), onEvent: store(pods) });
  if (waited.some((w) => w.kind === 'Deployment')) {
    streams.push({ spec: scoped(REPLICA_SET), onEvent: store(replicaSets, () => (owned.replicaSets = [...replicaSets.values()])) });
  }
  if (waited.some((w) => w.kind === 'DaemonSet')) {
    // ControllerRevisions carry the DaemonSet's selector labels.
    streams.push({ spec: scoped(CONTROLLER_REVISION), onEvent: store(revisions, () => (owned.controllerRevisions = [...revisions.values()])) });
  }

  const unlisted = new Set(streams);
  for (const s of streams) {
    const listed = () => {
      if (unlisted.delete(s)) evaluate();
    };
    listWatch(client, s.spec, s.onEvent, controller.signal, listed).catch((err: unknown) => {
      // The list was refused for good (RBAC, gone namespace): the rollout cannot be judged.
      // A transient refusal never gets here: listWatch lists again until the deadline.
      const message = err instanceof ApiException ? `${err.code} ${statusMessage(err)}` : err instanceof Error ? err.message : String(err);
      finish('failed', `cannot watch ${s.spec.kind}s in ${opts.namespace}: ${message}`);
    });
  }

  const timer = setTimeout(() => finish('timed-out', `not ready when the wait ended: ${pendingSummary()}`), Math.max(0, opts.deadline - Date.now()));
  const every = opts.progressEveryMs ?? 10_000;
  const ticker = opts.progress ? setInterval(() => opts.progress?.(`still waiting on ${pendingSummary()}`), every) : undefined;
  const pendingSummary = () =>
    [...status.values()]
      .filter((s) => s.readiness === 'progressing')
      .map((s) => `${s.kind} ${s.name} (${s.message})`)
      .join(', ');
  try {
    return await done;
  } finally {
    clearTimeout(timer);
    if (ticker) clearInterval(ticker);
  }
}

/** The label selector of a workload's Pods, when it can be written as one. */
function podSelector(w: KubernetesObject): string | undefined {
  if (w.kind === 'Job') return `batch.kubernetes.io/job-name=${w.metadata?.name ?? ''}`;
  const selector = (w as { spec?: { selector?: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] } } }).spec?.selector;
  if (!selector?.matchLabels || (selector.matchExpressions?.length ?? 0) > 0) return undefined;
  const labels = Object.entries(selector.matchLabels).map(([k, v]) => `${k}=${v}`);
  return labels.length > 0 ? labels.join(',') : undefined;
}
