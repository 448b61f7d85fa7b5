// Readiness rules against live objects captured from the sandbox (test/fixtures/kube/live/).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KubernetesObject } from '@kubernetes/client-node';
import { podFailure, READINESS, readiness, waitsFor } from '../../src/rollout/readiness.ts';
import { edited, live, ofKind, one } from '../fixtures/kube/live/load.ts';

interface Row {
  name: string;
  obj: KubernetesObject;
  state: 'ready' | 'applied' | 'progressing' | 'paused' | 'failed';
  reason?: string;
  message: RegExp;
}

const complete = one('deployment-complete.yaml', 'Deployment');
const failedJob = one('job-failed.yaml', 'Job');
const conditionsOf = (o: KubernetesObject) => (o as { status?: { conditions?: { type: string }[] } }).status?.conditions ?? [];

const rows: Row[] = [
  // Deployments
  { name: 'Deployment rolled out', obj: complete, state: 'ready', message: /^deployment "web" successfully rolled out/ },
  { name: 'Deployment mid-rollout, new replicas still to come', obj: one('deployment-rolling.yaml', 'Deployment'), state: 'progressing', reason: 'LessUpdated', message: /^Waiting for rollout to finish: 1 out of 3 new replicas have been updated$/ },
  { name: 'Deployment mid-rollout, old replicas left', obj: one('deployment-old-replicas.yaml', 'Deployment'), state: 'progressing', reason: 'OldReplicas', message: /^Waiting for rollout to finish: 2 old replicas are pending termination$/ },
  { name: 'Deployment mid-rollout, updated replicas not yet available', obj: one('deployment-unavailable.yaml', 'Deployment'), state: 'progressing', reason: 'LessAvailable', message: /^Waiting for rollout to finish: 0 of 2 updated replicas are available$/ },
  { name: 'Deployment whose only pod crash-loops', obj: one('deployment-crash.yaml', 'Deployment'), state: 'progressing', reason: 'LessAvailable', message: /0 of 1 updated replicas are available/ },
  { name: 'Deployment past its progress deadline', obj: one('deployment-deadline-exceeded.yaml', 'Deployment'), state: 'failed', reason: 'ProgressDeadlineExceeded', message: /^deployment "pull" exceeded its progress deadline: ReplicaSet "pull-\w+" has timed out progressing/ },
  // Written, not rolled out: neither ready (nothing of the new template runs) nor failed (the controller waits for a resume).
  { name: 'Deployment paused mid-rollout', obj: one('deployment-paused.yaml', 'Deployment'), state: 'paused', message: /^deployment "paused" is paused: .*kubectl rollout resume/ },
  { name: 'Deployment paused after its rollout', obj: one('deployment-paused-complete.yaml', 'Deployment'), state: 'ready', message: /successfully rolled out/ },
  { name: 'Deployment with replicas: 0', obj: one('deployment-zero.yaml', 'Deployment'), state: 'ready', message: /successfully rolled out/ },
  // The controller has not seen the latest spec yet: too brief to capture, so the complete
  // Deployment with its generation one ahead.
  { name: 'Deployment spec not yet observed', obj: edited(complete, { 'metadata.generation': (complete.metadata?.generation ?? 0) + 1 }), state: 'progressing', reason: 'NotObserved', message: /^Waiting for deployment spec update to be observed$/ },
  { name: 'Deployment without status (as applied, before any controller)', obj: edited(complete, { status: undefined }), state: 'progressing', reason: 'NotObserved', message: /observed/ },
  // StatefulSets
  { name: 'StatefulSet rolled out', obj: one('statefulset-complete.yaml', 'StatefulSet'), state: 'ready', message: /^statefulset rolling update complete 3 pods at revision db-\w+$/ },
  { name: 'StatefulSet partitioned rollout done (partition 2 of 3)', obj: one('statefulset-partitioned.yaml', 'StatefulSet'), state: 'ready', message: /^partitioned roll out complete: 1 new pods have been updated/ },
  { name: 'StatefulSet partitioned rollout under way', obj: one('statefulset-partition-rolling.yaml', 'StatefulSet'), state: 'progressing', reason: 'PartitionRollout', message: /1 out of 2 new pods have been updated/ },
  { name: 'StatefulSet whose updated pod crash-loops', obj: one('statefulset-rolling.yaml', 'StatefulSet'), state: 'progressing', reason: 'LessReady', message: /^Waiting for 1 pods to be ready$/ },
  { name: 'StatefulSet with OnDelete', obj: one('statefulset-ondelete.yaml', 'StatefulSet'), state: 'ready', message: /OnDelete/ },
  // DaemonSets
  { name: 'DaemonSet rolled out', obj: one('daemonset-complete.yaml', 'DaemonSet'), state: 'ready', message: /^daemon set "agent" successfully rolled out/ },
  { name: 'DaemonSet whose surge pod cannot pull', obj: one('daemonset-rolling.yaml', 'DaemonSet'), state: 'progressing', reason: 'LessUpdated', message: /0 out of 1 new pods have been updated/ },
  { name: 'DaemonSet whose replacement pod cannot pull', obj: one('daemonset-unavailable.yaml', 'DaemonSet'), state: 'progressing', reason: 'LessAvailable', message: /0 of 1 updated pods are available/ },
  { name: 'DaemonSet with OnDelete', obj: one('daemonset-ondelete.yaml', 'DaemonSet'), state: 'ready', message: /OnDelete/ },
  // Jobs
  { name: 'Job complete', obj: one('job-complete.yaml', 'Job'), state: 'ready', message: /^Job completed/ },
  { name: 'Job failed: its pod exited 1', obj: one('job-failed-exit.yaml', 'Job'), state: 'failed', reason: 'BackoffLimitExceeded', message: /^Job has reached the specified backoff limit$/ },
  { name: 'Job failed: its pod crash-looped (restartPolicy OnFailure)', obj: failedJob, state: 'failed', reason: 'BackoffLimitExceeded', message: /^Job has reached the specified backoff limit$/ },
  // The second between the controller's decision and its Failed condition: the captured Job without Failed.
  { name: 'Job about to fail (FailureTarget)', obj: edited(failedJob, { 'status.conditions': conditionsOf(failedJob).filter((c) => c.type !== 'Failed') }), state: 'failed', reason: 'BackoffLimitExceeded', message: /backoff limit/ },
  { name: 'Job running', obj: one('job-running.yaml', 'Job'), state: 'progressing', reason: 'Running', message: /1 active/ },
  { name: 'Job suspended', obj: one('job-suspended.yaml', 'Job'), state: 'progressing', reason: 'Suspended', message: /suspended/ },
  { name: 'Job not started (no status yet)', obj: edited(one('job-complete.yaml', 'Job'), { status: undefined }), state: 'progressing', reason: 'NotStarted', message: /start/ },
  // Kinds with nothing to wait for
  { name: 'ConfigMap', obj: one('other-kinds.yaml', 'ConfigMap'), state: 'applied', message: /^nothing to wait for$/ },
  { name: 'Service', obj: one('other-kinds.yaml', 'Service'), state: 'applied', message: /^nothing to wait for$/ },
  { name: 'ReplicaSet (its Deployment is what is waited for)', obj: ofKind('deployment-complete.yaml', 'ReplicaSet')[0] ?? {}, state: 'applied', message: /nothing/ },
];

describe('readiness', () => {
  for (const row of rows) {
    test(row.name, () => {
      const got = readiness(row.obj);
      assert.equal(got.state, row.state, JSON.stringify(got));
      if (got.state === 'progressing' || got.state === 'failed') assert.equal(got.reason, row.reason);
      else assert.equal(row.reason, undefined, 'the row expects a reason that this state does not carry');
      assert.match(got.message, row.message);
    });
  }

  test('the table is keyed "group/Kind" and waitsFor follows it', () => {
    assert.deepEqual(Object.keys(READINESS).sort(), ['apps/DaemonSet', 'apps/Deployment', 'apps/StatefulSet', 'batch/Job']);
    assert.equal(waitsFor(complete), true);
    assert.equal(waitsFor(one('job-complete.yaml', 'Job')), true);
    assert.equal(waitsFor(one('other-kinds.yaml', 'ConfigMap')), false);
    assert.equal(waitsFor(one('pod-pending.yaml', 'Pod')), false);
    // Same kind name in another group is another kind.
    assert.equal(waitsFor({ apiVersion: 'example.com/v1', kind: 'Deployment', metadata: { name: 'x' } }), false);
    assert.equal(readiness({ apiVersion: 'example.com/v1', kind: 'Deployment', metadata: { name: 'x' } }).state, 'applied');
  });
});

const podOf = (file: string, pred: (p: KubernetesObject) => boolean = () => true) => {
  const pod = ofKind(file, 'Pod').find(pred);
  if (!pod) throw new Error(`${file}: no such pod`);
  return pod;
};
const waitingReason = (p: KubernetesObject) => (p as { status?: { containerStatuses?: { state?: { waiting?: { reason?: string } } }[] } }).status?.containerStatuses?.[0]?.state?.waiting?.reason;
const pullFails = podOf('deployment-deadline-exceeded.yaml', (p) => waitingReason(p) === 'ImagePullBackOff');
const crashLoops = podOf('deployment-crash.yaml');

describe('podFailure', () => {
  const failures: { name: string; pod: KubernetesObject; want: { reason: string; message: RegExp; container: string } | undefined }[] = [
    { name: 'ImagePullBackOff', pod: pullFails, want: { reason: 'ImagePullBackOff', message: /^ImagePullBackOff: Back-off pulling image "registry.example\/web:fail-pull"$/, container: 'app' } },
    { name: 'CrashLoopBackOff', pod: crashLoops, want: { reason: 'CrashLoopBackOff', message: /^CrashLoopBackOff: back-off 10s restarting failed container=app$/, container: 'app' } },
    { name: 'restartPolicy Never, exited non-zero', pod: one('pod-exit-code.yaml', 'Pod'), want: { reason: 'Error', message: /^Error: exit code 1$/, container: 'app' } },
    { name: 'failed Job pod (restartPolicy Never, exit 1)', pod: podOf('job-failed-exit.yaml'), want: { reason: 'Error', message: /^Error: exit code 1$/, container: 'app' } },
    // kwok gives init containers no failure stage: the pulling pod's status, moved to its (new) init container.
    {
      name: 'init container in ImagePullBackOff',
      pod: edited(pullFails, {
        'spec.initContainers': [{ name: 'migrate', image: 'registry.example/web:fail-pull' }],
        'status.initContainerStatuses': [{ ...(pullFails as { status: { containerStatuses: object[] } }).status.containerStatuses[0], name: 'migrate' }],
        'status.containerStatuses.0.state': { waiting: { reason: 'PodInitializing' } },
      }),
      want: { reason: 'ImagePullBackOff', message: /^ImagePullBackOff: Back-off/, container: 'migrate' },
    },
    { name: 'a waiting reason without a message', pod: edited(crashLoops, { 'status.containerStatuses.0.state.waiting.message': undefined }), want: { reason: 'CrashLoopBackOff', message: /^CrashLoopBackOff$/, container: 'app' } },
    { name: 'Pending, unschedulable: a normal wait', pod: one('pod-pending.yaml', 'Pod'), want: undefined },
    { name: 'Running and ready', pod: podOf('deployment-complete.yaml'), want: undefined },
    { name: 'Succeeded Job pod (exit 0)', pod: podOf('job-complete.yaml'), want: undefined },
    { name: 'ContainerCreating', pod: edited(crashLoops, { 'status.containerStatuses.0.state': { waiting: { reason: 'ContainerCreating' } } }), want: undefined },
    // A pod being deleted is killed (exit 137): not a failure of the rollout.
    { name: 'exited non-zero while being deleted', pod: edited(one('pod-exit-code.yaml', 'Pod'), { 'metadata.deletionTimestamp': '2026-01-01T00:00:00Z', 'status.containerStatuses.0.state.terminated.exitCode': 137 }), want: undefined },
    // With restartPolicy OnFailure the kubelet restarts it; only CrashLoopBackOff would count.
    { name: 'exited non-zero, restartPolicy OnFailure', pod: edited(one('pod-exit-code.yaml', 'Pod'), { 'spec.restartPolicy': 'OnFailure' }), want: undefined },
  ];
  for (const { name, pod, want } of failures) {
    test(name, () => {
      const got = podFailure(pod);
      if (want === undefined) return assert.equal(got, undefined);
      assert.ok(got, 'expected a failure');
      assert.equal(got.reason, want.reason);
      assert.equal(got.container, want.container);
      assert.match(got.message, want.message);
    });
  }

  test('every captured pod stuck on purpose is a failure, every other one is not', () => {
    const files = ['job-failed-exit.yaml', 'pod-exit-code.yaml', 'deployment-complete.yaml', 'deployment-rolling.yaml', 'deployment-crash.yaml', 'deployment-deadline-exceeded.yaml', 'statefulset-rolling.yaml', 'daemonset-rolling.yaml', 'daemonset-unavailable.yaml', 'job-running.yaml', 'job-complete.yaml', 'pod-pending.yaml'];
    let stuck = 0;
    for (const pod of files.flatMap((f) => live(f).filter((o) => o.kind === 'Pod'))) {
      const image = (pod as { spec: { containers: { image: string }[] } }).spec.containers[0]?.image ?? '';
      const onPurpose = /:(fail-pull|fail-exit|crash)/.test(image);
      if (onPurpose) stuck++;
      assert.equal(podFailure(pod) !== undefined, onPurpose, `${pod.metadata?.name} (${image})`);
    }
    assert.ok(stuck >= 4, `only ${stuck} failing pods captured`);
  });
});
