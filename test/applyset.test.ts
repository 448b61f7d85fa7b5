// Prune as an ApplySet (src/apply/applyset.ts) against the sandbox's API server: members
// labelled with the set's id are listed per group-kind and those that left the release are
// deleted, nothing else (look-alikes without the label, another set's members, objects in
// another namespace); a dry run only lists; a pruned Deployment's Pods go too; a kind whose
// CRD was deleted is skipped; deploy/kubernetes/rbac.yaml grants what it takes. And kubectl
// (KEP-3659) reads the same set: its label selector lists the members, and its
// `apply --prune --applyset` recognises our parent.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { KubernetesObject } from '@kubernetes/client-node';
import {
  APPLYSET_ANNOTATIONS,
  APPLYSET_LABELS,
  applysetId,
  applysetParent,
  asMember,
  groupKind,
  listMembers,
  memberKey,
  parentBody,
  prune,
} from '../src/apply/applyset.ts';
import type { KubeClient } from '../src/cluster/client.ts';
import { ClusterRegistry } from '../src/cluster/registry.ts';
import { DeployError } from '../src/errors.ts';
import { accessToken, exists, kubectl, kubectlJson, namespace, sandbox } from './support/sandbox.ts';

const exec = promisify(execFile);
const FIELD_MANAGER = 'gke-deployer/web';
const IMAGE = 'europe-docker.pkg.dev/sandbox-project/apps/web:1.0.0';

function deployment(name: string, replicas = 1): KubernetesObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels: { app: name } },
    spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'web', image: IMAGE }] } } },
  } as KubernetesObject;
}
const service = (name: string): KubernetesObject => ({ apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { selector: { app: name }, ports: [{ port: 80 }] } }) as KubernetesObject;
const configMap = (name: string): KubernetesObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { k: 'v' } }) as KubernetesObject;

const inNs = (obj: KubernetesObject, ns: string): KubernetesObject => ({ ...obj, metadata: { ...obj.metadata, namespace: ns } });
const names = (objs: KubernetesObject[]) => objs.map((o) => `${o.kind}/${o.metadata?.name}`).sort();

async function apply(client: KubeClient, obj: KubernetesObject): Promise<KubernetesObject> {
  return client.apply(obj, { dryRun: false, force: false, fieldManager: FIELD_MANAGER });
}

/** A release of target `web` in `ns`: the parent and three members, plus look-alikes that must never be pruned. */
async function release(client: KubeClient, ns: string): Promise<{ id: string; members: KubernetesObject[]; groupKinds: string[] }> {
  const parent = applysetParent('web', ns);
  const id = applysetId(parent);
  const members = [deployment('web'), service('web'), configMap('web-config')].map((o) => inNs(asMember(o, id), ns));
  const groupKinds = [...new Set(members.map(groupKind))];
  await apply(client, parentBody(parent, id, groupKinds, { 'gke-deployer/current': 'test' }));
  for (const m of members) await apply(client, m);
  // Look-alikes: the same kinds, no label; another set's id; our id but another namespace.
  await apply(client, inNs(configMap('unlabelled'), ns));
  await apply(client, inNs(asMember(service('other-set'), 'applyset-other-v1'), ns));
  return { id, members, groupKinds };
}

describe('ApplySet prune against the API server', () => {
  let registry: ClusterRegistry;
  let client: KubeClient;

  before(async () => {
    const info = await sandbox();
    registry = new ClusterRegistry(new Map([['c', { kubeconfig: { path: info.kubeconfig } }]]));
    client = await registry.client('c');
  });
  after(() => registry.close());

  test('keep = {the Deployment}: the Service and ConfigMap are deleted, look-alikes and other namespaces untouched', async () => {
    const ns = await namespace('as-prune');
    const elsewhere = await namespace('as-elsewhere');
    const { id, members, groupKinds } = await release(client, ns);
    // Our id, another namespace: outside the set's scope.
    await apply(client, inNs(asMember(configMap('web-config'), id), elsewhere));
    await apply(client, inNs(asMember(service('web'), id), elsewhere));

    const keep = new Set([memberKey(members[0]!)]);
    const pruned = await prune(client, { id, namespace: ns, groupKinds, clusterScoped: [], keep, dryRun: false });

    assert.deepEqual(names(pruned), ['ConfigMap/web-config', 'Service/web']);
    assert.equal(await exists('service', 'web', ns), false);
    assert.equal(await exists('configmap', 'web-config', ns), false);
    assert.equal(await exists('deployment', 'web', ns), true, 'kept');
    assert.equal(await exists('configmap', 'unlabelled', ns), true, 'no label: not a member');
    assert.equal(await exists('service', 'other-set', ns), true, "another set's member");
    assert.equal(await exists('configmap', 'gke-deployer-web', ns), true, 'the parent');
    assert.equal(await exists('configmap', 'web-config', elsewhere), true, 'another namespace');
    assert.equal(await exists('service', 'web', elsewhere), true, 'another namespace');

    // Nothing left to prune: a second run deletes nothing.
    assert.deepEqual(await prune(client, { id, namespace: ns, groupKinds, clusterScoped: [], keep, dryRun: false }), []);
  });

  test('a dry run lists what would be pruned and deletes nothing', async () => {
    const ns = await namespace('as-dry');
    const { id, members, groupKinds } = await release(client, ns);
    const keep = new Set([memberKey(members[0]!)]);

    const listed = await prune(client, { id, namespace: ns, groupKinds, clusterScoped: [], keep, dryRun: true });

    assert.deepEqual(names(listed), ['ConfigMap/web-config', 'Service/web']);
    assert.equal(await exists('service', 'web', ns), true);
    assert.equal(await exists('configmap', 'web-config', ns), true);
    assert.deepEqual(names(await listMembers(client, { id, namespace: ns, groupKinds, clusterScoped: [] })), ['ConfigMap/web-config', 'Deployment/web', 'Service/web']);
  });

  test("a pruned Deployment's ReplicaSet and Pods go too (background propagation)", { timeout: 120_000 }, async () => {
    const ns = await namespace('as-pods');
    const id = applysetId(applysetParent('web', ns));
    await apply(client, inNs(asMember(deployment('old', 2), id), ns));
    await kubectl(['-n', ns, 'rollout', 'status', 'deployment/old', '--timeout=90s']);
    const pods = await kubectlJson<{ items: unknown[] }>(['-n', ns, 'get', 'pods', '-l', 'app=old']);
    assert.equal(pods.items.length, 2, 'the Deployment runs two Pods');

    const pruned = await prune(client, { id, namespace: ns, groupKinds: ['Deployment.apps'], clusterScoped: [], keep: new Set(), dryRun: false });

    assert.deepEqual(names(pruned), ['Deployment/old']);
    // The garbage collector removes the dependents: wait for that, do not assume it.
    await kubectl(['-n', ns, 'wait', '--for=delete', 'pod', '-l', 'app=old', '--timeout=90s']);
    await kubectl(['-n', ns, 'wait', '--for=delete', 'replicaset', '-l', 'app=old', '--timeout=90s']);
    const left = await kubectlJson<{ items: unknown[] }>(['-n', ns, 'get', 'pods,replicasets', '-l', 'app=old']);
    assert.equal(left.items.length, 0);
  });

  test('a custom kind is found through discovery; once its CRD is deleted, the kind is skipped without an error', { timeout: 60_000 }, async () => {
    const ns = await namespace('as-crd');
    const group = `t${randomBytes(4).toString('hex')}.example.com`;
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `widgets.${group}` },
      spec: {
        group,
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
      },
    };
    // This client's discovery is kept from before the CRD exists.
    assert.deepEqual(await client.servedVersions(group), []);
    await kubectl(['apply', '-f', '-'], JSON.stringify(crd));
    try {
      await kubectl(['wait', '--for=condition=Established', `crd/widgets.${group}`, '--timeout=30s']);
      // The API server's group list catches up with the CRD on its own schedule: poll for it.
      const listed = async () => ((JSON.parse(await kubectl(['get', '--raw', '/apis'])) as { groups: { name: string }[] }).groups.some((g) => g.name === group));
      for (const end = Date.now() + 30_000; !(await listed()); ) {
        if (Date.now() > end) throw new Error(`${group} never appeared in /apis`);
        await new Promise((r) => setTimeout(r, 100));
      }
      // A group the kept answer lacks is asked for again.
      assert.deepEqual(await client.servedVersions(group), ['v1']);
      const id = applysetId(applysetParent('web', ns));
      const widget = inNs(asMember({ apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'w' } }, id), ns);
      await apply(client, widget);
      const groupKinds = [`Widget.${group}`, 'Service'];
      assert.equal(groupKind(widget), `Widget.${group}`);

      assert.deepEqual(names(await prune(client, { id, namespace: ns, groupKinds, clusterScoped: [], keep: new Set(), dryRun: true })), ['Widget/w']);
      assert.deepEqual(names(await prune(client, { id, namespace: ns, groupKinds, clusterScoped: [], keep: new Set(), dryRun: false })), ['Widget/w']);

      await apply(client, widget);
      await kubectl(['delete', 'crd', `widgets.${group}`, '--wait=true']);
      // The same client: its discovery still knows the group from before.
      assert.deepEqual(await listMembers(client, { id, namespace: ns, groupKinds, clusterScoped: [] }), []);
    } finally {
      await kubectl(['delete', 'crd', `widgets.${group}`, '--ignore-not-found']);
    }
  });

  test('kubectl lists the members by our label, and its --applyset prune recognises our parent', { timeout: 60_000 }, async () => {
    const info = await sandbox();
    const ns = await namespace('as-kubectl');
    const { id } = await release(client, ns);

    const listed = await kubectl(['-n', ns, 'get', 'cm,deploy,svc', '-l', `${APPLYSET_LABELS.partOf}=${id}`, '-o', 'name']);
    assert.deepEqual(listed.trim().split('\n').sort(), ['configmap/web-config', 'deployment.apps/web', 'service/web']);

    // kubectl's prune with only the Deployment, as a server dry run.
    const dir = await mkdtemp(path.join(tmpdir(), 'applyset-'));
    const file = path.join(dir, 'only-deployment.json');
    await writeFile(file, JSON.stringify(deployment('web')));
    const kubectlPrune = () =>
      exec(info.kubectl, ['--kubeconfig', info.kubeconfig, '-n', ns, 'apply', '--server-side', `--field-manager=${FIELD_MANAGER}`, '--prune', '--applyset=configmap/gke-deployer-web', '-f', file, '--dry-run=server'], {
        env: { ...process.env, KUBECTL_APPLYSET: 'true' },
      });

    // kubectl refuses a set another tool manages (KEP-3659: the tooling annotation): it read
    // our parent and its tooling, and says so.
    await assert.rejects(kubectlPrune(), (err: { stderr?: string }) => {
      assert.match(String(err.stderr), /ApplySet parent object "configmaps\.\/gke-deployer-web" already exists and is managed by tooling "gke-deployer" instead of "kubectl"/);
      return true;
    });

    // With only the tooling swapped to kubectl's, kubectl accepts the rest of our parent: the id
    // label it computes itself (it refuses a wrong one), the group-kinds it lists members by;
    // and it would prune the same two members we do.
    const parent = (await client.get(applysetParent('web', ns)))!;
    const { stdout: version } = await exec(info.kubectl, ['version', '--client', '-o', 'json']);
    const tooling = `kubectl/${(JSON.parse(version) as { clientVersion: { gitVersion: string } }).clientVersion.gitVersion}`;
    await kubectl(['-n', ns, 'annotate', 'configmap', 'gke-deployer-web', '--overwrite', `${APPLYSET_ANNOTATIONS.tooling}=${tooling}`]);
    const { stdout } = await kubectlPrune();
    const prunedByKubectl = stdout.split('\n').filter((l) => l.endsWith(' pruned (server dry run)')).map((l) => l.split(' ')[0]).sort();
    assert.deepEqual(prunedByKubectl, ['configmap/web-config', 'service/web'], stdout);
    assert.equal(parent.metadata?.labels?.[APPLYSET_LABELS.id], id);
    assert.equal(await exists('service', 'web', ns), true, 'a dry run');
  });

  test('a parent kubectl created carries the id applysetId computes', async () => {
    const info = await sandbox();
    const ns = await namespace('as-kubectl-id');
    const dir = await mkdtemp(path.join(tmpdir(), 'applyset-'));
    const file = path.join(dir, 'cm.json');
    await writeFile(file, JSON.stringify(configMap('probe')));
    await exec(info.kubectl, ['--kubeconfig', info.kubeconfig, '-n', ns, 'apply', '--server-side', '--prune', '--applyset=configmap/gke-deployer-web', '-f', file], {
      env: { ...process.env, KUBECTL_APPLYSET: 'true' },
    });
    const parent = await kubectlJson<{ metadata: { labels: Record<string, string>; annotations: Record<string, string> } }>(['-n', ns, 'get', 'configmap', 'gke-deployer-web']);
    assert.equal(parent.metadata.labels[APPLYSET_LABELS.id], applysetId(applysetParent('web', ns)));
    assert.equal(parent.metadata.annotations[APPLYSET_ANNOTATIONS.containsGroupKinds], 'ConfigMap');
    const probe = await kubectlJson<{ metadata: { labels: Record<string, string> } }>(['-n', ns, 'get', 'configmap', 'probe']);
    assert.equal(probe.metadata.labels[APPLYSET_LABELS.partOf], applysetId(applysetParent('web', ns)));
  });
});

describe('deploy/kubernetes/rbac.yaml grants what prune takes', () => {
  let registry: ClusterRegistry;
  let client: KubeClient;
  let ns: string;

  before(async () => {
    const info = await sandbox();
    ns = await namespace('as-rbac');
    const email = `applyset-${randomBytes(4).toString('hex')}@sandbox-project.iam.gserviceaccount.com`;
    const rbac = (await readFile(new URL('../deploy/kubernetes/rbac.yaml', import.meta.url), 'utf8')).replaceAll('${NAMESPACE}', ns).replaceAll('${SERVICE_ACCOUNT}', email);
    await kubectl(['apply', '-f', '-'], rbac);
    const dir = await mkdtemp(path.join(tmpdir(), 'applyset-rbac-'));
    const tokenFile = path.join(dir, 'token');
    await writeFile(tokenFile, await accessToken(email));
    registry = new ClusterRegistry(new Map([['c', { endpoint: { server: info.server, caFile: info.caFile, tokenFile } }]]));
    client = await registry.client('c');
  });
  after(() => registry?.close());

  test("the example's set (a Deployment and a Service): the parent is created and updated, members listed and pruned", async () => {
    const parent = applysetParent('web', ns);
    const id = applysetId(parent);
    const groupKinds = ['Deployment.apps', 'Service'];
    assert.equal(await client.get(parent), undefined, 'get');
    await apply(client, parentBody(parent, id, groupKinds, {}));
    const members = [deployment('web'), service('web'), service('gone')].map((o) => inNs(asMember(o, id), ns));
    for (const m of members) await apply(client, m);
    const keep = new Set(members.slice(0, 2).map(memberKey));

    const pruned = await prune(client, { id, namespace: ns, groupKinds, clusterScoped: [], keep, dryRun: false });

    assert.deepEqual(names(pruned), ['Service/gone']);
    assert.equal(await exists('service', 'gone', ns), false);
    // The parent's update after the prune: patch.
    await apply(client, parentBody(parent, id, groupKinds, { 'gke-deployer/current': 'r2' }));
    const live = await kubectlJson<{ metadata: { annotations: Record<string, string> } }>(['-n', ns, 'get', 'configmap', parent.metadata!.name!]);
    assert.equal(live.metadata.annotations['gke-deployer/current'], 'r2');
  });

  test('a set with ConfigMap members needs the rule rbac.yaml says to add: without it, CLUSTER_FORBIDDEN naming the list', async () => {
    const id = applysetId(applysetParent('web', ns));
    await assert.rejects(
      prune(client, { id, namespace: ns, groupKinds: ['ConfigMap'], clusterScoped: [], keep: new Set(), dryRun: true }),
      (err: unknown) => {
        assert.ok(err instanceof DeployError, String(err));
        assert.equal(err.code, 'CLUSTER_FORBIDDEN');
        assert.match(err.message, /^list ConfigMap .*cannot list resource "configmaps"/);
        return true;
      },
    );
  });
});
