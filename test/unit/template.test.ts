// The manifests artifact's tag from a target's template (src/release/template.ts): each
// variable from where the event gives it, and a refusal, never a guessed tag, where it gives none.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DeployIntent } from '../../src/core/intent.ts';
import { DeployError } from '../../src/errors.ts';
import { manifestsTag } from '../../src/release/template.ts';

const REPO = 'europe-docker.pkg.dev/p/apps/web';
const DIGEST = `sha256:${'d'.repeat(64)}`;
const SHA = '0123456789abcdef0123456789abcdef01234567';
type Event = Pick<DeployIntent, 'commit' | 'gitRef'>;
const commit = { host: 'github', repository: 'o/web', sha: SHA } as const;
const NO_EVENT: Event = {};

/** The refusal, checked whole: its code, that no retry helps, and the variable it names. */
function refused(template: string, intent: Event, image: string, variable: string): void {
  assert.throws(
    () => manifestsTag(template, intent, image),
    (e: unknown) => {
      assert.ok(e instanceof DeployError, String(e));
      assert.equal(e.code, 'MANIFESTS_TAG_UNKNOWN');
      assert.equal(e.retryable, false);
      assert.equal(e.http, 400);
      // Named besides in the quoted template, which holds every variable.
      assert.ok(e.message.replace(`"${template}"`, '').includes(`\${${variable}}`), `the message names \${${variable}}: ${e.message}`);
      return true;
    },
    `${template} for ${image} ${JSON.stringify(intent)}`,
  );
}

test('${tag} is the deployed image\'s tag when the event is no Git tag event', () => {
  assert.equal(manifestsTag('${tag}', NO_EVENT, `${REPO}:v1.2.3`), 'v1.2.3');
  // An image pinned already keeps its tag; a branch push gives no Git tag, so the image's counts.
  assert.equal(manifestsTag('${tag}', NO_EVENT, `${REPO}:v1.2.3@${DIGEST}`), 'v1.2.3');
  assert.equal(manifestsTag('${tag}', { commit, gitRef: { branch: 'main' } }, `${REPO}:main-0123456`), 'main-0123456');
});

test('${tag} of a Git tag event is the Git tag, made tag-safe, ahead of the image\'s tag', () => {
  assert.equal(manifestsTag('${tag}', { commit, gitRef: { tag: 'v2.0.0' } }, `${REPO}:0123456`), 'v2.0.0');
  assert.equal(manifestsTag('${tag}', { commit, gitRef: { tag: 'release/1.0' } }, `${REPO}:0123456`), 'release-1.0');
  // The Git tag gives the value even where the image has none.
  assert.equal(manifestsTag('deploy-${tag}', { gitRef: { tag: 'v3' } }, `${REPO}@${DIGEST}`), 'deploy-v3');
});

test('${sha} and ${shortSha} come from the Git event\'s commit', () => {
  assert.equal(manifestsTag('${sha}', { commit }, `${REPO}:v1`), SHA);
  assert.equal(manifestsTag('${shortSha}', { commit }, `${REPO}:v1`), '0123456');
  assert.equal(manifestsTag('sha-${shortSha}', { commit }, `${REPO}@${DIGEST}`), 'sha-0123456');
});

test('${branch} comes from the Git event\'s branch, made tag-safe', () => {
  assert.equal(manifestsTag('${branch}', { commit, gitRef: { branch: 'main' } }, `${REPO}:v1`), 'main');
  assert.equal(manifestsTag('${branch}-${shortSha}', { commit, gitRef: { branch: 'feature/login' } }, `${REPO}:v1`), 'feature-login-0123456');
});

test('a fixed tag is used as written, whatever the event gives', () => {
  assert.equal(manifestsTag('stable', NO_EVENT, `${REPO}:v1`), 'stable');
  assert.equal(manifestsTag('stable', { commit, gitRef: { tag: 'v9' } }, `${REPO}@${DIGEST}`), 'stable');
});

test('a digest-only image has no tag: ${tag} is refused, naming ${tag}', () => {
  refused('${tag}', NO_EVENT, `${REPO}@${DIGEST}`, 'tag');
  // A branch push still has no tag to give.
  refused('${tag}', { commit, gitRef: { branch: 'main' } }, `${REPO}@${DIGEST}`, 'tag');
});

test('${sha}, ${shortSha}, ${branch} without a Git event are refused', () => {
  refused('${sha}', NO_EVENT, `${REPO}:v1`, 'sha');
  refused('${shortSha}', NO_EVENT, `${REPO}:v1`, 'shortSha');
  refused('${branch}', NO_EVENT, `${REPO}:v1`, 'branch');
  // A tag event moved no branch.
  refused('${branch}', { commit, gitRef: { tag: 'v1' } }, `${REPO}:v1`, 'branch');
  // The variable without a value is named, also after one that has one.
  refused('${tag}-${sha}', NO_EVENT, `${REPO}:v1`, 'sha');
});

test('a variable without a value never falls back to latest (or any tag)', () => {
  for (const variable of ['tag', 'sha', 'shortSha', 'branch']) {
    let got: string | undefined;
    try {
      got = manifestsTag(`\${${variable}}`, NO_EVENT, `${REPO}@${DIGEST}`);
    } catch (e) {
      assert.ok(e instanceof DeployError && e.code === 'MANIFESTS_TAG_UNKNOWN', String(e));
    }
    assert.equal(got, undefined, `\${${variable}} gave "${got}"`);
  }
});

test('a filled-in tag that is no valid tag is refused', () => {
  assert.throws(
    () => manifestsTag('${tag}', { gitRef: { tag: `v${'1'.repeat(200)}` } }, `${REPO}:v1`),
    (e: unknown) => e instanceof DeployError && e.code === 'MANIFESTS_TAG_UNKNOWN' && /is not a valid tag/.test(e.message),
  );
});
