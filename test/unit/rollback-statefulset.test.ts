// A StatefulSet's forced rollback with several broken Pods of the failed revision (a
// Parallel StatefulSet scaled up by the failed deploy): one at a time, highest ordinal
// first, each evicted, the next only once the previous one's replacement is Ready, as the
// controller itself goes (issue 17 item 5). The sandbox test (test/rollback.test.ts) shows
// the same for availability and PodDisruptionBudgets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Change } from '../../src/apply/apply.ts';
import type { KubeClient } from '../../src/cluster/client.ts';
import { rollback } from '../../src/rollout/rollback.ts';

const MANAGER = 'gke-deployer/db';
const OURS = { 'f:spec': { 'f:template': { 'f:spec': { 'f:containers': { 'k:{"name":"web"}': { '.': {}, 'f:image': {}, 'f:name': {} } } } } } };

function sts(image: string): KubernetesObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'db', namespace: 'ns', uid: 'uid-db', resourceVersion: '5', managedFields: [{ manager: MANAGER, operation: 'Apply', time: new Date('2026-12-01T10:00:00Z'), fieldsV1: OURS }] },
    spec: { replicas: 3, selector: { matchLabels: { app: 'db' } }, template: { spec: { containers: [{ name: 'web', image }] } } },
    status: { updateRevision: 'db-bad', currentRevision: 'db-good' },
  } as KubernetesObject;
}

function pod(ordinal: number, revision: string, ready: boolean, uid = `uid-${ordinal}-${revision}`): KubernetesObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `db-${ordinal}`, namespace: 'ns', uid, labels: { app: 'db', 'controller-revision-hash': revision }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', uid: 'uid-db', controller: true }] },
    status: {
      phase: 'Running',
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
      containerStatuses: ready ? [] : [{ name: 'web', state: { waiting: { reason: 'CrashLoopBackOff' } } }],
    },
  } as KubernetesObject;
}

test('several broken Pods of the failed revision: evicted one at a time, highest ordinal first, each once the one before is replaced and Ready', async () => {
  const pods = new Map([0, 1, 2].map((i) => [`db-${i}`, i === 0 ? pod(0, 'db-good', true) : pod(i, 'db-bad', false)]));
  const log: string[] = [];
  const selects = (p: KubernetesObject, query: Record<string, string>) => {
    const labels = p.metadata?.labels ?? {};
    const byLabel = (query.labelSelector ?? '').split(',').filter(Boolean).every((kv) => {
      const [k, v] = kv.split('=');
      return labels[k!] === v;
    });
    const byName = query.fieldSelector === undefined || query.fieldSelector === `metadata.name=${p.metadata?.name ?? ''}`;
    return byLabel && byName;
  };
  const client = {
    get: () => Promise.resolve(sts('repo:crash')),
    apply: (body: KubernetesObject) => Promise.resolve({ ...sts('repo:good'), ...body, status: { updateRevision: 'db-good', currentRevision: 'db-good' } }),
    list: (_v: string, _k: string, _ns: string, query: Record<string, string> = {}) =>
      Promise.resolve({ items: [...pods.values()].filter((p) => selects(p, query)).map((p) => structuredClone(p)), resourceVersion: '1', path: '/api/v1/namespaces/ns/pods' }),
    watch: (_path: string, query: Record<string, string>, onEvent: (type: string, obj: KubernetesObject) => void) => {
      // The controller recreates an evicted Pod from the restored revision; kwok makes it Ready.
      const name = (query.fieldSelector ?? '').replace('metadata.name=', '');
      const replacement = pod(Number(name.slice(3)), 'db-good', true, `uid-${name}-new`);
      pods.set(name, replacement);
      log.push(`${name} replaced, Ready`);
      queueMicrotask(() => onEvent('ADDED', replacement));
      return Promise.resolve(new AbortController());
    },
    evict: (p: KubernetesObject, uid: string) => {
      assert.equal(uid, p.metadata?.uid);
      log.push(`evict ${p.metadata?.name ?? ''}`);
      return Promise.resolve(true);
    },
    delete: (obj: KubernetesObject) => {
      log.push(`delete ${obj.metadata?.name ?? ''}`);
      pods.delete(obj.metadata?.name ?? '');
      return Promise.resolve();
    },
  };
  const change: Change = { applied: { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'db', namespace: 'ns' } }, before: sts('repo:good'), after: sts('repo:crash'), imageOnly: false };
  const result = await rollback(client as unknown as KubeClient, [change], MANAGER, { deadline: Date.now() + 10_000 });
  assert.ok(result.ok, result.ok ? '' : result.reason);
  assert.deepEqual(log, ['evict db-2', 'db-2 replaced, Ready', 'evict db-1', 'db-1 replaced, Ready']);
});
