import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Rule } from '../../src/config/schema.ts';
import { matchGit, matchImage, tagMatches } from '../../src/policy/rules.ts';

const REPO = 'europe-docker.pkg.dev/p/apps/web';
const DIGEST = `sha256:${'b'.repeat(64)}`;

test('tags: globs, and semver ranges when an operator says so', () => {
  assert.ok(tagMatches('v*', 'v1.2.3'));
  assert.ok(!tagMatches('v*', '1.2.3'));
  assert.ok(tagMatches('>=1.0.0 <2', 'v1.4.0'));
  assert.ok(tagMatches('>=1.0.0 <2', '1.4.0'));
  assert.ok(!tagMatches('>=1.0.0 <2', '2.0.0'));
  assert.ok(!tagMatches('>=1.0.0 <2', 'latest'));
  assert.ok(!tagMatches('>=1.0.0 <2', '1.5.0-rc.1'), 'pre-releases need an explicit range');
  assert.ok(tagMatches('1.x', '1.9.0'));
  assert.ok(tagMatches('^2.1', '2.3.0'));
});

test('image events: repository and tag decide; digests are pinned; tag rules skip digest-only events', () => {
  const rules: Rule[] = [
    { source: 'artifact-registry', repository: REPO, tags: 'v*', targets: ['web'] },
    { source: 'artifact-registry', repository: REPO, targets: ['canary'] },
    { source: 'cloud-build', repository: REPO, targets: ['other'] },
  ];
  assert.deepEqual(matchImage(rules, { source: 'artifact-registry', repository: REPO, tag: 'v1', digest: DIGEST }), [
    { target: 'web', image: `${REPO}:v1@${DIGEST}` },
    { target: 'canary', image: `${REPO}:v1@${DIGEST}` },
  ]);
  assert.deepEqual(matchImage(rules, { source: 'artifact-registry', repository: REPO, digest: DIGEST }), [{ target: 'canary', image: `${REPO}@${DIGEST}` }]);
  assert.deepEqual(matchImage(rules, { source: 'artifact-registry', repository: `${REPO}-x`, tag: 'v1' }), []);
});

test('git events: branch or tag rules, image templates, refs made tag-safe', () => {
  const rules: Rule[] = [
    { source: 'github', repository: 'org/web', branch: 'main', image: `${REPO}:\${shortSha}`, targets: ['web'] },
    { source: 'github', repository: 'org/web', tags: 'release/*', image: `${REPO}:\${tag}`, targets: ['prod'] },
  ];
  const sha = 'a'.repeat(40);
  assert.deepEqual(matchGit(rules, { source: 'github', repository: 'org/web', sha, branch: 'main' }), [{ target: 'web', image: `${REPO}:aaaaaaa` }]);
  assert.deepEqual(matchGit(rules, { source: 'github', repository: 'org/web', sha, branch: 'dev' }), []);
  assert.deepEqual(matchGit(rules, { source: 'github', repository: 'org/web', sha, tag: 'release/1.0' }), [{ target: 'prod', image: `${REPO}:release-1.0` }]);
  assert.deepEqual(matchGit(rules, { source: 'gitlab', repository: 'org/web', sha, branch: 'main' }), [], 'source must match');
});
