import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeployError } from '../../src/errors.ts';
import { parseImage } from '../../src/core/image-ref.ts';
import { checkImageAllowed } from '../../src/policy/image.ts';

const DIGEST = `sha256:${'a'.repeat(64)}`;

test('tag, digest, or both', () => {
  assert.deepEqual(parseImage('europe-docker.pkg.dev/p/apps/web:1.2.3'), { repository: 'europe-docker.pkg.dev/p/apps/web', tag: '1.2.3', ref: 'europe-docker.pkg.dev/p/apps/web:1.2.3' });
  assert.deepEqual(parseImage(`europe-docker.pkg.dev/p/apps/web@${DIGEST}`), { repository: 'europe-docker.pkg.dev/p/apps/web', digest: DIGEST, ref: `europe-docker.pkg.dev/p/apps/web@${DIGEST}` });
  assert.equal(parseImage(`localhost:5000/web:v1@${DIGEST}`).repository, 'localhost:5000/web');
});

test('refused: no tag or digest, bad syntax, short digest, overlong', () => {
  for (const bad of ['europe-docker.pkg.dev/p/apps/web', 'Web:1', 'web:1 ', 'web@sha256:abc', 'web:' + 'x'.repeat(200), 'a/'.repeat(300) + 'b:1']) {
    assert.throws(() => parseImage(bad), (e: unknown) => e instanceof DeployError && e.code === 'INVALID_IMAGE', bad);
  }
});

test('the allow-list matches whole repositories only', () => {
  const allowed = ['europe-docker.pkg.dev/p/apps/web'];
  checkImageAllowed(parseImage('europe-docker.pkg.dev/p/apps/web:1'), allowed, 't');
  for (const other of ['europe-docker.pkg.dev/p/apps/web-evil:1', 'europe-docker.pkg.dev/p/apps/web/sub:1', 'evil.io/europe-docker.pkg.dev/p/apps/web:1']) {
    assert.throws(() => checkImageAllowed(parseImage(other), allowed, 't'), (e: unknown) => e instanceof DeployError && e.code === 'IMAGE_NOT_ALLOWED');
  }
});
