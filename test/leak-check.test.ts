// The suite-wide secret check finds a secret in an output, and only then.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { findLeaks, leakCheckCounts, recordOutput, rememberConfiguredSecrets, rememberSecret } from './support/leaks.ts';

test('a remembered secret in a recorded output is a leak; redacted output is not', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'leaks-'));
  const saved = process.env.SANDBOX_DIR;
  process.env.SANDBOX_DIR = dir;
  try {
    rememberSecret('ya29.a-secret-access-token');
    rememberConfiguredSecrets('auth: { github: { secretEnv: LEAK_TEST_SECRET } }', { LEAK_TEST_SECRET: 'gh-webhook-secret-xyz' });
    rememberSecret('short'); // too short to count
    recordOutput('{"message":"invalid ID token: malformed","token":"[redacted]"}');
    assert.deepEqual(findLeaks(dir), []);
    recordOutput('{"message":"refused gh-webhook-secret-xyz"}');
    const leaks = findLeaks(dir);
    assert.equal(leaks.length, 1);
    assert.equal(leaks[0]?.secret, 'gh-w…');
    assert.doesNotMatch(leaks[0]?.line ?? '', /gh-webhook-secret-xyz/);
    assert.deepEqual(leakCheckCounts(dir), { secrets: 2, outputs: 2 });
  } finally {
    if (saved === undefined) delete process.env.SANDBOX_DIR;
    else process.env.SANDBOX_DIR = saved;
  }
});
