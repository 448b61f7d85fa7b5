// The production entry point (dist/index.mjs: the esbuild bundle behind the compile cache,
// what `npm start`, service.yaml and the buildpack's image run) as its own process
// against the sandbox: a `gke` cluster looked up through the Container API, an ADC token,
// TLS verified against the cluster CA; validation still refuses before anything is written.
// Every library the function imports lazily (the Container API client and gRPC, Pub/Sub for
// the result topic, Octokit for GitHub statuses, client-node's KubeConfig and Watch) is used here through the bundle: each sits
// in a chunk of its own there, which src/ under Node's loader never shows.
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { ensureBundle } from './support/bundle.ts';
import { startGithubApi } from './support/github-api.ts';
import { resultTopic } from './support/result-topic.ts';
import { freePort, spawnFunction, type FunctionProcess } from './support/process.ts';
import { kubectlJson, namespace, stats, useSandboxEnv } from './support/sandbox.ts';
import { until } from './support/until.ts';

interface Deployment {
  spec: { template: { spec: { containers: { name: string; image: string }[] } } };
  status: { readyReplicas?: number };
}

async function caFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const sub of (await readdir(dir)).filter((d) => d.startsWith('gke-deployer-ca-'))) {
    files.push(...(await readdir(path.join(dir, sub))).filter((f) => f.endsWith('.crt')));
  }
  return files;
}

describe('the production bundle as a process', () => {
  let fn: FunctionProcess;
  let ns: string;
  let tmp: string;
  let lookupsBefore: number;

  before(async () => {
    const entry = await ensureBundle();
    const info = await useSandboxEnv();
    lookupsBefore = (await stats()).containerApi.getCluster;
    ns = await namespace('bundle');
    const otherNs = await namespace('bundle');
    tmp = await mkdtemp(path.join(tmpdir(), 'gke-deployer-bundle-'));
    const config = configYaml({
      clusters: { sandbox: gkeCluster(info), again: gkeCluster(info) },
      targets: { web: webTarget(ns), other: webTarget(otherNs, { cluster: 'again' }) },
    });
    fn = await spawnFunction(config, { 'web.yaml': fixture('manifests/web.yaml') }, { ...info.env, TMPDIR: tmp }, entry);
  });
  after(() => fn?.close());

  test('deploys through the Container API lookup, the ADC token and verified TLS, and waits for the rollout', async () => {
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'ready', JSON.stringify(res.body));
    const live = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
    assert.equal(live.spec.template.spec.containers[0]?.image, `${REPO}:1.0.0`);
    assert.ok((live.status.readyReplicas ?? 0) > 0);
    const other = await fn.post('/deploy', { target: 'other', image: `${REPO}:1.0.1`, dryRun: true });
    assert.equal(other.status, 200, JSON.stringify(other.body));
    assert.equal((await stats()).containerApi.getCluster - lookupsBefore, 2, 'one lookup per cluster entry');
    // Two cluster entries, one cluster CA: one CA file.
    assert.equal((await caFiles(tmp)).length, 1);
  });

  test('an image outside the target\'s repositories is refused before anything is written', async () => {
    const res = await fn.post('/deploy', { target: 'web', image: 'evil.example.com/web:1.0.0' });
    assert.equal(res.status, 403, JSON.stringify(res.body));
    const live = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
    assert.equal(live.spec.template.spec.containers[0]?.image, `${REPO}:1.0.0`);
  });
});

describe('the Container API client as the bundle builds it (v1 alone, its descriptors trimmed and built lazily: scripts/build.ts)', () => {
  // The deploys above look clusters up through it; here, its errors keep their gRPC codes.
  test('a refused endpoint is UNAVAILABLE (gRPC 14): retried, then 503 CONTAINER_API_UNAVAILABLE; an unknown cluster is NOT_FOUND: 502 CONTAINER_API_ERROR', async (t) => {
    const entry = await ensureBundle();
    const info = await useSandboxEnv();
    const ns = await namespace('bundle-gax');
    const config = configYaml({
      clusters: { sandbox: gkeCluster(info), missing: { gke: { project: info.project, location: info.location, name: 'no-such-cluster' } } },
      targets: { web: webTarget(ns), lost: webTarget(ns, { cluster: 'missing' }) },
    });
    const closed = await freePort();
    const refused = await spawnFunction(config, { 'web.yaml': fixture('manifests/web.yaml') }, { ...info.env, CONTAINER_API_ENDPOINT: `127.0.0.1:${closed}` }, entry);
    t.after(() => refused.close());
    const down = await refused.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` });
    assert.equal(down.status, 503, JSON.stringify(down.body));
    assert.equal((down.body.error as { code: string }).code, 'CONTAINER_API_UNAVAILABLE');

    const fn = await spawnFunction(config, { 'web.yaml': fixture('manifests/web.yaml') }, info.env, entry);
    t.after(() => fn.close());
    const lost = await fn.post('/deploy', { target: 'lost', image: `${REPO}:1.0.0` });
    assert.equal(lost.status, 502, JSON.stringify(lost.body));
    assert.equal((lost.body.error as { code: string }).code, 'CONTAINER_API_ERROR');
    assert.match((lost.body.error as { message: string }).message, /NOT_FOUND|not found/i);
  });
});

describe('the lazily loaded libraries, through the production bundle', () => {
  const GHCR = 'ghcr.io/codertocat/hello-world';
  const GITHUB_SECRET = 'gh-webhook-secret-for-bundle-tests';
  const GITHUB_TOKEN = 'ghp_statusTokenForBundleTests0123456789';
  const push = fixture('events/github-push.json');
  const id = () => randomBytes(4).toString('hex');

  test('OTEL_TRACES_EXPORTER=gcp: the lazily loaded OpenTelemetry SDK and Cloud Trace exporter trace a deploy and try to export it', async (t) => {
    const entry = await ensureBundle();
    const info = await useSandboxEnv();
    const ns = await namespace('bundle-trace');
    const config = configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns) } });
    const fn = await spawnFunction(config, { 'web.yaml': fixture('manifests/web.yaml') }, { ...info.env, OTEL_TRACES_EXPORTER: 'gcp' }, entry);
    t.after(() => fn.close());
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` }, { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
    assert.equal(res.body.status, 'ready', JSON.stringify(res.body));
    // No network here: Cloud Trace cannot be reached, so the export of the deploy's spans fails, said as a WARNING.
    await until('a trace export attempt', () => fn.logs.find((l) => typeof l.message === 'string' && l.message.startsWith('trace export failed: ')), { seen: () => fn.logs.filter((l) => l.severity !== 'INFO') });
    assert.equal(fn.logs.find((l) => typeof l.message === 'string' && l.message.startsWith('tracing is off')), undefined, 'the SDK and exporter loaded');
  });

  test('a kubeconfig cluster: client-node\'s KubeConfig, loaded at the first connect, gives the credential and CA; the rollout is watched', async (t) => {
    const entry = await ensureBundle();
    const info = await useSandboxEnv();
    const ns = await namespace('bundle-kubeconfig');
    const config = configYaml({ clusters: { sandbox: { kubeconfig: { path: info.kubeconfig } } }, targets: { web: webTarget(ns) } });
    const fn = await spawnFunction(config, { 'web.yaml': fixture('manifests/web.yaml') }, info.env, entry);
    t.after(() => fn.close());
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'ready', JSON.stringify(res.body));
    const d = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
    assert.equal(d.spec.template.spec.containers[0]?.image, `${REPO}:1.0.0`);
  });

  test('a GitHub push deploys to a gke cluster, posts the Deployment statuses and publishes its result on the topic', async (t) => {
    const entry = await ensureBundle();
    // The result topic and a subscription that sees what the function publishes.
    const { info, topic, received, arrivals } = await resultTopic(t, 'bundle-results');
    const api = await startGithubApi(GITHUB_TOKEN);
    t.after(() => api.close());

    const ns = await namespace('bundle-lazy');
    const config = configYaml({
      auth: { direct: 'none', github: { secretEnv: 'BUNDLE_GITHUB_SECRET' } },
      clusters: { sandbox: gkeCluster(info) },
      targets: { web: webTarget(ns, { images: [GHCR] }) },
      rules: [{ source: 'github', repository: 'Codertocat/Hello-World', branch: 'master', image: `${GHCR}:\${sha}`, targets: ['web'] }],
      report: { topic, github: { tokenEnv: 'BUNDLE_GITHUB_TOKEN', apiUrl: api.url } },
    });
    const fn = await spawnFunction(config, { 'web.yaml': fixture('manifests/web.yaml') }, { ...info.env, BUNDLE_GITHUB_SECRET: GITHUB_SECRET, BUNDLE_GITHUB_TOKEN: GITHUB_TOKEN }, entry);
    t.after(() => fn.close());

    const delivery = `d-${id()}`;
    const signature = `sha256=${createHmac('sha256', GITHUB_SECRET).update(push).digest('hex')}`;
    const res = await fn.post('/webhooks/github', push, { 'x-github-event': 'push', 'x-github-delivery': delivery, 'x-hub-signature-256': signature });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'ready', JSON.stringify(res.body));

    // Octokit: the Deployment and its statuses reached the GitHub fake.
    const [deployment] = [...api.deployments.values()];
    assert.deepEqual(deployment?.states.map((s) => s.state), ['in_progress', 'success'], JSON.stringify(fn.logs.filter((l) => l.severity === 'WARNING')));
    // Pub/Sub: the result arrived on the topic's subscription.
    while (!received.some((m) => m.attributes.requestId === delivery)) {
      const failed = fn.logs.find((l) => typeof l.message === 'string' && l.message.startsWith('report to topic failed'));
      assert.equal(failed, undefined, JSON.stringify(failed));
      await Promise.race([once(arrivals, 'message'), new Promise((r) => setTimeout(r, 200))]);
    }
    const message = received.find((m) => m.attributes.requestId === delivery);
    assert.equal(message?.attributes.status, 'ready');
    assert.equal(message?.attributes.target, 'web');
    assert.equal((JSON.parse(message?.data.toString() ?? '{}') as { status?: string }).status, 'ready');
  });
});

test('every CommonJS module the bundle imports lazily has, in its chunk, the exports Node gives it; each of src/\'s among them', async () => {
  const entry = await ensureBundle();
  const root = fileURLToPath(new URL('..', import.meta.url));
  const bundle = path.join(path.dirname(entry), 'bundle');
  const facades = JSON.parse(await readFile(path.join(bundle, 'lazy-commonjs.json'), 'utf8')) as { module: string; chunk: string }[];
  for (const { module, chunk } of facades) {
    const bundled = (await import(pathToFileURL(path.join(bundle, chunk)).href)) as Record<string, unknown>;
    const native = (await import(pathToFileURL(path.join(root, module)).href)) as Record<string, unknown>;
    assert.deepEqual(Object.keys(bundled).sort(), Object.keys(native).sort(), module);
    for (const name of Object.keys(native)) assert.equal(typeof bundled[name], typeof native[name], `${module}: ${name}`);
  }
  // src/'s own import() calls of CommonJS packages (an ES module's chunk keeps its exports).
  const lazy = new Set<string>();
  for (const file of await readdir(path.join(root, 'src'), { recursive: true })) {
    if (!file.endsWith('.ts')) continue;
    for (const m of (await readFile(path.join(root, 'src', file), 'utf8')).matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) lazy.add(m[1]!);
  }
  // The Container API: its v1 client alone (src/cluster/container-api.ts).
  // Tracing: the Cloud Trace exporter (src/telemetry/otel.ts).
  assert.ok(lazy.has('@google-cloud/pubsub') && lazy.has('@google-cloud/container/build/src/v1/index.js') && lazy.has('@google-cloud/opentelemetry-cloud-trace-exporter'), [...lazy].join(', '));
  for (const specifier of lazy) {
    // src/'s own modules (src/telemetry/otel.ts) are ES modules: no facade needed.
    if (specifier.startsWith('.')) continue;
    const ns = (await import(specifier)) as Record<string, unknown>;
    if (!('module.exports' in ns)) continue;
    assert.ok(facades.some((f) => f.module === `node_modules/${specifier}` || f.module.startsWith(`node_modules/${specifier}/`)), `${specifier} has a facade in the bundle`);
  }
});
