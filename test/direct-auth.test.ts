// auth.direct with OIDC: ID tokens minted and signed by the sandbox's identity fake,
// verified by google-auth-library against the sandbox's certs.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { exists, idToken, namespace, useSandboxEnv } from './support/sandbox.ts';

const AUDIENCE = 'https://gke-deployer.example.run.app/deploy';
const CALLER = 'ci@sandbox-project.iam.gserviceaccount.com';

describe('POST /deploy with auth.direct OIDC', () => {
  let fn: RunningFunction;
  let ns: string;

  before(async () => {
    const info = await useSandboxEnv();
    ns = await namespace('auth');
    fn = await startFunction(
      configYaml({
        auth: { direct: { audience: AUDIENCE, serviceAccounts: [CALLER] }, certsUrl: info.certsUrl },
        clusters: { sandbox: gkeCluster(info) },
        targets: { web: webTarget(ns) },
      }),
      { 'web.yaml': fixture('manifests/web.yaml') },
    );
  });
  after(() => fn.close());

  const rejected: [string, () => Promise<Record<string, string>>][] = [
    ['no token', () => Promise.resolve({})],
    ['not a JWT', () => Promise.resolve({ authorization: 'Bearer not-a-jwt' })],
    ['wrong audience', async () => ({ authorization: `Bearer ${await idToken({ audience: 'https://elsewhere', email: CALLER })}` })],
    ['email not allowed', async () => ({ authorization: `Bearer ${await idToken({ audience: AUDIENCE, email: 'other@sandbox-project.iam.gserviceaccount.com' })}` })],
    ['email not verified', async () => ({ authorization: `Bearer ${await idToken({ audience: AUDIENCE, email: CALLER, emailVerified: false })}` })],
    ['expired', async () => ({ authorization: `Bearer ${await idToken({ audience: AUDIENCE, email: CALLER, expiresInSeconds: -600 })}` })],
    ['bad signature', async () => ({ authorization: `Bearer ${await idToken({ audience: AUDIENCE, email: CALLER, signWithUnknownKey: true })}` })],
  ];
  for (const [name, headers] of rejected) {
    test(`${name} → 401, nothing applied`, async () => {
      const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:1` }, await headers());
      assert.equal(res.status, 401, JSON.stringify(res.body));
      assert.equal((res.body.error as { code: string }).code, 'UNAUTHENTICATED');
      assert.equal(await exists('deployment', 'web', ns), false);
    });
  }

  test('a valid ID token from an allowed service account deploys', async () => {
    const token = await idToken({ audience: AUDIENCE, email: CALLER });
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:1` }, { authorization: `Bearer ${token}` });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(await exists('deployment', 'web', ns), true);
    // The token never reaches the logs.
    assert.ok(!JSON.stringify(fn.logs).includes(token));
  });
});
