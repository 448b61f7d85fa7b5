// The rollback's retry after a 409: objects it already restored in an earlier attempt are
// its own writes, not "someone else's change" (the DaemonSet controller's status writes
// make such 409s common under load).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiException, type KubernetesObject } from '@kubernetes/client-node';
import type { Change } from '../../src/apply/apply.ts';
import type { KubeClient } from '../../src/cluster/client.ts';
import { rollback } from '../../src/rollout/rollback.ts';

const MANAGER = 'gke-deployer.web';
/** What the deploy's manager applied: the image of container web. */
const OURS = { 'f:spec': { 'f:template': { 'f:spec': { 'f:containers': { 'k:{"name":"web"}': { '.': {}, 'f:image': {}, 'f:name': {} } } } } } };
const DEADLINE = { deadline: Number.POSITIVE_INFINITY };

function workload(name: string, image: string, rv: number): KubernetesObject {
  const obj = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'ns', uid: `uid-${name}`, resourceVersion: String(rv), managedFields: [{ manager: MANAGER, operation: 'Apply', time: new Date('2026-12-01T10:00:00Z'), fieldsV1: OURS }] },
    spec: { template: { spec: { containers: [{ name: 'web', image }] } } },
  };
  return obj;
}

/** A store of objects; the first write of `conflictOnce` answers 409, as a write racing a status update does. */
function fakeClient(objects: KubernetesObject[], conflictOnce: string): { client: KubeClient; writes: string[] } {
  const store = new Map(objects.map((o) => [o.metadata!.name!, structuredClone(o)]));
  let rv = 100;
  let conflicted = false;
  const writes: string[] = [];
  const client = {
    get: (obj: KubernetesObject) => Promise.resolve(structuredClone(store.get(obj.metadata!.name!))),
    apply: (body: KubernetesObject) => {
      const name = body.metadata!.name!;
      if (name === conflictOnce && !conflicted) {
        conflicted = true;
        return Promise.reject(new ApiException(409, 'Conflict', { reason: 'Conflict' }, {}));
      }
      const live = store.get(name)!;
      const next = { ...live, metadata: { ...live.metadata, annotations: body.metadata?.annotations, resourceVersion: String(++rv) }, spec: (body as { spec?: unknown }).spec } as KubernetesObject;
      store.set(name, next);
      writes.push(name);
      return Promise.resolve(structuredClone(next));
    },
    delete: () => Promise.reject(new Error('not expected')),
  };
  return { client: client as unknown as KubeClient, writes };
}

test('a 409 on the second object: the retry does not take the first, already restored, for someone else\'s change', async () => {
  const changes: Change[] = ['a', 'b'].map((name) => ({
    applied: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: 'ns' }, spec: { template: { spec: { containers: [{ name: 'web', image: 'repo:bad' }] } } } } as KubernetesObject,
    before: workload(name, 'repo:good', 1),
    after: workload(name, 'repo:bad', 2),
    imageOnly: false,
  }));
  const { client, writes } = fakeClient(changes.map((c) => c.after), 'b');
  const result = await rollback(client, changes, MANAGER, DEADLINE);
  assert.ok(result.ok, `refused: ${result.ok ? '' : result.reason}`);
  assert.deepEqual(result.restored.map((o) => (o as { spec: { template: { spec: { containers: { image: string }[] } } } }).spec.template.spec.containers[0]!.image), ['repo:good', 'repo:good']);
  assert.deepEqual(writes, ['a', 'b'], 'each restored once');
});
