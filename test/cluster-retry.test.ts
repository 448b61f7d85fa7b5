// Transient faults are retried (429 after its Retry-After, 5xx, resets, lost answers,
// stalls), with backoff and within a budget; a manifest the server cannot type is not;
// after the budget the deploy answers 503 CLUSTER_UNAVAILABLE. The Kubernetes side runs
// through the fault proxy in front of the real API server; the Container API side
// against a Container API fake of the test's own.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { ApiException, DEFAULT_TIMING, type KubeClient } from '../src/cluster/client.ts';
import { containerApiClient } from '../src/cluster/container-api.ts';
import { GkeAccess } from '../src/cluster/gke.ts';
import { ClusterRegistry } from '../src/cluster/registry.ts';
import { DeployError } from '../src/errors.ts';
import { REPO, configYaml, fixture, webTarget } from './support/config.ts';
import { startFaultProxy, type FaultKind, type FaultProxy, type FaultSettings } from './support/fault-proxy.ts';
import { startFunction } from './support/function.ts';
import { until } from './support/until.ts';
import { accessToken, namespace, sandbox, startTlsContainerApi, useSandboxEnv } from './support/sandbox.ts';


const configMap = (ns: string, name: string, data: Record<string, string> = { k: 'v' }) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns }, data });

describe('Kubernetes API calls through the fault proxy', () => {
  let proxy: FaultProxy;
  let registry: ClusterRegistry;
  let client: KubeClient;
  let ns: string;
  let tokenFile: string;

  before(async () => {
    const info = await sandbox();
    ns = await namespace('retry');
    proxy = await startFaultProxy({ upstream: info.server, upstreamCaPem: await readFile(info.caFile, 'utf8') });
    const dir = await mkdtemp(path.join(tmpdir(), 'retry-'));
    tokenFile = path.join(dir, 'token');
    await writeFile(tokenFile, await accessToken(info.serviceAccount));
    // Short timeouts so a stall costs half a second, not the production 15 s.
    registry = new ClusterRegistry(new Map([['c', { endpoint: { server: proxy.server, caFile: proxy.caFile, tokenFile } }]]), {
      attemptTimeoutMs: 500,
      budgetMs: 3_000,
    });
    client = await registry.client('c');
  });
  after(async () => {
    await registry.close();
    await proxy.close();
  });

  const isApply = (name: string) => (r: { method: string; path: string }) => r.method === 'PATCH' && r.path.includes(`/configmaps/${name}`);
  const attempts = (name: string) => proxy.requests().filter(isApply(name)).length;

  for (const [kind, count] of [['500', 2], ['502', 1], ['503', 2], ['504', 1], ['reset', 2], ['reset-after', 2], ['stall', 1]] as [FaultKind, number][]) {
    test(`${kind} ×${count} on an apply: retried until it goes through`, async () => {
      const name = `cm-${kind}`;
      proxy.set({ stallMs: Infinity });
      proxy.failNext(kind, count, isApply(name));
      const applied = await client.apply(configMap(ns, name), { dryRun: false, force: false, fieldManager: 'gke-deployer/test' });
      assert.equal(applied.metadata?.name, name);
      assert.equal(attempts(name), count + 1);
    });
  }

  test('every request to the API server says who sends it: User-Agent gke-deployer (README)', () => {
    const sent = proxy.requests();
    assert.ok(sent.length > 0);
    assert.deepEqual([...new Set(sent.map((r) => r.userAgent))], ['gke-deployer']);
  });

  test("429: retried after the server's Retry-After", async () => {
    proxy.set({ retryAfterSeconds: 1 });
    proxy.failNext('429', 1, isApply('cm-429'));
    const started = Date.now();
    await client.apply(configMap(ns, 'cm-429'), { dryRun: false, force: false, fieldManager: 'gke-deployer/test' });
    assert.ok(Date.now() - started >= 1000, `retried after ${Date.now() - started} ms`);
    assert.equal(attempts('cm-429'), 2);
  });

  test('a read whose answer is lost is read again; a delete whose answer is lost counts as done', async () => {
    await client.apply(configMap(ns, 'cm-del'), { dryRun: false, force: false, fieldManager: 'gke-deployer/test' });
    const live = await client.get(configMap(ns, 'cm-del'));
    proxy.failNext('reset-after', 1, (r) => r.method === 'GET' && r.path.includes('/configmaps/cm-del'));
    assert.equal((await client.get(configMap(ns, 'cm-del')))?.metadata?.uid, live?.metadata?.uid);
    proxy.failNext('reset-after', 1, (r) => r.method === 'DELETE');
    await client.delete(configMap(ns, 'cm-del'), { uid: live?.metadata?.uid ?? '' });
    assert.equal(await client.get(configMap(ns, 'cm-del')), undefined);
  });

  test('a 500 "failed to create typed patch object" is the manifest\'s fault: not retried', async () => {
    const bad = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'typed', namespace: ns }, spec: { replicas: 'two' } };
    await assert.rejects(client.apply(bad, { dryRun: false, force: false, fieldManager: 'gke-deployer/test' }), (err) => {
      assert.ok(err instanceof ApiException, String(err));
      assert.equal(err.code, 500);
      assert.match(String(err.body), /failed to create typed patch object/);
      return true;
    });
    assert.equal(proxy.requests().filter((r) => r.method === 'PATCH' && r.path.includes('/deployments/typed')).length, 1);
  });

  test('after the budget, the last answer stands: a 503, or CLUSTER_UNAVAILABLE for a transport failure', async () => {
    proxy.set({ rate: 1, kinds: { '503': 1 } });
    try {
      const started = Date.now();
      await assert.rejects(client.get(configMap(ns, 'cm-503')), (err) => err instanceof ApiException && err.code === 503);
      const took = Date.now() - started;
      assert.ok(took <= 3_500 && took >= 1_000, `gave up after ${took} ms (budget 3000)`);
      assert.ok(proxy.requests().filter((r) => r.path.includes('/configmaps/cm-503')).length >= 3, 'retried in between');

      proxy.set({ kinds: { reset: 1 } });
      await assert.rejects(client.get(configMap(ns, 'cm-reset')), (err) => err instanceof DeployError && err.code === 'CLUSTER_UNAVAILABLE');
    } finally {
      proxy.set({ rate: 0, kinds: { '429': 1, '500': 1, '503': 1, reset: 1, 'reset-after': 1, stall: 1 } });
    }
  });

  test("the caller's signal stops the retries before the budget does", async () => {
    const signalled = new ClusterRegistry(new Map([['c', { endpoint: { server: proxy.server, caFile: proxy.caFile, tokenFile } }]]), { budgetMs: 30_000 });
    proxy.set({ rate: 1, kinds: { '503': 1 } });
    try {
      const controller = new AbortController();
      const c = await signalled.client('c', { signal: controller.signal });
      const started = Date.now();
      const seen = proxy.requests().length;
      const failed = assert.rejects(c.get(configMap(ns, 'cm-signal')), (err) => err instanceof ApiException && err.code === 503);
      await until('the request, failed, and its retry', () => proxy.requests().length >= seen + 2, { everyMs: 10, seen: () => proxy.requests().length - seen }); // failed, and retried
      controller.abort();
      await failed;
      assert.ok(Date.now() - started < 5_000, `stopped after ${Date.now() - started} ms (budget 30 s)`);
    } finally {
      proxy.set({ rate: 0, kinds: { '429': 1, '500': 1, '503': 1, reset: 1, 'reset-after': 1, stall: 1 } });
      await signalled.close();
    }
  });

  test('through POST /deploy: a deploy outlasting the budget answers 503 CLUSTER_UNAVAILABLE; one fault does not show', async () => {
    const info = await sandbox();
    const fn = await startFunction(
      configYaml({ clusters: { sandbox: { endpoint: { server: proxy.server, caFile: proxy.caFile, tokenFile: 'token' } } }, targets: { web: webTarget(ns) } }),
      { 'web.yaml': fixture('manifests/web.yaml'), token: await accessToken(info.serviceAccount) },
    );
    try {
      proxy.failNext('503', 1, (r) => r.method === 'PATCH');
      const ok = await fn.post('/deploy', { target: 'web', image: `${REPO}:retry` });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));

      proxy.set({ rate: 1, kinds: { '503': 1 } });
      const failed = await fn.post('/deploy', { target: 'web', image: `${REPO}:retry-2` });
      assert.equal(failed.status, 503, JSON.stringify(failed.body));
      assert.equal((failed.body.error as { code: string }).code, 'CLUSTER_UNAVAILABLE');
    } finally {
      proxy.set({ rate: 0, kinds: { '429': 1, '500': 1, '503': 1, reset: 1, 'reset-after': 1, stall: 1 } });
      await fn.close();
    }
  });
});

describe('the retry schedule at its documented defaults', () => {
  /** The function as configured (nothing injected), its one cluster reached through a fault proxy; both closed after the test. */
  async function deployerThroughProxy(t: TestContext, prefix: string, settings: Partial<FaultSettings> = {}) {
    const info = await sandbox();
    const ns = await namespace(prefix);
    const proxy = await startFaultProxy({ upstream: info.server, upstreamCaPem: await readFile(info.caFile, 'utf8'), ...settings });
    t.after(() => proxy.close());
    const fn = await startFunction(
      configYaml({ clusters: { sandbox: { endpoint: { server: proxy.server, caFile: proxy.caFile, tokenFile: 'token' } } }, targets: { web: webTarget(ns) } }),
      { 'web.yaml': fixture('manifests/web.yaml'), token: await accessToken(info.serviceAccount) },
    );
    t.after(() => fn.close());
    return { ns, proxy, fn };
  }

  // README (Cluster access): full jitter, 100 ms base, 2 s cap, up to 8 s per call, 15 s per
  // request. The function as configured, nothing injected; every request for one object's path
  // answered 503, so one call spends its whole budget. Asserted on the proxy's arrival times:
  // the schedule's bounds, not a speed.
  test('DEFAULT_TIMING is the documented one, and a call answered 503 throughout is retried for 8 s, no gap above its backoff cap', { timeout: 60_000 }, async (t) => {
    assert.deepEqual(DEFAULT_TIMING, { baseMs: 100, capMs: 2_000, budgetMs: 8_000, attemptTimeoutMs: 15_000 });
    const { ns, proxy, fn } = await deployerThroughProxy(t, 'schedule');
    const object = `/apis/apps/v1/namespaces/${ns}/deployments/web`;
    const isObject = (r: { path: string }) => r.path === object || r.path.startsWith(`${object}?`);
    proxy.failNext('503', Number.MAX_SAFE_INTEGER, isObject);
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:schedule` });
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal((res.body.error as { code: string }).code, 'CLUSTER_UNAVAILABLE');

    const tries = proxy.requests().filter(isObject);
    assert.ok(tries.every((r) => r.fault === '503'));
    assert.equal(new Set(tries.map((r) => `${r.method} ${r.path}`)).size, 1, `one call, retried: ${JSON.stringify(tries.map((r) => `${r.method} ${r.path}`))}`);
    const at = tries.map((r) => r.at);
    const gaps = at.slice(1).map((t, i) => Math.round(t - at[i]!));
    const span = at.at(-1)! - at[0]!;
    // A gap is the backoff (at most min(2 s, 100 ms·2^n)) plus a 503's round trip on loopback.
    const SLACK_MS = 300;
    gaps.forEach((gap, n) => assert.ok(gap <= Math.min(2_000, 100 * 2 ** n) + SLACK_MS, `gap ${n} was ${gap} ms; gaps ${JSON.stringify(gaps)}`));
    // No attempt starts past the 8 s budget, and one stops only when its next wait (at most
    // the 2 s cap) would pass it: the last attempt starts between 6 s and 8 s in.
    assert.ok(span <= 8_000 + SLACK_MS && span >= 6_000 - SLACK_MS, `attempts spanned ${Math.round(span)} ms; gaps ${JSON.stringify(gaps)}`);
    // With every wait at its cap, 7 attempts span 5.1 s: at least 8 fit before 6 s.
    assert.ok(tries.length >= 8 && tries.length <= 30, `${tries.length} attempts; gaps ${JSON.stringify(gaps)}`);
  });
  test('a request that gets no answer is given up at 15 s; past the 8 s budget it is not tried again', { timeout: 60_000 }, async (t) => {
    const { ns, proxy, fn } = await deployerThroughProxy(t, 'timeout', { stallMs: Number.POSITIVE_INFINITY });
    const object = `/apis/apps/v1/namespaces/${ns}/deployments/web`;
    const isObject = (r: { path: string }) => r.path === object || r.path.startsWith(`${object}?`);
    proxy.failNext('stall', Number.MAX_SAFE_INTEGER, isObject);
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:timeout` });
    const answered = performance.now();
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal((res.body.error as { code: string }).code, 'CLUSTER_UNAVAILABLE');
    const tries = proxy.requests().filter(isObject);
    assert.equal(tries.length, 1, 'not retried past the budget');
    const held = answered - tries[0]!.at;
    assert.ok(held >= 15_000 - 50 && held <= 15_000 + 1_000, `the stalled request was given up ${Math.round(held)} ms after it was sent`);
  });
  test('a discovery request that gets no answer says so (client-node rewrites the message of what it catches there)', { timeout: 60_000 }, async (t) => {
    const { proxy, fn } = await deployerThroughProxy(t, 'discovery', { stallMs: Number.POSITIVE_INFINITY });
    proxy.failNext('stall', Number.MAX_SAFE_INTEGER, (r) => r.path === '/apis/apps/v1');
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:discovery` });
    assert.equal(res.status, 503, JSON.stringify(res.body));
    const error = res.body.error as { code: string; message: string };
    assert.equal(error.code, 'CLUSTER_UNAVAILABLE');
    assert.match(error.message, /^cannot reach the Kubernetes API at https:\/\/127\.0\.0\.1:\d+: no answer within 15000 ms$/);
  });
});

describe('Container API getCluster', () => {
  const spec = { project: 'p-retry', location: 'europe-west1', name: 'c', cacheTtlSeconds: 600 };
  const credentials = { authorization: () => Promise.resolve(undefined), invalidate: () => {} };

  async function setup(timing = { budgetMs: 3_000 }) {
    await useSandboxEnv(); // the client's ADC: the sandbox's metadata server
    const api = await startTlsContainerApi();
    api.addCluster({ ...spec, endpoint: '127.0.0.1:6443', caPem: await readFile((await sandbox()).caFile, 'utf8') });
    const client = containerApiClient({ CONTAINER_API_ENDPOINT: api.endpoint });
    const access = new GkeAccess(spec, () => client, credentials, timing);
    return { api, access, close: async () => Promise.all([(await client).close(), api.close()]) };
  }

  for (const code of ['UNAVAILABLE', 'DEADLINE_EXCEEDED']) {
    test(`${code} is retried until the lookup succeeds`, async () => {
      const { api, access, close } = await setup();
      try {
        api.setFailure(code);
        // Healthy again once two calls have failed (polled: the first call waits for the client library to load).
        const poll = setInterval(() => api.getClusterCount() >= 2 && (api.setFailure(null), clearInterval(poll)), 5);
        const connection = await access.connect().finally(() => clearInterval(poll));
        assert.equal(connection.server, 'https://127.0.0.1:6443');
        assert.ok(api.getClusterCount() >= 3, `${api.getClusterCount()} calls`);
      } finally {
        await close();
      }
    });
  }

  test('a permanent error is not retried; UNAVAILABLE past the budget is CONTAINER_API_UNAVAILABLE', async () => {
    const { api, access, close } = await setup({ budgetMs: 1_000 });
    try {
      api.setFailure('PERMISSION_DENIED');
      await assert.rejects(access.connect(), (err) => err instanceof DeployError && err.code === 'CONTAINER_API_ERROR');
      assert.equal(api.getClusterCount(), 1);

      api.setFailure('UNAVAILABLE');
      const started = Date.now();
      await assert.rejects(access.connect(), (err) => err instanceof DeployError && err.code === 'CONTAINER_API_UNAVAILABLE');
      assert.ok(Date.now() - started < 2_500, `gave up after ${Date.now() - started} ms (budget 1000)`);
      assert.ok(api.getClusterCount() >= 3);
    } finally {
      await close();
    }
  });
});
