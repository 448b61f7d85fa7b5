// auth.direct with OIDC: ID tokens minted and signed by the sandbox's identity fake,
// verified by google-auth-library against the sandbox's certs. Every answer and log line
// (written by the production logger) is searched for the presented token.
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
  let refusedNs: string;

  before(async () => {
    const info = await useSandboxEnv();
    ns = await namespace('auth');
    refusedNs = await namespace('auth-refused');
    fn = await startFunction(
      configYaml({
        auth: { direct: { audience: AUDIENCE, serviceAccounts: [CALLER] }, certsUrl: info.certsUrl },
        clusters: { sandbox: gkeCluster(info) },
        // guarded: only refused requests name it, so "nothing applied" holds in any test order.
        targets: { web: webTarget(ns), guarded: webTarget(refusedNs) },
      }),
      { 'web.yaml': fixture('manifests/web.yaml') },
    );
  });
  after(() => fn.close());

  /** The token and each long JWT segment: none may appear in the answer or the log. */
  function assertNotEchoed(token: string, answer: unknown, from: number): void {
    const logged = fn.lines.slice(from).join('');
    assert.ok(logged.length > 0, 'the request is logged');
    for (const part of [token, ...token.split('.').filter((s) => s.length >= 16)]) {
      assert.ok(!JSON.stringify(answer).includes(part), `the answer echoes the token: ${JSON.stringify(answer)}`);
      assert.ok(!logged.includes(part), `the log echoes the token: ${logged}`);
    }
  }

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
    test(`${name} → 401, nothing applied, the token in neither answer nor log`, async () => {
      const sent = await headers();
      const from = fn.lines.length;
      const res = await fn.post('/deploy', { target: 'guarded', image: `${REPO}:1` }, sent);
      assert.equal(res.status, 401, JSON.stringify(res.body));
      assert.equal((res.body.error as { code: string }).code, 'UNAUTHENTICATED');
      assert.equal(await exists('deployment', 'web', refusedNs), false);
      if (sent.authorization) assertNotEchoed(sent.authorization.slice('Bearer '.length), res.body, from);
    });
  }

  test('a valid ID token from an allowed service account deploys', async () => {
    const token = await idToken({ audience: AUDIENCE, email: CALLER });
    const from = fn.lines.length;
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:1` }, { authorization: `Bearer ${token}` });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(await exists('deployment', 'web', ns), true);
    assertNotEchoed(token, res.body, from);
  });

  test('a valid token whose deploy then fails (unknown target, bad image) is in neither answer nor log', async () => {
    const token = await idToken({ audience: AUDIENCE, email: CALLER });
    for (const body of [{ target: 'nope', image: `${REPO}:1` }, { target: 'web', image: 'docker.io/library/nginx:1' }]) {
      const from = fn.lines.length;
      const res = await fn.post('/deploy', body, { authorization: `Bearer ${token}` });
      assert.ok(res.status >= 400 && res.status < 500, JSON.stringify(res.body));
      assertNotEchoed(token, res.body, from);
    }
  });
});
