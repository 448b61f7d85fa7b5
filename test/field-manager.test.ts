// Moving an object from the legacy shared field manager to the target's own, when the
// object changes between our read and the rename (a controller writing status, someone
// annotating): the rename is retried on a fresh read, never reported as a bad manifest.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { LEGACY_FIELD_MANAGER, migrateManager } from '../src/apply/field-manager.ts';
import type { KubeClient } from '../src/cluster/client.ts';
import { ClusterRegistry } from '../src/cluster/registry.ts';
import { accessToken, kubectl, kubectlJson, namespace, sandbox } from './support/sandbox.ts';

let registry: ClusterRegistry;
let client: KubeClient;

before(async () => {
  const info = await sandbox();
  const dir = await mkdtemp(path.join(tmpdir(), 'fm-'));
  const tokenFile = path.join(dir, 'token');
  await writeFile(tokenFile, await accessToken(info.serviceAccount));
  registry = new ClusterRegistry(new Map([['c', { endpoint: { server: info.server, caFile: info.caFile, tokenFile } }]]));
  client = await registry.client('c');
});
after(() => registry.close());

test('the rename is retried when the object changed after it was read', async () => {
  const ns = await namespace('fm-race');
  const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm', namespace: ns }, data: { k: 'v' } };
  await kubectl(['-n', ns, 'apply', '--server-side', `--field-manager=${LEGACY_FIELD_MANAGER}`, '-f', '-'], JSON.stringify(cm));
  const live = await client.get(cm);
  // Changed behind the read: the resourceVersion we read is no longer current.
  await kubectl(['-n', ns, 'annotate', 'configmap', 'cm', 'touched=yes']);

  const moved = await migrateManager(client, live, 'gke-deployer/web');

  const now = await kubectlJson<{ metadata: { annotations: Record<string, string>; managedFields: { manager: string; operation: string }[] } }>(['-n', ns, 'get', 'configmap', 'cm', '--show-managed-fields', '-o', 'json']);
  const appliers = now.metadata.managedFields.filter((m) => m.operation === 'Apply').map((m) => m.manager);
  assert.deepEqual(appliers, ['gke-deployer/web']);
  assert.equal(now.metadata.annotations.touched, 'yes', 'the change made in between is kept');
  assert.equal(moved?.metadata?.resourceVersion, (now.metadata as { resourceVersion?: string }).resourceVersion);
});
