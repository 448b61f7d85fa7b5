// Issue 17 item 4: no time a caller controls may block later deploys. /deploy refuses an
// eventTime ahead of the clock; Pub/Sub-carried times are bounded by the message's
// publishTime (Pub/Sub's, not the publisher's); no event is recorded later than it arrived.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { exists, kubectlJson, namespace, useSandboxEnv } from './support/sandbox.ts';

interface Deployment {
  metadata: { annotations: Record<string, string> };
  spec: { template: { spec: { containers: { image: string }[] } } };
}

const live = (ns: string) => kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
const imageOf = (d: Deployment) => d.spec.template.spec.containers[0]?.image;
const GL_IMAGE = 'registry.example.com/mike/diaspora';

describe('caller-supplied times', () => {
  let fn: RunningFunction;
  const ns: Record<'direct' | 'near' | 'build' | 'gitlab', string> = { direct: '', near: '', build: '', gitlab: '' };

  before(async () => {
    const info = await useSandboxEnv();
    for (const key of Object.keys(ns) as (keyof typeof ns)[]) ns[key] = await namespace(`time-${key}`);
    process.env.TEST_TIME_GITLAB_TOKEN = 'gl-time-token';
    fn = await startFunction(
      configYaml({
        auth: { direct: 'none', pubsub: 'none', gitlab: { tokenEnv: 'TEST_TIME_GITLAB_TOKEN' } },
        clusters: { sandbox: gkeCluster(info) },
        targets: { direct: webTarget(ns.direct), near: webTarget(ns.near), build: webTarget(ns.build), gitlab: webTarget(ns.gitlab, { images: [GL_IMAGE] }) },
        rules: [
          { source: 'cloud-build', repository: REPO, tags: 'v*', targets: ['build'] },
          { source: 'artifact-registry', repository: REPO, tags: 'v*', targets: ['build'] },
          { source: 'gitlab', repository: 'mike/diaspora', branch: 'master', image: `${GL_IMAGE}:\${sha}`, targets: ['gitlab'] },
        ],
      }),
      { 'web.yaml': fixture('manifests/web.yaml') },
    );
  });
  after(() => fn.close());

  test('/deploy with an eventTime in the future → 400, nothing applied; the next deploy is not stale', async () => {
    const poisoned = await fn.post('/deploy', { target: 'direct', image: `${REPO}:v1`, eventTime: '2099-01-01T00:00:00Z' });
    assert.equal(poisoned.status, 400, JSON.stringify(poisoned.body));
    assert.match(String((poisoned.body.error as { message?: string } | undefined)?.message), /eventTime 2099-01-01T00:00:00Z is in the future/);
    assert.equal(await exists('deployment', 'web', ns.direct), false);
    const next = await fn.post('/deploy', { target: 'direct', image: `${REPO}:v2` });
    assert.equal(next.body.status, 'ready', JSON.stringify(next.body));
  });

  test('/deploy with an eventTime a little ahead (clock skew) is recorded as its arrival: a deploy right after it is not stale', async () => {
    const ahead = new Date(Date.now() + 30_000).toISOString();
    const first = await fn.post('/deploy', { target: 'near', image: `${REPO}:v1`, eventTime: ahead });
    const answered = Date.now();
    assert.equal(first.body.status, 'ready', JSON.stringify(first.body));
    const recorded = Date.parse((await live(ns.near)).metadata.annotations['gke-deployer/event-time'] ?? '');
    assert.ok(recorded <= answered, `recorded ${new Date(recorded).toISOString()}, answered ${new Date(answered).toISOString()}`);
    const next = await fn.post('/deploy', { target: 'near', image: `${REPO}:v2` });
    assert.equal(next.body.status, 'ready', JSON.stringify(next.body));
    assert.equal(imageOf(await live(ns.near)), `${REPO}:v2`);
  });

  test("a Cloud Build finishTime in the future is bounded by the message's publishTime: a later image still deploys", async () => {
    const envelope = JSON.parse(fixture('events/pubsub-cloud-build-success.json')) as { message: { data: string; attributes: Record<string, string>; messageId: string; publishTime: string }; subscription: string };
    const build = JSON.parse(Buffer.from(envelope.message.data, 'base64').toString('utf8')) as Record<string, unknown>;
    const published = new Date().toISOString();
    const message = { ...envelope.message, messageId: id(), publishTime: published, data: Buffer.from(JSON.stringify({ ...build, finishTime: '2099-01-01T00:00:00Z' })).toString('base64') };
    const res = await fn.post('/pubsub', { ...envelope, message });
    assert.equal(statusOf(res.body), 'ready', JSON.stringify(res.body));
    assert.equal((await live(ns.build)).metadata.annotations['gke-deployer/event-time'], published);
    // A later push of v1.5.0, announced by Artifact Registry.
    const insert = { action: 'INSERT', tag: `${REPO}:v1.5.0` };
    const later = await fn.post('/pubsub', { message: { data: Buffer.from(JSON.stringify(insert)).toString('base64'), messageId: id(), publishTime: new Date().toISOString() }, subscription: envelope.subscription });
    assert.equal(statusOf(later.body), 'ready', JSON.stringify(later.body));
    assert.equal(imageOf(await live(ns.build)), `${REPO}:v1.5.0`);
  });

  test("a commit dated in the future by its author's clock is recorded as its arrival: the next push still deploys", async () => {
    const gitlab = (body: object) => fn.post('/webhooks/gitlab', JSON.stringify(body), { 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': 'gl-time-token', 'idempotency-key': id() });
    const p = JSON.parse(fixture('events/gitlab-push.json')) as { after: string; checkout_sha: string; commits: { id: string; timestamp: string }[] };
    const [older, head] = [p.commits[0]!, p.commits[1]!];
    head.timestamp = '2099-01-01T00:00:00+02:00';
    assert.equal((await gitlab(p)).body.status, 'ready');
    // The next push: the other commit, dated now.
    older.timestamp = new Date().toISOString();
    const next = await gitlab({ ...p, after: older.id, checkout_sha: older.id });
    assert.equal(next.body.status, 'ready', JSON.stringify(next.body));
    assert.equal(imageOf(await live(ns.gitlab)), `${GL_IMAGE}:${older.id}`);
  });
});

/** A /pubsub answer's one deploy's status (the answer wraps the results of the message's intents). */
function statusOf(body: Record<string, unknown>): unknown {
  const results = body.results as { status?: unknown }[] | undefined;
  assert.equal(results?.length, 1, JSON.stringify(body));
  return results[0]?.status;
}

function id(): string {
  return String(BigInt(`0x${randomBytes(6).toString('hex')}`));
}
