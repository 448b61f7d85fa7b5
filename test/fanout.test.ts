// A target on several clusters, end to end: two independent control planes of one sandbox
// (each with its own etcd, apiserver, controllers, kwok node and CA), both looked up
// through the Container API fake. This file starts its own two-cluster sandbox (no Pub/Sub
// emulator): the suite's shared one stays a single cluster, so `npm test` does not carry a
// second control plane through every other file.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startSandbox, type Sandbox } from '../sandbox/index.ts';
import type { ControlPlane } from '../sandbox/kube/index.ts';
import { freePort } from '../sandbox/process.ts';
import { REPO, configYaml, fixture } from './support/config.ts';
import { startFaultProxy, type FaultProxy, type FaultSettings } from './support/fault-proxy.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { accessToken, idToken, namespace, sandbox } from './support/sandbox.ts';

const SCHEDULER_AUDIENCE = 'https://gke-deployer.example.run.app/scheduler';
const SCHEDULER_SA = 'scheduler@sandbox-project.iam.gserviceaccount.com';

interface ClusterEntry {
  cluster: string;
  status: string;
  reason?: string;
  error?: { code: string; message: string; retryable: boolean };
  objects: { kind: string; name: string; action: string; readiness?: string }[];
  elapsedMs: number;
}

async function kubectl(cp: ControlPlane, args: string[]): Promise<string> {
  const r = await cp.kubectl(args);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function liveImage(cp: ControlPlane, ns: string): Promise<string | undefined> {
  const r = await cp.kubectl(['-n', ns, 'get', 'deployment', 'web', '-o', 'jsonpath={.spec.template.spec.containers[0].image}']);
  if (r.code !== 0 && r.stderr.includes('NotFound')) return undefined;
  if (r.code !== 0) throw new Error(r.stderr);
  return r.stdout;
}

describe('fan-out to two sandbox clusters', () => {
  let sb: Sandbox;
  let dir: string;
  let fn: RunningFunction;
  let eu: ControlPlane;
  let us: ControlPlane;
  const ns = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;
  const names = { both: ns('both'), quota: ns('quota'), down: ns('down'), seq: ns('seq'), single: ns('single'), redeliver: ns('redeliver'), reconcile: ns('reconcile') };
  let clusters: Record<string, unknown>;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-fanout-'));
    // The shared sandbox's public CA: this process's gRPC trusts it (GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, read once).
    const shared = await sandbox();
    sb = await startSandbox({ dir, clusters: 2, pubsub: false, publicCa: { caFile: shared.publicCaFile, caKeyFile: shared.publicCaFile.replace(/\.crt$/, '.key') } });
    [eu, us] = sb.controlPlanes as [ControlPlane, ControlPlane];
    Object.assign(process.env, sb.info.env);
    const [first, second] = sb.info.clusters;
    assert.ok(first && second);
    assert.equal(first.name, sb.info.cluster);
    assert.notEqual(first.caFile, second.caFile);
    // A third cluster the Container API knows, whose endpoint is a closed loopback port.
    const closed = await freePort();
    sb.google.addCluster({ project: sb.info.project, location: 'europe-north1', name: 'sandbox-down', endpoint: `127.0.0.1:${closed}`, caPem: us.caPem });

    for (const name of Object.values(names)) {
      await kubectl(eu, ['create', 'namespace', name]);
      await kubectl(us, ['create', 'namespace', name]);
    }
    // In the second cluster only, no Pod may be created in this namespace: its rollout never becomes ready.
    await kubectl(us, ['-n', names.quota, 'create', 'quota', 'no-pods', '--hard=pods=0']);

    const gke = (name: string, location: string) => ({ gke: { project: sb.info.project, location, name } });
    const web = (namespace: string, extra: Record<string, unknown>) => ({ namespace, manifests: ['web.yaml'], container: 'web', images: [REPO], ...extra });
    clusters = { eu: gke(first.name, first.location), us: gke(second.name, second.location), down: gke('sandbox-down', 'europe-north1') };
    fn = await startFunction(
      configYaml({
        clusters,
        targets: {
          both: web(names.both, { clusters: ['eu', 'us'] }),
          quota: web(names.quota, { clusters: ['eu', 'us'], rollout: { timeout: '10s' } }),
          down: web(names.down, { clusters: ['eu', 'down'] }),
          seq: web(names.seq, { clusters: ['eu', 'us'], strategy: 'sequential' }),
          single: web(names.single, { cluster: 'eu' }),
          reconcile: web(names.reconcile, { clusters: ['eu', 'us'] }),
        },
        auth: { direct: 'none', scheduler: { audience: SCHEDULER_AUDIENCE, serviceAccounts: [SCHEDULER_SA] }, certsUrl: shared.certsUrl },
      }),
      { 'web.yaml': fixture('manifests/web.yaml') },
    );
  });
  after(async () => {
    await fn?.close();
    await sb?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('parallel: both clusters deployed, one result each, in config order', async () => {
    const image = `${REPO}:1.0.0`;
    const res = await fn.post('/deploy', { target: 'both', image });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'ready');
    assert.equal(res.body.target, 'both');
    assert.equal(res.body.namespace, names.both);
    assert.equal(res.body.image, image);
    assert.equal(res.body.strategy, 'parallel');
    assert.equal(res.body.cluster, undefined, 'a multi-cluster answer names its clusters in clusters[]');
    const clusters = res.body.clusters as ClusterEntry[];
    assert.deepEqual(clusters.map((c) => [c.cluster, c.status]), [['eu', 'ready'], ['us', 'ready']]);
    for (const c of clusters) {
      assert.deepEqual(c.objects.map((o) => [o.kind, o.action, o.readiness]), [['Deployment', 'created', 'ready'], ['Service', 'created', 'applied']]);
      assert.equal(typeof c.elapsedMs, 'number');
    }
    // As each apiserver sees it.
    assert.equal(await liveImage(eu, names.both), image);
    assert.equal(await liveImage(us, names.both), image);
    const line = fn.logs.find((l) => l.requestId === res.body.requestId && l.target === 'both');
    assert.equal(line?.status, 'ready');
    assert.deepEqual((line?.clusters as ClusterEntry[]).map((c) => c.cluster), ['eu', 'us']);

    // The single-cluster shape is unchanged beside it.
    const single = await fn.post('/deploy', { target: 'single', image: `${REPO}:1.0.1` });
    assert.equal(single.status, 200, JSON.stringify(single.body));
    assert.equal(single.body.cluster, 'eu');
    assert.equal(single.body.clusters, undefined);
    assert.ok(Array.isArray(single.body.objects));
  });

  test('a rollout failing on one cluster: per-cluster outcomes, the worst overall, 422', async () => {
    const image = `${REPO}:2.0.0`;
    const res = await fn.post('/deploy', { target: 'quota', image });
    assert.equal(res.status, 422, JSON.stringify(res.body));
    const [euResult, usResult] = res.body.clusters as ClusterEntry[];
    assert.equal(euResult?.status, 'ready');
    assert.equal(usResult?.status, 'rolled-back', JSON.stringify(usResult));
    assert.ok(usResult.reason, 'the failed cluster says why');
    assert.equal(res.body.status, 'rolled-back');
    assert.equal(await liveImage(eu, names.quota), image);
    // The Deployment this deploy created on the failing cluster was rolled back, i.e. deleted.
    assert.equal(await liveImage(us, names.quota), undefined);
  });

  test('an unreachable cluster fails alone (retryable); the other deploys, and a redelivery is a duplicate there', async () => {
    const image = `${REPO}:3.0.0`;
    const eventId = `evt-${randomUUID()}`;
    const res = await fn.post('/deploy', { target: 'down', image, eventId });
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.equal(res.body.status, 'failed');
    const [euResult, downResult] = res.body.clusters as ClusterEntry[];
    assert.equal(euResult?.cluster, 'eu');
    assert.equal(euResult.status, 'ready');
    assert.equal(await liveImage(eu, names.down), image);
    assert.equal(downResult?.cluster, 'down');
    assert.equal(downResult.status, 'failed');
    assert.deepEqual([downResult.error?.code, downResult.error?.retryable], ['CLUSTER_UNAVAILABLE', true]);
    assert.deepEqual(downResult.objects, []);

    // What Pub/Sub would do with the 503 it gets for this (test/unit/fan-out.test.ts): deliver again.
    const again = await fn.post('/deploy', { target: 'down', image, eventId });
    const [euAgain, downAgain] = again.body.clusters as ClusterEntry[];
    assert.equal(euAgain?.status, 'duplicate');
    assert.equal(downAgain?.error?.code, 'CLUSTER_UNAVAILABLE');
  });

  // Issue 17 item 8: a cluster rolled back, another timed out (503 on /pubsub: redelivered). On
  // the redelivery the rolled-back cluster must not pass for fine because its event is recorded.
  test('a redelivery after one cluster rolled back and another timed out: the rolled-back one answers rolled-back again, not duplicate', async () => {
    const namespace = names.redeliver;
    const redeliver = await startFunction(
      configYaml({ clusters, targets: { redeliver: { namespace, manifests: ['web.yaml'], container: 'web', images: [REPO], clusters: ['eu', 'us'] } } }),
      { 'web.yaml': fixture('manifests/web.yaml') },
      { DEPLOY_DEADLINE_SECONDS: '12' },
    );
    try {
      const good = await redeliver.post('/deploy', { target: 'redeliver', image: `${REPO}:1.0.0` });
      assert.equal(good.status, 200, JSON.stringify(good.body));
      // Both clusters: no room for another Pod, so the next rollout stalls. In eu, a progress
      // deadline of 2 s turns the stall into a failure (rolled back); in us the request's deadline
      // ends the wait first (timed-out).
      for (const cp of [eu, us]) {
        await kubectl(cp, ['-n', namespace, 'create', 'quota', 'full', '--hard=pods=2']);
        await kubectl(cp, ['-n', namespace, 'wait', 'quota/full', '--for=jsonpath={.status.used.pods}=2', '--timeout=30s']);
      }
      await kubectl(eu, ['-n', namespace, 'patch', 'deployment/web', '--type=merge', '-p', '{"spec":{"progressDeadlineSeconds":2}}']);
      const event = { target: 'redeliver', image: `${REPO}:2.0.0`, eventId: `evt-${randomUUID()}`, eventTime: new Date().toISOString() };
      const first = await redeliver.post('/deploy', event);
      assert.equal(first.status, 504, JSON.stringify(first.body));
      assert.deepEqual((first.body.clusters as ClusterEntry[]).map((c) => [c.cluster, c.status]), [['eu', 'rolled-back'], ['us', 'timed-out']]);
      assert.equal(await liveImage(eu, namespace), `${REPO}:1.0.0`);

      // us gets room and finishes its rollout; then the event is delivered again.
      await kubectl(us, ['-n', namespace, 'delete', 'quota', 'full']);
      await kubectl(us, ['-n', namespace, 'rollout', 'status', 'deployment/web', '--timeout=30s']);
      const again = await redeliver.post('/deploy', event);
      assert.deepEqual((again.body.clusters as ClusterEntry[]).map((c) => [c.cluster, c.status]), [['eu', 'rolled-back'], ['us', 'duplicate']]);
      assert.equal(again.body.status, 'rolled-back', JSON.stringify(again.body));
      assert.equal(again.status, 422);
      assert.equal(await liveImage(eu, namespace), `${REPO}:1.0.0`, 'eu is not deployed again');
      assert.equal(await liveImage(us, namespace), `${REPO}:2.0.0`);
    } finally {
      await redeliver.close();
    }
  });

  test('a /scheduler reconcile re-applies on each cluster the image that cluster records, one entry each', async () => {
    // README (Several clusters): "A reconcile re-applies, on each cluster, the image that cluster records."
    const namespace = names.reconcile;
    const first = await fn.post('/deploy', { target: 'reconcile', image: `${REPO}:1.0.0` });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    // us gets no room for another Pod and a 2 s progress deadline: 1.1.0 is rolled back there, so
    // eu records 1.1.0 and us 1.0.0.
    await kubectl(us, ['-n', namespace, 'create', 'quota', 'full', '--hard=pods=2']);
    await kubectl(us, ['-n', namespace, 'wait', 'quota/full', '--for=jsonpath={.status.used.pods}=2', '--timeout=30s']);
    await kubectl(us, ['-n', namespace, 'patch', 'deployment/web', '--type=merge', '-p', '{"spec":{"progressDeadlineSeconds":2}}']);
    const second = await fn.post('/deploy', { target: 'reconcile', image: `${REPO}:1.1.0` });
    assert.deepEqual((second.body.clusters as ClusterEntry[]).map((c) => [c.cluster, c.status]), [['eu', 'ready'], ['us', 'rolled-back']], JSON.stringify(second.body));
    await kubectl(us, ['-n', namespace, 'delete', 'quota', 'full']);
    await kubectl(us, ['-n', namespace, 'rollout', 'status', 'deployment/web', '--timeout=30s']);
    // Drift by hand on both.
    for (const cp of [eu, us]) await kubectl(cp, ['-n', namespace, 'set', 'image', 'deployment/web', `web=${REPO}:by-hand`]);

    const auth = { authorization: `Bearer ${await idToken({ audience: SCHEDULER_AUDIENCE, email: SCHEDULER_SA })}` };
    const res = await fn.post('/scheduler', { target: 'reconcile' }, auth);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'ready');
    assert.equal(res.body.reconciled, true);
    const entries = res.body.clusters as (ClusterEntry & { image?: string })[];
    assert.deepEqual(
      entries.map((c) => [c.cluster, c.status, c.image, c.objects.map((o) => `${o.kind}:${o.action}`).join(',')]),
      [['eu', 'ready', `${REPO}:1.1.0`, 'Deployment:configured,Service:unchanged'], ['us', 'ready', `${REPO}:1.0.0`, 'Deployment:configured,Service:unchanged']],
      JSON.stringify(res.body),
    );
    assert.equal(await liveImage(eu, namespace), `${REPO}:1.1.0`);
    assert.equal(await liveImage(us, namespace), `${REPO}:1.0.0`);
  });

  test('sequential: the first cluster fails, the second is not touched', async () => {
    const res = await fn.post('/deploy', { target: 'seq', image: `${REPO}:fail-pull-1` });
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.equal(res.body.strategy, 'sequential');
    const [euResult, usResult] = res.body.clusters as ClusterEntry[];
    // The first deploy there: rolled back, i.e. the Deployment it created is deleted.
    assert.equal(euResult?.status, 'rolled-back', JSON.stringify(euResult));
    assert.match(euResult.reason ?? '', /ImagePullBackOff|ErrImagePull/);
    assert.equal(await liveImage(eu, names.seq), undefined);
    assert.equal(usResult?.cluster, 'us');
    assert.equal(usResult.status, 'skipped');
    assert.deepEqual(usResult.objects, []);
    assert.equal(res.body.status, 'rolled-back');
    // Read from the second apiserver: nothing in the namespace, not even the deploy's Lease.
    const left = await kubectl(us, ['-n', names.seq, 'get', 'deployments,replicasets,pods,services,leases', '-o', 'name']);
    assert.equal(left.trim(), '');

    // A good image then goes through both, in order.
    const good = await fn.post('/deploy', { target: 'seq', image: `${REPO}:4.0.0` });
    assert.equal(good.status, 200, JSON.stringify(good.body));
    assert.deepEqual((good.body.clusters as ClusterEntry[]).map((c) => [c.cluster, c.status]), [['eu', 'ready'], ['us', 'ready']]);
    assert.equal(await liveImage(us, names.seq), `${REPO}:4.0.0`);
  });
});

// Several cluster entries on the suite's one sandbox cluster, each through a proxy of its
// own: what each entry sends is seen apart. (They share the target's objects and Lease, so
// only one entry applies an event; the others find it recorded: `duplicate`.)
describe('several cluster entries on one cluster', () => {
  const proxies: FaultProxy[] = [];
  let token: string;
  let upstream: { server: string; caPem: string };

  before(async () => {
    const info = await sandbox();
    upstream = { server: info.server, caPem: await readFile(info.caFile, 'utf8') };
    token = await accessToken(info.serviceAccount);
  });
  after(async () => {
    for (const p of proxies) await p.close();
  });

  /** `n` endpoint clusters c1…cn, each through its own proxy. */
  async function entries(n: number, settings: Partial<FaultSettings> = {}): Promise<{ clusters: Record<string, unknown>; proxies: FaultProxy[] }> {
    const mine = await Promise.all(Array.from({ length: n }, () => startFaultProxy({ upstream: upstream.server, upstreamCaPem: upstream.caPem, ...settings })));
    proxies.push(...mine);
    return { clusters: Object.fromEntries(mine.map((p, i) => [`c${i + 1}`, { endpoint: { server: p.server, caFile: p.caFile, tokenFile: 'token' } }])), proxies: mine };
  }
  const idle = () => fixture('manifests/web.yaml').split('\n---\n')[0]!.replace('replicas: 2\n', 'replicas: 0\n');

  test('rollout.maxParallel: at most that many clusters are deployed to at once', async () => {
    // README: "parallel deploys to every cluster at once (at most rollout.maxParallel at a time)".
    // Every request held 300 ms, so a cluster being deployed to always has one in flight.
    const { clusters, proxies: mine } = await entries(4, { delayMs: 300 });
    const ns = await namespace('wide');
    const target = { namespace: ns, manifests: ['web.yaml'], container: 'web', images: [REPO], clusters: Object.keys(clusters), rollout: { wait: false, maxParallel: 2 } };
    const fn = await startFunction(configYaml({ clusters, targets: { wide: target } }), { 'web.yaml': idle(), token });
    let peak = 0;
    // A cluster's Lease is handed back 2 s after its deploy, in the background: not a deploy.
    const deploying = (r: { path: string }) => !r.path.includes('/leases/');
    const sampler = setInterval(() => (peak = Math.max(peak, mine.filter((p) => p.inFlight(deploying) > 0).length)), 5);
    try {
      const res = await fn.post('/deploy', { target: 'wide', image: `${REPO}:1` });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'applied');
      assert.deepEqual((res.body.clusters as ClusterEntry[]).map((c) => c.cluster), ['c1', 'c2', 'c3', 'c4']);
      assert.equal(peak, 2, 'clusters with a request in flight at once');
    } finally {
      clearInterval(sampler);
      await fn.close();
    }
  });

  test('an unanswering cluster fails alone (CLUSTER_UNAVAILABLE), the other is not held up', async () => {
    // README: "each with the request's deadline (DEPLOY_DEADLINE_SECONDS), so a slow or
    // unreachable cluster holds up only its own result"; a request in flight is given up at the
    // deadline too, not at its own 15 s timeout. The first entry's proxy never answers.
    const { clusters, proxies: [stalled] } = await entries(2);
    stalled!.set({ rate: 1, kinds: { stall: 1 }, stallMs: Number.POSITIVE_INFINITY });
    const ns = await namespace('deadline');
    const target = { namespace: ns, manifests: ['web.yaml'], container: 'web', images: [REPO], clusters: ['c1', 'c2'], rollout: { wait: false } };
    const fn = await startFunction(configYaml({ clusters, targets: { two: target } }), { 'web.yaml': idle(), token }, { DEPLOY_DEADLINE_SECONDS: '10' });
    try {
      const started = Date.now();
      const res = await fn.post('/deploy', { target: 'two', image: `${REPO}:1` });
      const took = Date.now() - started;
      const [hung, fine] = res.body.clusters as ClusterEntry[];
      assert.equal(hung?.status, 'failed', JSON.stringify(res.body));
      assert.equal(hung.error?.code, 'CLUSTER_UNAVAILABLE');
      assert.match(String(hung.error?.message), /the deadline came while waiting for the Kubernetes API at https:\/\/127.0.0.1:\d+: the request was given up/);
      assert.equal(fine?.status, 'applied', JSON.stringify(res.body));
      assert.ok(fine.elapsedMs < 5_000, `the answering cluster took ${fine.elapsedMs} ms`);
      // Not before the deadline (the request was waited for), and not 15 s after it (room for a loaded machine).
      assert.ok(took >= 9_500 && took <= 10_000 + 3_000, `answered ${took} ms after the request, for a 10 s deadline`);
    } finally {
      await fn.close();
    }
  });
});
