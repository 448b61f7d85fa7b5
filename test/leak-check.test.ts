// The suite-wide secret check finds a secret in an output, and only then; it knows the
// secrets tests mint, the ones a deployer.yaml names, and every token the sandbox mints
// (the function's own ADC tokens); it searches log lines, answers and a process's stderr.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MINTED_TOKENS, startIdentityServer } from '../sandbox/google/identity.ts';
import { findLeaks, isKnownSecret, leakCheckCounts, recordOutput, rememberConfiguredSecrets, rememberSecret } from './support/leaks.ts';
import { spawnFunction } from './support/process.ts';
import { sandbox } from './support/sandbox.ts';

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

/** Runs `body` with the leak check's files in a fresh folder (not the suite's sandbox folder). */
async function inScratchFolder(body: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'leaks-'));
  const saved = process.env.SANDBOX_DIR;
  process.env.SANDBOX_DIR = dir;
  try {
    await body(dir);
  } finally {
    if (saved === undefined) delete process.env.SANDBOX_DIR;
    else process.env.SANDBOX_DIR = saved;
  }
}

test('the status tokens a deployer.yaml names (report.github.tokenEnv, report.gitlab.tokenEnv) are secrets', () =>
  inScratchFolder((dir) => {
    const config = 'report: { github: { tokenEnv: LEAK_GH_TOKEN }, gitlab: { tokenEnv: LEAK_GL_TOKEN, apiUrl: "https://gitlab.example.com/api/v4" } }';
    rememberConfiguredSecrets(config, { LEAK_GH_TOKEN: 'ghp_leakCheckStatusToken', LEAK_GL_TOKEN: 'glpat-leakCheckStatusToken' });
    recordOutput('{"message":"report to github failed: 401 for token ghp_leakCheckStatusToken"}');
    recordOutput('{"message":"posting with glpat-leakCheckStatusToken"}');
    assert.deepEqual(findLeaks(dir).map((l) => l.secret), ['ghp_…', 'glpa…']);
  }));

test('every token the sandbox identity server mints (the function\'s ADC tokens from its metadata server) is a secret', () =>
  inScratchFolder(async (dir) => {
    const identity = await startIdentityServer({ project: 'leak-check-project', serviceAccount: 'deployer@leak-check-project.iam.gserviceaccount.com', tokenLog: path.join(dir, MINTED_TOKENS) });
    try {
      // As google-auth-library asks the metadata server for the function's access token and an ID token.
      const headers = { 'Metadata-Flavor': 'Google' };
      const base = `${identity.url}/computeMetadata/v1/instance/service-accounts/default`;
      const { access_token: access } = (await (await fetch(`${base}/token`, { headers })).json()) as { access_token: string };
      const id = await (await fetch(`${base}/identity?audience=https://example.com`, { headers })).text();
      recordOutput(`{"message":"calling the cluster with Bearer ${access}"}`);
      recordOutput(`{"message":"id ${id}"}`);
      assert.deepEqual(findLeaks(dir).map((l) => l.line), ['{"message":"calling the cluster with Bearer <SECRET>"}', '{"message":"id <SECRET>"}']);
    } finally {
      await identity.close();
    }
  }));

test('the running sandbox\'s metadata server tokens are secrets the suite\'s leak check knows', { skip: !process.env.SANDBOX_DIR && 'no sandbox (run with --test-global-setup=test/setup.ts)' }, async () => {
  const info = await sandbox();
  const res = await fetch(`http://${info.env.GCE_METADATA_HOST}/computeMetadata/v1/instance/service-accounts/default/token`, { headers: { 'Metadata-Flavor': 'Google' } });
  const { access_token: token } = (await res.json()) as { access_token: string };
  assert.ok(isKnownSecret(info.dir, token), 'the ADC token the function would get is in the leak check');
});

test('what a spawned function writes to stderr is an output the leak check searches', () =>
  inScratchFolder(async (dir) => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    // A function that writes its configured secret to stderr, as a careless library might.
    const source = path.join(dir, 'leaky.mjs');
    writeFileSync(
      source,
      `import { http } from ${JSON.stringify(path.join(root, 'node_modules/@google-cloud/functions-framework/build/src/index.js'))};
process.stderr.write('stack: secret ' + process.env.LEAK_STDERR_SECRET + '\\n');
http('deploy', (req, res) => res.status(200).send('ok'));
`,
    );
    const fn = await spawnFunction('auth: { github: { secretEnv: LEAK_STDERR_SECRET } }', {}, { LEAK_STDERR_SECRET: 'stderr-webhook-secret-1234' }, source);
    await fn.close();
    assert.deepEqual(findLeaks(dir).map((l) => l.line), ['stack: secret <SECRET>']);
  }));
