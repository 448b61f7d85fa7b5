// The rollout stage through the sandbox: the answer comes once the rollout ended, a
// failing image is rolled back, a preDeploy Job gates the workloads, a dry run diffs.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RUN_OF, runName } from '../src/rollout/pre-deploy.ts';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { exists, kubectl, kubectlJson, namespace, useSandboxEnv } from './support/sandbox.ts';
import { until } from './support/until.ts';

interface Deployment {
  metadata: { resourceVersion: string; generation: number; annotations?: Record<string, string> };
  spec: { replicas: number; template: { spec: { containers: { name: string; image: string }[] } } };
  status: { observedGeneration?: number; replicas?: number; updatedReplicas?: number; readyReplicas?: number; availableReplicas?: number };
}
interface Result {
  status: string;
  reason?: string;
  stage?: string;
  failedImage?: string;
  restoredImage?: string;
  elapsedMs?: number;
  objects: { kind: string; name: string; action: string; readiness?: string; readyMs?: number; diff?: string }[];
  preDeploy?: { name: string; status: string; reason?: string; logs?: string[] }[];
}

const deployment = (ns: string) => kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
const image = (d: Deployment) => d.spec.template.spec.containers[0]?.image;

/** Every replica of the current template is updated, ready and available, as the apiserver says. */
function rolledOut(d: Deployment): boolean {
  const s = d.status;
  return s.observedGeneration === d.metadata.generation && s.updatedReplicas === d.spec.replicas && s.readyReplicas === d.spec.replicas && s.availableReplicas === d.spec.replicas && s.replicas === d.spec.replicas;
}

async function setup(target: Record<string, unknown> = {}, files: Record<string, string> = {}, env: Record<string, string> = {}) {
  const info = await useSandboxEnv();
  const ns = await namespace('ro');
  const fn = await startFunction(
    configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns, target) } }),
    { 'web.yaml': fixture('manifests/web.yaml'), ...files },
    env,
  );
  return { ns, fn };
}

describe('rollout wait', () => {
  let fn: RunningFunction;
  let ns: string;
  before(async () => ({ ns, fn } = await setup()));
  after(() => fn.close());

  test('a good image answers 200 ready only once the Pods are Ready', async () => {
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` });
    // Read right after the answer: the rollout must already be complete.
    const live = await deployment(ns);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const body = res.body as unknown as Result;
    assert.equal(body.status, 'ready');
    assert.ok(rolledOut(live), `not rolled out when answered: ${JSON.stringify(live.status)}`);
    const dep = body.objects.find((o) => o.kind === 'Deployment')!;
    assert.equal(dep.readiness, 'ready');
    assert.equal(typeof dep.readyMs, 'number');
    assert.equal(body.objects.find((o) => o.kind === 'Service')?.readiness, 'applied');
    assert.equal(typeof body.elapsedMs, 'number');
  });

  test('an ImagePullBackOff fails fast and is rolled back to the previous image', async () => {
    const started = Date.now();
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:fail-pull-1` });
    const elapsed = Date.now() - started;
    assert.equal(res.status, 422, JSON.stringify(res.body));
    const body = res.body as unknown as Result;
    assert.equal(body.status, 'rolled-back', JSON.stringify(body));
    assert.match(body.reason ?? '', /^ImagePullBackOff: /);
    assert.equal(body.failedImage, `${REPO}:fail-pull-1`);
    assert.equal(body.restoredImage, `${REPO}:1.0.0`, JSON.stringify(body));
    assert.ok(elapsed < 30_000, `answered after ${elapsed} ms`);
    const live = await deployment(ns);
    assert.equal(image(live), `${REPO}:1.0.0`);
    assert.equal(live.metadata.annotations?.['gke-deployer/image'], `${REPO}:1.0.0`, 'the stamp names the restored image');
    assert.ok(rolledOut(live), `rollback not ready when answered: ${JSON.stringify(live.status)}`);
    assert.ok(fn.logs.some((l) => l.severity === 'ERROR' && l.status === 'rolled-back' && l.requestId === res.body.requestId));
  });

  test('a CrashLoopBackOff fails fast and is rolled back', async () => {
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:crash-2` });
    assert.equal(res.status, 422, JSON.stringify(res.body));
    const body = res.body as unknown as Result;
    assert.equal(body.status, 'rolled-back', JSON.stringify(body));
    assert.match(body.reason ?? '', /^CrashLoopBackOff/);
    const live = await deployment(ns);
    assert.equal(image(live), `${REPO}:1.0.0`);
    assert.ok(rolledOut(live));
  });

  test('a dry run returns a diff with the image change and writes nothing', async () => {
    const rv = (await deployment(ns)).metadata.resourceVersion;
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:2.0.0`, dryRun: true });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const body = res.body as unknown as Result;
    assert.equal(body.status, 'dry-run');
    const diff = body.objects.find((o) => o.kind === 'Deployment')?.diff ?? '';
    assert.match(diff, new RegExp(`^-\\s+(- )?image: ${REPO}:1\\.0\\.0$`, 'm'));
    assert.match(diff, new RegExp(`^\\+\\s+(- )?image: ${REPO}:2\\.0\\.0$`, 'm'));
    assert.doesNotMatch(diff, /managedFields|resourceVersion|creationTimestamp|uid:/);
    assert.equal((await deployment(ns)).metadata.resourceVersion, rv);
  });
});

describe('rollback of a workload the deploy created', () => {
  test('is a delete: the failed deploy leaves no Deployment behind', async () => {
    const { ns, fn } = await setup();
    try {
      const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:fail-pull-new` });
      assert.equal(res.status, 422, JSON.stringify(res.body));
      assert.equal(res.body.status, 'rolled-back');
      assert.deepEqual(res.body.deleted, ['Deployment/web']);
      assert.equal(await exists('deployment', 'web', ns), false);
    } finally {
      await fn.close();
    }
  });
});

describe('rollout timeout', () => {
  test('Pods that never start: the timeout fails the rollout and it is rolled back', async () => {
    const info = await useSandboxEnv();
    const ns = await namespace('ro');
    const targets = { web: webTarget(ns), stuck: webTarget(ns, { manifests: ['web-stuck.yaml'], rollout: { timeout: '6s' }, force: true }) };
    const both = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets }), {
      'web.yaml': fixture('manifests/web.yaml'),
      'web-stuck.yaml': fixture('manifests/web-stuck.yaml'),
    });
    try {
      assert.equal((await both.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` })).status, 200);
      const res = await both.post('/deploy', { target: 'stuck', image: `${REPO}:1.1.0` });
      assert.equal(res.status, 422, JSON.stringify(res.body));
      assert.equal(res.body.status, 'rolled-back');
      assert.match(String(res.body.reason), /^Timeout: 6s/);
      const live = await deployment(ns);
      assert.equal(image(live), `${REPO}:1.0.0`);
      assert.ok(rolledOut(live));
    } finally {
      await both.close();
    }
  });

  /** Deploys 1.0.0 with `web`, then starts the stuck deploy; `during` runs once its image is written. */
  async function stuckDeploy(during: (ns: string) => Promise<unknown>) {
    const info = await useSandboxEnv();
    const ns = await namespace('ro');
    const targets = { web: webTarget(ns), stuck: webTarget(ns, { manifests: ['web-stuck.yaml'], rollout: { timeout: '8s' }, force: true }) };
    const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets }), {
      'web.yaml': fixture('manifests/web.yaml'),
      'web-stuck.yaml': fixture('manifests/web-stuck.yaml'),
    });
    try {
      assert.equal((await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` })).status, 200);
      const pending = fn.post('/deploy', { target: 'stuck', image: `${REPO}:1.1.0` });
      await kubectl(['-n', ns, 'wait', 'deployment/web', `--for=jsonpath={.spec.template.spec.containers[0].image}=${REPO}:1.1.0`, '--timeout=8s']);
      await during(ns);
      return { ns, res: await pending };
    } finally {
      await fn.close();
    }
  }

  test('someone scaling the Deployment during the rollout (the scale subresource, as an HPA): rolled back all the same, the new replica count kept', async () => {
    const { ns, res } = await stuckDeploy((ns) => kubectl(['-n', ns, 'scale', 'deployment/web', '--replicas=3']));
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.equal(res.body.status, 'rolled-back', JSON.stringify(res.body));
    const live = await deployment(ns);
    assert.equal(image(live), `${REPO}:1.0.0`, 'rolled back');
    assert.equal(live.spec.replicas, 3, 'the scale stands: the restore did not send replicas back');
    assert.ok(rolledOut(live), JSON.stringify(live.status));
  });

  test("someone else changing the deploy's own fields during the rollout: no rollback, and the answer says who", async () => {
    const { ns, res } = await stuckDeploy((ns) => kubectl(['-n', ns, 'set', 'image', 'deployment/web', `web=${REPO}:by-hand`]));
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.equal(res.body.status, 'failed');
    assert.match(String(res.body.reason), /was changed by kubectl\S* after this deploy wrote it; not rolled back/);
    assert.equal(image(await deployment(ns)), `${REPO}:by-hand`, "the person's change stands");
  });

  test('a quarter of DEPLOY_DEADLINE_SECONDS is kept for a rollback: the wait ends at three quarters, and a rollback before then fits', async () => {
    // README (DEPLOY_DEADLINE_SECONDS): "The rollout wait ends early enough to leave a quarter
    // of it (at most 60 s) for a rollback". 10 s: the wait ends 7.5 s after the request arrived.
    const info = await useSandboxEnv();
    const ns = { cut: await namespace('ro'), late: await namespace('ro') };
    const stuck = (namespace: string, timeout: string) => webTarget(namespace, { manifests: ['web-stuck.yaml'], rollout: { timeout }, force: true });
    const targets = { 'web-cut': webTarget(ns.cut), 'web-late': webTarget(ns.late), cut: stuck(ns.cut, '60s'), late: stuck(ns.late, '7s') };
    const fn = await startFunction(
      configYaml({ clusters: { sandbox: gkeCluster(info) }, targets }),
      { 'web.yaml': fixture('manifests/web.yaml'), 'web-stuck.yaml': fixture('manifests/web-stuck.yaml') },
      { DEPLOY_DEADLINE_SECONDS: '10' },
    );
    try {
      for (const t of ['web-cut', 'web-late']) assert.equal((await fn.post('/deploy', { target: t, image: `${REPO}:1.0.0` })).status, 200);
      // rollout.timeout past three quarters: the wait is cut there, the rest kept.
      const cut = await fn.post('/deploy', { target: 'cut', image: `${REPO}:1.1.0` });
      assert.equal(cut.body.status, 'timed-out', JSON.stringify(cut.body));
      const waited = Number(cut.body.elapsedMs);
      assert.ok(waited >= 7_000 && waited <= 8_000, `the wait ended ${waited} ms in, not at 7.5 s`);
      // rollout.timeout (7 s) within three quarters: its rollback and the rollback's wait fit in the rest.
      const late = await fn.post('/deploy', { target: 'late', image: `${REPO}:1.1.0` });
      assert.equal(late.body.status, 'rolled-back', JSON.stringify(late.body));
      assert.ok(Number(late.body.elapsedMs) < 10_000, `answered ${String(late.body.elapsedMs)} ms in`);
      const live = await deployment(ns.late);
      assert.equal(image(live), `${REPO}:1.0.0`);
      assert.ok(rolledOut(live));
    } finally {
      await fn.close();
    }
  });

  test('the request deadline ends the wait first: 504 timed-out, nothing rolled back', async () => {
    const info = await useSandboxEnv();
    const ns = await namespace('ro');
    const targets = { web: webTarget(ns), stuck: webTarget(ns, { manifests: ['web-stuck.yaml'], force: true }) };
    const fn = await startFunction(
      configYaml({ clusters: { sandbox: gkeCluster(info) }, targets }),
      { 'web.yaml': fixture('manifests/web.yaml'), 'web-stuck.yaml': fixture('manifests/web-stuck.yaml') },
      { DEPLOY_DEADLINE_SECONDS: '10' },
    );
    try {
      assert.equal((await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` })).status, 200);
      const started = Date.now();
      const res = await fn.post('/deploy', { target: 'stuck', image: `${REPO}:1.1.0` });
      assert.equal(res.status, 504, JSON.stringify(res.body));
      assert.equal(res.body.status, 'timed-out');
      assert.ok(Date.now() - started < 10_000, 'answered before the deadline');
      assert.equal(image(await deployment(ns)), `${REPO}:1.1.0`);
    } finally {
      await fn.close();
    }
  });
});

describe('a redelivery of a deploy cut short', () => {
  // The first delivery's request deadline ends its wait (504 timed-out, the event recorded,
  // nothing judged); Pub/Sub would redeliver it. The redelivery, on another instance with
  // time to spare, must judge that rollout and roll it back, not answer `duplicate`.
  test('judges the rollout it finds and rolls back a failed one; a further redelivery answers rolled-back again', async () => {
    const info = await useSandboxEnv();
    const ns = await namespace('ro');
    const files = { 'web.yaml': fixture('manifests/web.yaml'), 'web-stuck.yaml': fixture('manifests/web-stuck.yaml') };
    const config = (stuck: Record<string, unknown>) => configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns), stuck: webTarget(ns, { manifests: ['web-stuck.yaml'], force: true, ...stuck }) } });
    const first = await startFunction(config({}), files, { DEPLOY_DEADLINE_SECONDS: '10' });
    let cut: Record<string, string>;
    try {
      assert.equal((await first.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` })).status, 200);
      cut = { target: 'stuck', image: `${REPO}:1.1.0`, eventId: 'release-cut', eventTime: new Date().toISOString() };
      const res = await first.post('/deploy', cut);
      assert.equal(res.status, 504, JSON.stringify(res.body));
      assert.equal(res.body.status, 'timed-out');
    } finally {
      await first.close();
    }
    assert.equal(image(await deployment(ns)), `${REPO}:1.1.0`, 'the cut-short deploy left its image');

    const second = await startFunction(config({ rollout: { timeout: '4s' } }), files);
    try {
      const again = await second.post('/deploy', cut);
      const body = again.body as unknown as Result & { recorded?: unknown };
      assert.equal(body.status, 'rolled-back', JSON.stringify(body));
      assert.equal(again.status, 422);
      assert.equal(body.failedImage, `${REPO}:1.1.0`);
      assert.equal(body.restoredImage, `${REPO}:1.0.0`);
      assert.deepEqual(body.recorded, { eventId: 'release-cut', eventTime: cut.eventTime });
      const live = await deployment(ns);
      assert.equal(image(live), `${REPO}:1.0.0`, 'rolled back');
      assert.ok(rolledOut(live), `the restored revision is rolled out: ${JSON.stringify(live.status)}`);
      // Handled now: the same event once more is answered as it ended, and writes nothing.
      const third = await second.post('/deploy', cut);
      assert.equal(third.status, 422, JSON.stringify(third.body));
      assert.equal(third.body.status, 'rolled-back');
      assert.equal(third.body.restoredImage, `${REPO}:1.0.0`);
      assert.equal((await deployment(ns)).metadata.resourceVersion, live.metadata.resourceVersion, 'nothing written');
    } finally {
      await second.close();
    }
  });

  test("someone else's change after the cut-short deploy stays: a duplicate, nothing rolled back", async () => {
    const info = await useSandboxEnv();
    const ns = await namespace('ro');
    const files = { 'web.yaml': fixture('manifests/web.yaml') };
    const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns, { rollout: { wait: false } }) } }), files);
    const event = { target: 'web', image: `${REPO}:1.0.0`, eventId: 'release-1', eventTime: new Date().toISOString() };
    try {
      assert.equal((await fn.post('/deploy', event)).body.status, 'applied');
    } finally {
      await fn.close();
    }
    // By hand, after that deploy: an image that never pulls.
    await new Promise((r) => setTimeout(r, 1100)); // managedFields times are whole seconds
    await kubectl(['-n', ns, 'set', 'image', 'deployment/web', `web=${REPO}:fail-pull-by-hand`]);
    const again = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns, { rollout: { timeout: '4s' } }) } }), files);
    try {
      const res = await again.post('/deploy', event);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'duplicate');
      assert.equal(image(await deployment(ns)), `${REPO}:fail-pull-by-hand`, "the person's change stands");
    } finally {
      await again.close();
    }
  });

  test('an image-only target: only the image goes back, from the previous ReplicaSet', async () => {
    const info = await useSandboxEnv();
    const ns = await namespace('ro');
    const bump = (rollout: Record<string, unknown>) => ({ cluster: 'sandbox', namespace: ns, deployment: 'web', container: 'web', images: [REPO], force: true, rollout });
    const config = (rollout: Record<string, unknown>) => configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns), bump: bump(rollout) } });
    const files = { 'web.yaml': fixture('manifests/web.yaml') };
    // The first delivery did not wait (config at the time): the crashing image's rollout was never judged.
    const first = await startFunction(config({ wait: false }), files);
    const event = { target: 'bump', image: `${REPO}:crash-9`, eventId: 'bump-9', eventTime: '' };
    try {
      assert.equal((await first.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` })).status, 200);
      event.eventTime = new Date().toISOString();
      const res = await first.post('/deploy', event);
      assert.equal(res.body.status, 'applied', JSON.stringify(res.body));
    } finally {
      await first.close();
    }
    const second = await startFunction(config({ timeout: '20s' }), files);
    try {
      const again = await second.post('/deploy', event);
      const body = again.body as unknown as Result;
      assert.equal(body.status, 'rolled-back', JSON.stringify(body));
      assert.equal(body.restoredImage, `${REPO}:1.0.0`);
      const live = await deployment(ns);
      assert.equal(image(live), `${REPO}:1.0.0`);
      assert.equal(live.metadata.annotations?.['gke-deployer/event-id'], 'bump-9', 'the handled event stays recorded');
    } finally {
      await second.close();
    }
  });
});

describe('preDeploy Jobs', () => {
  test('a failing Job stops the deploy before any workload changes, and names the Job', async () => {
    const { ns, fn } = await setup({ preDeploy: ['migrate.yaml'] }, { 'migrate.yaml': fixture('manifests/migrate.yaml') });
    try {
      const first = await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      const ran = (first.body as unknown as Result).preDeploy;
      assert.equal(ran, undefined, 'a passing gate is not part of the answer');
      const jobs = await kubectlJson<{ items: { metadata: { name: string }; spec: { ttlSecondsAfterFinished?: number }; status: { succeeded?: number } }[] }>(['-n', ns, 'get', 'jobs']);
      assert.equal(jobs.items.length, 1);
      assert.match(jobs.items[0]!.metadata.name, /^migrate-[0-9a-f]{8}$/);
      assert.equal(jobs.items[0]!.status.succeeded, 1);
      assert.equal(jobs.items[0]!.spec.ttlSecondsAfterFinished, 86400, 'the README\'s default: a day');

      const rv = (await deployment(ns)).metadata.resourceVersion;
      const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:fail-exit-1` });
      assert.equal(res.status, 422, JSON.stringify(res.body));
      const body = res.body as unknown as Result;
      assert.equal(body.status, 'failed');
      assert.equal(body.stage, 'preDeploy');
      assert.deepEqual(body.objects, []);
      const failed = body.preDeploy?.find((j) => j.status === 'failed');
      assert.match(failed?.name ?? '', /^migrate-[0-9a-f]{8}$/);
      assert.notEqual(failed?.name, jobs.items[0]!.metadata.name, 'each run has its own name');
      assert.match(failed?.reason ?? '', /BackoffLimitExceeded/);
      assert.ok((failed?.logs?.length ?? 0) > 0 && (failed?.logs?.length ?? 0) <= 50, JSON.stringify(failed));
      // The tail of what the Pod logged, as the node serves it (sandbox/kube/README.md).
      assert.match(failed?.logs?.at(-1) ?? '', /fail-exit/);
      assert.equal((await deployment(ns)).metadata.resourceVersion, rv, 'the Deployment was not touched');
    } finally {
      await fn.close();
    }
  });
});

describe('a preDeploy redelivery', () => {
  // README (preDeploy Jobs): each run is named after the request ("so a redelivery finds its
  // own run"). A Pub/Sub redelivery carries the same message id, so the same request id.
  test('finds its own run, still going or finished, where another request is refused', async (t) => {
    const info = await useSandboxEnv();
    const ns = await namespace('ro');
    // The run's Pod waits for a Node with this label: the run outlives its first deploy.
    const label = `gke-deployer.test/${ns}`;
    const held = fixture('manifests/migrate.yaml').replace('restartPolicy: Never', `restartPolicy: Never\n      nodeSelector: { ${label}: "true" }`);
    const fn = await startFunction(
      configYaml({
        auth: { direct: 'none', pubsub: 'none' },
        clusters: { sandbox: gkeCluster(info) },
        targets: { web: webTarget(ns, { preDeploy: ['migrate.yaml'], rollout: { timeout: '3s' } }) },
        rules: [{ source: 'artifact-registry', repository: REPO, targets: ['web'] }],
      }),
      { 'web.yaml': fixture('manifests/web.yaml'), 'migrate.yaml': held },
    );
    const node = (await kubectl(['get', 'nodes', '-o', 'name'])).trim().split('\n')[0]!;
    t.after(async () => {
      await fn.close();
      await kubectl(['label', node, `${label}-`]);
    });
    const push = (tag: string, id: string) => ({
      message: { data: Buffer.from(JSON.stringify({ action: 'INSERT', tag: `${REPO}:${tag}` })).toString('base64'), messageId: id, publishTime: new Date().toISOString() },
      subscription: 'projects/sandbox-project/subscriptions/gke-deployer-predeploy',
    });
    const runs = async () => (await kubectlJson<{ items: { metadata: { name: string } }[] }>(['-n', ns, 'get', 'jobs', '-l', `${RUN_OF}=web`])).items.map((j) => j.metadata.name);
    const resultOf = (res: { body: Record<string, unknown> }) => (res.body.results as Result[] | undefined)?.[0];
    const ours = runName('migrate', '8000001');

    const first = await fn.post('/pubsub', push('1.0.0', '8000001'));
    assert.equal(resultOf(first)?.status, 'timed-out', JSON.stringify(first.body));
    assert.equal(resultOf(first)?.stage, 'preDeploy');
    assert.deepEqual(await runs(), [ours]);

    // Still running: the redelivery waits on its own run; another request is refused.
    const again = await fn.post('/pubsub', push('1.0.0', '8000001'));
    assert.equal(resultOf(again)?.status, 'timed-out', JSON.stringify(again.body));
    const other = await fn.post('/pubsub', push('1.0.0', '8000002'));
    assert.equal((resultOf(other) as { error?: { code?: string } } | undefined)?.error?.code, 'JOB_RUNNING', JSON.stringify(other.body));
    assert.deepEqual(await runs(), [ours], 'no second run');

    await kubectl(['label', node, `${label}=true`]);
    await until('the held run has completed', async () => (await kubectlJson<{ status: { succeeded?: number } }>(['-n', ns, 'get', 'job', ours])).status.succeeded === 1);
    // Finished: the redelivery takes its run's success and deploys, running nothing new.
    const done = await fn.post('/pubsub', push('1.0.0', '8000001'));
    assert.equal(resultOf(done)?.status, 'ready', JSON.stringify(done.body));
    assert.deepEqual(await runs(), [ours]);
    assert.equal(image(await deployment(ns)), `${REPO}:1.0.0`);
  });
});

describe('StatefulSet and DaemonSet', () => {
  interface Workload {
    metadata: { generation: number };
    spec: { template: { spec: { containers: { image: string }[] } } };
    status: Record<string, unknown>;
  }
  const live = (ns: string, kind: string, name: string) => kubectlJson<Workload>(['-n', ns, 'get', kind, name]);

  test('wait for both, then roll both back from a failing image, Pods of the bad revision replaced', async () => {
    const { ns, fn } = await setup({ manifests: ['stateful.yaml'] }, { 'stateful.yaml': fixture('manifests/stateful.yaml') });
    try {
      const good = await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` });
      assert.equal(good.status, 200, JSON.stringify(good.body));
      assert.equal(good.body.status, 'ready');
      const sts = await live(ns, 'statefulset', 'db');
      assert.equal(sts.status.readyReplicas, 2);
      assert.equal(sts.status.updateRevision, sts.status.currentRevision);
      const ds = await live(ns, 'daemonset', 'agent');
      assert.equal(ds.status.numberAvailable, ds.status.desiredNumberScheduled);

      const bad = await fn.post('/deploy', { target: 'web', image: `${REPO}:fail-pull-3` });
      assert.equal(bad.status, 422, JSON.stringify(bad.body));
      assert.equal(bad.body.status, 'rolled-back', JSON.stringify(bad.body));
      assert.match(String(bad.body.reason), /^ImagePullBackOff/);
      for (const [kind, name] of [['statefulset', 'db'], ['daemonset', 'agent']] as const) {
        const w = await live(ns, kind, name);
        assert.equal(w.spec.template.spec.containers[0]?.image, `${REPO}:1.0.0`, kind);
      }
      // Ready again as the API server sees it: every Pod runs the restored image.
      const pods = await kubectlJson<{ items: { metadata: { name: string }; spec: { containers: { image: string }[] }; status: { conditions?: { type: string; status: string }[] } }[] }>(['-n', ns, 'get', 'pods']);
      for (const pod of pods.items) {
        assert.equal(pod.spec.containers[0]?.image, `${REPO}:1.0.0`, pod.metadata.name);
        assert.ok(pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'), pod.metadata.name);
      }
    } finally {
      await fn.close();
    }
  });
});

describe('a target that only runs a Job', () => {
  test('waits for it: ready once Complete, failed with its log tail when it fails', async () => {
    const { fn } = await setup({ manifests: ['migrate.yaml'] }, { 'migrate.yaml': fixture('manifests/migrate.yaml') });
    try {
      const ok = await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body.status, 'ready');
      assert.equal((ok.body as unknown as Result).objects[0]?.readiness, 'ready');
      const bad = await fn.post('/deploy', { target: 'web', image: `${REPO}:fail-exit-2` });
      assert.equal(bad.status, 422, JSON.stringify(bad.body));
      assert.equal(bad.body.status, 'failed');
      assert.match(String(bad.body.reason), /BackoffLimitExceeded/);
      assert.match(String((bad.body.logs as string[] | undefined)?.at(-1)), /fail-exit/);
    } finally {
      await fn.close();
    }
  });
});

describe('/pubsub and the rollout', () => {
  test('a message whose image fails is rolled back and acknowledged (a redelivery would only fail again)', async () => {
    const info = await useSandboxEnv();
    const ns = await namespace('ro');
    const fn = await startFunction(
      configYaml({
        auth: { direct: 'none', pubsub: 'none' },
        clusters: { sandbox: gkeCluster(info) },
        targets: { web: webTarget(ns) },
        rules: [{ source: 'artifact-registry', repository: REPO, targets: ['web'] }],
      }),
      { 'web.yaml': fixture('manifests/web.yaml') },
    );
    const push = (tag: string, id: string) => ({
      message: { data: Buffer.from(JSON.stringify({ action: 'INSERT', tag: `${REPO}:${tag}` })).toString('base64'), messageId: id, publishTime: new Date().toISOString() },
      subscription: 'projects/sandbox-project/subscriptions/gke-deployer-rollout',
    });
    try {
      const good = await fn.post('/pubsub', push('1.0.0', '7000001'));
      assert.equal(good.status, 200, JSON.stringify(good.body));
      assert.equal((good.body.results as Result[])[0]?.status, 'ready');
      const bad = await fn.post('/pubsub', push('fail-pull-9', '7000002'));
      assert.equal(bad.status, 200, JSON.stringify(bad.body));
      assert.equal(bad.body.acknowledged, true);
      const result = (bad.body.results as Result[])[0];
      assert.equal(result?.status, 'rolled-back');
      assert.match(result?.reason ?? '', /^ImagePullBackOff/);
      assert.ok(fn.logs.some((l) => l.severity === 'ERROR' && l.requestId === '7000002' && l.status === 'rolled-back'));
      assert.equal(image(await deployment(ns)), `${REPO}:1.0.0`);
    } finally {
      await fn.close();
    }
  });
});
