// What the rollback takes for someone else's change, judged by field ownership: its own
// restore after a lost answer is not one (issue 17 item 6), a scaler's replicas are not one
// and are left as they are (item 7); a change to a field the deploy applied still is.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiException, type KubernetesObject } from '@kubernetes/client-node';
import type { Change } from '../../src/apply/apply.ts';
import type { KubeClient } from '../../src/cluster/client.ts';
import { judgeChanges } from '../../src/rollout/ownership.ts';
import { rollback } from '../../src/rollout/rollback.ts';

const MANAGER = 'gke-deployer/web';
const DEADLINE = { deadline: Number.POSITIVE_INFINITY };
const T0 = '2026-12-01T10:00:00Z';
const T1 = '2026-12-01T10:00:05Z';
const CONTAINER = { 'k:{"name":"web"}': { '.': {}, 'f:image': {}, 'f:name': {} } };
const STAMPS = { 'f:gke-deployer/event-id': {}, 'f:gke-deployer/image': {} };
/** What the deploy's manager applied: replicas, the image, its stamps. */
const OURS = { 'f:metadata': { 'f:annotations': STAMPS }, 'f:spec': { 'f:replicas': {}, 'f:template': { 'f:spec': { 'f:containers': CONTAINER } } } };
const OURS_WITHOUT_REPLICAS = { 'f:metadata': { 'f:annotations': STAMPS }, 'f:spec': { 'f:template': { 'f:spec': { 'f:containers': CONTAINER } } } };

interface Fields {
  manager: string;
  operation: string;
  subresource?: string;
  time: string;
  fieldsV1: unknown;
}

function deployment(image: string, opts: { replicas?: number; event?: string; rv?: number; managedFields?: Fields[]; annotations?: Record<string, string> } = {}): KubernetesObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'web',
      namespace: 'ns',
      uid: 'uid-web',
      resourceVersion: String(opts.rv ?? 1),
      annotations: { 'gke-deployer/event-id': opts.event ?? 'e2', 'gke-deployer/image': image, ...opts.annotations },
      managedFields: (opts.managedFields ?? [{ manager: MANAGER, operation: 'Apply', time: T0, fieldsV1: OURS }]) as never,
    },
    spec: { replicas: opts.replicas ?? 2, template: { spec: { containers: [{ name: 'web', image }] } } },
  } as KubernetesObject;
}

function change(after: KubernetesObject): Change {
  return {
    applied: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'ns', annotations: { 'gke-deployer/event-id': 'e2', 'gke-deployer/image': 'repo:bad' } }, spec: { replicas: 2, template: { spec: { containers: [{ name: 'web', image: 'repo:bad' }] } } } } as KubernetesObject,
    before: deployment('repo:good', { event: 'e1' }),
    after,
    imageOnly: false,
  };
}

/** One object; `loseFirstAnswer`: the first apply lands, and its caller hears 409 (its retry, conditional on the old resourceVersion). */
function fakeClient(live: KubernetesObject, loseFirstAnswer = false): { client: KubeClient; bodies: KubernetesObject[] } {
  let stored = structuredClone(live);
  const bodies: KubernetesObject[] = [];
  const client = {
    get: () => Promise.resolve(structuredClone(stored)),
    apply: (body: KubernetesObject) => {
      bodies.push(structuredClone(body));
      const spec = (body as { spec?: Record<string, unknown> }).spec ?? {};
      stored = {
        ...stored,
        metadata: { ...stored.metadata, annotations: body.metadata?.annotations, resourceVersion: String(Number(stored.metadata?.resourceVersion) + 1) },
        spec: { ...(stored as { spec?: object }).spec, ...spec },
      } as KubernetesObject;
      if (loseFirstAnswer && bodies.length === 1) return Promise.reject(new ApiException(409, 'Conflict', { reason: 'Conflict', message: 'the object has been modified' }, {}));
      return Promise.resolve(structuredClone(stored));
    },
    delete: () => Promise.reject(new Error('not expected')),
  };
  return { client: client as unknown as KubeClient, bodies };
}

const image = (o: KubernetesObject) => (o as { spec: { template: { spec: { containers: { image: string }[] } } } }).spec.template.spec.containers[0]!.image;

test("the restore's answer is lost and its retry answers 409: the rollback finds its own restore, and is done", async () => {
  const after = deployment('repo:bad');
  const { client, bodies } = fakeClient(after, true);
  const result = await rollback(client, [change(after)], MANAGER, DEADLINE);
  assert.ok(result.ok, `refused: ${result.ok ? '' : result.reason}`);
  assert.equal(image(result.restored[0]!), 'repo:good');
  assert.equal(bodies.length, 1, 'written once');
});

test('an HPA scaling through the scale subresource does not block the rollback, and the restore leaves its replicas', async () => {
  const after = deployment('repo:bad');
  const live = deployment('repo:bad', {
    replicas: 5,
    rv: 7,
    managedFields: [
      { manager: MANAGER, operation: 'Apply', time: T0, fieldsV1: OURS_WITHOUT_REPLICAS },
      { manager: 'kube-controller-manager', operation: 'Update', subresource: 'scale', time: T1, fieldsV1: { 'f:spec': { 'f:replicas': {} } } },
    ],
  });
  const { client, bodies } = fakeClient(live);
  const result = await rollback(client, [change(after)], MANAGER, DEADLINE);
  assert.ok(result.ok, `refused: ${result.ok ? '' : result.reason}`);
  assert.equal(bodies.length, 1);
  assert.equal(image(bodies[0]!), 'repo:good');
  assert.equal((bodies[0] as { spec: { replicas?: number } }).spec.replicas, undefined, 'replicas are not sent back');
  assert.equal((result.restored[0] as { spec: { replicas: number } }).spec.replicas, 5);
});

test("someone else's change to a field the deploy applied still blocks, and is named", async () => {
  const after = deployment('repo:bad');
  const live = deployment('repo:by-hand', {
    rv: 7,
    managedFields: [
      { manager: MANAGER, operation: 'Apply', time: T0, fieldsV1: { 'f:spec': { 'f:replicas': {} } } },
      { manager: 'kubectl-set', operation: 'Update', time: T1, fieldsV1: { 'f:spec': { 'f:template': { 'f:spec': { 'f:containers': { 'k:{"name":"web"}': { 'f:image': {} } } } } } } },
    ],
  });
  const { client, bodies } = fakeClient(live);
  const result = await rollback(client, [change(after)], MANAGER, DEADLINE);
  assert.equal(result.ok, false);
  assert.match(result.ok ? '' : result.reason, /^Deployment ns\/web was changed by kubectl-set after this deploy wrote it; not rolled back/);
  assert.equal(bodies.length, 0);
});

test('a field the deploy does not own (an annotation someone added) does not block', async () => {
  const after = deployment('repo:bad');
  const live = deployment('repo:bad', {
    rv: 7,
    annotations: { team: 'payments' },
    managedFields: [
      { manager: MANAGER, operation: 'Apply', time: T0, fieldsV1: OURS },
      { manager: 'kubectl-annotate', operation: 'Update', time: T1, fieldsV1: { 'f:metadata': { 'f:annotations': { 'f:team': {} } } } },
    ],
  });
  const { client } = fakeClient(live);
  const result = await rollback(client, [change(after)], MANAGER, DEADLINE);
  assert.ok(result.ok, `refused: ${result.ok ? '' : result.reason}`);
});

test('without the apply answer (a redelivery), the same rule by managedFields: a scale is no change, a later spec write is', () => {
  const scaled = deployment('repo:bad', {
    managedFields: [
      { manager: MANAGER, operation: 'Apply', time: T0, fieldsV1: OURS_WITHOUT_REPLICAS },
      { manager: 'kubectl', operation: 'Update', subresource: 'scale', time: T1, fieldsV1: { 'f:spec': { 'f:replicas': {} } } },
    ],
  });
  assert.deepEqual(judgeChanges(scaled, MANAGER), { changed: false, leaveOut: [] });
  const edited = deployment('repo:bad', {
    managedFields: [
      { manager: MANAGER, operation: 'Apply', time: T0, fieldsV1: OURS },
      { manager: 'kubectl-edit', operation: 'Update', time: T1, fieldsV1: { 'f:spec': { 'f:template': { 'f:spec': { 'f:containers': { 'k:{"name":"web"}': { 'f:env': {} } } } } } } },
    ],
  });
  assert.deepEqual(judgeChanges(edited, MANAGER), { changed: true, by: ['kubectl-edit'] });
  const earlier = deployment('repo:bad', {
    managedFields: [
      { manager: 'kubectl-edit', operation: 'Update', time: T0, fieldsV1: { 'f:spec': { 'f:paused': {} } } },
      { manager: MANAGER, operation: 'Apply', time: T1, fieldsV1: OURS },
    ],
  });
  assert.deepEqual(judgeChanges(earlier, MANAGER), { changed: false, leaveOut: [] }, 'a write before our apply is what the deploy built on');
});
