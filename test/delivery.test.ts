// Delivery semantics through the sandbox: out-of-order, concurrent, duplicated Pub/Sub
// deliveries across two function processes never move a workload backwards and never
// apply one event twice; /deploy can force an older event on purpose.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { KubeConfig, Watch } from '@kubernetes/client-node';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction } from './support/function.ts';
import { spawnFunction, type FunctionProcess } from './support/process.ts';
import { kubectl, kubectlJson, namespace, sandbox, useSandboxEnv } from './support/sandbox.ts';

interface Deployment {
  metadata: { generation: number; resourceVersion: string; annotations: Record<string, string>; managedFields?: { manager: string; operation: string }[] };
  spec: { replicas: number; template: { spec: { containers: { name: string; image: string }[] } } };
}

const T0 = Date.parse('2026-06-01T00:00:00Z');
/** /pubsub answers `{status, results: [...]}`: the outcome of the (one) deploy a message caused. */
const outcome = (body: Record<string, unknown>) => String((body.results as { status?: string }[] | undefined)?.[0]?.status);
const tag = (v: number) => `${REPO}:v${v}`;

/** An Artifact Registry notification for version v, published v seconds after T0. */
function push(v: number, messageId = `${v}${randomBytes(3).readUIntBE(0, 3)}`) {
  return {
    message: {
      data: Buffer.from(JSON.stringify({ action: 'INSERT', tag: tag(v) })).toString('base64'),
      messageId,
      publishTime: new Date(T0 + v * 1000).toISOString(),
    },
    subscription: 'projects/sandbox-project/subscriptions/gke-deployer-delivery',
  };
}

/**
 * The shuffle's seed: TEST_SEED replays a run (each run prints the seed it used). mulberry32,
 * a small seedable generator: Math.random cannot be seeded.
 */
const SEED = process.env.TEST_SEED ? Number(process.env.TEST_SEED) >>> 0 : Math.floor(Math.random() * 2 ** 32);
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
const random = mulberry32(SEED);

function shuffle<T>(items: T[]): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

async function inBatches<T>(items: T[], size: number, run: (item: T, i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map((item, j) => run(item, i + j)));
}

/** Every image a watch sees the Deployment take, in order. */
async function watchImages(ns: string): Promise<{ seen: string[]; stop(): void }> {
  const kc = new KubeConfig();
  kc.loadFromFile((await sandbox()).kubeconfig);
  const seen: string[] = [];
  const controller = await new Watch(kc).watch(
    `/apis/apps/v1/namespaces/${ns}/deployments`,
    {},
    (_type, obj: Deployment) => {
      const image = obj.spec.template.spec.containers[0]?.image;
      if (image && seen.at(-1) !== image) seen.push(image);
    },
    () => undefined,
  );
  return { seen, stop: () => controller.abort() };
}

describe('Pub/Sub delivery: shuffled, concurrent, duplicated, two instances', () => {
  let ns: string;
  let fns: FunctionProcess[];

  before(async () => {
    const info = await useSandboxEnv();
    ns = await namespace('dl');
    const config = configYaml({
      auth: { direct: 'none', pubsub: 'none' },
      clusters: { sandbox: gkeCluster(info) },
      // Waiting is beside the point here, and would only slow 40 deploys down.
      targets: { web: webTarget(ns, { rollout: { wait: false } }) },
      rules: [{ source: 'artifact-registry', repository: REPO, tags: 'v*', targets: ['web'] }],
    });
    fns = await Promise.all([0, 1].map(() => spawnFunction(config, { 'web.yaml': fixture('manifests/web.yaml') }, info.env)));
  });
  after(() => Promise.all(fns.map((f) => f.close())));

  test('40 versions, shuffled, 8 at a time over two processes: the workload ends on v40 and never goes back', async (t) => {
    t.diagnostic(`shuffled with TEST_SEED=${SEED}`);
    const seeded = (m: string) => `${m} (shuffled with TEST_SEED=${SEED})`;
    const watch = await watchImages(ns);
    const answers: { v: number; status: number; result: string }[] = [];
    try {
      const versions = shuffle(Array.from({ length: 40 }, (_, i) => i + 1));
      await inBatches(versions, 8, async (v, i) => {
        const res = await fns[i % 2]!.post('/pubsub', push(v));
        answers.push({ v, status: res.status, result: outcome(res.body) });
      });
      const live = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
      assert.equal(live.spec.template.spec.containers[0]?.image, tag(40), seeded('ends on v40'));
      assert.deepEqual(answers.filter((a) => a.status !== 200), [], seeded('every message is acknowledged'));
      const versionsSeen = watch.seen.map((image) => Number(image.split(':v')[1]));
      assert.ok(versionsSeen.length > 0 && versionsSeen.at(-1) === 40, seeded(`watch saw ${versionsSeen.join(',')}`));
      for (let i = 1; i < versionsSeen.length; i++) assert.ok(versionsSeen[i]! > versionsSeen[i - 1]!, seeded(`went back: ${versionsSeen.join(',')}`));
      // Every version that was not applied was judged stale, not lost.
      const applied = new Set(versionsSeen);
      for (const a of answers) if (!applied.has(a.v)) assert.equal(a.result, 'stale', seeded(JSON.stringify(a)));
    } finally {
      watch.stop();
    }
  });

  test('the same envelope 5 times at once is applied once', async () => {
    const before = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
    const message = push(41);
    const answers = await Promise.all([0, 1, 2, 3, 4].map((i) => fns[i % 2]!.post('/pubsub', message)));
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200]);
    assert.deepEqual(answers.map((a) => outcome(a.body)).sort(), ['applied', 'duplicate', 'duplicate', 'duplicate', 'duplicate']);
    // One write by the deployer: the ReplicaSet count grows by one, and its revision by one.
    const live = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
    assert.equal(live.spec.template.spec.containers[0]?.image, tag(41));
    assert.equal(live.metadata.annotations['gke-deployer/event-id'], message.message.messageId);
    const revision = (d: Deployment) => Number(d.metadata.annotations['deployment.kubernetes.io/revision']);
    assert.equal(revision(live), revision(before) + 1);
    // Generation: one for our write, and (if this apiserver counts it) one for the controller's revision annotation.
    assert.ok(live.metadata.generation - before.metadata.generation <= 2, `${before.metadata.generation} → ${live.metadata.generation}`);
  });

  test('an older message after a newer one is stale: acknowledged, nothing written', async () => {
    // The controllers still write status (so resourceVersion moves); a write of ours would move the generation.
    const before = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
    const res = await fns[0]!.post('/pubsub', push(7));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(outcome(res.body), 'stale');
    assert.equal(res.body.acknowledged, undefined, 'stale is not a failure');
    const after = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
    assert.equal(after.metadata.generation, before.metadata.generation);
    assert.equal(after.metadata.annotations['gke-deployer/event-id'], before.metadata.annotations['gke-deployer/event-id']);
  });
});

describe('POST /deploy event time, id and force', () => {
  test('an older eventTime answers 409 stale; force deploys it on purpose', async () => {
    const info = await useSandboxEnv();
    const ns = await namespace('dl');
    const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns, { rollout: { wait: false } }) } }), {
      'web.yaml': fixture('manifests/web.yaml'),
    });
    try {
      const newer = await fn.post('/deploy', { target: 'web', image: tag(2), eventTime: '2026-06-01T10:00:00Z', eventId: 'release-2' });
      assert.equal(newer.status, 200, JSON.stringify(newer.body));
      const stale = await fn.post('/deploy', { target: 'web', image: tag(1), eventTime: '2026-06-01T09:00:00Z' });
      assert.equal(stale.status, 409, JSON.stringify(stale.body));
      assert.equal(stale.body.status, 'stale');
      assert.deepEqual(stale.body.recorded, { eventId: 'release-2', eventTime: '2026-06-01T10:00:00Z' });
      const again = await fn.post('/deploy', { target: 'web', image: tag(2), eventTime: '2026-06-01T10:00:00Z', eventId: 'release-2' });
      assert.equal(again.status, 200);
      assert.equal(again.body.status, 'duplicate');
      const forced = await fn.post('/deploy', { target: 'web', image: tag(1), eventTime: '2026-06-01T09:00:00Z', force: true });
      assert.equal(forced.status, 200, JSON.stringify(forced.body));
      const live = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
      assert.equal(live.spec.template.spec.containers[0]?.image, tag(1));
    } finally {
      await fn.close();
    }
  });
});

describe('one field manager per target', () => {
  test('an image-only target and a manifests target on one Deployment do not prune each other', async () => {
    const info = await useSandboxEnv();
    const ns = await namespace('fm');
    const targets = {
      web: webTarget(ns, { rollout: { wait: false } }),
      bump: { cluster: 'sandbox', namespace: ns, deployment: 'web', container: 'web', images: [REPO], rollout: { wait: false }, force: true },
    };
    const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets }), { 'web.yaml': fixture('manifests/web.yaml') });
    try {
      assert.equal((await fn.post('/deploy', { target: 'web', image: tag(1) })).status, 200);
      assert.equal((await fn.post('/deploy', { target: 'bump', image: tag(2) })).status, 200);
      const live = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web', '--show-managed-fields']);
      assert.equal(live.spec.template.spec.containers[0]?.image, tag(2));
      assert.equal(live.spec.replicas, 2, "the image-only apply left the manifests target's replicas alone");
      const managers = (live.metadata.managedFields ?? []).filter((m) => m.operation === 'Apply').map((m) => m.manager).sort();
      assert.deepEqual(managers, ['gke-deployer/bump', 'gke-deployer/web']);
    } finally {
      await fn.close();
    }
  });

  test('an object applied under the old shared manager moves to the target manager without a conflict', async () => {
    const info = await useSandboxEnv();
    const ns = await namespace('fm');
    const manifest = fixture('manifests/web.yaml').replace('image: placeholder # set by each deploy', `image: ${tag(1)}`);
    await kubectl(['-n', ns, 'apply', '--server-side', '--field-manager=gke-deployer', '-f', '-'], manifest);
    const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns, { rollout: { wait: false } }) } }), {
      'web.yaml': fixture('manifests/web.yaml'),
    });
    try {
      const res = await fn.post('/deploy', { target: 'web', image: tag(3) });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const live = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web', '--show-managed-fields']);
      assert.equal(live.spec.template.spec.containers[0]?.image, tag(3));
      const managers = (live.metadata.managedFields ?? []).filter((m) => m.operation === 'Apply').map((m) => m.manager);
      assert.deepEqual(managers, ['gke-deployer/web']);
    } finally {
      await fn.close();
    }
  });
});
