// New-revision pod selection against live objects captured from the sandbox
// (test/fixtures/kube/live/). The truth each test checks against is the image: every capture
// moved a workload from one image to another, so a pod runs the new image exactly when it
// belongs to the new revision.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KubernetesObject } from '@kubernetes/client-node';
import { isNewRevisionPod, newRevisionSelector, type Owned } from '../../src/rollout/revision.ts';
import { edited, ofKind, one } from '../fixtures/kube/live/load.ts';

const imageOf = (o: KubernetesObject) => (o as { spec: { containers?: { image: string }[]; template?: { spec: { containers: { image: string }[] } } } }).spec;
const podImage = (pod: KubernetesObject) => imageOf(pod).containers?.[0]?.image;
const templateImage = (o: KubernetesObject) => imageOf(o).template?.spec.containers[0]?.image;
const names = (objs: KubernetesObject[]) => objs.map((o) => o.metadata?.name ?? '').sort();

/** The workload in `file` (the only object of `kind`), what it owns, and its pods. */
function scene(file: string, kind: string) {
  const workload = one(file, kind);
  const owned: Owned = { replicaSets: ofKind(file, 'ReplicaSet'), controllerRevisions: ofKind(file, 'ControllerRevision') };
  return { workload, owned, pods: ofKind(file, 'Pod') };
}

/** Pods isNewRevisionPod picks, against pods running the workload's current template image. */
function assertPicksNewImage(file: string, kind: string, owned?: Owned) {
  const s = scene(file, kind);
  const o = owned ?? s.owned;
  const picked = s.pods.filter((p) => isNewRevisionPod(s.workload, p, o));
  const expected = s.pods.filter((p) => podImage(p) === templateImage(s.workload));
  assert.ok(expected.length > 0, 'the capture has new-revision pods');
  assert.deepEqual(names(picked), names(expected));
  return { ...s, picked };
}

/** Parses "a=b,c=d" (the only form these selectors take) and checks it picks the same pods. */
function assertSelectorPicks(selector: string | undefined, pods: KubernetesObject[], picked: KubernetesObject[]) {
  assert.ok(selector, 'a selector');
  const wanted = selector.split(',').map((kv) => kv.split('=') as [string, string]);
  const matching = pods.filter((p) => wanted.every(([k, v]) => p.metadata?.labels?.[k] === v));
  assert.deepEqual(names(matching), names(picked));
}

describe('Deployment', () => {
  test('mid-rollout: the ReplicaSet whose revision is the Deployment\'s, and only its pods', () => {
    const { workload, owned, pods, picked } = assertPicksNewImage('deployment-rolling.yaml', 'Deployment');
    assert.equal(owned.replicaSets?.length, 2);
    assert.ok(pods.length > picked.length, 'old pods are there too');
    const newRs = owned.replicaSets?.find((rs) => templateImage(rs) === templateImage(workload));
    const hash = newRs?.metadata?.labels?.['pod-template-hash'];
    assert.ok(hash);
    const selector = newRevisionSelector(workload, owned);
    assert.equal(selector, `app=web,pod-template-hash=${hash}`);
    assertSelectorPicks(selector, pods, picked);
  });

  test('rolled out: all pods', () => {
    const { workload, owned, pods, picked } = assertPicksNewImage('deployment-complete.yaml', 'Deployment');
    assert.equal(picked.length, pods.length);
    assertSelectorPicks(newRevisionSelector(workload, owned), pods, picked);
  });

  test('deadline exceeded: the pod that cannot pull is the new one', () => {
    const { picked } = assertPicksNewImage('deployment-deadline-exceeded.yaml', 'Deployment');
    assert.deepEqual(picked.map(podImage), ['registry.example/web:fail-pull']);
  });

  test('unknown until the ReplicaSets are listed and the controller has observed the spec', () => {
    const { workload, owned, pods } = scene('deployment-rolling.yaml', 'Deployment');
    assert.equal(newRevisionSelector(workload, {}), undefined);
    // Right after an apply the revision annotation still names the previous ReplicaSet.
    const unobserved = edited(workload, { 'metadata.generation': (workload.metadata?.generation ?? 0) + 1 });
    assert.equal(newRevisionSelector(unobserved, owned), undefined);
    assert.equal(pods.some((p) => isNewRevisionPod(unobserved, p, owned)), false);
  });

  test('pods and ReplicaSets of another Deployment are not picked', () => {
    const web = scene('deployment-rolling.yaml', 'Deployment');
    const surge = scene('deployment-old-replicas.yaml', 'Deployment');
    assert.equal(surge.pods.some((p) => isNewRevisionPod(web.workload, p, web.owned)), false);
    // web's ReplicaSets listed for surge: none is surge's.
    assert.equal(newRevisionSelector(surge.workload, web.owned), undefined);
  });
});

describe('StatefulSet', () => {
  test('partitioned: only the ordinals at or above the partition', () => {
    const { workload, owned, pods, picked } = assertPicksNewImage('statefulset-partitioned.yaml', 'StatefulSet');
    assert.deepEqual(names(picked), ['db-2']);
    const update = (workload as { status?: { updateRevision?: string } }).status?.updateRevision;
    const selector = newRevisionSelector(workload, owned);
    assert.equal(selector, `app=db,controller-revision-hash=${update}`);
    assertSelectorPicks(selector, pods, picked);
  });

  test('rolling update stopped at a crash-looping pod', () => {
    const { picked } = assertPicksNewImage('statefulset-rolling.yaml', 'StatefulSet');
    assert.deepEqual(names(picked), ['queue-1']);
  });

  test('rolled out: all pods; needs no owned objects', () => {
    const { pods, picked } = assertPicksNewImage('statefulset-complete.yaml', 'StatefulSet', {});
    assert.equal(picked.length, pods.length);
  });
});

describe('DaemonSet', () => {
  test('surge: the new pod next to the old one, by the newest ControllerRevision', () => {
    const { workload, owned, pods, picked } = assertPicksNewImage('daemonset-rolling.yaml', 'DaemonSet');
    assert.equal(pods.length, 2);
    const newest = [...(owned.controllerRevisions ?? [])].sort((a, b) => ((b as { revision: number }).revision - (a as { revision: number }).revision))[0];
    const selector = newRevisionSelector(workload, owned);
    assert.equal(selector, `app=agent,controller-revision-hash=${newest?.metadata?.labels?.['controller-revision-hash']}`);
    assertSelectorPicks(selector, pods, picked);
  });

  test('without ControllerRevisions: by pod-template-generation', () => {
    const { workload, pods, picked } = assertPicksNewImage('daemonset-rolling.yaml', 'DaemonSet', {});
    const selector = newRevisionSelector(workload, {});
    assert.match(selector ?? '', /^app=agent,pod-template-generation=\d+$/);
    assertSelectorPicks(selector, pods, picked);
  });

  test('unknown while the controller has not observed the spec', () => {
    const { workload, owned } = scene('daemonset-rolling.yaml', 'DaemonSet');
    assert.equal(newRevisionSelector(edited(workload, { 'status.observedGeneration': 1 }), owned), undefined);
  });
});

describe('Job', () => {
  test('its pods by controller-uid', () => {
    const { workload, owned, pods } = scene('job-complete.yaml', 'Job');
    assert.ok(pods.length > 0);
    const selector = newRevisionSelector(workload, owned);
    assert.equal(selector, `batch.kubernetes.io/controller-uid=${workload.metadata?.uid}`);
    assert.ok(pods.every((p) => isNewRevisionPod(workload, p, owned)));
    assertSelectorPicks(selector, pods, pods);
    // Another Job's pods are not.
    const other = scene('job-running.yaml', 'Job');
    assert.equal(other.pods.some((p) => isNewRevisionPod(workload, p, owned)), false);
  });
});

test('kinds without revisions', () => {
  const configMap = one('other-kinds.yaml', 'ConfigMap');
  const pod = ofKind('deployment-complete.yaml', 'Pod')[0] ?? {};
  assert.equal(newRevisionSelector(configMap, {}), undefined);
  assert.equal(isNewRevisionPod(configMap, pod, {}), false);
});
