// The Git hosts' answers on how two commits relate (src/policy/ancestry.ts), against the local
// GitHub and GitLab API fakes: compare for GitHub, merge_base for GitLab. Every failure is an
// unknown answer (the times decide), said in a warning without the token.
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { ANCESTRY_TIMEOUT_MS, gitAncestry } from '../../src/policy/ancestry.ts';
import { startGithubApi } from '../support/github-api.ts';
import { startGitlabApi } from '../support/gitlab-api.ts';

const TOKEN = 'ghp_ancestryTestToken0123456789';
const [A, B, C, D] = ['a', 'b', 'c', 'd'].map((c) => c.repeat(40)) as [string, string, string, string];
const gh = (sha: string, repository = 'acme/web') => ({ host: 'github', repository, sha });
const gl = (sha: string) => ({ host: 'gitlab', repository: 'group/sub/web', sha });

describe('gitAncestry', () => {
  test('no report token configured: no ancestry (Git events are ordered by time)', () => {
    assert.equal(gitAncestry(undefined, {}), undefined);
    assert.equal(gitAncestry({ github: { tokenEnv: 'UNSET_TOKEN_VAR', apiUrl: 'https://api.github.com' } }, {}), undefined);
  });

  test('GitHub: compare base...head says ahead, behind, identical or diverged; answers are cached', async (t) => {
    const api = await startGithubApi(TOKEN);
    t.after(() => api.close());
    // A ← B ← C, and D branched off A.
    api.graph.add('acme/web', A).add('acme/web', B, A).add('acme/web', C, B).add('acme/web', D, A);
    const ancestry = gitAncestry({ github: { tokenEnv: 'T', apiUrl: api.url } }, { T: TOKEN })!;
    assert.equal(await ancestry(gh(A), gh(C)), 'ahead');
    assert.equal(await ancestry(gh(C), gh(A)), 'behind');
    assert.equal(await ancestry(gh(B), gh(B)), 'identical');
    assert.equal(await ancestry(gh(C), gh(D)), 'diverged');
    const asked = api.calls.length;
    assert.equal(await ancestry(gh(C), gh(A)), 'behind');
    assert.equal(api.calls.length, asked, 'a known answer is not asked again');
    assert.deepEqual(api.calls.map((c) => `${c.method} ${c.path}?${c.query.toString()}`)[0], `GET /repos/acme/web/compare/${A}...${C}?per_page=1`);
    assert.ok(api.calls.every((c) => c.authenticated && c.userAgent === 'gke-deployer'));
  });

  test('GitHub: an unknown commit (404), a server error, a wrong token → unknown, with a warning that holds no token', async (t) => {
    const api = await startGithubApi(TOKEN);
    t.after(() => api.close());
    api.graph.add('acme/web', A).add('acme/web', B, A);
    const warnings: string[] = [];
    const ancestry = gitAncestry({ github: { tokenEnv: 'T', apiUrl: api.url } }, { T: TOKEN }, (m) => warnings.push(m))!;
    assert.equal(await ancestry(gh(A), gh(C)), undefined);
    api.compareFails = 500;
    assert.equal(await ancestry(gh(A), gh(B)), undefined);
    api.compareFails = undefined;
    const wrong = gitAncestry({ github: { tokenEnv: 'T', apiUrl: api.url } }, { T: 'not-the-token' }, (m) => warnings.push(m))!;
    assert.equal(await wrong(gh(A), gh(B)), undefined);
    assert.equal(warnings.length, 3);
    assert.match(warnings[0]!, /answered 404; ordering by event time/);
    assert.match(warnings[1]!, /answered 500/);
    assert.match(warnings[2]!, /answered 401/);
    for (const w of warnings) assert.ok(!w.includes(TOKEN) && !w.includes('not-the-token'), w);
    // A failure is not cached: the next question is asked again.
    assert.equal(await ancestry(gh(A), gh(B)), 'ahead');
  });

  test('GitLab: merge_base is the recorded commit (ahead), the event\'s (behind), both (identical) or another (diverged)', async (t) => {
    const api = await startGitlabApi(TOKEN);
    t.after(() => api.close());
    api.graph.add('group/sub/web', A).add('group/sub/web', B, A).add('group/sub/web', C, B).add('group/sub/web', D, A);
    const ancestry = gitAncestry({ gitlab: { tokenEnv: 'T', apiUrl: api.url } }, { T: TOKEN })!;
    assert.equal(await ancestry(gl(A), gl(C)), 'ahead');
    assert.equal(await ancestry(gl(C), gl(A)), 'behind');
    assert.equal(await ancestry(gl(B), gl(B)), 'identical');
    assert.equal(await ancestry(gl(C), gl(D)), 'diverged');
    assert.equal(api.calls[0]?.path, '/projects/group%2Fsub%2Fweb/repository/merge_base');
    assert.deepEqual(api.calls[0]?.query.getAll('refs[]'), [A, C]);
    assert.ok(api.calls.every((c) => c.authenticated));
    // GitHub commits are not GitLab's to answer: no GitHub token, no answer.
    assert.equal(await ancestry(gh(A), gh(C)), undefined);
  });

  test(`a host that does not answer: unknown once the call's bound (${ANCESTRY_TIMEOUT_MS} ms) passes`, async (t) => {
    const hung = http.createServer(() => {});
    hung.listen(0, '127.0.0.1');
    await once(hung, 'listening');
    t.after(() => { hung.closeAllConnections(); hung.close(); });
    const warnings: string[] = [];
    const ancestry = gitAncestry({ github: { tokenEnv: 'T', apiUrl: `http://127.0.0.1:${(hung.address() as { port: number }).port}` } }, { T: TOKEN }, (m) => warnings.push(m))!;
    assert.equal(await ancestry(gh(A), gh(B)), undefined);
    assert.match(warnings[0] ?? '', /could not compare acme\/web/);
  });
});
