// Rollbacks through the sandbox that must do no harm and say what happened (issue 17,
// items 5, 6, 8): a StatefulSet's rollback costs no availability and replaces only its
// broken Pods, through the Eviction API; a restore whose answer was lost is still the
// rollback's own; a redelivery of a rolled-back event answers `rolled-back` again.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { KubeConfig, Watch, type KubernetesObject } from '@kubernetes/client-node';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { accessToken, kubectl, kubectlJson, namespace, sandbox, useSandboxEnv } from './support/sandbox.ts';

interface Pod {
  metadata: { name: string; uid: string; deletionTimestamp?: string; labels?: Record<string, string> };
  spec: { containers: { image: string }[] };
  status?: { conditions?: { type: string; status: string }[] };
}

const ready = (p: Pod) => !p.metadata.deletionTimestamp && (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/**
 * Watches a namespace's Pods with `selector` and keeps the fewest Ready (and not terminating)
 * at any moment since it started, as the API server's watch reports them one event at a time.
 */
async function readyFloor(ns: string, selector: string): Promise<{ fewest: () => number; now: () => number; stop: () => void }> {
  const kc = new KubeConfig();
  kc.loadFromFile((await sandbox()).kubeconfig);
  const list = await kubectlJson<{ items: Pod[]; metadata: { resourceVersion: string } }>(['-n', ns, 'get', 'pods', '-l', selector]);
  const pods = new Map(list.items.map((p) => [p.metadata.uid, p]));
  const count = () => [...pods.values()].filter(ready).length;
  let fewest = count();
  const req = await new Watch(kc).watch(
    `/api/v1/namespaces/${ns}/pods`,
    { labelSelector: selector, resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: 'true' },
    (type: string, obj: Pod) => {
      if (type === 'BOOKMARK' || type === 'ERROR') return;
      if (type === 'DELETED') pods.delete(obj.metadata.uid);
      else pods.set(obj.metadata.uid, obj);
      fewest = Math.min(fewest, count());
    },
    () => undefined,
  );
  return { fewest: () => fewest, now: count, stop: () => req.abort() };
}

async function podsOf(ns: string, selector: string): Promise<Pod[]> {
  return (await kubectlJson<{ items: Pod[] }>(['-n', ns, 'get', 'pods', '-l', selector])).items;
}

describe('a StatefulSet rollback costs no availability', () => {
  test('a canary StatefulSet (partition 1) rolled out and Ready when another workload fails: none of its Ready Pods is deleted at once', async () => {
    const info = await useSandboxEnv();
    const ns = await namespace('rb');
    const files = { 'canary.yaml': fixture('manifests/stateful-canary.yaml'), 'canary-stuck.yaml': fixture('manifests/stateful-canary-stuck.yaml') };
    const targets = {
      base: webTarget(ns, { manifests: ['canary.yaml'] }),
      stuck: webTarget(ns, { manifests: ['canary-stuck.yaml'], force: true, rollout: { timeout: '10s' } }),
    };
    const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets }), files);
    try {
      const good = await fn.post('/deploy', { target: 'base', image: `${REPO}:1.0.0` });
      assert.equal(good.status, 200, JSON.stringify(good.body));
      await kubectl(['-n', ns, 'wait', 'statefulset/db', '--for=jsonpath={.status.readyReplicas}=3', '--timeout=30s']);
      const floor = await readyFloor(ns, 'app=db');
      try {
        assert.equal(floor.now(), 3, 'all three Ready before the failing deploy');
        // The StatefulSet's canary (ordinals 2 and 1) becomes Ready; the Deployment's Pods never start.
        const res = await fn.post('/deploy', { target: 'stuck', image: `${REPO}:2.0.0` });
        assert.equal(res.status, 422, JSON.stringify(res.body));
        assert.equal(res.body.status, 'rolled-back', JSON.stringify(res.body));
        const sts = (res.body.objects as { kind: string; readiness: string }[]).find((o) => o.kind === 'StatefulSet');
        assert.equal(sts?.readiness, 'ready', 'the canary was rolled out when the Deployment failed');
        // The rollout took one Pod at a time; so must the rollback (the controller's own pace).
        assert.ok(floor.fewest() >= 2, `at one moment only ${floor.fewest()} of 3 db Pods were Ready`);
      } finally {
        floor.stop();
      }
      const pods = await podsOf(ns, 'app=db');
      assert.deepEqual(pods.map((p) => [p.metadata.name, p.spec.containers[0]?.image, ready(p)]).sort(), [0, 1, 2].map((i) => [`db-${i}`, `${REPO}:1.0.0`, true]));
    } finally {
      await fn.close();
    }
  });
});

describe('through a proxy that sees every request', () => {
  let proxy: FaultProxy;
  let fn: RunningFunction;
  const ns: Record<string, string> = {};

  before(async () => {
    const info = await sandbox();
    for (const name of ['pdb', 'lost', 'again']) ns[name] = await namespace(`rb-${name}`);
    proxy = await startFaultProxy({ upstream: info.server, upstreamCaPem: await readFile(info.caFile, 'utf8') });
    fn = await startFunction(
      configYaml({
        clusters: { sandbox: { endpoint: { server: proxy.server, caFile: proxy.caFile, tokenFile: 'token' } } },
        targets: {
          db: webTarget(ns.pdb!, { manifests: ['db.yaml'] }),
          lost: webTarget(ns.lost!),
          'lost-stuck': webTarget(ns.lost!, { manifests: ['web-stuck.yaml'], force: true, rollout: { timeout: '4s' } }),
          again: webTarget(ns.again!),
        },
      }),
      { 'db.yaml': fixture('manifests/stateful-3.yaml'), 'web.yaml': fixture('manifests/web.yaml'), 'web-stuck.yaml': fixture('manifests/web-stuck.yaml'), token: await accessToken(info.serviceAccount) },
    );
  });
  after(async () => {
    await fn?.close();
    await proxy?.close();
  });

  const podWrites = (from: number) => proxy.requests().slice(from).filter((r) => (r.method === 'DELETE' || r.method === 'POST') && /\/api\/v1\/namespaces\/[^/]+\/pods\//.test(r.path)).map((r) => `${r.method} ${r.path.replace(/^\/api\/v1\/namespaces\/[^/]+/, '').replace(/\?.*$/, '')}`);

  test('a crashing StatefulSet under a PodDisruptionBudget: only the broken Pod is replaced, by an Eviction; a budget that refuses it falls back to a delete (it is not Ready)', async () => {
    const db = ns.pdb!;
    const good = await fn.post('/deploy', { target: 'db', image: `${REPO}:1.0.0` });
    assert.equal(good.status, 200, JSON.stringify(good.body));
    await kubectl(['-n', db, 'create', 'poddisruptionbudget', 'db', '--selector=app=db', '--min-available=2']);
    await kubectl(['-n', db, 'wait', 'pdb/db', '--for=jsonpath={.status.currentHealthy}=3', '--timeout=30s']);

    let from = proxy.requests().length;
    const bad = await fn.post('/deploy', { target: 'db', image: `${REPO}:crash-pdb-1` });
    assert.equal(bad.status, 422, JSON.stringify(bad.body));
    assert.equal(bad.body.status, 'rolled-back', JSON.stringify(bad.body));
    assert.deepEqual(podWrites(from), ['POST /pods/db-2/eviction'], 'db-2, the one broken Pod, evicted; nothing deleted');

    // A budget that allows no disruption at all: the eviction is refused (429), and the
    // broken Pod, which counts as unavailable already, is deleted.
    await kubectl(['-n', db, 'patch', 'pdb/db', '--type=merge', '-p', '{"spec":{"minAvailable":3}}']);
    from = proxy.requests().length;
    const refused = await fn.post('/deploy', { target: 'db', image: `${REPO}:crash-pdb-2` });
    assert.equal(refused.status, 422, JSON.stringify(refused.body));
    assert.equal(refused.body.status, 'rolled-back', JSON.stringify(refused.body));
    assert.deepEqual(podWrites(from), ['POST /pods/db-2/eviction', 'DELETE /pods/db-2']);
    const pods = await podsOf(db, 'app=db');
    assert.deepEqual(pods.map((p) => [p.metadata.name, p.spec.containers[0]?.image, ready(p)]).sort(), [0, 1, 2].map((i) => [`db-${i}`, `${REPO}:1.0.0`, true]));
  });

  test("the restore's answer is lost: its retry (409, the resourceVersion moved) is recognised as the rollback's own write, answered rolled-back", async () => {
    const web = ns.lost!;
    assert.equal((await fn.post('/deploy', { target: 'lost', image: `${REPO}:1.0.0` })).status, 200);
    // The stuck deploy's Pods stay Pending: nothing moves the Deployment when its timeout
    // comes, so the restore (the second forced apply of web: the first is the stuck deploy's
    // own) lands; then its answer is lost.
    const forcedApply = (r: { method: string; path: string }) => r.method === 'PATCH' && r.path.startsWith(`/apis/apps/v1/namespaces/${web}/deployments/web?`) && r.path.includes('force=true') && !r.path.includes('dryRun');
    let forced = 0;
    const from = proxy.requests().length;
    proxy.failNext('reset-after', 1, (r) => forcedApply(r) && ++forced === 2);
    const res = await fn.post('/deploy', { target: 'lost-stuck', image: `${REPO}:1.1.0` });
    assert.equal(proxy.counts()['reset-after'], 1, 'the restore was served and its answer lost');
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.equal(res.body.status, 'rolled-back', JSON.stringify(res.body));
    assert.equal(res.body.restoredImage, `${REPO}:1.0.0`);
    // The deploy's apply, the restore, its retry (409): the restore is not written a second time.
    assert.deepEqual(proxy.requests().slice(from).filter(forcedApply).map((r) => r.fault ?? 'answered'), ['answered', 'reset-after', 'answered']);
    const live = await kubectlJson<{ spec: { template: { spec: { containers: { image: string }[] } } } }>(['-n', web, 'get', 'deployment', 'web']);
    assert.equal(live.spec.template.spec.containers[0]?.image, `${REPO}:1.0.0`);
  });

  test('a redelivery of an event whose deploy was rolled back answers rolled-back again, and deploys nothing', async () => {
    const web = ns.again!;
    assert.equal((await fn.post('/deploy', { target: 'again', image: `${REPO}:1.0.0` })).status, 200);
    const event = { target: 'again', image: `${REPO}:fail-pull-again`, eventId: 'release-again', eventTime: new Date().toISOString() };
    const first = await fn.post('/deploy', event);
    assert.equal(first.body.status, 'rolled-back', JSON.stringify(first.body));
    const rv = (await kubectlJson<KubernetesObject>(['-n', web, 'get', 'deployment', 'web'])).metadata?.resourceVersion;
    const from = proxy.requests().length;
    const again = await fn.post('/deploy', event);
    assert.equal(again.status, 422, JSON.stringify(again.body));
    assert.equal(again.body.status, 'rolled-back', JSON.stringify(again.body));
    assert.equal(again.body.failedImage, event.image);
    assert.equal(again.body.restoredImage, `${REPO}:1.0.0`);
    assert.deepEqual(again.body.recorded, { eventId: event.eventId, eventTime: event.eventTime });
    assert.deepEqual(proxy.requests().slice(from).filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path}`).filter((r) => !r.includes('/leases/')), [], 'nothing written but the Lease');
    assert.equal((await kubectlJson<KubernetesObject>(['-n', web, 'get', 'deployment', 'web'])).metadata?.resourceVersion, rv);
  });
});
