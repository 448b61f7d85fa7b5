// deploy/kubernetes/rbac.yaml as a file: a template with exactly two placeholders, one
// Role and its RoleBinding to a Google identity, no wildcard, nothing cluster-wide, every
// kind the shipped examples deploy, and the verbs the rollout, rollback and pre-deploy Jobs
// use, and the guide's table of them. (test/least-privilege.test.ts applies it to a real API server.)
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';

const root = path.resolve(import.meta.dirname, '../..');
const text = readFileSync(path.join(root, 'deploy/kubernetes/rbac.yaml'), 'utf8');

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
interface Doc {
  kind: string;
  metadata: { name: string; namespace: string };
  rules?: Rule[];
  roleRef?: { kind: string; name: string; apiGroup: string };
  subjects?: { kind: string; name: string; apiGroup: string }[];
}

/** `envsubst` for the two variables (the real one runs in test/least-privilege.test.ts). */
const docs = parseAllDocuments(text.replaceAll('${NAMESPACE}', 'web').replaceAll('${SERVICE_ACCOUNT}', 'gke-deployer@p.iam.gserviceaccount.com')).map((d) => d.toJS() as Doc);
const role = docs.find((d) => d.kind === 'Role')!;

/** The verbs the Role grants on group/resource. */
function verbs(group: string, resource: string): Set<string> {
  return new Set(role.rules!.filter((r) => r.apiGroups.includes(group) && r.resources.includes(resource)).flatMap((r) => r.verbs));
}

/** Group and plural of the kinds examples may hold; a new kind must be added here and to the Role. */
const RESOURCES: Record<string, [group: string, plural: string]> = {
  Deployment: ['apps', 'deployments'],
  StatefulSet: ['apps', 'statefulsets'],
  DaemonSet: ['apps', 'daemonsets'],
  Job: ['batch', 'jobs'],
  CronJob: ['batch', 'cronjobs'],
  Service: ['', 'services'],
  ConfigMap: ['', 'configmaps'],
  ServiceAccount: ['', 'serviceaccounts'],
  Ingress: ['networking.k8s.io', 'ingresses'],
  HorizontalPodAutoscaler: ['autoscaling', 'horizontalpodautoscalers'],
};
const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'Job']);

describe('deploy/kubernetes/rbac.yaml', () => {
  test('is a template with ${NAMESPACE} and ${SERVICE_ACCOUNT} only, and no other dollar sign', () => {
    const placeholders = new Set([...text.matchAll(/\$\{([A-Z_]+)\}/g)].map((m) => m[1]));
    assert.deepEqual([...placeholders].sort(), ['NAMESPACE', 'SERVICE_ACCOUNT']);
    assert.equal(text.replaceAll('${NAMESPACE}', '').replaceAll('${SERVICE_ACCOUNT}', '').includes('$'), false);
  });

  test('one Role and one RoleBinding in the namespace, bound to the SA email as a User', () => {
    assert.deepEqual(docs.map((d) => d.kind), ['Role', 'RoleBinding']);
    for (const d of docs) assert.equal(d.metadata.namespace, 'web');
    const binding = docs[1]!;
    assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name });
    assert.deepEqual(binding.subjects, [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'gke-deployer@p.iam.gserviceaccount.com' }]);
  });

  test('no wildcard, no Secrets, no RBAC objects, no escalation verbs', () => {
    for (const r of role.rules!) {
      for (const v of [...r.apiGroups, ...r.resources, ...r.verbs]) assert.notEqual(v, '*');
      for (const res of r.resources) assert.doesNotMatch(res, /^(secrets|roles|rolebindings|pods\/exec|pods\/attach|pods\/portforward|serviceaccounts\/token)$/);
      for (const v of r.verbs) assert.doesNotMatch(v, /^(escalate|bind|impersonate|deletecollection)$/);
    }
  });

  test('covers every kind the shipped examples deploy: get, create, patch (and the rollout verbs for workloads)', () => {
    const dir = path.join(root, 'examples/manifests');
    const kinds = new Set(
      readdirSync(dir).flatMap((f) => parseAllDocuments(readFileSync(path.join(dir, f), 'utf8')).map((d) => (d.toJS() as { kind: string }).kind)),
    );
    assert.ok(kinds.size > 0);
    for (const kind of kinds) {
      const resource = RESOURCES[kind];
      assert.ok(resource, `examples deploy a ${kind}: add it to rbac.yaml and to this test's table`);
      const granted = verbs(...resource);
      for (const v of ['get', 'create', 'patch']) assert.ok(granted.has(v), `${kind}: ${v}`);
      // The rollout wait lists and watches it; a rollback deletes it if the failed deploy created it.
      if (WORKLOADS.has(kind)) for (const v of ['list', 'watch', 'delete']) assert.ok(granted.has(v), `${kind}: ${v}`);
    }
  });

  test('prune (ApplySet): list and delete of every kind the examples deploy; the parent ConfigMap get, create, patch only', () => {
    const dir = path.join(root, 'examples/manifests');
    const kinds = new Set(readdirSync(dir).flatMap((f) => parseAllDocuments(readFileSync(path.join(dir, f), 'utf8')).map((d) => (d.toJS() as { kind: string }).kind)));
    assert.ok(kinds.size > 0);
    for (const kind of kinds) {
      const granted = verbs(...RESOURCES[kind]!);
      for (const v of ['list', 'delete']) assert.ok(granted.has(v), `${kind}: ${v}`);
    }
    assert.deepEqual([...verbs('', 'configmaps')].sort(), ['create', 'get', 'patch']);
  });

  test('the rollout wait, pre-deploy Jobs and the per-target lock are covered', () => {
    for (const [group, resource] of [['', 'pods'], ['apps', 'replicasets'], ['apps', 'controllerrevisions']] as const) {
      assert.deepEqual([...verbs(group, resource)].sort(), ['list', 'watch'], `${group}/${resource}`);
    }
    for (const v of ['create', 'get', 'list', 'watch', 'delete']) assert.ok(verbs('batch', 'jobs').has(v), `jobs: ${v}`);
    assert.deepEqual([...verbs('', 'pods/log')], ['get']);
    assert.deepEqual([...verbs('coordination.k8s.io', 'leases')].sort(), ['create', 'delete', 'get', 'update']);
    assert.match(text, /# per-target deploy lock\n\s+- apiGroups: \["coordination\.k8s\.io"\]/);
  });

  test("docs/deploying.md's RBAC table names exactly the resources the Role grants (it listed events after the Role dropped them)", () => {
    const guide = readFileSync(path.join(root, 'docs/deploying.md'), 'utf8');
    const table = /^\| for \| resources \| verbs \|\n\|[-|]+\|\n((?:\|.*\|\n)+)/m.exec(guide)?.[1];
    assert.ok(table, 'the guide has the RBAC table');
    // The resources column's backticked names (group names and object names have dots or brackets).
    const named = new Set(table.split('\n').flatMap((row) => [...(row.split('|')[2] ?? '').matchAll(/`([a-z]+(?:\/[a-z]+)?)`/g)].map((m) => m[1]!)));
    const granted = new Set(role.rules!.flatMap((r) => r.resources));
    assert.deepEqual([...named].sort(), [...granted].sort());
  });
});
