// The ApplySet building blocks (src/apply/applyset.ts): kubectl's id, the group-kinds
// annotation, member labels, the parent's body, and the prune's own guards behind the
// label selector (a small fake client; test/applyset.test.ts runs the real API server).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { ApiException, type KubernetesObject } from '@kubernetes/client-node';
import {
  APPLYSET_ANNOTATIONS,
  APPLYSET_LABELS,
  TOOLING,
  applysetId,
  applysetParent,
  asMember,
  checkParent,
  formatGroupKinds,
  groupKind,
  memberKey,
  parentBody,
  parseGroupKinds,
  prune,
  splitGroupKind,
} from '../../src/apply/applyset.ts';
import type { KubeClient } from '../../src/cluster/client.ts';
import { DeployError } from '../../src/errors.ts';

/** KEP-3659, written out: base64url, no padding, of sha256 over "<name>.<namespace>.<Kind>.<group>". */
function kepId(name: string, namespace: string, kind: string, group: string): string {
  const b64 = createHash('sha256').update(`${name}.${namespace}.${kind}.${group}`).digest('base64').replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
  return `applyset-${b64}-v1`;
}

/** What kubectl v1.34.4 wrote on `KUBECTL_APPLYSET=true kubectl apply --prune --applyset=configmap/gke-deployer-web -n web` (the sandbox's kubectl). */
const KUBECTL_ID_WEB = 'applyset-e4JPgQ-iEGJ7vydiPAyYdYLqtHauBqX_nV6KmbFhU3I-v1';

describe('applysetId', () => {
  test("is kubectl's id of the parent ConfigMap gke-deployer-<target>", () => {
    const parent = applysetParent('web', 'web');
    assert.deepEqual(parent, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'gke-deployer-web', namespace: 'web' } });
    assert.equal(applysetId(parent), kepId('gke-deployer-web', 'web', 'ConfigMap', ''));
    assert.equal(applysetId(parent), KUBECTL_ID_WEB);
  });

  test('depends on name, namespace, kind and group; is a valid label value', () => {
    const ids = [
      applysetId(applysetParent('web', 'web')),
      applysetId(applysetParent('web', 'prod')),
      applysetId(applysetParent('api', 'web')),
      applysetId({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'gke-deployer-web', namespace: 'web' } }),
      applysetId({ apiVersion: 'example.com/v1', kind: 'ConfigMap', metadata: { name: 'gke-deployer-web', namespace: 'web' } }),
    ];
    assert.equal(new Set(ids).size, ids.length);
    assert.equal(ids[4], kepId('gke-deployer-web', 'web', 'ConfigMap', 'example.com'), 'the group, not the version');
    for (const id of ids) {
      assert.ok(id.length <= 63, id);
      assert.match(id, /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/);
    }
  });
});

describe('group-kinds', () => {
  test('groupKind: Kind.group, a core kind alone, whatever the version', () => {
    assert.equal(groupKind({ apiVersion: 'apps/v1', kind: 'Deployment' }), 'Deployment.apps');
    assert.equal(groupKind({ apiVersion: 'v1', kind: 'Service' }), 'Service');
    assert.equal(groupKind({ apiVersion: 'batch/v1', kind: 'CronJob' }), 'CronJob.batch');
    assert.equal(groupKind({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress' }), 'Ingress.networking.k8s.io');
    assert.equal(groupKind({ apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler' }), groupKind({ apiVersion: 'autoscaling/v1', kind: 'HorizontalPodAutoscaler' }));
  });

  test('formatGroupKinds: unique, sorted as kubectl sorts (byte order), comma-separated; empty set is ""', () => {
    assert.equal(formatGroupKinds(['Service', 'Deployment.apps', 'ConfigMap', 'Service', 'CronJob.batch']), 'ConfigMap,CronJob.batch,Deployment.apps,Service');
    // Byte order, not locale order: "Z" sorts before "a".
    assert.equal(formatGroupKinds(['aKind.x', 'Zed']), 'Zed,aKind.x');
    assert.equal(formatGroupKinds([]), '');
  });

  test('parseGroupKinds reads formatGroupKinds back, and kubectl\'s own value', () => {
    const set = new Set(['ConfigMap', 'Deployment.apps', 'Widget.example.com']);
    assert.deepEqual(parseGroupKinds(formatGroupKinds(set)), set);
    assert.deepEqual(parseGroupKinds('ConfigMap'), new Set(['ConfigMap']));
    assert.deepEqual(parseGroupKinds(''), new Set());
    assert.deepEqual(parseGroupKinds(undefined), new Set());
    assert.deepEqual(parseGroupKinds(' Service , Deployment.apps '), new Set(['Service', 'Deployment.apps']));
  });

  test('parseGroupKinds leaves out what is no group-kind (a hand edit): fewer kinds listed, never more', () => {
    assert.deepEqual(parseGroupKinds('Service,,deployments/apps,Deployment.apps,*,Secret.'), new Set(['Service', 'Deployment.apps']));
  });

  test('splitGroupKind: the Kind up to the first dot', () => {
    assert.deepEqual(splitGroupKind('Deployment.apps'), { kind: 'Deployment', group: 'apps' });
    assert.deepEqual(splitGroupKind('Ingress.networking.k8s.io'), { kind: 'Ingress', group: 'networking.k8s.io' });
    assert.deepEqual(splitGroupKind('Service'), { kind: 'Service', group: '' });
  });

  test('memberKey: group-kind and name, not the version', () => {
    const a = { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'web' } };
    assert.equal(memberKey(a), 'HorizontalPodAutoscaler.autoscaling/web');
    assert.equal(memberKey({ ...a, apiVersion: 'autoscaling/v1' }), memberKey(a));
    assert.notEqual(memberKey({ ...a, metadata: { name: 'api' } }), memberKey(a));
    assert.notEqual(memberKey({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' } }), memberKey({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'web' } }));
  });
});

describe('asMember', () => {
  const id = KUBECTL_ID_WEB;

  test("adds the part-of label, keeps the object's labels, leaves the input as it was", () => {
    const obj: KubernetesObject = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', labels: { app: 'web' }, annotations: { a: 'b' } } };
    const member = asMember(obj, id);
    assert.deepEqual(member.metadata?.labels, { app: 'web', [APPLYSET_LABELS.partOf]: id });
    assert.deepEqual(member.metadata?.annotations, { a: 'b' });
    assert.deepEqual(obj.metadata?.labels, { app: 'web' });
    assert.equal(APPLYSET_LABELS.partOf, 'applyset.kubernetes.io/part-of');
  });

  test('an object without labels gets just the label', () => {
    assert.deepEqual(asMember({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' } }, id).metadata?.labels, { [APPLYSET_LABELS.partOf]: id });
  });

  test('a manifest that claims another set is refused; one that names this set is fine', () => {
    const claims = (value: string): KubernetesObject => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's', labels: { [APPLYSET_LABELS.partOf]: value } } });
    assert.throws(
      () => asMember(claims('applyset-other-v1'), id),
      (err: unknown) => err instanceof DeployError && err.code === 'INVALID_MANIFEST' && err.message.includes('applyset-other-v1'),
    );
    assert.equal(asMember(claims(id), id).metadata?.labels?.[APPLYSET_LABELS.partOf], id);
  });
});

describe('the parent', () => {
  const parent = applysetParent('web', 'web');
  const id = applysetId(parent);

  test('parentBody: the id label, tooling and sorted group-kinds, the given annotations, no data', () => {
    const body = parentBody(parent, id, new Set(['Service', 'Deployment.apps']), { 'gke-deployer/current': 'r@sha256:1' });
    assert.deepEqual(body, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'gke-deployer-web',
        namespace: 'web',
        labels: { 'applyset.kubernetes.io/id': id },
        annotations: {
          'gke-deployer/current': 'r@sha256:1',
          'applyset.kubernetes.io/tooling': 'gke-deployer/v1',
          'applyset.kubernetes.io/contains-group-kinds': 'Deployment.apps,Service',
        },
      },
    });
  });

  test("parentBody: the given annotations cannot overwrite the ApplySet's own", () => {
    const body = parentBody(parent, id, ['Service'], { [APPLYSET_ANNOTATIONS.tooling]: 'kubectl/v1.34.4', [APPLYSET_ANNOTATIONS.containsGroupKinds]: 'Secret' });
    assert.equal(body.metadata?.annotations?.[APPLYSET_ANNOTATIONS.tooling], TOOLING);
    assert.equal(body.metadata?.annotations?.[APPLYSET_ANNOTATIONS.containsGroupKinds], 'Service');
  });

  test("checkParent: absent or ours passes; kubectl's, unlabelled or another set's is a CONFLICT", () => {
    checkParent(undefined, id);
    checkParent(parentBody(parent, id, [], {}), id);
    const conflict = (err: unknown) => err instanceof DeployError && err.code === 'CONFLICT';
    const kubectls = parentBody(parent, id, [], { [APPLYSET_ANNOTATIONS.tooling]: 'x' });
    kubectls.metadata!.annotations![APPLYSET_ANNOTATIONS.tooling] = 'kubectl/v1.34.4';
    assert.throws(() => checkParent(kubectls, id), conflict);
    assert.throws(() => checkParent({ ...parent, metadata: { ...parent.metadata } }, id), conflict);
    assert.throws(() => checkParent(parentBody(parent, 'applyset-other-v1', [], {}), id), conflict);
  });
});

/** Whether each kind the fake serves is namespaced. */
const SCOPES: Record<string, boolean | undefined> = { 'apps/v1:Deployment': true, 'v1:Service': true, 'rbac.authorization.k8s.io/v1:ClusterRole': false };

/** A cluster that serves Deployments, Services and ClusterRoles, answers lists from `objects`, and records deletes. */
class FakeCluster {
  deletes: { name: string; preconditions: { uid: string; resourceVersion?: string } }[] = [];
  listed: string[] = [];
  /** Called before answering a delete: a change made between our look and the delete. */
  beforeDelete: (obj: KubernetesObject) => void = () => {};
  objects: KubernetesObject[];
  constructor(objects: KubernetesObject[]) {
    this.objects = objects;
  }

  client(): KubeClient {
    const fake = {
      servedVersions: (group: string) => Promise.resolve(['apps', '', 'rbac.authorization.k8s.io'].includes(group) ? ['v1'] : []),
      isNamespaced: (apiVersion: string, kind: string) =>
        Promise.resolve(SCOPES[`${apiVersion}:${kind}`]),
      // Neither the label selector nor the namespace is applied here (the API server does both),
      // so what is tested is the prune's own re-check of every item.
      list: (apiVersion: string, kind: string) => {
        this.listed.push(`${apiVersion}:${kind}`);
        return Promise.resolve({ items: this.objects.filter((o) => o.kind === kind).map((o) => ({ ...structuredClone(o), apiVersion })), resourceVersion: '1', path: '' });
      },
      get: (obj: KubernetesObject) => Promise.resolve(structuredClone(this.find(obj))),
      delete: (obj: KubernetesObject, preconditions: { uid: string; resourceVersion?: string }) => {
        this.beforeDelete(obj);
        const live = this.find(obj);
        if (!live) return Promise.reject(new ApiException(404, 'not found', {}, {}));
        if (live.metadata?.uid !== preconditions.uid || live.metadata?.resourceVersion !== preconditions.resourceVersion) {
          return Promise.reject(new ApiException(409, 'precondition failed', {}, {}));
        }
        this.deletes.push({ name: obj.metadata?.name ?? '', preconditions });
        this.objects = this.objects.filter((o) => o !== live);
        return Promise.resolve();
      },
    };
    return fake as unknown as KubeClient;
  }

  private find(obj: KubernetesObject): KubernetesObject | undefined {
    return this.objects.find((o) => o.kind === obj.kind && o.metadata?.name === obj.metadata?.name && o.metadata?.namespace === obj.metadata?.namespace);
  }
}

describe('prune: its own guards', () => {
  const id = KUBECTL_ID_WEB;
  const obj = (kind: string, name: string, labels: Record<string, string>, ns = 'web'): KubernetesObject => ({
    apiVersion: kind === 'Deployment' ? 'apps/v1' : 'v1',
    kind,
    metadata: { name, namespace: ns, uid: `uid-${name}`, resourceVersion: '1', labels },
  });
  const member = { [APPLYSET_LABELS.partOf]: id };
  const base = { id, namespace: 'web', groupKinds: ['Deployment.apps', 'Service'], clusterScoped: [], keep: new Set<string>(), dryRun: false };

  test('an item the list returns without the label, with another id, labelled as a parent, or in another namespace is not deleted', async () => {
    const cluster = new FakeCluster([
      obj('Service', 'member', member),
      obj('Service', 'elsewhere', member, 'other'),
      obj('Service', 'unlabelled', {}),
      obj('Service', 'other-set', { [APPLYSET_LABELS.partOf]: 'applyset-other-v1' }),
      obj('Service', 'a-parent', { ...member, [APPLYSET_LABELS.id]: id }),
    ]);
    const pruned = await prune(cluster.client(), base);
    assert.deepEqual(pruned.map((o) => o.metadata?.name), ['member']);
    assert.deepEqual(cluster.deletes, [{ name: 'member', preconditions: { uid: 'uid-member', resourceVersion: '1' } }]);
  });

  test('keep is by group-kind and name: a kept name of another kind is still pruned', async () => {
    const cluster = new FakeCluster([obj('Service', 'web', member), obj('Deployment', 'web', member)]);
    const pruned = await prune(cluster.client(), { ...base, keep: new Set([memberKey({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' } })]) });
    assert.deepEqual(pruned.map((o) => `${o.kind}/${o.metadata?.name}`), ['Service/web']);
  });

  test('an object taken out of the set between the list and the delete is not deleted', async () => {
    const cluster = new FakeCluster([obj('Service', 'leaving', member)]);
    cluster.beforeDelete = (o) => {
      const live = cluster.objects.find((x) => x.metadata?.name === o.metadata?.name)!;
      live.metadata = { ...live.metadata, labels: {}, resourceVersion: '2' };
    };
    const pruned = await prune(cluster.client(), base);
    assert.deepEqual(pruned, []);
    assert.deepEqual(cluster.deletes, []);
    assert.equal(cluster.objects.length, 1, 'still there');
  });

  test('a member that only changed (a status write) between the list and the delete is deleted at its new resourceVersion', async () => {
    const cluster = new FakeCluster([obj('Deployment', 'old', member)]);
    let changed = false;
    cluster.beforeDelete = (o) => {
      if (changed) return;
      changed = true;
      const live = cluster.objects.find((x) => x.metadata?.name === o.metadata?.name)!;
      live.metadata = { ...live.metadata, resourceVersion: '2' };
    };
    const pruned = await prune(cluster.client(), base);
    assert.deepEqual(pruned.map((o) => o.metadata?.name), ['old']);
    assert.deepEqual(cluster.deletes, [{ name: 'old', preconditions: { uid: 'uid-old', resourceVersion: '2' } }]);
  });

  test('a member already gone (404) is fine and not counted', async () => {
    const cluster = new FakeCluster([obj('Service', 'gone', member)]);
    cluster.beforeDelete = () => void (cluster.objects = []);
    assert.deepEqual(await prune(cluster.client(), base), []);
  });

  test('a group-kind the cluster does not serve (its CRD deleted) is skipped, not an error', async () => {
    const cluster = new FakeCluster([obj('Service', 'member', member)]);
    const pruned = await prune(cluster.client(), { ...base, groupKinds: ['Service', 'Widget.example.com'] });
    assert.deepEqual(pruned.map((o) => o.metadata?.name), ['member']);
    assert.deepEqual(cluster.listed, ['v1:Service']);
  });

  test('a cluster-scoped group-kind is listed only when the target allows that kind', async () => {
    const role: KubernetesObject = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'r', uid: 'uid-r', resourceVersion: '1', labels: member } };
    const groupKinds = ['ClusterRole.rbac.authorization.k8s.io'];
    const denied = new FakeCluster([role]);
    assert.deepEqual(await prune(denied.client(), { ...base, groupKinds }), []);
    assert.deepEqual(denied.listed, [], 'not even listed');
    assert.equal(denied.objects.length, 1);
    const allowed = new FakeCluster([role]);
    const pruned = await prune(allowed.client(), { ...base, groupKinds, clusterScoped: ['ClusterRole'] });
    assert.deepEqual(pruned.map((o) => o.metadata?.name), ['r']);
    assert.equal(allowed.objects.length, 0);
  });

  test('a dry run lists and deletes nothing', async () => {
    const cluster = new FakeCluster([obj('Service', 'member', member)]);
    const pruned = await prune(cluster.client(), { ...base, dryRun: true });
    assert.deepEqual(pruned.map((o) => o.metadata?.name), ['member']);
    assert.deepEqual(cluster.deletes, []);
  });
});
