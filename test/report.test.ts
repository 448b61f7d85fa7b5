// Results back where users look (src/report/): the result topic, pulled from a subscription
// on the real Pub/Sub emulator with the real client; GitHub Deployments and GitLab commit
// statuses, posted to local fakes of both APIs (test/support/github-api.ts, gitlab-api.ts)
// by deploys sent as signed webhooks through the function into the sandbox cluster.
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { startGithubApi } from './support/github-api.ts';
import { startGitlabApi } from './support/gitlab-api.ts';
import { resultTopic as topicOf } from './support/result-topic.ts';
import { idToken, kubectl, namespace, useSandboxEnv } from './support/sandbox.ts';

const WEB = { 'web.yaml': fixture('manifests/web.yaml') };
const GITHUB_SECRET = 'gh-webhook-secret-for-report-tests';
const GITLAB_SECRET = 'gl-webhook-token-for-report-tests';
const GITHUB_TOKEN = 'ghp_statusTokenForReportTests0123456789';
const GITLAB_TOKEN = 'glpat-statusTokenForReportTests01';
process.env.TEST_REPORT_GITHUB_SECRET = GITHUB_SECRET;
process.env.TEST_REPORT_GITLAB_SECRET = GITLAB_SECRET;
process.env.TEST_REPORT_GITHUB_TOKEN = GITHUB_TOKEN;
process.env.TEST_REPORT_GITLAB_TOKEN = GITLAB_TOKEN;

const GHCR = 'ghcr.io/codertocat/hello-world';
const GL_IMAGE = 'registry.example.com/mike/diaspora';
const GH_SHA = '6113728f27ae82c7b1a177c8d03f9e96e0adf246';
const GL_SHA = 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7';
const LOG_URL = 'https://console.cloud.google.com/logs/query;query=jsonPayload.requestId%3D%22${requestId}%22';

const id = () => randomBytes(4).toString('hex');

describe('report.topic', () => {
  const resultTopic = (t: TestContext) => topicOf(t, 'deploy-results');

  test('every deploy publishes one message: the answer as body, target/status/source/eventId as attributes; duplicate, stale and errors too', async (t) => {
    const { info, topic, count } = await resultTopic(t);
    const ns = await namespace('report');
    const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns) }, report: { topic } }), WEB);
    t.after(() => fn.close());

    const later = { target: 'web', image: `${REPO}:v1`, eventId: `e-${id()}`, eventTime: '2026-11-02T10:00:00Z' };
    const older = { ...later, eventId: `e-${id()}`, eventTime: '2026-11-01T10:00:00Z' };
    const refused = { target: 'web', image: 'docker.io/library/nginx:1', eventId: `e-${id()}` };
    const sent = [later, later, older, refused]; // the same event twice: the second is a duplicate
    const answers = [];
    for (const body of sent) answers.push(await fn.post('/deploy', body));
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 409, 403], JSON.stringify(answers.map((a) => a.body)));
    assert.deepEqual(answers.map((a) => a.body.status), ['ready', 'duplicate', 'stale', 'error']);

    const messages = await count(answers.length);
    const byRequest = new Map(messages.map((m) => [m.attributes.requestId, m]));
    assert.equal(byRequest.size, answers.length, 'one message per deploy');
    for (const [i, a] of answers.entries()) {
      const m = byRequest.get(String(a.body.requestId));
      assert.ok(m, `a message for ${String(a.body.requestId)}`);
      const body = JSON.parse(m.data.toString('utf8')) as Record<string, unknown>;
      assert.equal(m.attributes.target, 'web');
      assert.equal(m.attributes.status, a.body.status);
      assert.equal(m.attributes.source, 'direct');
      assert.equal(m.attributes.eventId, sent[i]!.eventId);
      if (a.body.status === 'error') {
        assert.equal(m.attributes.code, 'IMAGE_NOT_ALLOWED');
        assert.deepEqual(body, { ...a.body, target: 'web' });
      } else {
        assert.deepEqual(body, a.body, 'the body is the answer');
      }
    }
  });

  const unreachable: [string, (topic: string) => Promise<{ topic: string; env?: Record<string, string> }>][] = [
    ['a topic that does not exist', () => Promise.resolve({ topic: `projects/sandbox-project/topics/missing-${id()}` })],
    ['an emulator host on a closed port', async (topic) => {
      const server = net.createServer().listen(0, '127.0.0.1');
      await once(server, 'listening');
      const { port } = server.address() as net.AddressInfo;
      await new Promise((resolve) => server.close(resolve));
      return { topic, env: { PUBSUB_EMULATOR_HOST: `127.0.0.1:${port}` } };
    }],
  ];
  for (const [name, setup] of unreachable) {
    test(`publishing fails (${name}): logged, and the deploy still answers 200`, async (t) => {
      const info = await useSandboxEnv();
      const ns = await namespace('report');
      const { topic, env } = await setup('projects/sandbox-project/topics/deploy-results');
      const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns) }, report: { topic } }), WEB, env);
      t.after(() => fn.close());
      const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:v1` });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'ready');
      const warning = fn.logs.find((l) => l.severity === 'WARNING' && /report|reporting/.test(l.message));
      assert.ok(warning, `a warning about the publish: ${JSON.stringify(fn.logs)}`);
      assert.equal(warning.target, 'web');
    });
  }
});

/**
 * The target's Deployment, deployed once through /deploy (no commit: no status posted), then
 * paused (kubectl rollout pause). Its event time is long before any fixture's commit, so the
 * webhook's event is the newer one.
 */
async function pausedDeployment(fn: RunningFunction, ns: string, image: string): Promise<void> {
  const first = await fn.post('/deploy', { target: 'web', image, eventTime: '2000-01-01T00:00:00Z' });
  assert.equal(first.body.status, 'ready', JSON.stringify(first.body));
  await kubectl(['-n', ns, 'rollout', 'pause', 'deployment/web']);
}

const sign = (body: string) => `sha256=${createHmac('sha256', GITHUB_SECRET).update(body).digest('hex')}`;

async function gitDeployer(t: TestContext, report: Record<string, unknown>, rules: Record<string, unknown>[], controls: { approve?: Record<string, unknown>; target?: Record<string, unknown> } = {}): Promise<{ fn: RunningFunction; ns: string }> {
  const info = await useSandboxEnv();
  const ns = await namespace('status');
  const fn = await startFunction(
    configYaml({
      auth: { direct: 'none', github: { secretEnv: 'TEST_REPORT_GITHUB_SECRET' }, gitlab: { tokenEnv: 'TEST_REPORT_GITLAB_SECRET' }, ...(controls.approve && { approve: controls.approve, certsUrl: info.certsUrl }) },
      clusters: { sandbox: gkeCluster(info) },
      targets: { web: webTarget(ns, { images: [GHCR, GL_IMAGE], ...controls.target }) },
      rules,
      report,
    }),
    WEB,
  );
  t.after(() => fn.close());
  return { fn, ns };
}

describe('report.github', () => {
  const push = fixture('events/github-push.json');
  const deliver = (fn: RunningFunction, delivery: string) =>
    fn.post('/webhooks/github', push, { 'x-github-event': 'push', 'x-github-delivery': delivery, 'x-hub-signature-256': sign(push) });

  async function setup(t: TestContext, image: string, controls?: Parameters<typeof gitDeployer>[3]) {
    const api = await startGithubApi(GITHUB_TOKEN);
    t.after(() => api.close());
    const rules = [{ source: 'github', repository: 'Codertocat/Hello-World', branch: 'master', image, targets: ['web'] }];
    const { fn, ns } = await gitDeployer(t, { github: { tokenEnv: 'TEST_REPORT_GITHUB_TOKEN', apiUrl: api.url }, logUrl: LOG_URL }, rules, controls);
    return { api, fn, ns };
  }

  test('a held push stays one Deployment: pending while held, then in_progress → success on the same one once approved', async (t) => {
    const approve = 'https://gke-deployer.example.run.app/approve';
    const { api, fn } = await setup(t, `${GHCR}:\${sha}`, { approve: { audience: approve }, target: { approval: { approvers: ['alice@example.com'] } } });
    const delivery = `d-${id()}`;
    const held = await deliver(fn, delivery);
    assert.equal(held.body.status, 'held', JSON.stringify(held.body));
    assert.equal(api.deployments.size, 1);
    const [entry] = [...api.deployments.entries()];
    assert.ok(entry);
    const [deploymentId, d] = entry;
    assert.deepEqual(d.states.map((s) => s.state), ['in_progress', 'pending']);
    assert.match(String(d.states[1]!.description), /^held: awaits approval by one of alice@example.com/);

    const token = await idToken({ audience: approve, email: 'alice@example.com' });
    const approved = await fn.post('/approve', { target: 'web', eventId: delivery }, { authorization: `Bearer ${token}` });
    assert.equal(approved.body.status, 'ready', JSON.stringify(approved.body));
    assert.equal(api.deployments.size, 1, 'no second Deployment');
    assert.deepEqual(api.deployments.get(deploymentId)?.states.map((s) => s.state), ['in_progress', 'pending', 'in_progress', 'success']);
  });

  test('a push deploy creates a Deployment of the commit for the target, then in_progress → success with the log link', async (t) => {
    const { api, fn } = await setup(t, `${GHCR}:\${sha}`);
    const delivery = `d-${id()}`;
    const res = await deliver(fn, delivery);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'ready');

    assert.deepEqual(api.calls.map((c) => `${c.method} ${c.path}`), [
      'POST /repos/Codertocat/Hello-World/deployments',
      `POST /repos/Codertocat/Hello-World/deployments/${[...api.deployments.keys()][0]}/statuses`,
      `POST /repos/Codertocat/Hello-World/deployments/${[...api.deployments.keys()][0]}/statuses`,
    ]);
    assert.ok(api.calls.every((c) => c.authenticated && c.userAgent?.startsWith('gke-deployer')), 'the token, and our user agent');
    const [d] = [...api.deployments.values()];
    assert.ok(d);
    assert.equal(d.body.ref, GH_SHA);
    assert.equal(d.body.environment, 'web');
    assert.equal(d.body.auto_merge, false);
    assert.deepEqual(d.body.required_contexts, []);
    assert.deepEqual(d.states.map((s) => s.state), ['in_progress', 'success']);
    const logUrl = LOG_URL.replace('${requestId}', delivery);
    assert.ok(d.states.every((s) => s.log_url === logUrl && s.environment === 'web'), JSON.stringify(d.states));
    assert.match(String(d.states[1]!.description), /^ready: ghcr\.io\/codertocat\/hello-world:6113728/);

    // The same delivery again is a duplicate: its Deployment is closed inactive, not success.
    const again = await deliver(fn, delivery);
    assert.equal(again.body.status, 'duplicate', JSON.stringify(again.body));
    const second = [...api.deployments.values()][1];
    assert.deepEqual(second?.states.map((s) => s.state), ['in_progress', 'inactive']);
    assert.ok(!fn.lines.join('').includes(GITHUB_TOKEN), 'the token is never logged');
  });

  test('a failed rollout ends in failure, with the reason', async (t) => {
    const { api, fn } = await setup(t, `${GHCR}:fail-pull-\${shortSha}`);
    const res = await deliver(fn, `d-${id()}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    // The first deploy to its namespace: the rollback deletes the Deployment it created.
    assert.equal(res.body.status, 'rolled-back', JSON.stringify(res.body));
    const [d] = [...api.deployments.values()];
    assert.deepEqual(d?.states.map((s) => s.state), ['in_progress', 'failure']);
    assert.match(String(d.states[1]!.description), /^rolled-back: ImagePullBackOff/);
    assert.ok(String(d.states[1]!.description).length <= 140);
  });

  test('a paused Deployment ends in failure, with the reason: written, not rolled out', async (t) => {
    const { api, fn, ns } = await setup(t, `${GHCR}:\${sha}`);
    await pausedDeployment(fn, ns, `${GHCR}:before`);
    const res = await deliver(fn, `d-${id()}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'paused', JSON.stringify(res.body));
    const [d] = [...api.deployments.values()];
    assert.deepEqual(d?.states.map((s) => s.state), ['in_progress', 'failure']);
    assert.match(String(d.states[1]!.description), /^paused: deployment "web" is paused/);
  });

  test('a wrong token: logged, the deploy still answers 200', async (t) => {
    const api = await startGithubApi('another-token-entirely');
    t.after(() => api.close());
    const rules = [{ source: 'github', repository: 'Codertocat/Hello-World', branch: 'master', image: `${GHCR}:\${sha}`, targets: ['web'] }];
    const { fn } = await gitDeployer(t, { github: { tokenEnv: 'TEST_REPORT_GITHUB_TOKEN', apiUrl: api.url } }, rules);
    const res = await deliver(fn, `d-${id()}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'ready');
    assert.equal(api.calls.length, 1, 'no status for a Deployment that was not created');
    const warning = fn.logs.find((l) => l.severity === 'WARNING' && l.reporter === 'github');
    assert.match(warning?.message ?? '', /Bad credentials/);
    assert.ok(!fn.lines.join('').includes(GITHUB_TOKEN), 'the token is never logged');
  });
});

describe('report.gitlab', () => {
  const push = fixture('events/gitlab-push.json');
  const deliver = (fn: RunningFunction) =>
    fn.post('/webhooks/gitlab', push, { 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': GITLAB_SECRET, 'x-gitlab-event-uuid': `u-${id()}` });

  async function setup(t: TestContext, image: string) {
    const api = await startGitlabApi(GITLAB_TOKEN);
    t.after(() => api.close());
    const rules = [{ source: 'gitlab', repository: 'mike/diaspora', branch: 'master', image, targets: ['web'] }];
    const { fn, ns } = await gitDeployer(t, { gitlab: { tokenEnv: 'TEST_REPORT_GITLAB_TOKEN', apiUrl: api.url }, logUrl: LOG_URL }, rules);
    return { api, fn, ns };
  }

  test('a push deploy sets the commit status gke-deployer/<target>: running → success, with the log link', async (t) => {
    const { api, fn } = await setup(t, `${GL_IMAGE}:\${shortSha}`);
    const res = await deliver(fn);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'ready');
    assert.deepEqual(api.calls.map((c) => `${c.method} ${c.path}`), Array(2).fill(`POST /projects/mike%2Fdiaspora/statuses/${GL_SHA}`));
    assert.ok(api.calls.every((c) => c.authenticated), 'PRIVATE-TOKEN');
    const states = api.statuses.get(`mike/diaspora@${GL_SHA} gke-deployer/web`);
    assert.deepEqual(states?.map((s) => s.state), ['running', 'success']);
    assert.ok(states.every((s) => s.target_url === LOG_URL.replace('${requestId}', String(res.body.requestId))), JSON.stringify(states));
  });

  test('a paused Deployment ends failed, with the reason: written, not rolled out', async (t) => {
    const { api, fn, ns } = await setup(t, `${GL_IMAGE}:\${shortSha}`);
    await pausedDeployment(fn, ns, `${GL_IMAGE}:before`);
    const res = await deliver(fn);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'paused', JSON.stringify(res.body));
    const states = api.statuses.get(`mike/diaspora@${GL_SHA} gke-deployer/web`);
    assert.deepEqual(states?.map((s) => s.state), ['running', 'failed']);
    assert.match(String(states[1]!.description), /^paused: deployment "web" is paused/);
  });

  test('a failed rollout ends failed, with the reason', async (t) => {
    const { api, fn } = await setup(t, `${GL_IMAGE}:fail-pull-\${shortSha}`);
    const res = await deliver(fn);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const states = api.statuses.get(`mike/diaspora@${GL_SHA} gke-deployer/web`);
    assert.deepEqual(states?.map((s) => s.state), ['running', 'failed']);
    assert.match(String(states[1]!.description), /ImagePullBackOff/);
  });
});
