// GitHub and GitLab webhooks without a cluster: signature and token checks, and how each
// documented payload maps to intents (or is ignored, or refused) under a set of rules.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import type { Request } from '@google-cloud/functions-framework';
import type { Rule } from '../../src/config/schema.ts';
import { DeployError } from '../../src/errors.ts';
import { secretFromEnv, verifyHubSignature, verifyToken } from '../../src/sources/auth/webhook-secret.ts';
import { githubSource, mapGithubEvent } from '../../src/sources/github.ts';
import { gitlabSource, mapGitlabEvent } from '../../src/sources/gitlab.ts';
import { fixture } from '../support/config.ts';

const GHCR = 'ghcr.io/codertocat/hello-world';
const GL_IMAGE = 'registry.example.com/mike/diaspora';

function payload(name: string): Record<string, unknown> {
  return JSON.parse(fixture(`events/${name}.json`)) as Record<string, unknown>;
}

/** A copy of `obj` with `value` at the dotted `path`. */
function withField(obj: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(obj);
  const keys = path.split('.');
  let at: Record<string, unknown> = copy;
  for (const k of keys.slice(0, -1)) at = at[k] as Record<string, unknown>;
  at[keys.at(-1)!] = value;
  return copy;
}

function code(err: unknown): string | undefined {
  return err instanceof DeployError ? err.code : undefined;
}

function fakeRequest(headers: Record<string, string | string[]>, body: Buffer | string): Request {
  const rawBody = typeof body === 'string' ? Buffer.from(body) : body;
  return { headers: { 'content-type': 'application/json', ...headers }, rawBody, path: '/', method: 'POST' } as unknown as Request;
}

const sign = (secret: string, body: string | Buffer) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

describe('verifyHubSignature', () => {
  const body = Buffer.from('{"zen":"Design for failure."}');

  test('accepts the HMAC-SHA256 of the raw body, in either hex case', () => {
    verifyHubSignature('s3cret', body, sign('s3cret', body));
    verifyHubSignature('s3cret', body, sign('s3cret', body).toUpperCase().replace('SHA256=', 'sha256='));
  });

  const refused: [string, string | string[] | undefined, RegExp][] = [
    ['missing', undefined, /missing X-Hub-Signature-256/],
    ['empty', '', /missing/],
    ['repeated header', [sign('s3cret', body), sign('s3cret', body)], /missing/],
    ['sha1 (X-Hub-Signature style)', `sha1=${createHmac('sha1', 's3cret').update(body).digest('hex')}`, /malformed/],
    ['truncated', sign('s3cret', body).slice(0, -2), /malformed/],
    ['not hex', `sha256=${'z'.repeat(64)}`, /malformed/],
    ['wrong secret', sign('other', body), /does not match/],
    ['other body', sign('s3cret', Buffer.from('{"zen":"Design for failure!"}')), /does not match/],
  ];
  for (const [name, header, message] of refused) {
    test(`${name} → UNAUTHENTICATED`, () => {
      assert.throws(() => verifyHubSignature('s3cret', body, header), (e: unknown) => code(e) === 'UNAUTHENTICATED' && message.test((e as Error).message));
    });
  }

  test('no message repeats the secret or the signature', () => {
    const sent = sign('other', body);
    try {
      verifyHubSignature('s3cret', body, sent);
      assert.fail('expected a refusal');
    } catch (err) {
      const message = (err as Error).message;
      assert.ok(!message.includes('s3cret') && !message.includes(sent.slice(7)) && !message.includes(sign('s3cret', body).slice(7)));
    }
  });
});

describe('verifyToken', () => {
  test('equal tokens pass; different, longer, shorter, missing or repeated ones do not', () => {
    verifyToken('glpat-token', 'glpat-token', 'X-Gitlab-Token');
    for (const bad of ['glpat-tokem', 'glpat-token ', 'glpat', '', undefined, ['glpat-token', 'glpat-token']]) {
      assert.throws(() => verifyToken('glpat-token', bad, 'X-Gitlab-Token'), (e: unknown) => code(e) === 'UNAUTHENTICATED' && !(e as Error).message.includes('glpat'));
    }
  });

  test('secretFromEnv drops a trailing line break, and refuses an unset variable', () => {
    assert.equal(secretFromEnv('S', { S: 'abc\n' }), 'abc');
    assert.equal(secretFromEnv('S', { S: 'a b' }), 'a b');
    assert.throws(() => secretFromEnv('S', {}), /S is not set/);
    assert.throws(() => secretFromEnv('S', { S: '\n' }), /S is not set/);
  });
});

describe('GitHub events to intents', () => {
  const rules: Rule[] = [
    { source: 'github', repository: 'Codertocat/Hello-World', branch: 'master', image: `${GHCR}:\${sha}`, targets: ['web'] },
    { source: 'github', repository: 'Codertocat/Hello-World', tags: 'v*', image: `${GHCR}:\${tag}`, targets: ['web'] },
    { source: 'github', repository: 'Codertocat/Hello-World', tags: '>=1.0.0', image: `${GHCR}:\${tag}`, targets: ['prod'] },
    { source: 'github', repository: 'octo-org/octo-repo', branch: 'master', image: `ghcr.io/octo-org/octo-repo:sha-\${shortSha}`, targets: ['octo'] },
  ];
  const intent = (target: string, image: string, source: string, gitRef: { branch?: string; tag?: string }, sha = '6113728f27ae82c7b1a177c8d03f9e96e0adf246', repository = 'Codertocat/Hello-World') =>
    ({ target, image, dryRun: false, source, commit: { host: 'github', repository, sha }, gitRef });

  test('ping answers 200 pong', () => {
    assert.deepEqual(mapGithubEvent('ping', payload('github-ping'), rules), { intents: [], reply: { status: 200, body: { status: 'pong' } } });
  });

  test('push to a branch: the head commit, per matching rule', () => {
    const got = mapGithubEvent('push', payload('github-push'), rules);
    assert.deepEqual(got.intents, [intent('web', `${GHCR}:6113728f27ae82c7b1a177c8d03f9e96e0adf246`, 'github/push', { branch: 'master' })]);
    assert.equal(got.context?.repository, 'Codertocat/Hello-World');
  });

  test('push to another branch, or another repository → ignored, saying which', () => {
    const other = mapGithubEvent('push', withField(payload('github-push'), 'ref', 'refs/heads/feature/x'), rules);
    assert.deepEqual(other.intents, []);
    assert.match(other.ignored ?? '', /no rule matches github repository Codertocat\/Hello-World, branch feature\/x/);
    const repo = mapGithubEvent('push', withField(payload('github-push'), 'repository.full_name', 'Codertocat/Other'), rules);
    assert.deepEqual(repo.intents, []);
  });

  test('push of a tag: the tag, through tag rules only (glob and semver range)', () => {
    const got = mapGithubEvent('push', payload('github-push-tag'), rules);
    assert.deepEqual(got.intents, [intent('web', `${GHCR}:v1.2.0`, 'github/push', { tag: 'v1.2.0' }), intent('prod', `${GHCR}:v1.2.0`, 'github/push', { tag: 'v1.2.0' })]);
  });

  test('an annotated tag deploys the commit (head_commit), not the tag object (after)', () => {
    const annotated = withField(payload('github-push'), 'after', 'f'.repeat(40));
    assert.deepEqual(mapGithubEvent('push', annotated, rules).intents, [intent('web', `${GHCR}:6113728f27ae82c7b1a177c8d03f9e96e0adf246`, 'github/push', { branch: 'master' })]);
  });

  test('deleted refs and non-branch refs are ignored', () => {
    const deleted = withField(withField(withField(payload('github-push'), 'deleted', true), 'after', '0'.repeat(40)), 'head_commit', null);
    assert.match(mapGithubEvent('push', deleted, rules).ignored ?? '', /deleted refs\/heads\/master/);
    const notes = withField(payload('github-push'), 'ref', 'refs/notes/commits');
    assert.match(mapGithubEvent('push', notes, rules).ignored ?? '', /neither a branch nor a tag/);
  });

  test('registry_package published: tag and digest pinned, commit from the revision label', () => {
    const got = mapGithubEvent('registry_package', payload('github-registry_package'), rules);
    const digest = 'sha256:d438f7a8e591ade065591ffe54665d15080c0a598a5e1ac2cc9242e80e92596f';
    // 1.4.0 does not match v*; it satisfies >=1.0.0.
    assert.deepEqual(got.intents, [intent('prod', `${GHCR}:1.4.0@${digest}`, 'github/registry_package', { tag: '1.4.0' })]);
    assert.equal(got.context?.sha, '6113728f27ae82c7b1a177c8d03f9e96e0adf246');
  });

  test('registry_package: rules for another package of the repository do not get its digest', () => {
    const other: Rule[] = [{ source: 'github', repository: 'Codertocat/Hello-World', tags: '*', image: 'ghcr.io/codertocat/worker:${tag}', targets: ['worker'] }];
    const got = mapGithubEvent('registry_package', payload('github-registry_package'), other);
    assert.deepEqual(got.intents, []);
    assert.match(got.ignored ?? '', /other images than package "hello-world"/);
  });

  test('registry_package without a revision label: rules using ${sha} cannot apply, others still do', () => {
    const unlabelled = withField(payload('github-registry_package'), 'registry_package.package_version.container_metadata.labels', null);
    const shaRule: Rule[] = [{ source: 'github', repository: 'Codertocat/Hello-World', tags: '*', image: `${GHCR}:\${sha}`, targets: ['web'] }];
    const got = mapGithubEvent('registry_package', unlabelled, shaRule);
    assert.deepEqual(got.intents, []);
    assert.match(got.ignored ?? '', /org\.opencontainers\.image\.revision/);
    assert.equal(mapGithubEvent('registry_package', unlabelled, rules).intents.length, 1);
  });

  test('registry_package: other actions, non-container packages and untagged versions are ignored', () => {
    const base = payload('github-registry_package');
    assert.match(mapGithubEvent('registry_package', withField(base, 'action', 'updated'), rules).ignored ?? '', /action "updated"/);
    assert.match(mapGithubEvent('registry_package', withField(base, 'registry_package.package_type', 'npm'), rules).ignored ?? '', /"npm" is not a container image/);
    const untagged = withField(base, 'registry_package.package_version.container_metadata.tag.name', '');
    assert.match(mapGithubEvent('registry_package', untagged, rules).ignored ?? '', /has no tag/);
    // The former Docker registry's type, lower case as in the schema, still counts.
    assert.equal(mapGithubEvent('registry_package', withField(base, 'registry_package.package_type', 'docker'), rules).intents.length, 1);
  });

  test('workflow_run completed with success: the head commit on its branch', () => {
    const got = mapGithubEvent('workflow_run', payload('github-workflow_run'), rules);
    assert.deepEqual(got.intents, [intent('octo', 'ghcr.io/octo-org/octo-repo:sha-3484a3f', 'github/workflow_run', { branch: 'master' }, '3484a3fb816e0859fd6e1cea078d76385ff50625', 'octo-org/octo-repo')]);
  });

  test('workflow_run: failure, in progress, or a fork\'s commit → ignored', () => {
    const base = payload('github-workflow_run');
    assert.match(mapGithubEvent('workflow_run', withField(base, 'workflow_run.conclusion', 'failure'), rules).ignored ?? '', /concluded "failure"/);
    assert.match(mapGithubEvent('workflow_run', withField(base, 'action', 'in_progress'), rules).ignored ?? '', /action "in_progress"/);
    const fork = withField(base, 'workflow_run.head_repository.full_name', 'mallory/octo-repo');
    assert.match(mapGithubEvent('workflow_run', fork, rules).ignored ?? '', /from mallory\/octo-repo/);
  });

  test('other events are ignored by name', () => {
    assert.deepEqual(mapGithubEvent('issues', payload('github-issues'), rules), { intents: [], ignored: 'GitHub event "issues" is not acted on' });
  });

  const malformed: [string, string, Record<string, unknown>, RegExp][] = [
    ['push without ref', 'push', withField(payload('github-push'), 'ref', undefined), /ref/],
    ['push with a short sha', 'push', withField(payload('github-push'), 'after', 'abc123'), /after: must be a full commit SHA/],
    ['push without repository', 'push', withField(payload('github-push'), 'repository', undefined), /repository/],
    ['package with a bad digest', 'registry_package', withField(payload('github-registry_package'), 'registry_package.package_version.container_metadata.tag.digest', 'sha256:abc'), /digest: must be sha256/],
    ['package with a bad tag', 'registry_package', withField(payload('github-registry_package'), 'registry_package.package_version.container_metadata.tag.name', 'a tag'), /tag.name: must be an image tag/],
    ['workflow_run without head_sha', 'workflow_run', withField(payload('github-workflow_run'), 'workflow_run.head_sha', 42), /head_sha/],
  ];
  for (const [name, event, body, message] of malformed) {
    test(`malformed: ${name} → BAD_REQUEST naming the field`, () => {
      assert.throws(() => mapGithubEvent(event, body, rules), (e: unknown) => code(e) === 'BAD_REQUEST' && message.test((e as Error).message));
    });
  }

  test('not an object at all → BAD_REQUEST, never a crash', () => {
    for (const body of [null, 42, 'push', [], { ref: {} }]) {
      assert.throws(() => mapGithubEvent('push', body, rules), (e: unknown) => code(e) === 'BAD_REQUEST');
    }
  });
});

describe('GitHub source: headers', () => {
  process.env.UNIT_GITHUB_SECRET = 'unit-secret';
  const source = githubSource({ secretEnv: 'UNIT_GITHUB_SECRET' }, []);
  const body = fixture('events/github-ping.json');
  const headers = { 'x-github-event': 'ping', 'x-github-delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958', 'x-hub-signature-256': sign('unit-secret', body) };

  test('a signed ping: caller github, delivery id, 200 pong', async () => {
    const req = fakeRequest(headers, body);
    assert.equal(await source.authenticate(req), 'github');
    const delivery = source.receive(req);
    assert.equal(delivery.id, headers['x-github-delivery']);
    assert.deepEqual(delivery.reply, { status: 200, body: { status: 'pong' } });
    assert.equal(delivery.context?.event, 'ping');
  });

  test('over 1 MiB → PAYLOAD_TOO_LARGE before the signature is even computed', async () => {
    const big = Buffer.alloc(1024 * 1024 + 1, 0x20);
    await assert.rejects(async () => source.authenticate(fakeRequest({ ...headers, 'x-hub-signature-256': sign('unit-secret', big) }, big)), (e: unknown) => code(e) === 'PAYLOAD_TOO_LARGE');
  });

  test('form-encoded → 415, saying to switch the webhook to application/json', () => {
    const req = fakeRequest({ ...headers, 'content-type': 'application/x-www-form-urlencoded' }, `payload=${encodeURIComponent(body)}`);
    assert.throws(() => source.receive(req), (e: unknown) => code(e) === 'UNSUPPORTED_MEDIA_TYPE' && /application\/json/.test((e as Error).message) && /GitHub webhook/.test((e as Error).message));
  });

  test('missing or odd X-GitHub-Event → BAD_REQUEST', () => {
    for (const event of [undefined, '', 'push; rm -rf', 'x'.repeat(65)]) {
      const h: Record<string, string> = { ...headers };
      if (event === undefined) delete h['x-github-event'];
      else h['x-github-event'] = event;
      assert.throws(() => source.receive(fakeRequest(h, body)), (e: unknown) => code(e) === 'BAD_REQUEST', String(event));
    }
  });
});

describe('GitLab events to intents', () => {
  const rules: Rule[] = [
    { source: 'gitlab', repository: 'mike/diaspora', branch: 'master', image: `${GL_IMAGE}:\${shortSha}`, targets: ['web'] },
    { source: 'gitlab', repository: 'mike/diaspora', tags: 'v*', image: `${GL_IMAGE}:\${tag}`, targets: ['prod'] },
  ];
  const intent = (target: string, image: string, source: string, sha: string, gitRef: { branch?: string; tag?: string }) => ({ target, image, dryRun: false, source, commit: { host: 'gitlab', repository: 'mike/diaspora', sha }, gitRef });

  test('Push Hook: checkout_sha on the branch', () => {
    assert.deepEqual(mapGitlabEvent('Push Hook', payload('gitlab-push'), rules).intents, [intent('web', `${GL_IMAGE}:da15608`, 'gitlab/push', 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7', { branch: 'master' })]);
  });

  test('Tag Push Hook: the tag', () => {
    assert.deepEqual(mapGitlabEvent('Tag Push Hook', payload('gitlab-tag_push'), rules).intents, [intent('prod', `${GL_IMAGE}:v1.0.0`, 'gitlab/tag_push', '82b3d5ae55f7080f1e6022629cdb57bfae7cccc7', { tag: 'v1.0.0' })]);
  });

  test('Pipeline Hook success: its commit, on its branch or (tag: true) its tag', () => {
    assert.deepEqual(mapGitlabEvent('Pipeline Hook', payload('gitlab-pipeline'), rules).intents, [intent('web', `${GL_IMAGE}:bcbb5ec`, 'gitlab/pipeline', 'bcbb5ec396a2c0f828686f14fac9b80b780504f2', { branch: 'master' })]);
    const tagged = withField(withField(payload('gitlab-pipeline'), 'object_attributes.tag', true), 'object_attributes.ref', 'v2.0.0');
    assert.deepEqual(mapGitlabEvent('Pipeline Hook', tagged, rules).intents, [intent('prod', `${GL_IMAGE}:v2.0.0`, 'gitlab/pipeline', 'bcbb5ec396a2c0f828686f14fac9b80b780504f2', { tag: 'v2.0.0' })]);
  });

  test('Pipeline Hook failed, or for a merge request → ignored', () => {
    assert.match(mapGitlabEvent('Pipeline Hook', payload('gitlab-pipeline-failed'), rules).ignored ?? '', /status "failed"/);
    const mr = withField(payload('gitlab-pipeline'), 'object_attributes.source', 'merge_request_event');
    assert.match(mapGitlabEvent('Pipeline Hook', mr, rules).ignored ?? '', /merge request event/);
  });

  test('a deleted branch (checkout_sha null), a branch push sent as a tag push, other events → ignored', () => {
    const deleted = withField(withField(payload('gitlab-push'), 'checkout_sha', null), 'after', '0'.repeat(40));
    assert.match(mapGitlabEvent('Push Hook', deleted, rules).ignored ?? '', /deleted/);
    assert.match(mapGitlabEvent('Tag Push Hook', payload('gitlab-push'), rules).ignored ?? '', /not a tag/);
    assert.match(mapGitlabEvent('Issue Hook', {}, rules).ignored ?? '', /"Issue Hook" is not acted on/);
    assert.match(mapGitlabEvent('Push Hook', withField(payload('gitlab-push'), 'ref', 'refs/heads/dev'), rules).ignored ?? '', /no rule matches gitlab repository mike\/diaspora, branch dev/);
  });

  test('malformed payloads → BAD_REQUEST naming the field', () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['Push Hook', withField(payload('gitlab-push'), 'project', undefined), /project/],
      ['Push Hook', withField(payload('gitlab-push'), 'checkout_sha', 'HEAD'), /checkout_sha/],
      ['Pipeline Hook', withField(payload('gitlab-pipeline'), 'object_attributes.tag', 'false'), /object_attributes\.tag/],
      ['Pipeline Hook', withField(payload('gitlab-pipeline'), 'object_attributes', undefined), /object_attributes/],
    ];
    for (const [event, body, message] of cases) {
      assert.throws(() => mapGitlabEvent(event, body, rules), (e: unknown) => code(e) === 'BAD_REQUEST' && message.test((e as Error).message), message.source);
    }
  });
});

describe('GitLab source: headers', () => {
  process.env.UNIT_GITLAB_TOKEN = 'unit-token';
  const source = gitlabSource({ tokenEnv: 'UNIT_GITLAB_TOKEN' }, []);
  const body = fixture('events/gitlab-push.json');

  test('the token authenticates; X-Gitlab-Event-UUID is the delivery id', async () => {
    const req = fakeRequest({ 'x-gitlab-token': 'unit-token', 'x-gitlab-event': 'Push Hook', 'x-gitlab-event-uuid': '9cebe914-4827-408f-b014-cfa23a47a35f' }, body);
    assert.equal(await source.authenticate(req), 'gitlab');
    const delivery = source.receive(req);
    assert.equal(delivery.id, '9cebe914-4827-408f-b014-cfa23a47a35f');
    assert.match(delivery.ignored ?? '', /no rule matches/);
  });

  test('wrong or missing token → UNAUTHENTICATED', async () => {
    for (const h of [{ 'x-gitlab-token': 'unit-tokem' }, {}] as Record<string, string>[]) {
      await assert.rejects(async () => source.authenticate(fakeRequest({ ...h, 'x-gitlab-event': 'Push Hook' }, body)), (e: unknown) => code(e) === 'UNAUTHENTICATED');
    }
  });
});

// Issue 17 item 3: a webhook event's time is what the host signed in the body, never when it
// arrived (a Redeliver, a re-run or a replayed capture arrives later with the same body).
describe('event times: what the Git host signed', () => {
  const gh: Rule[] = [
    { source: 'github', repository: 'Codertocat/Hello-World', branch: 'master', image: `${GHCR}:\${sha}`, targets: ['web'] },
    { source: 'github', repository: 'Codertocat/Hello-World', tags: '*', image: `${GHCR}:\${tag}`, targets: ['web'] },
    { source: 'github', repository: 'octo-org/octo-repo', branch: 'master', image: `${GHCR}:\${sha}`, targets: ['web'] },
  ];
  const gl: Rule[] = [
    { source: 'gitlab', repository: 'mike/diaspora', branch: 'master', image: `${GL_IMAGE}:\${sha}`, targets: ['web'] },
    { source: 'gitlab', repository: 'mike/diaspora', tags: 'v*', image: `${GL_IMAGE}:\${tag}`, targets: ['web'] },
  ];

  test('GitHub push: repository.pushed_at (epoch seconds, set by GitHub at the push)', () => {
    assert.equal(mapGithubEvent('push', payload('github-push'), gh).eventTime, '2019-05-15T15:20:57.000Z');
    assert.equal(mapGithubEvent('push', payload('github-push-tag'), gh).eventTime, '2019-05-15T15:20:57.000Z');
  });

  test('GitHub push without pushed_at: the head commit\'s timestamp', () => {
    assert.equal(mapGithubEvent('push', withField(payload('github-push'), 'repository.pushed_at', undefined), gh).eventTime, '2019-05-15T15:19:25.000Z');
  });

  test('GitHub workflow_run: the run\'s created_at (kept by a re-run, unlike run_started_at and updated_at)', () => {
    const rerun = withField(withField(withField(payload('github-workflow_run'), 'workflow_run.run_attempt', 2), 'workflow_run.run_started_at', '2020-10-09T08:00:00Z'), 'workflow_run.updated_at', '2020-10-09T08:03:00Z');
    assert.equal(mapGithubEvent('workflow_run', payload('github-workflow_run'), gh).eventTime, '2020-10-05T16:33:24.000Z');
    assert.equal(mapGithubEvent('workflow_run', rerun, gh).eventTime, '2020-10-05T16:33:24.000Z');
  });

  test('GitHub registry_package: the version\'s time when GitHub sends one; its placeholder 0001-01-01 is no time', () => {
    const base = payload('github-registry_package');
    assert.equal(mapGithubEvent('registry_package', base, gh).eventTime, undefined);
    const dated = withField(base, 'registry_package.package_version.created_at', '2019-05-15T15:25:00Z');
    assert.equal(mapGithubEvent('registry_package', dated, gh).eventTime, '2019-05-15T15:25:00.000Z');
  });

  test('GitLab Push Hook: the timestamp of the pushed commit (checkout_sha) in commits[]', () => {
    assert.equal(mapGitlabEvent('Push Hook', payload('gitlab-push'), gl).eventTime, '2012-01-03T21:36:29.000Z');
    // A tag push lists no commits: no signed time (the arrival time stands).
    assert.equal(mapGitlabEvent('Tag Push Hook', payload('gitlab-tag_push'), gl).eventTime, undefined);
  });

  test('GitLab Pipeline Hook: object_attributes.created_at, in GitLab\'s "YYYY-MM-DD hh:mm:ss UTC" or ISO form', () => {
    assert.equal(mapGitlabEvent('Pipeline Hook', payload('gitlab-pipeline'), gl).eventTime, '2016-08-12T15:23:28.000Z');
    const iso = withField(payload('gitlab-pipeline'), 'object_attributes.created_at', '2016-08-12T15:23:28.000Z');
    assert.equal(mapGitlabEvent('Pipeline Hook', iso, gl).eventTime, '2016-08-12T15:23:28.000Z');
  });

  test('a time that is not one is no time, never a refusal of the event', () => {
    assert.equal(mapGithubEvent('push', withField(withField(payload('github-push'), 'repository.pushed_at', 'soon'), 'head_commit.timestamp', 'later'), gh).eventTime, undefined);
    const noTime = withField(payload('gitlab-push'), 'commits', [{ id: 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7', timestamp: 'yesterday' }]);
    assert.equal(mapGitlabEvent('Push Hook', noTime, gl).eventTime, undefined);
    assert.equal(mapGitlabEvent('Push Hook', noTime, gl).intents.length, 1);
    for (const commits of ['x', 42, null, [null, 'x', { id: 7 }]]) {
      const odd = mapGitlabEvent('Push Hook', withField(payload('gitlab-push'), 'commits', commits), gl);
      assert.equal(odd.eventTime, undefined);
      assert.equal(odd.intents.length, 1, JSON.stringify(commits));
    }
    const oddPush = mapGithubEvent('push', withField(withField(payload('github-push'), 'repository.pushed_at', { at: 1 }), 'head_commit.timestamp', null), gh);
    assert.equal(oddPush.eventTime, undefined);
    assert.equal(oddPush.intents.length, 1);
  });
});
