// POST /deploy on a gke target, end to end through the sandbox: the real Container API
// client against the fake, ADC tokens from the fake metadata server checked by the
// real kube-apiserver's token webhook, and server-side apply into the real cluster.
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { caFileDir } from '../src/cluster/ca-file.ts';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { control, kubectl, kubectlJson, leasesHandedBack, namespace, stats, useSandboxEnv } from './support/sandbox.ts';

interface Deployment {
  metadata: { annotations: Record<string, string>; generation: number; resourceVersion: string; managedFields: { manager: string; operation: string; time: string }[] };
  spec: { template: { spec: { containers: { name: string; image: string }[] } } };
}

/** The Deployment was not written since `before`: same resourceVersion, same managedFields (times included). */
async function assertUnwritten(ns: string, before: Deployment, message: string): Promise<void> {
  const now = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
  assert.equal(now.metadata.resourceVersion, before.metadata.resourceVersion, message);
  assert.deepEqual(now.metadata.managedFields, before.metadata.managedFields, message);
}

async function liveImage(ns: string, name = 'web'): Promise<string | undefined> {
  const d = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', name]);
  return d.spec.template.spec.containers[0]?.image;
}

describe('POST /deploy, gke target', () => {
  let fn: RunningFunction;
  let ns: string;
  let firstNs: string;
  let slowNs: string;
  let stuckNs: string;

  before(async () => {
    const info = await useSandboxEnv();
    ns = await namespace('web');
    firstNs = await namespace('web-first');
    // first: only the create/configure/unchanged test deploys it, so it starts from nothing in any test order.
    slowNs = await namespace('web-slow');
    stuckNs = await namespace('web-stuck');
    // Ready only 11 s after its Pods are: past the wait's first 10 s progress line.
    const slow = fixture('manifests/web.yaml').replace('  replicas: 2\n', '  replicas: 2\n  minReadySeconds: 11\n');
    fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns), first: webTarget(firstNs), slow: webTarget(slowNs, { manifests: ['slow.yaml'] }), stuck: webTarget(stuckNs, { manifests: ['web-stuck.yaml'], rollout: { timeout: '24s', rollback: false } }) } }), {
      'web.yaml': fixture('manifests/web.yaml'),
      'web-stuck.yaml': fixture('manifests/web-stuck.yaml'),
      'slow.yaml': slow,
    });
  });
  after(() => fn.close());

  test('a rollout over 10 s logs what it still waits on every 10 s at INFO; every line of the request carries its trace, span and sampled flag', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await fn.post('/deploy', { target: 'slow', image: `${REPO}:1.0.0` }, { traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    assert.equal(res.body.status, 'ready', JSON.stringify(res.body));
    const lines = fn.logs.filter((l) => l.requestId === res.body.requestId);
    const waiting = lines.filter((l) => /^slow: still waiting on /.test(l.message));
    assert.equal(waiting.length, 1, JSON.stringify(lines.map((l) => l.message)));
    assert.equal(waiting[0]!.severity, 'INFO');
    assert.match(waiting[0]!.message, /still waiting on Deployment web \(Waiting for rollout to finish: 0 of 2 updated replicas are available\)$/);
    for (const line of lines) {
      assert.deepEqual(
        [line['logging.googleapis.com/trace'], line['logging.googleapis.com/spanId'], line['logging.googleapis.com/trace_sampled']],
        [`projects/sandbox-project/traces/${traceId}`, '00f067aa0ba902b7', true],
        line.message,
      );
    }
  });

  test('a rollout that stays pending: the still-waiting line comes every 10 s, at INFO, saying what is pending', async () => {
    // Pods no node takes: the wait runs to its 24 s timeout (rollback off), two lines 10 s apart.
    const started = Date.now();
    const res = await fn.post('/deploy', { target: 'stuck', image: `${REPO}:1.0.0` });
    assert.equal(res.body.status, 'failed', JSON.stringify(res.body));
    const waiting = fn.logs.filter((l) => l.requestId === res.body.requestId && /^stuck: still waiting on /.test(l.message));
    assert.equal(waiting.length, 2, JSON.stringify(waiting));
    for (const line of waiting) {
      assert.equal(line.severity, 'INFO');
      assert.match(line.message, /still waiting on Deployment web \(Waiting for rollout to finish: 0 of 2 updated replicas are available\)$/);
    }
    const [first, second] = waiting.map((l) => Date.parse(String(l.time)));
    // The first 10 s into the wait, which starts once the objects are applied (well within 3 s here).
    assert.ok(first! - started >= 10_000 && first! - started <= 13_000, `first line ${first! - started} ms after the request`);
    assert.ok(second! - first! >= 10_000 - 50 && second! - first! <= 10_000 + 1_000, `${second! - first!} ms between the lines`);
  });

  test('creates, then configures, then reports unchanged — as the API server sees it', async () => {
    const traceId = '105445aa7843bc8bf206b12000100000';
    const first = await fn.post('/deploy', { target: 'first', image: `${REPO}:1.0.0` }, { 'x-cloud-trace-context': `${traceId}/1;o=1` });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.status, 'ready');
    assert.deepEqual(
      (first.body.objects as Record<string, unknown>[]).map(({ kind, name, namespace, action, readiness }) => ({ kind, name, namespace, action, readiness })),
      [
        { kind: 'Deployment', name: 'web', namespace: firstNs, action: 'created', readiness: 'ready' },
        { kind: 'Service', name: 'web', namespace: firstNs, action: 'created', readiness: 'applied' },
      ],
    );
    assert.equal(await liveImage(firstNs), `${REPO}:1.0.0`);
    const line = fn.logs.find((l) => l.requestId === first.body.requestId);
    assert.equal(line?.severity, 'INFO');
    assert.equal(line?.['logging.googleapis.com/trace'], `projects/sandbox-project/traces/${traceId}`);
    assert.equal(line?.target, 'first');
    assert.equal(typeof line?.durationMs, 'number');
    const svc = await kubectlJson<{ spec: { ports: { port: number }[] } }>(['-n', firstNs, 'get', 'service', 'web']);
    assert.equal(svc.spec.ports[0]?.port, 80);

    const second = await fn.post('/deploy', { target: 'first', image: `${REPO}:1.1.0` });
    assert.equal(second.status, 200);
    assert.deepEqual(
      (second.body.objects as { action: string }[]).map((o) => o.action),
      ['configured', 'unchanged'],
    );
    assert.equal(await liveImage(firstNs), `${REPO}:1.1.0`);

    const revision = (await kubectlJson<Deployment>(['-n', firstNs, 'get', 'deployment', 'web'])).metadata.annotations['deployment.kubernetes.io/revision'];
    const third = await fn.post('/deploy', { target: 'first', image: `${REPO}:1.1.0` });
    assert.equal(third.status, 200);
    assert.deepEqual(
      (third.body.objects as { action: string }[]).map((o) => o.action),
      ['unchanged', 'unchanged'],
    );
    const live = await kubectlJson<Deployment>(['-n', firstNs, 'get', 'deployment', 'web']);
    // A new event with the same image only records the event: no new ReplicaSet, no restart.
    assert.equal(live.metadata.annotations['deployment.kubernetes.io/revision'], revision, 'an identical deploy starts no rollout');
    assert.equal(live.metadata.annotations['gke-deployer/event-id'], third.body.requestId);
    const replay = await fn.post('/deploy', { target: 'first', image: `${REPO}:1.1.0`, eventId: String(third.body.requestId), eventTime: live.metadata.annotations['gke-deployer/event-time'] });
    assert.equal(replay.body.status, 'duplicate');
    // Any write, annotation-only included, bumps resourceVersion and the managedFields time.
    await assertUnwritten(firstNs, live, 'the same event again writes nothing');
    assert.equal(live.metadata.annotations['gke-deployer/image'], `${REPO}:1.1.0`);
    assert.equal(live.metadata.annotations['gke-deployer/source'], 'direct');
    // The stamp names the deploy that set the current image.
    assert.equal(live.metadata.annotations['gke-deployer/request-id'], second.body.requestId);
    assert.match(live.metadata.annotations['kubernetes.io/change-cause'] ?? '', /1\.1\.0/);

    // kwok runs the pods: the rollout really completes.
    await kubectl(['-n', firstNs, 'rollout', 'status', 'deployment/web', '--timeout=90s']);
  });

  test('a dry run validates and reports but changes nothing', async () => {
    // Its own starting point, whichever tests ran before.
    assert.equal((await fn.post('/deploy', { target: 'web', image: `${REPO}:dry-base` })).status, 200);
    const before = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:9.9.9`, dryRun: true });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'dry-run');
    assert.equal((res.body.objects as { action: string }[])[0]?.action, 'configured');
    await assertUnwritten(ns, before, 'a dry run writes nothing');
  });

  test('warm instance: ten more deploys cost no Container API call and no token fetch', async () => {
    await fn.post('/deploy', { target: 'web', image: `${REPO}:2.0.0` });
    const before = await stats();
    for (let i = 0; i < 10; i++) {
      const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:2.0.${i % 2}` });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }
    const now = await stats();
    assert.equal(now.containerApi.getCluster - before.containerApi.getCluster, 0);
    assert.equal(now.metadata.token - before.metadata.token, 0);
  });

});

test('the cluster CA is written once, mode 0600, however many lookups return it', async () => {
  const info = await useSandboxEnv();
  const [a, b] = [await namespace('ca-a'), await namespace('ca-b')];
  // Two cluster entries for the one sandbox cluster: two lookups, each handing back the same CA.
  const fn = await startFunction(
    configYaml({
      clusters: { one: gkeCluster(info), two: gkeCluster(info) },
      targets: { a: webTarget(a, { cluster: 'one' }), b: webTarget(b, { cluster: 'two' }) },
    }),
    { 'web.yaml': fixture('manifests/web.yaml') },
  );
  try {
    const before = await stats();
    const results = await Promise.all(['a', 'b', 'a', 'b'].map((target, i) => fn.post('/deploy', { target, image: `${REPO}:3.0.${i}`, eventTime: new Date(0).toISOString() })));
    for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((await stats()).containerApi.getCluster - before.containerApi.getCluster, 2, 'each cluster entry looked up once');
    const dir = caFileDir();
    assert.ok(dir, 'a CA file was written');
    const files = readdirSync(dir);
    assert.equal(files.length, 1, `one CA file, got ${files.join(', ')}`);
    assert.equal(statSync(path.join(dir, files[0]!)).mode & 0o777, 0o600);
  } finally {
    await fn.close();
  }
});

test('a cold instance: concurrent first requests share one cluster lookup and one token fetch', async () => {
  const info = await useSandboxEnv();
  const ns = await namespace('cold');
  const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns) } }), {
    'web.yaml': fixture('manifests/web.yaml'),
  });
  try {
    const before = await stats();
    // One event time for all: later arrivals would otherwise make the earlier ones stale.
    const eventTime = new Date().toISOString();
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => fn.post('/deploy', { target: 'web', image: `${REPO}:cold`, eventTime })));
    for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body));
    const now = await stats();
    assert.equal(now.containerApi.getCluster - before.containerApi.getCluster, 1);
    assert.equal(now.metadata.token - before.metadata.token, 1);
  } finally {
    await fn.close();
  }
});

test('short-lived tokens: with 2-second tokens, each deploy after the last token expired succeeds with a new one', async () => {
  const info = await useSandboxEnv();
  const ns = await namespace('expiry');
  await control({ tokenLifetimeSeconds: 2 });
  const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns) } }), {
    'web.yaml': fixture('manifests/web.yaml'),
  });
  try {
    for (const tag of ['1', '2', '3']) {
      const before = await stats();
      const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:${tag}` });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(await liveImage(ns), `${REPO}:${tag}`);
      const after = await stats();
      // The previous token had expired at the cluster: this deploy fetched its own.
      assert.ok(after.metadata.token > before.metadata.token, `deploy ${tag} fetched a token`);
      // The instance hands the target's Lease back once idle, which may fetch a token of its
      // own; after that, wait for the event itself: the last token handed out has expired.
      await leasesHandedBack([ns]);
      const left = (await stats()).metadata.lastExpiresAt - Date.now();
      assert.ok(left <= 2_000, `the last token expires within its lifetime (${left} ms)`);
      if (left > 0) await sleep(left + 50);
    }
  } finally {
    await control({ tokenLifetimeSeconds: 3600 });
    await fn.close();
  }
});
