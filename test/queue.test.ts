// The queue (src/queue/), end to end: webhooks and /deploy publish to a topic on the real
// Pub/Sub emulator, and its real push subscription (message ordering; a dead-letter policy
// where a test needs one) delivers to /pubsub of the running function. The first test runs
// the production bundle (`npm start`), whose lazily loaded Pub/Sub client publishes. Statuses
// go to the fake GitHub (test/support/github-api.ts); the cluster is the sandbox's.
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PubSub, type Message, type Subscription } from '@google-cloud/pubsub';
import { DEPLOYER_SA, type SandboxInfo } from '../sandbox/index.ts';
import { proofAudience, queuedMessage, queuedPayload, QUEUED_ATTRIBUTE, QUEUED_KIND } from '../src/queue/message.ts';
import { ensureBundle } from './support/bundle.ts';
import { trustRegistryCa } from './support/oci.ts';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction } from './support/function.ts';
import { startGithubApi, type GithubFake } from './support/github-api.ts';
import { startGitlabApi } from './support/gitlab-api.ts';
import { freePort, spawnFunction } from './support/process.ts';
import { idToken, kubectlJson, namespace, useSandboxEnv } from './support/sandbox.ts';
import { until } from './support/until.ts';

const SECRET = 'gh-webhook-secret-for-queue-tests';
const TOKEN = 'ghp_statusTokenForQueueTests0123456789ab';
process.env.TEST_QUEUE_GITHUB_SECRET = SECRET;
process.env.TEST_QUEUE_GITHUB_TOKEN = TOKEN;
const GL_SECRET = 'gl-webhook-token-for-queue-tests';
const GL_TOKEN = 'glpat-statusTokenForQueueTests012';
const GL_SHA = 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7';
process.env.TEST_QUEUE_GITLAB_SECRET = GL_SECRET;
process.env.TEST_QUEUE_GITLAB_TOKEN = GL_TOKEN;

const GH_REPO = 'Codertocat/Hello-World';
const PUSH = JSON.parse(fixture('events/github-push.json')) as Record<string, Record<string, unknown>>;
const WEB = fixture('manifests/web.yaml');
/** web.yaml whose Deployment counts as available only `seconds` after its Pods are ready: the real controller waits. */
const slowWeb = (seconds: number) => {
  const text = WEB.replace('spec:\n  replicas: 2\n', `spec:\n  replicas: 2\n  minReadySeconds: ${seconds}\n`);
  assert.notEqual(text, WEB, 'web.yaml has the replicas line the slow variant extends');
  return text;
};

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

/** A GitHub push of `sha` to master, taken by GitHub at `pushedAt` (epoch seconds), signed. */
function push(sha: string, pushedAt: number, delivery = `d-${hex(6)}`) {
  const body = JSON.stringify({ ...PUSH, after: sha, head_commit: { ...PUSH.head_commit, id: sha }, repository: { ...PUSH.repository, pushed_at: pushedAt } });
  const signature = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
  return { body, delivery, headers: { 'x-github-event': 'push', 'x-github-delivery': delivery, 'x-hub-signature-256': signature } };
}

interface Deployment {
  metadata: { annotations?: Record<string, string> };
  spec: { template: { spec: { containers: { image: string }[] } } };
  status?: { availableReplicas?: number; updatedReplicas?: number };
}
const live = (ns: string) => kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']).catch(() => undefined);
const imageOf = (d: Deployment | undefined) => d?.spec.template.spec.containers[0]?.image;

interface Queue {
  info: SandboxInfo;
  client: PubSub;
  topic: string;
  subscription: string;
  /** Creates the push subscription to `pushEndpoint`: ordered, a 600 s ack deadline, as setup.sh makes it. */
  subscribe(pushEndpoint: string, extra?: Record<string, unknown>): Promise<void>;
}

async function queue(t: TestContext): Promise<Queue> {
  const info = await useSandboxEnv();
  const client = new PubSub({ projectId: info.project, apiEndpoint: info.env.PUBSUB_EMULATOR_HOST });
  const name = `queue-${hex(4)}`;
  const [topic] = await client.createTopic(name);
  const subscriptions: Subscription[] = [];
  // One hook, in order: hooks run in the order they were added, and a closed client deletes nothing.
  t.after(async () => {
    for (const sub of subscriptions) await sub.delete();
    await client.close();
  });
  return {
    info,
    client,
    topic: topic.name,
    subscription: `projects/${info.project}/subscriptions/${name}-push`,
    async subscribe(pushEndpoint, extra = {}) {
      const [sub] = await topic.createSubscription(`${name}-push`, { pushConfig: { pushEndpoint }, enableMessageOrdering: true, ackDeadlineSeconds: 600, ...extra });
      subscriptions.push(sub);
    },
  };
}

function config(q: Queue, targets: Record<string, Record<string, unknown>>, extra: { github?: GithubFake; rules?: Record<string, unknown>[] } = {}) {
  return configYaml({
    auth: { direct: 'none', pubsub: 'none', github: { secretEnv: 'TEST_QUEUE_GITHUB_SECRET' }, certsUrl: q.info.certsUrl },
    clusters: { sandbox: gkeCluster(q.info) },
    targets,
    rules: extra.rules ?? [{ source: 'github', repository: GH_REPO, branch: 'master', image: `${REPO}:\${sha}`, targets: Object.keys(targets) }],
    ...(extra.github && { report: { github: { tokenEnv: 'TEST_QUEUE_GITHUB_TOKEN', apiUrl: extra.github.url } } }),
    queue: { topic: q.topic, subscription: q.subscription },
  });
}

describe('queue: webhooks answered at once, deploys carried by Pub/Sub', () => {
  test('a GitHub push to a slow Deployment is answered 202 queued before the rollout ends; it ends Ready, GitHub sees queued → in_progress → success (production bundle)', async (t) => {
    const q = await queue(t);
    const api = await startGithubApi(TOKEN);
    t.after(() => api.close());
    const ns = await namespace('queue');
    const fn = await spawnFunction(config(q, { web: webTarget(ns) }, { github: api }), { 'web.yaml': slowWeb(20) }, {}, await ensureBundle());
    t.after(() => fn.close());
    await q.subscribe(`${fn.url}/pubsub`);

    const sha = hex(20);
    const p = push(sha, Math.floor(Date.now() / 1000));
    const sent = Date.now();
    const res = await fn.post('/webhooks/github', p.body, p.headers);
    const answeredMs = Date.now() - sent;
    t.diagnostic(`answered ${res.status} in ${answeredMs} ms`);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.deepEqual(res.body, { status: 'queued', requestId: p.delivery, intents: [{ target: 'web', image: `${REPO}:${sha}`, eventId: p.delivery }] });
    // Nothing can be Ready yet: the controller waits 20 s after the Pods are ready.
    const [deployment, ...others] = [...api.deployments.values()];
    assert.equal(others.length, 0, 'one GitHub Deployment');
    assert.ok(deployment && !deployment.states.some((s) => s.state === 'success'), JSON.stringify(deployment?.states));
    assert.equal(deployment.states[0]?.state, 'queued');

    await until('GitHub success', () => deployment.states.at(-1)?.state === 'success', { timeoutMs: 90_000, seen: () => deployment.states });
    assert.deepEqual(deployment.states.map((s) => s.state), ['queued', 'in_progress', 'success']);
    const d = await live(ns);
    assert.equal(imageOf(d), `${REPO}:${sha}`);
    assert.equal(d?.status?.availableReplicas, 2);
    assert.equal(d?.metadata.annotations?.['gke-deployer/event-id'], p.delivery);
    const done = fn.logs.find((l) => l.status === 'ready' && l.target === 'web');
    assert.ok(done, 'the deploy logged ready');
    assert.equal(done.requestId, p.delivery, 'the deploy logs under the request that queued it');
    assert.equal(done.kind, QUEUED_KIND);
  });

  test('GitLab and Scheduler are queued too: the commit status goes pending → running → success; a scheduled reconcile deploys from the queue; a scheduled dry run is answered in the request', async (t) => {
    const q = await queue(t);
    const api = await startGitlabApi(GL_TOKEN);
    t.after(() => api.close());
    const ns = await namespace('queue');
    const image = 'registry.example.com/mike/diaspora';
    const fn = await startFunction(
      configYaml({
        auth: { direct: 'none', pubsub: 'none', scheduler: 'none', gitlab: { tokenEnv: 'TEST_QUEUE_GITLAB_SECRET' }, certsUrl: q.info.certsUrl },
        clusters: { sandbox: gkeCluster(q.info) },
        targets: { web: webTarget(ns, { images: [image] }) },
        rules: [{ source: 'gitlab', repository: 'mike/diaspora', branch: 'master', image: `${image}:\${shortSha}`, targets: ['web'] }],
        report: { gitlab: { tokenEnv: 'TEST_QUEUE_GITLAB_TOKEN', apiUrl: api.url } },
        queue: { topic: q.topic, subscription: q.subscription },
      }),
      { 'web.yaml': WEB },
    );
    t.after(() => fn.close());
    await q.subscribe(`${fn.url}/pubsub`);

    const hook = await fn.post('/webhooks/gitlab', fixture('events/gitlab-push.json'), { 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': GL_SECRET, 'x-gitlab-event-uuid': `u-${hex(4)}` });
    assert.equal(hook.status, 202, JSON.stringify(hook.body));
    assert.equal(hook.body.status, 'queued');
    const key = `mike/diaspora@${GL_SHA} gke-deployer/web`;
    await until('GitLab success', () => api.statuses.get(key)?.at(-1)?.state === 'success', { timeoutMs: 60_000, seen: () => api.statuses.get(key) });
    assert.deepEqual(api.statuses.get(key)?.map((s) => s.state), ['pending', 'running', 'success']);
    assert.equal(imageOf(await live(ns)), `${image}:${GL_SHA.slice(0, 7)}`);

    const reconcile = await fn.post('/scheduler', { target: 'web' });
    assert.deepEqual([reconcile.status, reconcile.body.status], [202, 'queued'], JSON.stringify(reconcile.body));
    assert.deepEqual(reconcile.body.intents, [{ target: 'web', eventId: reconcile.body.requestId }], 'a reconcile names no image');
    const done = await until('the reconcile', () => fn.logs.find((l) => l.kind === QUEUED_KIND && l.source === 'scheduler/reconcile' && l.status !== undefined), { timeoutMs: 60_000 });
    assert.equal(done.status, 'ready');
    const dry = await fn.post('/scheduler', { target: 'web', image: `${image}:next`, dryRun: true });
    assert.deepEqual([dry.status, dry.body.status], [200, 'dry-run']);
  });

  test('a message published to the queue topic by anyone but the deployer deploys nothing: each is acknowledged and logged; the deployer\'s own proof deploys', async (t) => {
    const q = await queue(t);
    const ns = await namespace('queue');
    const fn = await startFunction(config(q, { web: webTarget(ns) }), { 'web.yaml': WEB });
    t.after(() => fn.close());
    await q.subscribe(`${fn.url}/pubsub`);
    const topic = q.client.topic(q.topic, { messageOrdering: true });

    const intent = (image: string) => ({ target: 'web', image, dryRun: false, source: 'direct', requestId: `r-${hex(6)}`, eventId: `e-${hex(6)}`, eventTime: new Date().toISOString() });
    const publish = async (m: { data: Buffer; attributes: Record<string, string>; orderingKey?: string }) => topic.publishMessage(m);
    const forged = intent(`${REPO}:forged`);
    const payload = queuedPayload(forged);
    const attacker = 'attacker@sandbox-project.iam.gserviceaccount.com';
    const cases: [string, () => Promise<string>][] = [
      ['a proof by another service account', async () => publish(queuedMessage(forged, payload, await idToken({ audience: proofAudience(payload), email: attacker }))) ],
      ['the deployer\'s proof of other bytes', async () => {
        const other = queuedPayload(intent(`${REPO}:harmless`));
        return publish(queuedMessage(forged, payload, await idToken({ audience: proofAudience(other), email: DEPLOYER_SA })));
      }],
      ['a proof with a signature that is not Google\'s', async () => publish(queuedMessage(forged, payload, await idToken({ audience: proofAudience(payload), email: DEPLOYER_SA, signWithUnknownKey: true })))],
      ['no proof', async () => publish({ data: Buffer.from(JSON.stringify({ intent: payload })), attributes: { [QUEUED_ATTRIBUTE]: QUEUED_KIND }, orderingKey: 'web' })],
      ['a plain deploy intent on the queue subscription', async () => publish({ data: Buffer.from(JSON.stringify({ target: 'web', image: `${REPO}:forged` })), attributes: {} })],
    ];
    const ids: string[] = [];
    for (const [, send] of cases) ids.push(await send());
    const refusal = (id: string | undefined) => fn.logs.find((l) => l.acknowledged === true && typeof id === 'string' && String(l.message).includes(`Pub/Sub message ${id} `));
    for (const [i, [name]] of cases.entries()) {
      const line = await until(`the refusal of ${name}`, () => refusal(ids[i]), { timeoutMs: 30_000, seen: () => fn.logs.slice(-3) });
      assert.equal(line.severity, 'ERROR', name);
      assert.equal(line.code, 'BAD_REQUEST', `${name}: ${line.message}`);
    }
    assert.match(String(refusal(ids[0])?.message), /not proven.*not the deployer's own/);
    assert.match(String(refusal(ids[1])?.message), /not proven.*wrong audience/);
    assert.match(String(refusal(ids[2])?.message), /not proven.*bad signature/);
    assert.match(String(refusal(ids[3])?.message), /not a queued intent: proof/);
    assert.match(String(refusal(ids[4])?.message), /only queued intents/);
    assert.equal(await live(ns), undefined, 'nothing deployed');

    // The same path with the deployer's own proof deploys: the refusals were the proofs'.
    const real = intent(`${REPO}:real`);
    const realPayload = queuedPayload(real);
    await publish(queuedMessage(real, realPayload, await idToken({ audience: proofAudience(realPayload), email: DEPLOYER_SA })));
    await until('the real message deployed', async () => imageOf(await live(ns)) === `${REPO}:real`, { timeoutMs: 60_000, seen: () => fn.logs.slice(-3) });
    // Acknowledged once each: the emulator redelivers nothing it was answered 200 for.
    await sleep(2000);
    for (const id of ids) assert.equal(fn.logs.filter((l) => String(l.message).includes(`Pub/Sub message ${id} `)).length, 1, `one delivery of ${id}`);
  });

  test('publishing fails (the emulator is gone): 503 QUEUE_UNAVAILABLE, and nothing deploys', async (t) => {
    const q = await queue(t);
    const ns = await namespace('queue');
    const server = net.createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const fn = await startFunction(config(q, { web: webTarget(ns) }), { 'web.yaml': WEB }, { PUBSUB_EMULATOR_HOST: `127.0.0.1:${port}` });
    t.after(() => fn.close());
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:v1`, queue: true });
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal((res.body.error as { code: string }).code, 'QUEUE_UNAVAILABLE');
    const p = push(hex(20), Math.floor(Date.now() / 1000));
    const hook = await fn.post('/webhooks/github', p.body, p.headers);
    assert.equal(hook.status, 503, JSON.stringify(hook.body));
    assert.equal(await live(ns), undefined, 'nothing deployed');
  });

  test('/deploy queues only when asked, and refuses to queue without a queue or a dry run', async (t) => {
    const q = await queue(t);
    const ns = await namespace('queue');
    const fn = await startFunction(config(q, { web: webTarget(ns) }), { 'web.yaml': WEB });
    t.after(() => fn.close());
    const inline = await fn.post('/deploy', { target: 'web', image: `${REPO}:v1` });
    assert.deepEqual([inline.status, inline.body.status], [200, 'ready'], 'without "queue" it deploys in the request, as before');
    const dry = await fn.post('/deploy', { target: 'web', image: `${REPO}:v2`, queue: true, dryRun: true });
    assert.equal(dry.status, 400);
    assert.match((dry.body.error as { message: string }).message, /dry run is not queued/);

    const unqueued = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(q.info) }, targets: { web: webTarget(ns) } }), { 'web.yaml': WEB });
    t.after(() => unqueued.close());
    const none = await unqueued.post('/deploy', { target: 'web', image: `${REPO}:v2`, queue: true });
    assert.equal(none.status, 400);
    assert.match((none.body.error as { message: string }).message, /needs a queue/);
  });

  test('a push matching three targets deploys them in parallel, each under its own ordering key', async (t) => {
    const q = await queue(t);
    const names = ['a', 'b', 'c'];
    const namespaces = await Promise.all(names.map(() => namespace('queue')));
    const targets = Object.fromEntries(names.map((n, i) => [n, webTarget(namespaces[i]!)]));
    const fn = await startFunction(config(q, targets), { 'web.yaml': slowWeb(10) });
    t.after(() => fn.close());
    await q.subscribe(`${fn.url}/pubsub`);
    const sha = hex(20);
    const p = push(sha, Math.floor(Date.now() / 1000));
    const res = await fn.post('/webhooks/github', p.body, p.headers);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.deepEqual((res.body.intents as { target: string }[]).map((i) => i.target).sort(), names);
    const lines = await until('three deploys', () => {
      const done = fn.logs.filter((l) => l.kind === QUEUED_KIND && typeof l.status === 'string');
      return done.length >= 3 && done;
    }, { timeoutMs: 120_000, seen: () => fn.logs.slice(-3) });
    assert.deepEqual(lines.map((l) => l.status), ['ready', 'ready', 'ready']);
    // Each ran [end - elapsed, end]. The function runs all three at once when they arrive at once
    // (/deploy shows it); the emulator holds at most two pushes of a subscription outstanding on
    // this machine, so here two run together and the third follows: never one after another.
    const spans = lines.map((l) => ({ end: Date.parse(String(l.time)), start: Date.parse(String(l.time)) - Number(l.elapsedMs) }));
    const first = Math.min(...spans.map((s) => s.start));
    t.diagnostic(`spans (ms from the first start): ${JSON.stringify(spans.map((s) => [s.start - first, s.end - first]))}`);
    const running = (at: number) => spans.filter((s) => s.start <= at && at < s.end).length;
    assert.ok(Math.max(...spans.map((s) => running(s.start))) >= 2, `deploys overlapped: ${JSON.stringify(spans)}`);
  });

  test('ten pushes to one target, sent in order to two function processes, end on the last', async (t) => {
    const q = await queue(t);
    const ns = await namespace('queue');
    const yaml = config(q, { web: webTarget(ns) });
    const [one, two] = await Promise.all([startFunction(yaml, { 'web.yaml': WEB }), startFunction(yaml, { 'web.yaml': WEB })]);
    t.after(() => Promise.all([one.close(), two.close()]).then(() => undefined));
    await q.subscribe(`${one.url}/pubsub`);
    const base = Math.floor(Date.now() / 1000);
    const shas = Array.from({ length: 10 }, () => hex(20));
    const pushes = shas.map((sha, i) => push(sha, base + i));
    for (const [i, p] of pushes.entries()) {
      const res = await (i % 2 === 0 ? one : two).post('/webhooks/github', p.body, p.headers);
      assert.equal(res.status, 202, JSON.stringify(res.body));
    }
    const last = pushes.at(-1)!;
    await until('the last push deployed', async () => (await live(ns))?.metadata.annotations?.['gke-deployer/event-id'] === last.delivery, { timeoutMs: 120_000, seen: () => one.logs.slice(-2) });
    assert.equal(imageOf(await live(ns)), `${REPO}:${shas.at(-1)}`);
    // Delivered in the order they were queued: each one is deployed, none is stale.
    const deployed = await until('ten deploys', () => {
      const lines = one.logs.filter((l) => l.kind === QUEUED_KIND && typeof l.status === 'string');
      return lines.length >= 10 && lines;
    }, { timeoutMs: 60_000 });
    assert.deepEqual(deployed.map((l) => l.requestId), pushes.map((p) => p.delivery));
    assert.deepEqual(new Set(deployed.map((l) => l.status)), new Set(['ready']));
  });

  test('the instance dies mid-rollout: Pub/Sub redelivers to a new one, which finishes the deploy; nothing is acknowledged before it ended', async (t) => {
    const q = await queue(t);
    const api = await startGithubApi(TOKEN);
    t.after(() => api.close());
    const ns = await namespace('queue');
    const yaml = config(q, { web: webTarget(ns) }, { github: api });
    const files = { 'web.yaml': slowWeb(20) };
    const port = await freePort();
    const bundle = await ensureBundle();
    const first = await spawnFunction(yaml, files, {}, bundle, port);
    t.after(() => first.close());
    await q.subscribe(`http://127.0.0.1:${port}/pubsub`);

    const sha = hex(20);
    const p = push(sha, Math.floor(Date.now() / 1000));
    assert.equal((await first.post('/webhooks/github', p.body, p.headers)).status, 202);
    // The new template is written and rolling out (20 s before it can be available): stop the instance.
    await until('the rollout under way', async () => imageOf(await live(ns)) === `${REPO}:${sha}`, { timeoutMs: 60_000 });
    await first.kill();
    assert.ok(!first.logs.some((l) => l.status !== undefined && l.kind === QUEUED_KIND), 'the first instance never finished the deploy');

    const second = await spawnFunction(yaml, files, {}, bundle, port);
    t.after(() => second.close());
    const [deployment] = [...api.deployments.values()];
    assert.ok(deployment);
    await until('GitHub success', () => deployment.states.at(-1)?.state === 'success', { timeoutMs: 120_000, seen: () => deployment.states });
    assert.equal(api.deployments.size, 1, 'the redelivery updates the same GitHub Deployment');
    assert.equal(deployment.states[0]?.state, 'queued');
    const d = await live(ns);
    assert.equal(imageOf(d), `${REPO}:${sha}`);
    assert.equal(d?.status?.availableReplicas, 2);
    // The redelivery finds its event applied, judges the rollout it finds (src/rollout/resume.ts)
    // and answers once that rollout is complete: `duplicate` (nothing written again), which the
    // event's own GitHub Deployment reports as the success it is.
    const finished = second.logs.filter((l) => l.kind === QUEUED_KIND && l.status !== undefined);
    assert.deepEqual(finished.map((l) => l.status), ['duplicate']);
    const progressing = (d?.status as { conditions?: { type: string; reason: string; lastUpdateTime: string }[] } | undefined)?.conditions?.find((c) => c.type === 'Progressing');
    assert.equal(progressing?.reason, 'NewReplicaSetAvailable');
    // Kubernetes keeps whole seconds: the answer came no earlier than the second the rollout completed.
    assert.ok(Date.parse(String(finished[0]!.time)) >= Date.parse(progressing.lastUpdateTime), `answered ${String(finished[0]!.time)}, rollout complete ${progressing.lastUpdateTime}`);
    // Acknowledged by that answer, and only then: no further delivery comes.
    await sleep(3000);
    assert.equal(second.logs.filter((l) => l.kind === QUEUED_KIND && l.status !== undefined).length, 1);
  });

  /** A function whose target `web` fails one image with IMAGE_NOT_FOUND (retryable: CI may push it later) and deploys the other. */
  async function failingThenGood(t: TestContext, q: Queue, ns: string) {
    await trustRegistryCa();
    const registry = q.info.registry.host;
    const target = webTarget(ns, { images: [`${registry}/apps/web`, 'docker.io/library/nginx'] });
    const fn = await startFunction(config(q, { web: target }), { 'web.yaml': WEB });
    t.after(() => fn.close());
    const queueImage = async (image: string, eventId: string) => {
      const res = await fn.post('/deploy', { target: 'web', image, queue: true, eventId });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      // The deploy logs under the request that queued it.
      return String(res.body.requestId);
    };
    const missingEvent = `missing-${hex(4)}`;
    const sendMissing = () => queueImage(`${registry}/apps/web:never-pushed`, missingEvent);
    const sendNext = () => queueImage('docker.io/library/nginx:1.27', `next-${hex(4)}`);
    const attempts = () => fn.logs.filter((l) => l.code === 'IMAGE_NOT_FOUND');
    return { fn, sendMissing, sendNext, missingEvent, attempts };
  }

  test('while a target\'s message is retried, its later messages wait: the ordering key holds them', async (t) => {
    const q = await queue(t);
    const ns = await namespace('queue');
    const { fn, sendMissing, sendNext, attempts } = await failingThenGood(t, q, ns);
    // The emulator's own retry cadence (about a second): it does not follow a retryPolicy on push.
    await q.subscribe(`${fn.url}/pubsub`);
    const ids = { missing: await sendMissing(), next: await sendNext() };
    await until('three attempts', () => attempts().length >= 3, { timeoutMs: 60_000 });
    assert.ok(attempts().every((l) => l.requestId === ids.missing), 'only the failing message is delivered');
    assert.equal(fn.logs.filter((l) => l.requestId === ids.next && l.kind === QUEUED_KIND).length, 0, 'the later message waits');
    assert.equal(await live(ns), undefined, 'nothing deployed meanwhile');
  });

  // Pub/Sub's own rule is that a dead-lettered message no longer holds its ordering key. The
  // emulator does not dead-letter an ordered push at all (measured: five pushes, then neither
  // the dead letter nor the next message), so this subscription has a dead-letter policy and no
  // ordering: what is under test is that the function's answers lead there, never acknowledging.
  test('a retryable failure that keeps repeating ends on the dead-letter topic, after maxDeliveryAttempts, and is never acknowledged', async (t) => {
    const q = await queue(t);
    const ns = await namespace('queue');
    const [deadLetters] = await q.client.createTopic(`dead-${hex(4)}`);
    const [dlq] = await deadLetters.createSubscription(`dead-${hex(4)}-pull`);
    const dead: Message[] = [];
    dlq.on('message', (m: Message) => {
      m.ack();
      dead.push(m);
    });
    t.after(() => dlq.close());
    const { fn, sendMissing, sendNext, missingEvent, attempts } = await failingThenGood(t, q, ns);
    await q.subscribe(`${fn.url}/pubsub`, {
      enableMessageOrdering: false,
      deadLetterPolicy: { deadLetterTopic: deadLetters.name, maxDeliveryAttempts: 5 },
    });
    // Alone: without ordering a later message of the target would overtake it and make it stale.
    const missing = await sendMissing();
    await until('the dead letter', () => dead.length === 1, { timeoutMs: 60_000, seen: () => attempts().map((l) => l.time) });
    assert.equal(dead[0]!.attributes.eventId, missingEvent);
    assert.equal(dead[0]!.attributes.CloudPubSubDeadLetterSourceDeliveryCount, '5');
    assert.equal(attempts().length, 5, 'delivered maxDeliveryAttempts times, each answered 503');
    assert.ok(attempts().every((l) => l.requestId === missing));
    await sendNext();
    await until('the next message deployed', async () => imageOf(await live(ns)) === 'docker.io/library/nginx:1.27', { timeoutMs: 60_000 });
  });
});
