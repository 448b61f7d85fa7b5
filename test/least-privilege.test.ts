// deploy/kubernetes/rbac.yaml, for real: rendered by envsubst as the guide says, applied to
// the sandbox for a fresh namespace and a fresh Google identity, and the function run as
// that identity (its own metadata server, as a Cloud Run instance with that runtime service
// account sees it). The identity deploys the example app with the target's default
// settings, and is refused everywhere else. It never gets the sandbox deployer's
// cluster-wide `edit`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import type { SandboxInfo } from '../sandbox/index.ts';
import { configYaml, gkeCluster } from './support/config.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { canI, idToken, kubectl, kubectlJson, metadataHostFor, namespace, useSandboxEnv } from './support/sandbox.ts';

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');
const RBAC = path.join(root, 'deploy/kubernetes/rbac.yaml');

interface ExampleTarget {
  manifests: string[];
  container?: string;
  images: string[];
}

/** The example's `hello` target as shipped (examples/deployer.yaml), moved to `ns`. */
function exampleTarget(ns: string): { target: Record<string, unknown>; files: Record<string, string>; repo: string } {
  const example = (parse(readFileSync(path.join(root, 'examples/deployer.yaml'), 'utf8')) as { targets: Record<string, ExampleTarget> }).targets.hello;
  assert.ok(example, 'examples/deployer.yaml has a hello target');
  const files: Record<string, string> = {};
  const manifests = example.manifests.map((m) => {
    const name = path.basename(m);
    files[name] = readFileSync(path.join(root, 'examples', m), 'utf8');
    return name;
  });
  return { target: { ...example, cluster: 'sandbox', namespace: ns, manifests }, files, repo: example.images[0]! };
}

/** `envsubst < deploy/kubernetes/rbac.yaml | kubectl apply -f -`, with only the two variables set. */
async function applyRbac(ns: string, serviceAccount: string): Promise<void> {
  const child = exec('envsubst', [], { env: { PATH: process.env.PATH, NAMESPACE: ns, SERVICE_ACCOUNT: serviceAccount } });
  child.child.stdin?.end(readFileSync(RBAC));
  const { stdout: rendered } = await child.catch((err: unknown) => {
    throw new Error(`envsubst failed (Debian package gettext-base; .ci/run installs it): ${String(err)}`);
  });
  assert.doesNotMatch(rendered, /\$/, 'every placeholder is substituted');
  await kubectl(['apply', '-f', '-'], rendered);
}

async function liveImage(ns: string): Promise<string | undefined> {
  const d = await kubectlJson<{ spec: { template: { spec: { containers: { image: string }[] } } } }>(['-n', ns, 'get', 'deployment', 'hello']);
  return d.spec.template.spec.containers[0]?.image;
}

interface Pod {
  metadata: { name: string };
  status: { conditions?: { type: string; status: string }[] };
}

describe('deploy/kubernetes/rbac.yaml grants what a deploy needs, in its namespace only', () => {
  const serviceAccount = `lp-${randomBytes(4).toString('hex')}@sandbox-project.iam.gserviceaccount.com`;
  let ns: string;
  let other: string;
  let fn: RunningFunction;
  let repo: string;
  let identityUrl: string;
  let freshNs: string;
  let gatedNs: string;
  let info: SandboxInfo;
  const APPROVE = 'https://gke-deployer.example.run.app/approve';
  const APPROVER = 'alice@example.com';

  before(async () => {
    info = await useSandboxEnv();
    identityUrl = info.identity;
    ns = await namespace('lp');
    other = await namespace('lp-other');
    await applyRbac(ns, serviceAccount);
    // This test file runs in its own process: from here on, ADC in it is the fresh identity.
    process.env.GCE_METADATA_HOST = await metadataHostFor(info.identity, serviceAccount);
    const example = exampleTarget(ns);
    repo = example.repo;
    const elsewhere = { ...example.target, namespace: other };
    freshNs = `lp-new-${randomBytes(4).toString('hex')}`;
    const fresh = { ...example.target, namespace: freshNs };
    gatedNs = await namespace('lp-gated');
    await applyRbac(gatedNs, serviceAccount);
    const gated = { ...example.target, namespace: gatedNs, approval: { approvers: [APPROVER] } };
    fn = await startFunction(
      configYaml({ auth: { direct: 'none', approve: { audience: APPROVE }, certsUrl: info.certsUrl }, clusters: { sandbox: gkeCluster(info) }, targets: { hello: example.target, elsewhere, fresh, gated } }),
      example.files,
    );
  });
  after(() => fn?.close());

  test('the function runs as the fresh identity: its metadata server hands out tokens the cluster maps to that email', async () => {
    const headers = { 'Metadata-Flavor': 'Google' };
    const base = `http://${process.env.GCE_METADATA_HOST}/computeMetadata/v1/instance/service-accounts/default`;
    assert.equal(await (await fetch(`${base}/email`, { headers })).text(), serviceAccount);
    const { access_token: token } = (await (await fetch(`${base}/token`, { headers })).json()) as { access_token: string };
    const review = await fetch(`${identityUrl}/tokenreview`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } }),
    });
    assert.equal(((await review.json()) as { status: { user?: { username: string } } }).status.user?.username, serviceAccount);
    assert.equal(await canI(serviceAccount, ['create', 'deployments.apps', '-n', ns]), true);
    assert.equal(await canI(serviceAccount, ['create', 'deployments.apps', '-n', other]), false);
  });

  test('a full deploy of the example app succeeds, and its Pods become Ready as the API server sees it', async () => {
    const res = await fn.post('/deploy', { target: 'hello', image: `${repo}:lp-1` });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    // The function waits for the rollout (the default): the answer is `ready`.
    assert.equal(res.body.status, 'ready', JSON.stringify(res.body));
    assert.deepEqual(
      (res.body.objects as { kind: string; action: string }[]).map((o) => `${o.kind}:${o.action}`),
      ['Deployment:created', 'Service:created'],
    );
    await kubectl(['-n', ns, 'rollout', 'status', 'deployment/hello', '--timeout=90s']);
    const pods = await kubectlJson<{ items: Pod[] }>(['-n', ns, 'get', 'pods', '-l', 'app=hello']);
    assert.equal(pods.items.length, 2);
    for (const pod of pods.items) {
      assert.ok(pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'), `${pod.metadata.name} is Ready`);
    }
  });

  test('a dry run and a redeploy with a new image succeed too', async () => {
    const dry = await fn.post('/deploy', { target: 'hello', image: `${repo}:lp-2`, dryRun: true });
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(dry.body.status, 'dry-run');
    const res = await fn.post('/deploy', { target: 'hello', image: `${repo}:lp-2` });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(await liveImage(ns), `${repo}:lp-2`);
  });

  test('a crashing image: the identity may do what the rollout stage does about it', async () => {
    const before = await liveImage(ns);
    const res = await fn.post('/deploy', { target: 'hello', image: `${repo}:crash-lp` });
    // The wait sees CrashLoopBackOff and rolls back (422); a missing RBAC verb would answer
    // CLUSTER_FORBIDDEN (502) instead.
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.equal(res.body.status, 'rolled-back', JSON.stringify(res.body));
    assert.equal(await liveImage(ns), before);
  });

  test('a held deploy: its hold is written, approved and closed with the ApplySet parent\'s verbs on configmaps (get, create, patch)', async () => {
    const held = await fn.post('/deploy', { target: 'gated', image: `${repo}:lp-held`, eventId: 'lp-held-1' });
    assert.equal(held.status, 202, JSON.stringify(held.body));
    assert.equal(held.body.status, 'held');
    const token = await idToken({ audience: APPROVE, email: APPROVER });
    const approved = await fn.post('/approve', { target: 'gated', eventId: 'lp-held-1' }, { authorization: `Bearer ${token}` });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.equal(approved.body.status, 'ready');
    const hold = await kubectlJson<{ data: Record<string, string> }>(['-n', gatedNs, 'get', 'configmap', 'gke-deployer-hold-gated']);
    assert.deepEqual([hold.data.state, hold.data.eventId], ['released', 'lp-held-1']);
  });

  test('a first deploy that crashes: a rollback may delete what it created', async () => {
    const fresh = freshNs;
    await kubectl(['create', 'namespace', fresh]);
    await applyRbac(fresh, serviceAccount);
    const res = await fn.post('/deploy', { target: 'fresh', image: `${repo}:crash-first` });
    const d = await kubectlJson<{ items: unknown[] }>(['-n', fresh, 'get', 'deployments']);
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.equal(res.body.status, 'rolled-back', JSON.stringify(res.body));
    assert.equal(d.items.length, 0, 'the Deployment the failed deploy created is deleted');
  });

  test('prune: true on a file target whose manifests hold a ConfigMap (no list on configmaps): the release is ready, notPruned says CLUSTER_FORBIDDEN, logged as a WARNING', async () => {
    const pns = await namespace('lp-prune');
    await applyRbac(pns, serviceAccount);
    const deployment = stringify({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'app' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'app' } },
        template: { metadata: { labels: { app: 'app' } }, spec: { containers: [{ name: 'app', image: 'placeholder' }] } },
      },
    });
    const configMap = stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'app-config' }, data: { greeting: 'hello' } });
    // The example's repository exists nowhere: deployed by tag, as the example does.
    const target = { cluster: 'sandbox', namespace: pns, manifests: ['app.yaml'], container: 'app', images: [repo], pinDigests: false, prune: true, rollout: { timeout: '60s' } };
    const config = configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { pruning: target } });

    const first = await startFunction(config, { 'app.yaml': `${deployment}---\n${configMap}` });
    try {
      const res = await first.post('/deploy', { target: 'pruning', image: `${repo}:prune-1` });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'ready', JSON.stringify(res.body));
    } finally {
      await first.close();
    }
    // The next manifests version drops the ConfigMap: the function starts again with it, as a redeploy of the deployer would.
    const second = await startFunction(config, { 'app.yaml': deployment });
    try {
      const res = await second.post('/deploy', { target: 'pruning', image: `${repo}:prune-2` });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'ready', JSON.stringify(res.body));
      assert.equal(res.body.pruned, undefined, JSON.stringify(res.body));
      // Refused for the right reason: the list of ConfigMaps, which the shipped Role leaves out on purpose.
      assert.match(String(res.body.notPruned), /^CLUSTER_FORBIDDEN\b.*configmaps/s, JSON.stringify(res.body));
      const line = second.logs.find((l) => l.requestId === res.body.requestId && l.message.startsWith('deployed'));
      assert.ok(line, `a "deployed" log line: ${JSON.stringify(second.logs)}`);
      assert.equal(line.severity, 'WARNING', JSON.stringify(line));
      assert.equal(line.notPruned, res.body.notPruned);
      // Nothing was deleted: the ConfigMap that left the manifests is still there.
      await kubectl(['-n', pns, 'get', 'configmap', 'app-config']);
    } finally {
      await second.close();
    }
  });

  test("a StatefulSet's rollback may evict its broken Pods (pods/eviction), in its namespace only", async () => {
    assert.equal(await canI(serviceAccount, ['create', 'pods', '--subresource=eviction', '-n', ns]), true);
    assert.equal(await canI(serviceAccount, ['create', 'pods', '--subresource=eviction', '-n', other]), false);
  });

  test('a target in any other namespace answers CLUSTER_FORBIDDEN, and nothing is created there', async () => {
    const res = await fn.post('/deploy', { target: 'elsewhere', image: `${repo}:lp-1` });
    assert.equal(res.status, 502, JSON.stringify(res.body));
    assert.equal((res.body.error as { code: string }).code, 'CLUSTER_FORBIDDEN');
    const left = await kubectlJson<{ items: unknown[] }>(['-n', other, 'get', 'deployments,services']);
    assert.equal(left.items.length, 0);
  });

  test('it is not `edit`: no Secrets, no RBAC, no namespaces, nothing cluster-wide', async () => {
    for (const args of [
      ['get', 'secrets', '-n', ns],
      ['list', 'configmaps', '-n', ns],
      ['create', 'roles.rbac.authorization.k8s.io', '-n', ns],
      ['create', 'rolebindings.rbac.authorization.k8s.io', '-n', ns],
      // Prune deletes the set's Services and Deployments, in its own namespace only; ConfigMaps (the
      // ApplySet parent's kind) are read and applied, never listed or deleted, by the shipped Role.
      ['delete', 'configmaps', '-n', ns],
      ['delete', 'services', '-n', other],
      ['create', 'pods/exec', '-n', ns],
      ['list', 'namespaces'],
      ['list', 'deployments.apps', '--all-namespaces'],
      ['patch', 'deployments.apps', '-n', 'default'],
    ]) {
      assert.equal(await canI(serviceAccount, args), false, `can-i ${args.join(' ')}`);
    }
  });
});
