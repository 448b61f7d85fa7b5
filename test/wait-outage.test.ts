// A short control-plane outage during the rollout wait does not fail a healthy rollout.
// The fault proxy in front of the sandbox's API server refuses what the wait sends (503s,
// or connections dropped before an answer; lists, and in one case its watches too) for
// longer than the client's own retry budget, then lets it through: the wait lists again,
// sees the rollout finish, and the deploy answers `ready`, with nothing rolled back. An
// outage the rollout wait outlives is not a failed rollout.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_TIMING } from '../src/cluster/client.ts';
import { REPO, configYaml, fixture, webTarget } from './support/config.ts';
import { startFaultProxy, type FaultKind, type FaultProxy } from './support/fault-proxy.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { accessToken, kubectl, kubectlJson, namespace, sandbox } from './support/sandbox.ts';
import { until } from './support/until.ts';

interface Deployment {
  spec: { template: { spec: { containers: { image: string }[] } } };
}

type Request = { method: string; path: string };
/** A request for what the wait watches in `ns`: a list or a watch of a collection, not a read of one object. */
const waitRequest = (ns: string) => (r: Request) => r.method === 'GET' && new RegExp(`/namespaces/${ns}/(pods|replicasets|deployments)(\\?|$)`).test(r.path);
const isWatch = (r: Request) => r.path.includes('watch=true');

/** Longer than one list call keeps retrying: today's wait gives up within it. */
const OUTAGE_MS = DEFAULT_TIMING.budgetMs + 2_000;

const scenarios: { name: string; kind: FaultKind; from: 'list' | 'watch' }[] = [
  // From the wait's first list: every list answered 503, or its connection dropped.
  { name: 'every list answered 503', kind: '503', from: 'list' },
  { name: 'every list dropped', kind: 'reset', from: 'list' },
  // Once the wait watches: its watches cut, and every watch and list dropped.
  { name: 'watches cut, then every request dropped', kind: 'reset', from: 'watch' },
];

for (const { name, kind, from } of scenarios) {
  describe(`a control-plane outage during the wait: ${name}`, () => {
    let proxy: FaultProxy;
    let fn: RunningFunction;
    let ns: string;

    before(async () => {
      const info = await sandbox();
      ns = await namespace('outage');
      proxy = await startFaultProxy({ upstream: info.server, upstreamCaPem: await readFile(info.caFile, 'utf8') });
      fn = await startFunction(
        configYaml({ clusters: { sandbox: { endpoint: { server: proxy.server, caFile: proxy.caFile, tokenFile: 'token' } } }, targets: { web: webTarget(ns) } }),
        { 'web.yaml': fixture('manifests/web.yaml'), token: await accessToken(info.serviceAccount) },
      );
    });
    after(async () => {
      await fn.close();
      await proxy.close();
    });

    test('a healthy rollout still ends ready, nothing rolled back', { timeout: 120_000 }, async () => {
      const first = await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` });
      assert.equal(first.body.status, 'ready', JSON.stringify(first.body));

      // The outage starts with the wait's first list (or watch) and lasts OUTAGE_MS.
      let outage: 'before' | 'on' | 'over' = 'before';
      const isWait = waitRequest(ns);
      const since = proxy.requests().length;
      proxy.failNext(kind, Number.MAX_SAFE_INTEGER, (r) => {
        if (!isWait(r) || outage === 'over') return false;
        if (outage === 'before') {
          if (from === 'watch' && !isWatch(r)) return false;
          outage = 'on';
          // The watches already open die with their connections.
          if (from === 'watch') setImmediate(() => proxy.dropConnections());
          setTimeout(() => (outage = 'over'), OUTAGE_MS);
        }
        return true;
      });
      const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.1` });

      const lists = proxy.requests().slice(since).filter((r) => isWait(r) && !isWatch(r));
      assert.ok(lists.some((r) => r.fault === kind), 'the wait met the outage in its lists');
      assert.ok(lists.at(-1)?.fault === undefined, 'and listed again once it was over');
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'ready', JSON.stringify(res.body));
      assert.equal(res.body.rolledBack, undefined);
      const live = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
      assert.equal(live.spec.template.spec.containers[0]?.image, `${REPO}:1.0.1`, 'the new image stays');
    });
  });
}

describe('a permanent refusal during the wait', () => {
  test('RBAC that does not let the deployer list Pods fails the wait at once, with the reason; nothing retried', { timeout: 60_000 }, async () => {
    const info = await sandbox();
    const ns = await namespace('outage-rbac');
    // deploy/kubernetes/rbac.yaml for a fresh identity, without the Pods rule the wait needs.
    const email = `wait-${randomBytes(4).toString('hex')}@sandbox-project.iam.gserviceaccount.com`;
    const rbac = (await readFile(new URL('../deploy/kubernetes/rbac.yaml', import.meta.url), 'utf8')).replaceAll('${NAMESPACE}', ns).replaceAll('${SERVICE_ACCOUNT}', email);
    const withoutPods = rbac.replace(/ {2}- apiGroups: \[""\]\n {4}resources: \[pods\]\n {4}verbs: \[list, watch\]\n/, '');
    assert.notEqual(withoutPods, rbac, 'the Pods rule is taken out');
    await kubectl(['apply', '-f', '-'], withoutPods);
    const proxy = await startFaultProxy({ upstream: info.server, upstreamCaPem: await readFile(info.caFile, 'utf8') });
    const fn = await startFunction(
      configYaml({ clusters: { sandbox: { endpoint: { server: proxy.server, caFile: proxy.caFile, tokenFile: 'token' } } }, targets: { web: webTarget(ns, { rollout: { rollback: false } }) } }),
      { 'web.yaml': fixture('manifests/web.yaml'), token: await accessToken(email) },
    );
    // The Pods list answers last: the Deployment is Ready by then (kwok starts Pods at once),
    // and the wait must still not call a rollout it could not watch ready.
    const podList = (r: { method: string; path: string }) => r.method === 'GET' && new RegExp(`/namespaces/${ns}/pods\\?`).test(r.path) && !isWatch(r);
    proxy.delay(podList, 1500);
    try {
      const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` });
      assert.equal(res.status, 422, JSON.stringify(res.body));
      assert.equal(res.body.status, 'failed');
      assert.match(String(res.body.reason), new RegExp(`^cannot watch Pods in ${ns}: 403 pods is forbidden: User "${email}" cannot list resource "pods"`));
      const podLists = proxy.requests().filter(podList);
      assert.equal(podLists.length, 1, 'a 403 is not retried');
    } finally {
      await fn.close();
      await proxy.close();
    }
  });
});

describe('a watch dropped during the wait', () => {
  // README (Rollout): list, then watch from the list's resourceVersion, resumed after drops.
  // Every connection is cut while the wait watches a rollout that cannot finish (Pods no node
  // takes): each watch comes back as a watch from the last resourceVersion the proxy passed on
  // to it (an event or a bookmark; the list's when none), with no list in between.
  test('each watch resumes from the last resourceVersion it was sent, not with a new list', { timeout: 60_000 }, async () => {
    const info = await sandbox();
    const ns = await namespace('resume');
    const proxy = await startFaultProxy({ upstream: info.server, upstreamCaPem: await readFile(info.caFile, 'utf8') });
    const fn = await startFunction(
      configYaml({
        clusters: { sandbox: { endpoint: { server: proxy.server, caFile: proxy.caFile, tokenFile: 'token' } } },
        targets: { web: webTarget(ns, { manifests: ['web-stuck.yaml'], rollout: { timeout: '12s', rollback: false } }) },
      }),
      { 'web-stuck.yaml': fixture('manifests/web-stuck.yaml'), token: await accessToken(info.serviceAccount) },
    );
    try {
      const pending = fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` });
      const collections = ['pods', 'replicasets', 'deployments'];
      const of = (c: string) => (r: Request) => r.method === 'GET' && new RegExp(`/namespaces/${ns}/${c}(\\?|$)`).test(r.path);
      const param = (r: Request, name: string) => new URL(r.path, 'https://x').searchParams.get(name);
      await until('a watch of each collection', () => collections.every((c) => proxy.requests().some((r) => of(c)(r) && isWatch(r))), { seen: () => proxy.requests().map((r) => r.path) });
      // An event after the list, on the Deployment's watch: its resourceVersion is newer than the list's.
      const annotated = await kubectl(['-n', ns, 'annotate', 'deployment/web', 'gke-deployer.test/poke=1', '-o', 'jsonpath={.metadata.resourceVersion}']);
      const watchOf = (c: string) => proxy.requests().filter((r) => of(c)(r) && isWatch(r)).at(-1)!;
      await until('the annotation passed on to the Deployment watch', () => Number(watchOf('deployments').lastResourceVersion ?? 0) >= Number(annotated), { seen: () => watchOf('deployments') });

      const from = proxy.requests().length;
      const expected = Object.fromEntries(collections.map((c) => {
        const w = watchOf(c);
        return [c, w.lastResourceVersion ?? param(w, 'resourceVersion')];
      }));
      assert.notEqual(expected.deployments, param(watchOf('deployments'), 'resourceVersion'), 'the Deployment watch saw an event since its list');
      assert.ok(proxy.dropConnections() > 0);
      await until('each watch back', () => collections.every((c) => proxy.requests().slice(from).some((r) => of(c)(r) && isWatch(r))), { seen: () => proxy.requests().slice(from).map((r) => r.path) });

      for (const c of collections) {
        const next = proxy.requests().slice(from).filter(of(c));
        assert.ok(isWatch(next[0]!), `${c}: resumed with a watch, not a list: ${JSON.stringify(next.map((r) => r.path))}`);
        assert.equal(param(next[0]!, 'resourceVersion'), expected[c], `${c}: from the last resourceVersion it was sent`);
      }
      const res = await pending;
      assert.equal(res.body.status, 'failed', JSON.stringify(res.body));
    } finally {
      await fn.close();
      await proxy.close();
    }
  });
});
