// POST /webhooks/github and /webhooks/gitlab end to end: the documented payloads, signed
// or tokened as GitHub and GitLab do, through the real function into the sandbox cluster.
// Every outcome is checked with the API server, not only with the answer.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';
import { parse, stringify } from 'yaml';
import { configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { startGithubApi } from './support/github-api.ts';
import { startGitlabApi } from './support/gitlab-api.ts';
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

/** A function whose one target, in a fresh namespace, is deployed by `rules`; `report` as in the config. */
/** `approval`: the target's approvers (every deploy of it is held until one approves). */
async function deployerWith(t: TestContext, rules: Record<string, unknown>[], report?: Record<string, unknown>, approval?: { approvers: string[] }): Promise<{ fn: RunningFunction; ns: string }> {
  const info = await useSandboxEnv();
  const ns = await namespace('hook');
  const base = configYaml({
    auth: {
      direct: 'none',
      scheduler: 'none',
      github: { secretEnv: 'TEST_GITHUB_WEBHOOK_SECRET' },
      gitlab: { tokenEnv: 'TEST_GITLAB_WEBHOOK_TOKEN' },
      ...(approval && { approve: { audience: 'https://gke-deployer.example.run.app/approve' } }),
    },
    clusters: { sandbox: gkeCluster(info) },
    targets: { web: webTarget(ns, { images: [GHCR, GL_IMAGE], ...(approval && { approval }) }) },
    ...(report && { report }),
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
  test('a push whose image fails is answered 200 rolled-back; replaying the delivery answers rolled-back again, deploying nothing', async (t) => {
    const { fn, ns } = await deployerWith(t, [
      { source: 'github', repository: 'Codertocat/Hello-World', branch: 'master', image: `${GHCR}:fail-pull-\${shortSha}`, targets: ['web'] },
    ]);
    // Before the fixture's push (2019-05-15): Git events are ordered by what GitHub signed, not by arrival.
    const good = await fn.post('/deploy', { target: 'web', image: `${GHCR}:1.0.0`, eventTime: '2019-01-01T00:00:00Z' });
    assert.equal(good.status, 200, JSON.stringify(good.body));
    const body = event('github-push');
    const res = await github(fn, 'push', body, { 'x-github-delivery': 'b1a2c3d4-0000-4000-8000-00000000f411' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'rolled-back');
    assert.match(String(res.body.reason), /^ImagePullBackOff/);
    assert.equal(await liveImage(ns), `${GHCR}:1.0.0`);
    // A captured delivery sent again: same id, same signature. Nothing is deployed again, and
    // the answer is still that it was rolled back (issue 17 item 8).
    const replay = await github(fn, 'push', body, { 'x-github-delivery': 'b1a2c3d4-0000-4000-8000-00000000f411' });
    assert.equal(replay.status, 200, JSON.stringify(replay.body));
    assert.equal(replay.body.status, 'rolled-back', JSON.stringify(replay.body));
    assert.equal(await liveImage(ns), `${GHCR}:1.0.0`);
  });
});

// Issue 17 item 3: Git events are ordered by what the host signed in the body (and, with a
// report token, by the commits' history), never by when they arrived. Every body below is a
// real fixture, edited where a second commit is needed and signed again as GitHub would.
describe('webhooks: ordering Git events', () => {
  const OLD = '6113728f27ae82c7b1a177c8d03f9e96e0adf246'; // github-push.json's commit
  const NEW = '0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c';
  const GH_REPO = 'Codertocat/Hello-World';
  const onMasterSha = [{ source: 'github', repository: GH_REPO, branch: 'master', image: `${GHCR}:\${sha}`, targets: ['web'] }];
  const delivery = () => `${Math.random().toString(16).slice(2, 10)}-0000-4000-8000-000000000000`;

  /** github-push.json as a push of `sha`, which GitHub took at `pushedAt` (epoch seconds). */
  function push(sha: string, pushedAt: number): string {
    const p = JSON.parse(event('github-push')) as { after: string; head_commit: { id: string }; repository: { pushed_at: number } };
    p.after = sha;
    p.head_commit.id = sha;
    p.repository.pushed_at = pushedAt;
    return JSON.stringify(p);
  }

  /** github-workflow_run.json as a successful run on Codertocat/Hello-World's `sha`, created (triggered) at `createdAt`. */
  function run(sha: string, createdAt: string, rerunAt?: string): string {
    const p = JSON.parse(event('github-workflow_run')) as { repository: { full_name: string }; workflow_run: Record<string, unknown> & { head_repository: { full_name: string } } };
    p.repository.full_name = GH_REPO;
    Object.assign(p.workflow_run, { head_sha: sha, created_at: createdAt, run_started_at: rerunAt ?? createdAt, updated_at: rerunAt ?? createdAt, run_attempt: rerunAt ? 2 : 1 });
    p.workflow_run.head_repository.full_name = GH_REPO;
    return JSON.stringify(p);
  }

  test('GitHub "Redeliver" of an older push, after a newer one, under a new delivery id → stale; the newer image stays', async (t) => {
    const { fn, ns } = await deployerWith(t, onMasterSha);
    const older = event('github-push'); // pushed_at 1557933657
    const newer = await github(fn, 'push', push(NEW, 1557933657 + 600), { 'x-github-delivery': delivery() });
    assert.equal(newer.body.status, 'ready', JSON.stringify(newer.body));
    // The captured older body and its signature, replayed (or redelivered) later under a new id.
    const replay = await github(fn, 'push', older, { 'x-github-delivery': delivery() });
    assert.equal(replay.status, 200, JSON.stringify(replay.body));
    assert.equal(replay.body.status, 'stale', JSON.stringify(replay.body));
    assert.equal(await liveImage(ns), `${GHCR}:${NEW}`);
    const live = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
    assert.equal(live.metadata.annotations['gke-deployer/commit'], `github:${GH_REPO}@${NEW}`);
    assert.equal(live.metadata.annotations['gke-deployer/event-time'], '2019-05-15T15:30:57.000Z');
  });

  test('a re-run of an older workflow run, finishing after the newer run → stale (its created_at, not its re-run time)', async (t) => {
    const { fn, ns } = await deployerWith(t, onMasterSha);
    const newer = await github(fn, 'workflow_run', run(NEW, '2020-10-05T17:00:00Z'), { 'x-github-delivery': delivery() });
    assert.equal(newer.body.status, 'ready', JSON.stringify(newer.body));
    const rerun = await github(fn, 'workflow_run', run(OLD, '2020-10-05T16:33:24Z', '2020-10-06T09:00:00Z'), { 'x-github-delivery': delivery() });
    assert.equal(rerun.body.status, 'stale', JSON.stringify(rerun.body));
    assert.equal(await liveImage(ns), `${GHCR}:${NEW}`);
  });

  describe('with a report.github token: the commits\' history decides', () => {
    const TOKEN = 'ghp_orderingTestToken0000000000000000';

    async function withApi(t: TestContext, approval?: { approvers: string[] }) {
      const api = await startGithubApi(TOKEN);
      t.after(() => api.close());
      api.graph.add(GH_REPO, OLD).add(GH_REPO, NEW, OLD);
      process.env.TEST_ORDERING_GITHUB_TOKEN = TOKEN; // the config loader checks it is set
      const { fn, ns } = await deployerWith(t, onMasterSha, { github: { tokenEnv: 'TEST_ORDERING_GITHUB_TOKEN', apiUrl: api.url } }, approval);
      return { api, fn, ns };
    }

    test('held for approval: a run of the older commit triggered later does not replace the held newer commit; it is superseded, by commit', async (t) => {
      const { fn, ns } = await withApi(t, { approvers: ['alice@example.com'] });
      const newer = await github(fn, 'workflow_run', run(NEW, '2020-10-05T17:00:00Z'), { 'x-github-delivery': delivery() });
      // Webhooks answer 200 for every outcome (README, Routes): GitHub retries nothing.
      assert.deepEqual([newer.status, newer.body.status], [200, 'held'], JSON.stringify(newer.body));
      const older = await github(fn, 'workflow_run', run(OLD, '2020-10-05T18:00:00Z'), { 'x-github-delivery': delivery() });
      assert.deepEqual([older.status, older.body.status], [200, 'superseded'], JSON.stringify(older.body));
      const hold = await kubectlJson<{ data: Record<string, string>; metadata: { annotations: Record<string, string> } }>(['-n', ns, 'get', 'configmap', 'gke-deployer-hold-web']);
      assert.equal(hold.data.image, `${GHCR}:${NEW}`, 'the newer commit stays held');
      assert.equal(hold.metadata.annotations['gke-deployer/commit'], `github:${GH_REPO}@${NEW}`);
    });

    test('a run of the older commit triggered later (its time is newer) → stale, by commit', async (t) => {
      const { api, fn, ns } = await withApi(t);
      assert.equal((await github(fn, 'workflow_run', run(NEW, '2020-10-05T17:00:00Z'), { 'x-github-delivery': delivery() })).body.status, 'ready');
      const older = await github(fn, 'workflow_run', run(OLD, '2020-10-05T18:00:00Z'), { 'x-github-delivery': delivery() });
      assert.equal(older.body.status, 'stale', JSON.stringify(older.body));
      assert.match(String(older.body.reason), new RegExp(`deploys github:${GH_REPO}@${OLD}, which is behind github:${GH_REPO}@${NEW}`));
      assert.equal(await liveImage(ns), `${GHCR}:${NEW}`);
      // Asked with the recorded commit as the base and the event's as the head.
      assert.ok(api.calls.some((c) => c.method === 'GET' && c.path === `/repos/${GH_REPO}/compare/${NEW}...${OLD}` && c.authenticated), JSON.stringify(api.calls.map((c) => c.path)));
      assert.ok(!fn.lines.join('').includes(TOKEN), 'the token is never logged');
    });

    test('the newer commit\'s run finishing after an older commit\'s later-triggered run → deployed, by commit', async (t) => {
      const { fn, ns } = await withApi(t);
      assert.equal((await github(fn, 'workflow_run', run(OLD, '2020-10-05T18:00:00Z'), { 'x-github-delivery': delivery() })).body.status, 'ready');
      const newer = await github(fn, 'workflow_run', run(NEW, '2020-10-05T17:00:00Z'), { 'x-github-delivery': delivery() });
      assert.equal(newer.body.status, 'ready', JSON.stringify(newer.body));
      assert.equal(await liveImage(ns), `${GHCR}:${NEW}`);
    });

    test('a reconcile keeps the commit stamp with the recorded event: an older commit\'s later run is still stale, by commit', async (t) => {
      const { fn, ns } = await withApi(t);
      assert.equal((await github(fn, 'workflow_run', run(NEW, '2020-10-05T17:00:00Z'), { 'x-github-delivery': delivery() })).body.status, 'ready');
      const reconciled = await fn.post('/scheduler', { target: 'web' });
      assert.equal(reconciled.status, 200, JSON.stringify(reconciled.body));
      assert.equal((await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web'])).metadata.annotations['gke-deployer/commit'], `github:${GH_REPO}@${NEW}`);
      const older = await github(fn, 'workflow_run', run(OLD, '2020-10-05T18:00:00Z'), { 'x-github-delivery': delivery() });
      assert.equal(older.body.status, 'stale', JSON.stringify(older.body));
      assert.equal(await liveImage(ns), `${GHCR}:${NEW}`);
    });

    test('a deploy without a commit (/deploy) drops the stamp: the next Git event is judged by time', async (t) => {
      const { fn, ns } = await withApi(t);
      assert.equal((await github(fn, 'workflow_run', run(NEW, '2020-10-05T17:00:00Z'), { 'x-github-delivery': delivery() })).body.status, 'ready');
      assert.equal((await fn.post('/deploy', { target: 'web', image: `${GHCR}:manual`, eventTime: '2020-10-05T17:30:00Z' })).body.status, 'ready');
      assert.equal((await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web'])).metadata.annotations['gke-deployer/commit'], undefined);
      assert.equal((await github(fn, 'workflow_run', run(OLD, '2020-10-05T18:00:00Z'), { 'x-github-delivery': delivery() })).body.status, 'ready');
    });

    test('compare failing (500): the times decide, and a warning says so', async (t) => {
      const { api, fn, ns } = await withApi(t);
      api.compareFails = 500;
      assert.equal((await github(fn, 'workflow_run', run(OLD, '2020-10-05T18:00:00Z'), { 'x-github-delivery': delivery() })).body.status, 'ready');
      const newer = await github(fn, 'workflow_run', run(NEW, '2020-10-05T17:00:00Z'), { 'x-github-delivery': delivery() });
      assert.equal(newer.body.status, 'stale', JSON.stringify(newer.body));
      assert.equal(await liveImage(ns), `${GHCR}:${OLD}`);
      assert.ok(fn.logs.some((l) => l.severity === 'WARNING' && /could not compare Codertocat\/Hello-World .*answered 500; ordering by event time/.test(l.message)), JSON.stringify(fn.logs.filter((l) => l.severity === 'WARNING')));
    });
  });

  const GL_OLD = 'b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327'; // the first commit of gitlab-push.json
  const GL_NEW = 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7'; // its checkout_sha
  const glRules = [{ source: 'gitlab', repository: 'mike/diaspora', branch: 'master', image: `${GL_IMAGE}:\${sha}`, targets: ['web'] }];

  /** gitlab-push.json as the push of `sha` (one of its commits). */
  function glPush(sha: string): string {
    const p = JSON.parse(event('gitlab-push')) as { after: string; checkout_sha: string };
    p.after = sha;
    p.checkout_sha = sha;
    return JSON.stringify(p);
  }

  test('GitLab: an older Push Hook resent after a newer one, under a new UUID → stale (the pushed commit\'s time)', async (t) => {
    const { fn, ns } = await deployerWith(t, glRules);
    assert.equal((await gitlab(fn, 'Push Hook', glPush(GL_NEW), { 'x-gitlab-event-uuid': delivery() })).body.status, 'ready');
    const older = await gitlab(fn, 'Push Hook', glPush(GL_OLD), { 'x-gitlab-event-uuid': delivery() });
    assert.equal(older.body.status, 'stale', JSON.stringify(older.body));
    assert.equal(await liveImage(ns), `${GL_IMAGE}:${GL_NEW}`);
  });

  test('GitLab with a report.gitlab token: a pipeline of the older commit created later → stale, by merge_base', async (t) => {
    const TOKEN = 'glpat-orderingTestToken000';
    const api = await startGitlabApi(TOKEN);
    t.after(() => api.close());
    api.graph.add('mike/diaspora', GL_OLD).add('mike/diaspora', GL_NEW, GL_OLD);
    process.env.TEST_ORDERING_GITLAB_TOKEN = TOKEN;
    const { fn, ns } = await deployerWith(t, glRules, { gitlab: { tokenEnv: 'TEST_ORDERING_GITLAB_TOKEN', apiUrl: api.url } });
    const pipeline = (sha: string, createdAt: string) => {
      const p = JSON.parse(event('gitlab-pipeline')) as { object_attributes: Record<string, unknown>; commit: { id: string } };
      Object.assign(p.object_attributes, { sha, created_at: createdAt });
      p.commit.id = sha;
      return JSON.stringify(p);
    };
    assert.equal((await gitlab(fn, 'Pipeline Hook', pipeline(GL_NEW, '2016-08-12 15:23:28 UTC'), { 'x-gitlab-event-uuid': delivery() })).body.status, 'ready');
    const older = await gitlab(fn, 'Pipeline Hook', pipeline(GL_OLD, '2016-08-12 16:00:00 UTC'), { 'x-gitlab-event-uuid': delivery() });
    assert.equal(older.body.status, 'stale', JSON.stringify(older.body));
    assert.equal(await liveImage(ns), `${GL_IMAGE}:${GL_NEW}`);
    assert.ok(api.calls.some((c) => c.path === '/projects/mike%2Fdiaspora/repository/merge_base' && c.query.getAll('refs[]').join() === `${GL_NEW},${GL_OLD}`), JSON.stringify(api.calls.map((c) => c.path)));
  });
});
