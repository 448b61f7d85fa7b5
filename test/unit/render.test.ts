import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseManifests } from '../../src/apply/manifests.ts';
import { renderManifests } from '../../src/apply/render.ts';
import { DeployError } from '../../src/errors.ts';

interface PodTemplate {
  spec: { containers: { name: string; image: string }[] };
}
interface Obj {
  metadata: { annotations?: Record<string, string> };
  spec?: { template?: PodTemplate; jobTemplate?: { spec: { template: PodTemplate } } };
}

const stamp = { source: 'direct', image: 'r.io/a/web:2', requestId: 'req-1', eventId: 'ev-1', eventTime: '2026-01-01T00:00:00Z' };
const workloads = parseManifests(`
apiVersion: apps/v1
kind: Deployment
metadata: { name: d }
spec: { template: { spec: { containers: [{ name: web, image: old }, { name: sidecar, image: proxy:1 }] } } }
---
apiVersion: batch/v1
kind: CronJob
metadata: { name: c }
spec: { jobTemplate: { spec: { template: { spec: { containers: [{ name: web, image: old }] } } } } }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: m }
`);

test('sets the image on the target container of every pod template, and stamps every object', () => {
  // Read the result back as plain data, the way it is sent.
  const [d, c, m] = JSON.parse(JSON.stringify(renderManifests(workloads, { image: 'r.io/a/web:2', container: 'web', stamp }))) as Obj[];
  assert.equal(d?.spec?.template?.spec.containers[0]?.image, 'r.io/a/web:2');
  assert.equal(d?.spec?.template?.spec.containers[1]?.image, 'proxy:1');
  assert.equal(c?.spec?.jobTemplate?.spec.template.spec.containers[0]?.image, 'r.io/a/web:2');
  for (const o of [d, c, m]) {
    const a = o?.metadata.annotations ?? {};
    assert.equal(a['gke-deployer/image'], 'r.io/a/web:2');
    assert.equal(a['gke-deployer/request-id'], 'req-1');
    assert.equal(a['gke-deployer/source'], 'direct');
    assert.match(a['kubernetes.io/change-cause'] ?? '', /r\.io\/a\/web:2/);
  }
  // The parsed manifests are not modified.
  assert.equal((workloads[0] as unknown as Obj).spec?.template?.spec.containers[0]?.image, 'old');
});

test('without a container name, several containers is an error; no matching container is an error', () => {
  assert.throws(() => renderManifests(workloads, { image: 'x:1', stamp }), (e: unknown) => e instanceof DeployError && e.code === 'INVALID_MANIFEST');
  assert.throws(() => renderManifests(workloads, { image: 'x:1', container: 'nope', stamp }), (e: unknown) => e instanceof DeployError && e.code === 'CONTAINER_NOT_FOUND');
});

test('manifests: multi-document, lists expanded, missing names refused', () => {
  assert.equal(parseManifests('kind: List\napiVersion: v1\nitems: [{apiVersion: v1, kind: ConfigMap, metadata: {name: a}}]').length, 1);
  assert.throws(() => parseManifests('apiVersion: v1\nkind: ConfigMap\nmetadata: { generateName: a- }'), /metadata.name/);
  assert.throws(() => parseManifests('a: [1'), /document 1/);
});
