// The warm path: an instance keeps a target's Lease between deploys, and while its tenure
// is unbroken it knows the target's state from its own last apply, so a warm deploy sends
// one request per object (plus the dry-runs of a multi-object target) and nothing else.
// Counted at a pass-through proxy in front of the sandbox's API server. Also: what it
// reports stays true when someone edits the target between deploys, a second process
// waits for the Lease and then judges right, and Leases go back when idle and on close.
// And the deploys the README says read the live object as before: after an error, after a
// rollback, a Job, an image-only target and a reconcile.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubernetesObject } from '@kubernetes/client-node';
import { fieldManagerFor } from '../src/apply/field-manager.ts';
import { TargetLeases, leaseName } from '../src/apply/lock.ts';
import { ClusterRegistry } from '../src/cluster/registry.ts';
import { REPO, configYaml, fixture, webTarget } from './support/config.ts';
import { startFaultProxy, type FaultProxy, type SeenRequest } from './support/fault-proxy.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { spawnFunction } from './support/process.ts';
import { accessToken, idToken, kubectl, kubectlJson, namespace, sandbox } from './support/sandbox.ts';

/** web.yaml at zero replicas (no Pods to load the sandbox), and its Deployment alone. */
const idleWeb = () => fixture('manifests/web.yaml').replace('replicas: 2\n', 'replicas: 0\n');
const deploymentOnly = () => idleWeb().split('\n---\n')[0]!;

interface Lease {
  metadata: { resourceVersion: string };
  spec: { holderIdentity?: string; renewTime?: string };
}

const holderOf = async (ns: string, target: string) => (await kubectlJson<Lease>(['-n', ns, 'get', 'lease', leaseName(target)])).spec.holderIdentity;

async function until(what: string, condition: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 30_000;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`gave up waiting: ${what}`);
    await sleep(50);
  }
}

const SCHEDULER = { audience: 'https://gke-deployer.example.run.app/scheduler', email: 'scheduler@sandbox-project.iam.gserviceaccount.com' };

/** Method and path (without the query) of each request, and whether it was a dry run. */
const shape = (reqs: SeenRequest[]) => reqs.map((r) => `${r.method} ${r.path.split('?')[0]}${r.path.includes('dryRun=All') ? ' (dry run)' : ''}`);
const actions = (body: Record<string, unknown>) => (body.objects as { kind: string; action: string }[]).map((o) => `${o.kind} ${o.action}`);

describe('warm path through a counting proxy', () => {
  let proxy: FaultProxy;
  let fn: RunningFunction;
  const ns: Record<string, string> = {};
  let clusterRole: string;

  before(async () => {
    const info = await sandbox();
    proxy = await startFaultProxy({ upstream: info.server, upstreamCaPem: await readFile(info.caFile, 'utf8') });
    for (const t of ['one', 'two', 'forced', 'strict', 'order', 'erred', 'rolled', 'job', 'image', 'reconciled']) ns[t] = await namespace(`warm-${t}`);
    // A cluster-scoped object the deployer may patch (its 'edit' role reaches no cluster-scoped kind).
    clusterRole = `gke-deployer-${ns.order}`;
    await kubectl(['create', '-f', '-'], JSON.stringify({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: clusterRole } }));
    await kubectl(['create', 'clusterrole', `${clusterRole}-patcher`, '--verb=get,patch', '--resource=clusterroles', `--resource-name=${clusterRole}`]);
    await kubectl(['create', 'clusterrolebinding', `${clusterRole}-patcher`, `--clusterrole=${clusterRole}-patcher`, `--user=${info.serviceAccount}`]);
    const single = { manifests: ['one.yaml'], rollout: { wait: false } };
    const targets = {
      one: webTarget(ns.one!, single),
      two: webTarget(ns.two!, { manifests: ['web.yaml'], rollout: { wait: false } }),
      forced: webTarget(ns.forced!, { ...single, force: true }),
      strict: webTarget(ns.strict!, single),
      order: webTarget(ns.order!, { manifests: ['order.yaml'], clusterScoped: ['ClusterRole'], rollout: { wait: false } }),
      erred: webTarget(ns.erred!, single),
      // One Pod, so the rollout of a tag that cannot be pulled fails and is rolled back.
      rolled: webTarget(ns.rolled!, { manifests: ['one-pod.yaml'] }),
      job: webTarget(ns.job!, { manifests: ['job.yaml'], container: 'migrate', rollout: { wait: false } }),
      image: { cluster: 'sandbox', namespace: ns.image!, deployment: 'web', container: 'web', images: [REPO], rollout: { wait: false } },
      reconciled: webTarget(ns.reconciled!, single),
    };
    const auth = { direct: 'none', scheduler: { audience: SCHEDULER.audience, serviceAccounts: [SCHEDULER.email] }, certsUrl: info.certsUrl };
    fn = await startFunction(configYaml({ auth, clusters: { sandbox: { endpoint: { server: proxy.server, caFile: proxy.caFile, tokenFile: 'token' } } }, targets }), {
      'web.yaml': idleWeb(),
      'one.yaml': deploymentOnly(),
      'one-pod.yaml': deploymentOnly().replace('replicas: 0\n', 'replicas: 1\n'),
      'job.yaml': fixture('manifests/job.yaml'),
      // The Deployment first: the ClusterRole is still applied before it.
      'order.yaml': `${deploymentOnly()}\n---\n${JSON.stringify({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: clusterRole, labels: { app: 'web' } } })}\n`,
      token: await accessToken(info.serviceAccount),
    });
  });
  after(async () => {
    // Whatever before() got to: an open proxy would keep the test process alive.
    await (fn as RunningFunction | undefined)?.close();
    await (proxy as FaultProxy | undefined)?.close();
    await kubectl(['delete', '--ignore-not-found', 'clusterrolebinding,clusterrole', `${clusterRole}-patcher`, clusterRole]);
  });

  async function deploy(target: string, tag: string): Promise<{ status: number; body: Record<string, unknown>; requests: SeenRequest[] }> {
    const from = proxy.requests().length;
    const res = await fn.post('/deploy', { target, image: `${REPO}:${tag}` });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return { ...res, requests: proxy.requests().slice(from) };
  }

  test('a single-object target: the second deploy is one PATCH, and reports what changed', async () => {
    const first = await deploy('one', 'v1');
    assert.deepEqual(actions(first.body), ['Deployment created']);
    assert.ok(first.requests.length > 1, 'the first deploy takes the Lease and reads');
    const path = `/apis/apps/v1/namespaces/${ns.one}/deployments/web`;
    const second = await deploy('one', 'v2');
    assert.deepEqual(shape(second.requests), [`PATCH ${path}`]);
    assert.deepEqual(actions(second.body), ['Deployment configured']);
    // The same image again (a new event): only the stamps change.
    const third = await deploy('one', 'v2');
    assert.deepEqual(shape(third.requests), [`PATCH ${path}`]);
    assert.deepEqual(actions(third.body), ['Deployment unchanged']);
    const live = await kubectlJson<{ spec: { template: { spec: { containers: { image: string }[] } } } }>(['-n', ns.one!, 'get', 'deployment', 'web']);
    assert.equal(live.spec.template.spec.containers[0]?.image, `${REPO}:v2`);
    // Deleted by someone meanwhile: the apply creates it again, and says so.
    await kubectl(['-n', ns.one!, 'delete', 'deployment', 'web']);
    const fourth = await deploy('one', 'v2');
    assert.deepEqual(shape(fourth.requests), [`PATCH ${path}`]);
    assert.deepEqual(actions(fourth.body), ['Deployment created']);
  });

  test('a two-object target: two dry runs, then two PATCHes; nothing read', async () => {
    await deploy('two', 'v1');
    const second = await deploy('two', 'v2');
    const deployment = `PATCH /apis/apps/v1/namespaces/${ns.two}/deployments/web`;
    const service = `PATCH /api/v1/namespaces/${ns.two}/services/web`;
    assert.deepEqual(shape(second.requests).sort(), [deployment, `${deployment} (dry run)`, service, `${service} (dry run)`].sort());
    // Every dry run before any write.
    assert.ok(second.requests.slice(0, 2).every((r) => r.path.includes('dryRun=All')), JSON.stringify(shape(second.requests)));
    assert.deepEqual(actions(second.body), ['Deployment configured', 'Service unchanged'], 'in manifest order');
  });

  test('cluster-scoped objects are applied first; the answer keeps the manifests\' order', async () => {
    await deploy('order', 'v1');
    const second = await deploy('order', 'v2');
    const writes = shape(second.requests).filter((r) => !r.endsWith('(dry run)'));
    assert.deepEqual(writes, [`PATCH /apis/rbac.authorization.k8s.io/v1/clusterroles/${clusterRole}`, `PATCH /apis/apps/v1/namespaces/${ns.order}/deployments/web`]);
    assert.equal(second.requests.length, 4, 'two dry runs and two applies');
    assert.deepEqual(actions(second.body), ['Deployment configured', 'ClusterRole unchanged']);
  });

  test('force: an edit between two deploys is reported configured and taken back', async () => {
    await deploy('forced', 'v1');
    // The Deployment controller writes its revision annotation after the first apply; let it, or the next deploy would see that too.
    await until('the controller has seen the Deployment', async () => {
      const d = await kubectlJson<{ metadata: { generation: number; annotations: Record<string, string> }; status?: { observedGeneration?: number } }>(['-n', ns.forced!, 'get', 'deployment', 'web']);
      return d.status?.observedGeneration === d.metadata.generation && d.metadata.annotations['deployment.kubernetes.io/revision'] !== undefined;
    });
    assert.deepEqual(actions((await deploy('forced', 'v1')).body), ['Deployment unchanged']);
    await kubectl(['-n', ns.forced!, 'label', 'deployment', 'web', 'app=edited', '--overwrite']);
    const res = await deploy('forced', 'v1');
    assert.deepEqual(actions(res.body), ['Deployment configured']);
    // A forced apply may take back what someone changed, so it reads first to say so.
    assert.deepEqual(shape(res.requests), [`GET /apis/apps/v1/namespaces/${ns.forced}/deployments/web`, `PATCH /apis/apps/v1/namespaces/${ns.forced}/deployments/web`]);
    const live = await kubectlJson<{ metadata: { labels: Record<string, string> } }>(['-n', ns.forced!, 'get', 'deployment', 'web']);
    assert.equal(live.metadata.labels.app, 'web');
  });

  /** What a deploy sent for the object at `path`, up to and including its first write; dry runs left out. */
  const upToWrite = (reqs: SeenRequest[], path: string): string[] => {
    const mine = shape(reqs).filter((r) => r.split(' ')[1] === path && !r.endsWith('(dry run)'));
    return mine.slice(0, mine.findIndex((r) => !r.startsWith('GET ')) + 1);
  };
  /** Two reads: the record the event is judged against (the anchor), then the object the apply compares with. */
  const readTwice = (path: string) => [`GET ${path}`, `GET ${path}`, `PATCH ${path}`];
  const deploymentPath = (target: string) => `/apis/apps/v1/namespaces/${ns[target]}/deployments/web`;

  // README (the warm path): the first deploy after an error, after a rollback, a reconcile, a
  // Job and an image-only target's Deployment read the live object as before.
  test('after an error: the next deploy reads the live object before its write', async () => {
    const path = deploymentPath('erred');
    await deploy('erred', 'v1');
    // Warm: no read. What follows must differ from this.
    assert.deepEqual(upToWrite((await deploy('erred', 'v2')).requests, path), [`PATCH ${path}`]);
    await kubectl(['-n', ns.erred!, 'label', 'deployment', 'web', 'app=edited', '--overwrite']);
    const refused = await fn.post('/deploy', { target: 'erred', image: `${REPO}:v3` });
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    // The same value as the target's: no conflict any more.
    await kubectl(['-n', ns.erred!, 'label', 'deployment', 'web', 'app=web', '--overwrite']);
    assert.deepEqual(upToWrite((await deploy('erred', 'v3')).requests, path), readTwice(path));
  });

  test('after a rollback: the next deploy reads the live object before its write', async () => {
    const path = deploymentPath('rolled');
    assert.equal((await deploy('rolled', 'v1')).body.status, 'ready');
    assert.deepEqual(upToWrite((await deploy('rolled', 'v2')).requests, path), [`PATCH ${path}`]);
    const bad = await fn.post('/deploy', { target: 'rolled', image: `${REPO}:fail-pull-1` });
    assert.equal(bad.body.status, 'rolled-back', JSON.stringify(bad.body));
    const next = await deploy('rolled', 'v3');
    assert.equal(next.body.status, 'ready');
    assert.deepEqual(upToWrite(next.requests, path), readTwice(path));
  });

  test('a Job is read before every apply, warm or not', async () => {
    const path = `/apis/batch/v1/namespaces/${ns.job}/jobs/migrate`;
    await deploy('job', 'v1');
    // Its status decides whether it is replaced, so it is read even on a warm deploy.
    assert.deepEqual(upToWrite((await deploy('job', 'v1')).requests, path), [`GET ${path}`, `PATCH ${path}`]);
  });

  test('an image-only target reads its Deployment before every apply', async () => {
    const path = deploymentPath('image');
    await kubectl(['-n', ns.image!, 'create', 'deployment', 'web', `--image=${REPO}:0`, '--replicas=0']);
    // The image field handed to the target's field manager, so its applies need no force.
    const owned = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { template: { spec: { containers: [{ name: 'web', image: `${REPO}:seed` }] } } } };
    await kubectl(['-n', ns.image!, 'apply', '--server-side', '--force-conflicts', `--field-manager=${fieldManagerFor('image')}`, '-f', '-'], JSON.stringify(owned));
    await deploy('image', 'v1');
    assert.deepEqual(upToWrite((await deploy('image', 'v2')).requests, path), [`GET ${path}`, `PATCH ${path}`]);
  });

  test('a reconcile reads the live object before its write', async () => {
    const path = deploymentPath('reconciled');
    await deploy('reconciled', 'v1');
    assert.deepEqual(upToWrite((await deploy('reconciled', 'v2')).requests, path), [`PATCH ${path}`]);
    const from = proxy.requests().length;
    const res = await fn.post('/scheduler', { target: 'reconciled' }, { authorization: `Bearer ${await idToken(SCHEDULER)}` });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.reconciled, true);
    // The record to re-apply, then the object the forced apply compares with.
    assert.deepEqual(upToWrite(proxy.requests().slice(from), path), [`GET ${path}`, `GET ${path}`, `PATCH ${path}`]);
  });

  test('without force, an edit of the target\'s fields is a conflict, never a silent "unchanged"', async () => {
    await deploy('strict', 'v1');
    await kubectl(['-n', ns.strict!, 'label', 'deployment', 'web', 'app=edited', '--overwrite']);
    const res = await fn.post('/deploy', { target: 'strict', image: `${REPO}:v1` });
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal((res.body.error as { code?: string } | undefined)?.code, 'CONFLICT', JSON.stringify(res.body));
  });
});

describe('the sticky Lease across two processes', () => {
  test('the second process waits for the Lease, applies, and both judge stale and duplicate right', async () => {
    const info = await sandbox();
    const ns = await namespace('warm-two');
    const config = configYaml({
      clusters: { sandbox: { endpoint: { server: info.server, caFile: info.caFile, tokenFile: 'token' } } },
      targets: { one: webTarget(ns, { manifests: ['one.yaml'], rollout: { wait: false } }) },
    });
    const files = { 'one.yaml': deploymentOnly(), token: await accessToken(info.serviceAccount) };
    const [a, b] = await Promise.all([spawnFunction(config, files), spawnFunction(config, files)]);
    const send = (f: typeof a, v: number) => f.post('/deploy', { target: 'one', image: `${REPO}:v${v}`, eventId: `e${v}`, eventTime: new Date(Date.UTC(2026, 5, 1, 0, 0, v)).toISOString() });
    try {
      assert.equal((await send(a, 2)).body.status, 'applied');
      const first = await holderOf(ns, 'one');
      assert.ok(first, 'a keeps the Lease after its deploy');
      // b meets a's Lease and waits for it to come back.
      const res = await send(b, 3);
      assert.equal(res.body.status, 'applied', JSON.stringify(res.body));
      assert.notEqual(await holderOf(ns, 'one'), first);
      // a's own knowledge (e2 applied) was lost with its tenure: it reads b's record.
      const old = await send(a, 2);
      assert.equal(old.status, 409, JSON.stringify(old.body));
      assert.equal(old.body.status, 'stale');
      assert.deepEqual(old.body.recorded, { eventId: 'e3', eventTime: '2026-06-01T00:00:03.000Z' });
      assert.equal((await send(a, 3)).body.status, 'duplicate');
      assert.equal((await send(b, 4)).body.status, 'applied');
      assert.equal((await send(b, 4)).body.status, 'duplicate');
      const live = await kubectlJson<{ metadata: { annotations: Record<string, string> } }>(['-n', ns, 'get', 'deployment', 'web']);
      assert.equal(live.metadata.annotations['gke-deployer/event-id'], 'e4');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
    // SIGTERM: the process hands its Lease back before it exits.
    assert.equal(await holderOf(ns, 'one'), undefined);
  });
});

describe('TargetLeases', () => {
  let registry: ClusterRegistry;
  before(async () => {
    const info = await sandbox();
    registry = new ClusterRegistry(new Map([['c', { kubeconfig: { path: info.kubeconfig } }]]));
  });
  after(() => registry.close());
  const deadline = () => Date.now() + 20_000;
  const learned = new Map<string, KubernetesObject>([['k', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }]]);

  test('handed back when idle; knowledge survives while nobody else held the Lease', async () => {
    const ref = { cluster: 'c', namespace: await namespace('lease'), target: 'idle' };
    const client = await registry.client('c');
    const leases = new TargetLeases({ idleMs: 50 });
    try {
      const first = await leases.acquire(client, ref, deadline());
      assert.equal(first.knowledge, undefined, 'nothing known on a first acquisition');
      assert.equal(await holderOf(ref.namespace, ref.target), leases.holder);
      first.done(learned);
      await until('the idle Lease is handed back', async () => (await holderOf(ref.namespace, ref.target)) === undefined);
      const again = await leases.acquire(client, ref, deadline());
      assert.equal(again.knowledge, learned, 'the Lease was unchanged since our hand-back');
      again.done('keep');
      await until('handed back again', async () => (await holderOf(ref.namespace, ref.target)) === undefined);
      // Another instance takes it and hands it back: what we knew may be stale now.
      const other = new TargetLeases({ idleMs: 50 });
      (await other.acquire(client, ref, deadline())).done('keep');
      await other.close();
      const third = await leases.acquire(client, ref, deadline());
      assert.equal(third.knowledge, undefined);
      third.done('keep');
    } finally {
      await leases.close();
    }
  });

  test('close hands the Lease back at once; a frozen holder\'s Lease is taken over, and its holder forgets', async (t) => {
    const ref = { cluster: 'c', namespace: await namespace('lease'), target: 'close' };
    const client = await registry.client('c');
    const leases = new TargetLeases({ idleMs: 600_000 });
    // A holder that froze a minute ago, right after its deploy (the clock is moved, not slept).
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() - 60_000 });
    (await leases.acquire(client, ref, Number.POSITIVE_INFINITY)).done(learned);
    t.mock.timers.reset();
    assert.equal(await holderOf(ref.namespace, ref.target), leases.holder);
    const other = new TargetLeases({ idleMs: 600_000 });
    const taken = await other.acquire(client, ref, deadline());
    assert.equal(await holderOf(ref.namespace, ref.target), other.holder, 'taken over: it had expired');
    taken.done('keep');
    await other.close();
    assert.equal(await holderOf(ref.namespace, ref.target), undefined, 'close handed it back');
    const back = await leases.acquire(client, ref, deadline());
    assert.equal(back.knowledge, undefined, 'its tenure was broken');
    assert.equal(await holderOf(ref.namespace, ref.target), leases.holder);
    back.done('keep');
    await leases.close();
    assert.equal(await holderOf(ref.namespace, ref.target), undefined);
  });
});
