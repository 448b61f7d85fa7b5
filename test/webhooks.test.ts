// POST /webhooks/github and /webhooks/gitlab end to end: the documented payloads, signed
// or tokened as GitHub and GitLab do, through the real function into the sandbox cluster.
// Every outcome is checked with the API server, not only with the answer.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';
import { parse, stringify } from 'yaml';
import { configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { exists, kubectlJson, namespace, useSandboxEnv } from './support/sandbox.ts';

const GITHUB_SECRET = 'gh-webhook-secret-for-tests';
const GITLAB_TOKEN = 'gl-webhook-token-for-tests';
process.env.TEST_GITHUB_WEBHOOK_SECRET = GITHUB_SECRET;
process.env.TEST_GITLAB_WEBHOOK_TOKEN = GITLAB_TOKEN;

const GHCR = 'ghcr.io/codertocat/hello-world';
const GL_IMAGE = 'registry.example.com/mike/diaspora';
const DELIVERY = '72d3162e-cc78-11e3-81ab-4c9367dc0958';

interface Deployment {
  metadata: { annotations: Record<string, string> };
  spec: { template: { spec: { containers: { name: string; image: string }[] } } };
}

async function liveImage(ns: string): Promise<string | undefined> {
  return (await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web'])).spec.template.spec.containers[0]?.image;
}

/** A function whose one target, in a fresh namespace, is deployed by `rules`. */
async function deployerWith(t: TestContext, rules: Record<string, unknown>[]): Promise<{ fn: RunningFunction; ns: string }> {
  const info = await useSandboxEnv();
  const ns = await namespace('hook');
  const base = configYaml({
    auth: { direct: 'none', github: { secretEnv: 'TEST_GITHUB_WEBHOOK_SECRET' }, gitlab: { tokenEnv: 'TEST_GITLAB_WEBHOOK_TOKEN' } },
    clusters: { sandbox: gkeCluster(info) },
    targets: { web: webTarget(ns, { images: [GHCR, GL_IMAGE] }) },
  });
  const fn = await startFunction(stringify({ ...(parse(base) as Record<string, unknown>), rules }), { 'web.yaml': fixture('manifests/web.yaml') });
  t.after(() => fn.close());
  return { fn, ns };
}

const event = (name: string) => fixture(`events/${name}.json`);
const sign = (body: string, secret = GITHUB_SECRET) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

/** What GitHub sends: the event, a delivery GUID, and the signature of the exact bytes. */
function github(fn: RunningFunction, name: string, body: string, headers: Record<string, string> = {}) {
  return fn.post('/webhooks/github', body, { 'x-github-event': name, 'x-github-delivery': DELIVERY, 'x-hub-signature-256': sign(body), ...headers });
}

function gitlab(fn: RunningFunction, name: string, body: string, headers: Record<string, string> = {}) {
  return fn.post('/webhooks/gitlab', body, { 'x-gitlab-event': name, 'x-gitlab-token': GITLAB_TOKEN, 'x-gitlab-event-uuid': '9cebe914-4827-408f-b014-cfa23a47a35f', ...headers });
}

/** The production logger's lines from `from` on: something was logged, and none of `secrets`. */
function assertNotLogged(fn: RunningFunction, from: number, secrets: string[]): void {
  const logged = fn.lines.slice(from).join('');
  assert.ok(logged.length > 0, 'the request is logged');
  for (const s of secrets) assert.ok(!logged.includes(s), `the log holds a secret: ${logged}`);
}

function errorOf(body: Record<string, unknown>): { code?: string; message?: string } {
  return (body.error as { code?: string; message?: string } | undefined) ?? {};
}

describe('POST /webhooks/github', () => {
  const onMaster = [{ source: 'github', repository: 'Codertocat/Hello-World', branch: 'master', image: `${GHCR}:\${sha}`, targets: ['web'] }];

  test('a signed push to a matching branch deploys the pushed commit, stamped with the delivery id', async (t) => {
    const { fn, ns } = await deployerWith(t, onMaster);
    const res = await github(fn, 'push', event('github-push'));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.requestId, DELIVERY);
    const live = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
    assert.equal(live.spec.template.spec.containers[0]?.image, `${GHCR}:6113728f27ae82c7b1a177c8d03f9e96e0adf246`);
    assert.equal(live.metadata.annotations['gke-deployer/source'], 'github/push');
    assert.equal(live.metadata.annotations['gke-deployer/request-id'], DELIVERY);
    // Neither the secret nor the signature reaches the logs.
    assertNotLogged(fn, 0, [GITHUB_SECRET, sign(event('github-push')).slice(7)]);
  });

  const headersFor = (signature?: string) => ({ 'x-github-event': 'push', 'x-github-delivery': DELIVERY, ...(signature !== undefined && { 'x-hub-signature-256': signature }) });
  const rejected: [string, () => [string, Record<string, string>]][] = [
    ['one byte of the body changed after signing', () => {
      const body = event('github-push');
      return [body.replace('"master"', '"masteR"'), headersFor(sign(body))];
    }],
    ['signed with another secret', () => [event('github-push'), headersFor(sign(event('github-push'), 'not-the-secret'))]],
    ['no signature header', () => [event('github-push'), headersFor()]],
    ['a sha1 signature only', () => [event('github-push'), headersFor(`sha1=${createHmac('sha1', GITHUB_SECRET).update(event('github-push')).digest('hex')}`)]],
  ];
  for (const [name, request] of rejected) {
    test(`${name} → 401, nothing applied, neither secret nor signature in answer or log`, async (t) => {
      const { fn, ns } = await deployerWith(t, onMaster);
      const [body, headers] = request();
      const res = await fn.post('/webhooks/github', body, headers);
      assert.equal(res.status, 401, JSON.stringify(res.body));
      assert.equal(errorOf(res.body).code, 'UNAUTHENTICATED');
      assert.equal(await exists('deployment', 'web', ns), false);
      const signature = headers['x-hub-signature-256']?.replace(/^sha(1|256)=/, '');
      const secrets = [GITHUB_SECRET, ...(signature ? [signature] : [])];
      assertNotLogged(fn, 0, secrets);
      for (const s of secrets) assert.ok(!JSON.stringify(res.body).includes(s), JSON.stringify(res.body));
    });
  }

  test('ping → 200 pong, nothing applied', async (t) => {
    const { fn, ns } = await deployerWith(t, onMaster);
    const res = await github(fn, 'ping', event('github-ping'));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { status: 'pong', requestId: DELIVERY });
    assert.equal(await exists('deployment', 'web', ns), false);
  });

  test('a push to a branch no rule names → 202 ignored, nothing applied', async (t) => {
    const { fn, ns } = await deployerWith(t, [{ ...onMaster[0], branch: 'release' }]);
    const res = await github(fn, 'push', event('github-push'));
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.status, 'ignored');
    assert.match(String(res.body.reason), /branch master/);
    assert.equal(await exists('deployment', 'web', ns), false);
  });

  test('a pushed tag deploys the tag', async (t) => {
    const { fn, ns } = await deployerWith(t, [{ source: 'github', repository: 'Codertocat/Hello-World', tags: 'v*', image: `${GHCR}:\${tag}`, targets: ['web'] }]);
    const res = await github(fn, 'push', event('github-push-tag'));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(await liveImage(ns), `${GHCR}:v1.2.0`);
  });

  test('registry_package published deploys repository:tag@digest', async (t) => {
    const { fn, ns } = await deployerWith(t, [{ source: 'github', repository: 'Codertocat/Hello-World', tags: '>=1.0.0', image: `${GHCR}:\${tag}`, targets: ['web'] }]);
    const res = await github(fn, 'registry_package', event('github-registry_package'));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(await liveImage(ns), `${GHCR}:1.4.0@sha256:d438f7a8e591ade065591ffe54665d15080c0a598a5e1ac2cc9242e80e92596f`);
  });

  const onOcto = [{ source: 'github', repository: 'octo-org/octo-repo', branch: 'master', image: `${GHCR}:sha-\${shortSha}`, targets: ['web'] }];

  test('workflow_run completed with success deploys its head commit', async (t) => {
    const { fn, ns } = await deployerWith(t, onOcto);
    const res = await github(fn, 'workflow_run', event('github-workflow_run'));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(await liveImage(ns), `${GHCR}:sha-3484a3f`);
    const live = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
    assert.equal(live.metadata.annotations['gke-deployer/source'], 'github/workflow_run');
  });

  test('workflow_run completed with failure → 202 ignored, nothing applied', async (t) => {
    const { fn, ns } = await deployerWith(t, onOcto);
    const failed = JSON.parse(event('github-workflow_run')) as { workflow_run: { conclusion: string } };
    failed.workflow_run.conclusion = 'failure';
    const res = await github(fn, 'workflow_run', JSON.stringify(failed));
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.status, 'ignored');
    assert.equal(await exists('deployment', 'web', ns), false);
  });

  test('an event not acted on (issues) → 202 ignored', async (t) => {
    const { fn, ns } = await deployerWith(t, onMaster);
    const res = await github(fn, 'issues', event('github-issues'));
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.reason, 'GitHub event "issues" is not acted on');
    assert.equal(await exists('deployment', 'web', ns), false);
  });

  test('a body over 1 MiB → 413, even correctly signed; nothing applied', async (t) => {
    const { fn, ns } = await deployerWith(t, onMaster);
    const big = JSON.stringify({ ...(JSON.parse(event('github-push')) as object), padding: 'x'.repeat(1024 * 1024) });
    const res = await github(fn, 'push', big);
    assert.equal(res.status, 413, JSON.stringify(res.body));
    assert.equal(errorOf(res.body).code, 'PAYLOAD_TOO_LARGE');
    assert.equal(await exists('deployment', 'web', ns), false);
  });

  test('a signed payload of the wrong shape → 400 naming the field, nothing applied', async (t) => {
    const { fn, ns } = await deployerWith(t, onMaster);
    const bad = JSON.stringify({ ...(JSON.parse(event('github-push')) as object), after: 42 });
    const res = await github(fn, 'push', bad);
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(errorOf(res.body).code, 'BAD_REQUEST');
    assert.match(errorOf(res.body).message ?? '', /invalid GitHub push payload: after:/);
    assert.equal(await exists('deployment', 'web', ns), false);
  });

  test('a form-encoded delivery → 415 asking for application/json', async (t) => {
    const { fn } = await deployerWith(t, onMaster);
    const body = `payload=${encodeURIComponent(event('github-push'))}`;
    const res = await github(fn, 'push', body, { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(res.status, 415, JSON.stringify(res.body));
    assert.match(errorOf(res.body).message ?? '', /Content type.*application\/json/);
  });
});

describe('POST /webhooks/gitlab', () => {
  const rules = [
    { source: 'gitlab', repository: 'mike/diaspora', branch: 'master', image: `${GL_IMAGE}:\${sha}`, targets: ['web'] },
    { source: 'gitlab', repository: 'mike/diaspora', tags: 'v*', image: `${GL_IMAGE}:\${tag}`, targets: ['web'] },
  ];

  test('a Push Hook with the right token deploys checkout_sha, stamped with the event UUID', async (t) => {
    const { fn, ns } = await deployerWith(t, rules);
    const res = await gitlab(fn, 'Push Hook', event('gitlab-push'));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const live = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
    assert.equal(live.spec.template.spec.containers[0]?.image, `${GL_IMAGE}:da1560886d4f094c3e6c9ef40349f7d38b5d27d7`);
    assert.equal(live.metadata.annotations['gke-deployer/source'], 'gitlab/push');
    assert.equal(live.metadata.annotations['gke-deployer/request-id'], '9cebe914-4827-408f-b014-cfa23a47a35f');
    assertNotLogged(fn, 0, [GITLAB_TOKEN]);
  });

  const pushHook = { 'x-gitlab-event': 'Push Hook' };
  for (const [name, headers] of [
    ['a wrong token', { ...pushHook, 'x-gitlab-token': 'gl-webhook-token-for-test' }],
    ['no token header', pushHook],
  ] as const) {
    test(`${name} → 401, nothing applied, no token in answer or log`, async (t) => {
      const { fn, ns } = await deployerWith(t, rules);
      const res = await fn.post('/webhooks/gitlab', event('gitlab-push'), headers);
      assert.equal(res.status, 401, JSON.stringify(res.body));
      assert.equal(errorOf(res.body).code, 'UNAUTHENTICATED');
      assert.equal(await exists('deployment', 'web', ns), false);
      // The configured token, and the wrong one presented (a near miss of it).
      const presented = 'x-gitlab-token' in headers ? [headers['x-gitlab-token']] : [];
      assertNotLogged(fn, 0, [GITLAB_TOKEN, ...presented]);
      for (const s of [GITLAB_TOKEN, ...presented]) assert.ok(!JSON.stringify(res.body).includes(s), JSON.stringify(res.body));
    });
  }

  test('a Tag Push Hook deploys the tag', async (t) => {
    const { fn, ns } = await deployerWith(t, rules);
    const res = await gitlab(fn, 'Tag Push Hook', event('gitlab-tag_push'));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(await liveImage(ns), `${GL_IMAGE}:v1.0.0`);
  });

  test('a successful Pipeline Hook deploys its commit', async (t) => {
    const { fn, ns } = await deployerWith(t, rules);
    const res = await gitlab(fn, 'Pipeline Hook', event('gitlab-pipeline'));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(await liveImage(ns), `${GL_IMAGE}:bcbb5ec396a2c0f828686f14fac9b80b780504f2`);
    const live = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
    assert.equal(live.metadata.annotations['gke-deployer/source'], 'gitlab/pipeline');
  });

  test('a failed pipeline → 202 ignored, nothing applied', async (t) => {
    const { fn, ns } = await deployerWith(t, rules);
    const res = await gitlab(fn, 'Pipeline Hook', event('gitlab-pipeline-failed'));
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.status, 'ignored');
    assert.match(String(res.body.reason), /failed/);
    assert.equal(await exists('deployment', 'web', ns), false);
  });

  test('over 1 MiB → 413; a malformed payload → 400; nothing applied', async (t) => {
    const { fn, ns } = await deployerWith(t, rules);
    const big = JSON.stringify({ ...(JSON.parse(event('gitlab-push')) as object), padding: 'x'.repeat(1024 * 1024) });
    const tooLarge = await gitlab(fn, 'Push Hook', big);
    assert.equal(tooLarge.status, 413, JSON.stringify(tooLarge.body));
    const noProject = JSON.stringify({ ...(JSON.parse(event('gitlab-push')) as object), project: null });
    const malformed = await gitlab(fn, 'Push Hook', noProject);
    assert.equal(malformed.status, 400, JSON.stringify(malformed.body));
    assert.match(errorOf(malformed.body).message ?? '', /invalid GitLab Push Hook payload: project:/);
    assert.equal(await exists('deployment', 'web', ns), false);
  });
});

describe('webhooks and the rollout', () => {
  test('a push whose image fails is answered 200 rolled-back; replaying the delivery is a duplicate', async (t) => {
    const { fn, ns } = await deployerWith(t, [
      { source: 'github', repository: 'Codertocat/Hello-World', branch: 'master', image: `${GHCR}:fail-pull-\${shortSha}`, targets: ['web'] },
    ]);
    const good = await fn.post('/deploy', { target: 'web', image: `${GHCR}:1.0.0` });
    assert.equal(good.status, 200, JSON.stringify(good.body));
    const body = event('github-push');
    const res = await github(fn, 'push', body, { 'x-github-delivery': 'b1a2c3d4-0000-4000-8000-00000000f411' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'rolled-back');
    assert.match(String(res.body.reason), /^ImagePullBackOff/);
    assert.equal(await liveImage(ns), `${GHCR}:1.0.0`);
    // A captured delivery sent again: same id, same signature. Nothing is deployed again.
    const replay = await github(fn, 'push', body, { 'x-github-delivery': 'b1a2c3d4-0000-4000-8000-00000000f411' });
    assert.equal(replay.status, 200, JSON.stringify(replay.body));
    assert.equal(replay.body.status, 'duplicate');
    assert.equal(await liveImage(ns), `${GHCR}:1.0.0`);
  });
});
