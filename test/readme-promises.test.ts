// What the README promises and no other test showed through the sandbox: the health
// route, the start-up WARNING for "none", the NOT_FOUND, CLUSTER_ERROR and CONTAINER_NOT_FOUND answers,
// the clusterScoped allow path, reconcile of an image-only target and of a deleted
// Deployment, a kubeconfig credential asked for again after a 401, kubeconfig client-certificate
// auth, and the report libraries left unloaded unless configured.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { makeCerts } from '../sandbox/kube/certs.ts';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { startGithubApi } from './support/github-api.ts';
import { spawnFunction } from './support/process.ts';
import { resultTopic } from './support/result-topic.ts';
import { accessToken, exists, idToken, kubectl, kubectlJson, namespace, sandbox, useSandboxEnv } from './support/sandbox.ts';

interface Deployment {
  metadata: { resourceVersion: string; annotations?: Record<string, string> };
  spec: { template: { spec: { containers: { name: string; image: string }[] } } };
}

const get = (ns: string, name = 'web') => kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', name]);
const imageOf = async (ns: string, name = 'web') => (await get(ns, name)).spec.template.spec.containers[0]?.image;
const codeOf = (body: Record<string, unknown>) => (body.error as { code?: string } | undefined)?.code;

describe('the health route and the start-up WARNING for "none"', () => {
  test('GET /health and /healthz answer 200 ok; another method is 405', async () => {
    const info = await useSandboxEnv();
    const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget('unused') } }), { 'web.yaml': fixture('manifests/web.yaml') });
    try {
      for (const route of ['/health', '/healthz']) {
        const res = await fetch(fn.url + route);
        assert.equal(res.status, 200, route);
        assert.deepEqual(await res.json(), { status: 'ok' });
      }
      const post = await fetch(`${fn.url}/healthz`, { method: 'POST' });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get('allow'), 'GET');
    } finally {
      await fn.close();
    }
  });

  test('auth.direct: none logs one WARNING at start-up; OIDC logs none', async () => {
    const info = await useSandboxEnv();
    const files = { 'web.yaml': fixture('manifests/web.yaml') };
    const open = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget('unused') } }), files);
    const closed = await startFunction(
      configYaml({
        auth: { direct: { audience: 'https://x.example/deploy', serviceAccounts: ['ci@sandbox-project.iam.gserviceaccount.com'] }, certsUrl: info.certsUrl },
        clusters: { sandbox: gkeCluster(info) },
        targets: { web: webTarget('unused') },
      }),
      files,
    );
    try {
      const warnings = open.logs.filter((l) => l.severity === 'WARNING');
      assert.equal(warnings.length, 1, JSON.stringify(open.logs));
      assert.match(warnings[0]!.message, /^auth\.direct is "none": its route accepts unauthenticated callers/);
      assert.deepEqual(closed.logs.filter((l) => l.severity === 'WARNING'), []);
    } finally {
      await Promise.all([open.close(), closed.close()]);
    }
  });
});

describe('refusals the README lists', () => {
  let fn: RunningFunction;
  let ns: string;
  const missing = `missing-${Date.now().toString(36)}`;

  before(async () => {
    const info = await useSandboxEnv();
    ns = await namespace('promise');
    await kubectl(['-n', ns, 'create', 'deployment', 'bump', `--image=${REPO}:0`, '--replicas=0']);
    fn = await startFunction(
      configYaml({
        clusters: { sandbox: gkeCluster(info) },
        targets: {
          nowhere: webTarget(missing),
          'wrong-container': { cluster: 'sandbox', namespace: ns, deployment: 'bump', container: 'api', images: [REPO] },
        },
      }),
      { 'web.yaml': fixture('manifests/web.yaml') },
    );
  });
  after(() => fn.close());

  test('a target namespace that does not exist → 404 NOT_FOUND, nothing created', async () => {
    const res = await fn.post('/deploy', { target: 'nowhere', image: `${REPO}:1` });
    assert.equal(res.status, 404, JSON.stringify(res.body));
    assert.equal(codeOf(res.body), 'NOT_FOUND');
    assert.match(String((res.body.error as { message: string }).message), new RegExp(missing));
    assert.equal(await exists('namespace', missing), false);
  });

  test('an image-only target naming a container the Deployment lacks → 400 CONTAINER_NOT_FOUND, nothing written', async () => {
    const before = await get(ns, 'bump');
    const res = await fn.post('/deploy', { target: 'wrong-container', image: `${REPO}:1` });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(codeOf(res.body), 'CONTAINER_NOT_FOUND');
    const now = await get(ns, 'bump');
    assert.equal(now.metadata.resourceVersion, before.metadata.resourceVersion);
    assert.equal(now.spec.template.spec.containers[0]?.image, `${REPO}:0`);
  });
});

test('clusterScoped: a listed cluster-scoped kind is applied, stamped like the rest', async (t) => {
  const info = await useSandboxEnv();
  const ns = await namespace('scoped');
  // The sandbox deployer may only edit namespaced objects: grant it ClusterRoles for this test.
  const grant = `gke-deployer-test-clusterroles-${ns}`;
  await kubectl(['create', 'clusterrole', grant, '--verb=get,list,watch,create,patch,update', '--resource=clusterroles']);
  await kubectl(['create', 'clusterrolebinding', grant, `--clusterrole=${grant}`, `--user=${info.serviceAccount}`]);
  const role = `gke-deployer-test-role-${ns}`;
  const manifests = fixture('manifests/cluster-scoped.yaml').replace('name: gke-deployer-test-role', `name: ${role}`);
  const fn = await startFunction(
    configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { scoped: webTarget(ns, { manifests: ['cluster-scoped.yaml'], clusterScoped: ['ClusterRole'], rollout: { wait: false } }) } }),
    { 'cluster-scoped.yaml': manifests },
  );
  t.after(async () => {
    await fn.close();
    await kubectl(['delete', 'clusterrole', role, grant, '--ignore-not-found']);
    await kubectl(['delete', 'clusterrolebinding', grant, '--ignore-not-found']);
  });
  const res = await fn.post('/deploy', { target: 'scoped', image: `${REPO}:1` });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(
    (res.body.objects as { kind: string; action: string }[]).map((o) => `${o.kind}:${o.action}`).sort(),
    ['ClusterRole:created', 'Job:created'],
  );
  const live = await kubectlJson<{ metadata: { annotations: Record<string, string> } }>(['get', 'clusterrole', role]);
  assert.equal(live.metadata.annotations['gke-deployer/image'], `${REPO}:1`);
  assert.equal(await exists('job', 'migrate', ns), true);
});

describe('reconcile (POST /scheduler without an image)', () => {
  const AUDIENCE = 'https://gke-deployer.example.run.app/scheduler';
  const SCHEDULER_SA = 'scheduler@sandbox-project.iam.gserviceaccount.com';
  let fn: RunningFunction;
  let ns: string;
  let auth: Record<string, string>;

  before(async () => {
    const info = await useSandboxEnv();
    ns = await namespace('reconcile');
    await kubectl(['-n', ns, 'create', 'deployment', 'bump', `--image=${REPO}:0`, '--replicas=0']);
    fn = await startFunction(
      configYaml({
        auth: { direct: 'none', scheduler: { audience: AUDIENCE, serviceAccounts: [SCHEDULER_SA] }, certsUrl: info.certsUrl },
        clusters: { sandbox: gkeCluster(info) },
        // force: kubectl create owns the image field; the target takes it over.
        targets: { web: webTarget(ns), bump: { cluster: 'sandbox', namespace: ns, deployment: 'bump', container: 'web', images: [REPO], force: true } },
      }),
      { 'web.yaml': fixture('manifests/web.yaml') },
    );
    auth = { authorization: `Bearer ${await idToken({ audience: AUDIENCE, email: SCHEDULER_SA })}` };
  });
  after(() => fn.close());

  test('a deployment: target is set back to the image it last deployed', async () => {
    assert.equal((await fn.post('/deploy', { target: 'bump', image: `${REPO}:1.0.0` })).status, 200);
    await kubectl(['-n', ns, 'set', 'image', 'deployment/bump', `web=${REPO}:by-hand`]);
    const res = await fn.post('/scheduler', { target: 'bump' }, auth);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.reconciled, true);
    assert.equal(res.body.image, `${REPO}:1.0.0`);
    assert.equal(await imageOf(ns, 'bump'), `${REPO}:1.0.0`);
  });

  test('a deleted Deployment is recreated from the image its siblings record; with every object gone → 404 NOT_DEPLOYED', async () => {
    assert.equal((await fn.post('/deploy', { target: 'web', image: `${REPO}:2.0.0` })).status, 200);
    await kubectl(['-n', ns, 'delete', 'deployment', 'web', '--wait=true']);
    const res = await fn.post('/scheduler', { target: 'web' }, auth);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.image, `${REPO}:2.0.0`);
    assert.deepEqual((res.body.objects as { kind: string; action: string }[]).map((o) => `${o.kind}:${o.action}`), ['Deployment:created', 'Service:unchanged']);
    assert.equal(await imageOf(ns), `${REPO}:2.0.0`);

    await kubectl(['-n', ns, 'delete', 'deployment,service', 'web', '--wait=true']);
    const gone = await fn.post('/scheduler', { target: 'web' }, auth);
    assert.equal(gone.status, 404, JSON.stringify(gone.body));
    assert.equal(codeOf(gone.body), 'NOT_DEPLOYED');
    assert.equal(await exists('deployment', 'web', ns), false);
  });
});

test('kubeconfig: an exec credential is kept until the cluster answers 401, then asked for once more', async () => {
  const info = await sandbox();
  const ns = await namespace('kc-exec');
  const dir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-exec-'));
  const files: Record<string, string> = {
    // The plugin hands out token-1 (never issued: the cluster answers 401), then token-2, token-3…
    'token-1': 'ya29.sandbox.never-issued-by-the-identity-fake',
    'token-2': await accessToken(info.serviceAccount),
    'token-3': await accessToken(info.serviceAccount),
    count: '0',
    'plugin.sh': [
      'set -eu',
      'cd "$(dirname "$0")"',
      'n=$(( $(cat count) + 1 ))',
      'echo "$n" > count',
      'printf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}\' "$(cat "token-$n")"',
    ].join('\n'),
  };
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'sandbox', cluster: { server: info.server, 'certificate-authority': info.caFile } }],
    users: [{ name: 'plugin', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: '/bin/sh', args: [path.join(dir, 'plugin.sh')], interactiveMode: 'Never' } } }],
    contexts: [{ name: 'sandbox', context: { cluster: 'sandbox', user: 'plugin' } }],
    'current-context': 'sandbox',
  };
  const fn = await startFunction(configYaml({ clusters: { sandbox: { kubeconfig: { path: 'kubeconfig' } } }, targets: { web: webTarget(ns) } }), {
    'web.yaml': fixture('manifests/web.yaml'),
    kubeconfig: stringify(kubeconfig),
  });
  const asked = async () => Number((await readFile(path.join(dir, 'count'), 'utf8')).trim());
  try {
    const first = await fn.post('/deploy', { target: 'web', image: `${REPO}:1` });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(await asked(), 2, 'token-1 was refused (401) and the plugin asked once more');
    const second = await fn.post('/deploy', { target: 'web', image: `${REPO}:2` });
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.equal(await asked(), 2, 'a credential the cluster accepts is kept');
    assert.equal(await imageOf(ns), `${REPO}:2`);
  } finally {
    await fn.close();
  }
});

test('kubeconfig: client-certificate auth, the cluster taking the certificate\'s CN as the user', async (t) => {
  const info = await sandbox();
  const ns = await namespace('kc-cert');
  const b64 = async (file: string) => (await readFile(file)).toString('base64');
  const kubeconfig = async (cert: { certFile: string; keyFile: string }) => stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'sandbox', cluster: { server: info.server, 'certificate-authority-data': await b64(info.caFile) } }],
    users: [{ name: 'cert', user: { 'client-certificate-data': await b64(cert.certFile), 'client-key-data': await b64(cert.keyFile) } }],
    contexts: [{ name: 'sandbox', context: { cluster: 'sandbox', user: 'cert' } }],
    'current-context': 'sandbox',
  });
  // The same user, certified by a CA the cluster does not trust: what shows the certificate is the credential.
  const stranger = await makeCerts(await mkdtemp(path.join(tmpdir(), 'gke-deployer-stranger-')), 'stranger', info.serviceAccount);
  const config = configYaml({
    clusters: { trusted: { kubeconfig: { path: 'trusted' } }, untrusted: { kubeconfig: { path: 'untrusted' } } },
    targets: { web: webTarget(ns, { cluster: 'trusted' }), other: webTarget(ns, { cluster: 'untrusted' }) },
  });
  const fn = await startFunction(config, { 'web.yaml': fixture('manifests/web.yaml'), trusted: await kubeconfig(info.clientCert), untrusted: await kubeconfig(stranger.client!) });
  t.after(() => fn.close());
  const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:1` });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.status, 'ready');
  assert.equal(await imageOf(ns), `${REPO}:1`);
  const refused = await fn.post('/deploy', { target: 'other', image: `${REPO}:2` });
  assert.equal(refused.status, 502, JSON.stringify(refused.body));
  assert.equal(codeOf(refused.body), 'CLUSTER_FORBIDDEN');
  assert.match(String((refused.body.error as { message: string }).message), /did not accept the deployer's credential \(401 Unauthorized\)/, 'a 401: the certificate is not taken');
  assert.equal(await imageOf(ns), `${REPO}:1`);
});

test('a refusal the deployer has no name for (413 from the API server) → 502 CLUSTER_ERROR, nothing applied', async (t) => {
  const info = await useSandboxEnv();
  const ns = await namespace('cluster-error');
  // Over the API server's 3 MiB request limit: it answers 413, a status no other code covers.
  const big = stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'big' }, data: { blob: 'x'.repeat(3.5 * 1024 * 1024) } });
  const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns, { manifests: ['web.yaml', 'big.yaml'] }) } }), {
    'web.yaml': fixture('manifests/web.yaml'),
    'big.yaml': big,
  });
  t.after(() => fn.close());
  const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:1` });
  assert.equal(res.status, 502, JSON.stringify(res.body));
  assert.equal(codeOf(res.body), 'CLUSTER_ERROR');
  assert.equal(await exists('deployment', 'web', ns), false, 'the whole target is refused, the valid Deployment too');
  assert.equal(await exists('configmap', 'big', ns), false);
});

test('the report libraries (@google-cloud/pubsub, @octokit/core) are not imported unless configured', async (t) => {
  // README (report): "Nothing is imported (@google-cloud/pubsub, @octokit/core) unless configured".
  // The same GitHub push deployed twice, each by a process that records every module it resolves:
  // without `report`, then with a topic and GitHub statuses (which shows the record would see them).
  const GHCR = 'ghcr.io/codertocat/hello-world';
  const SECRET = 'gh-webhook-secret-for-import-tests';
  const TOKEN = 'ghp_statusTokenForImportTests0123456789';
  const { info, topic } = await resultTopic(t, 'import-results');
  const api = await startGithubApi(TOKEN);
  t.after(() => api.close());
  const recorder = pathToFileURL(path.join(import.meta.dirname, 'support/record-modules.ts')).href;
  const dir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-imports-'));
  const push = fixture('events/github-push.json');
  const signature = `sha256=${createHmac('sha256', SECRET).update(push).digest('hex')}`;

  /** The package folders under node_modules/ a process deploying the push resolved modules in. */
  const packagesLoaded = async (name: string, report?: Record<string, unknown>): Promise<Set<string>> => {
    const ns = await namespace('imports');
    const file = path.join(dir, name);
    const config = configYaml({
      auth: { direct: 'none', github: { secretEnv: 'IMPORT_GITHUB_SECRET' } },
      clusters: { sandbox: gkeCluster(info) },
      targets: { web: webTarget(ns, { images: [GHCR], rollout: { wait: false } }) },
      rules: [{ source: 'github', repository: 'Codertocat/Hello-World', branch: 'master', image: `${GHCR}:\${sha}`, targets: ['web'] }],
      ...(report && { report }),
    });
    const env = { ...info.env, IMPORT_GITHUB_SECRET: SECRET, IMPORT_GITHUB_TOKEN: TOKEN, LOADED_MODULES_FILE: file, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${recorder}` };
    const fn = await spawnFunction(config, { 'web.yaml': fixture('manifests/web.yaml') }, env);
    try {
      const res = await fn.post('/webhooks/github', push, { 'x-github-event': 'push', 'x-github-delivery': `d-${name}`, 'x-hub-signature-256': signature });
      assert.equal(res.body.status, 'applied', JSON.stringify(res.body));
    } finally {
      await fn.close();
    }
    const urls = (await readFile(file, 'utf8')).split('\n');
    return new Set(urls.flatMap((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1] ?? []));
  };

  const bare = await packagesLoaded('bare');
  assert.ok(bare.has('@kubernetes/client-node'), 'the record sees the packages the process loads');
  assert.equal(bare.has('@google-cloud/pubsub'), false);
  assert.equal(bare.has('@octokit/core'), false);

  const reporting = await packagesLoaded('reporting', { topic, github: { tokenEnv: 'IMPORT_GITHUB_TOKEN', apiUrl: api.url } });
  assert.ok(reporting.has('@google-cloud/pubsub'), 'configured, it is loaded');
  assert.ok(reporting.has('@octokit/core'), 'configured, it is loaded');
  assert.equal([...api.deployments.values()].length, 1, 'the GitHub Deployment was posted');
});
