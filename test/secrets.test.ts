// Presented credentials never come back: whatever a caller sends as a bearer token (an
// access token, a forged or expired ID token, garbage), the 401 answer and the log lines
// (written by the production logger) hold a fixed reason, never the token or its claims.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ff from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { startIdentityServer, type IdentityServer } from '../sandbox/google/identity.ts';
import { createApp, type App } from '../src/app.ts';
import { loadConfigFile } from '../src/config/load.ts';
import { jsonLogger } from '../src/core/log.ts';
import { REPO, configYaml, fixture, webTarget } from './support/config.ts';

const AUDIENCE = 'https://gke-deployer.example.run.app/deploy';
const CALLER = 'ci@sandbox-project.iam.gserviceaccount.com';
const GITHUB_SECRET = 'gh-webhook-secret-7f3a9c2e41d8';

describe('presented tokens and secrets are never echoed', () => {
  let identity: IdentityServer;
  let app: App;
  let server: Server;
  let url: string;
  const lines: string[] = [];

  before(async () => {
    identity = await startIdentityServer({ project: 'sandbox-project', serviceAccount: 'deployer@sandbox-project.iam.gserviceaccount.com' });
    const dir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-secrets-'));
    await writeFile(path.join(dir, 'web.yaml'), fixture('manifests/web.yaml'));
    await writeFile(
      path.join(dir, 'deployer.yaml'),
      configYaml({
        auth: { direct: { audience: AUDIENCE, serviceAccounts: [CALLER] }, certsUrl: `${identity.url}/oauth2/v1/certs`, github: { secretEnv: 'SECRETS_TEST_GITHUB_SECRET' } },
        // Never reached: every request here is refused before any cluster call.
        clusters: { sandbox: { gke: { project: 'sandbox-project', location: 'europe-west1', name: 'sandbox' } } },
        targets: { web: webTarget('web') },
      }),
    );
    process.env.SECRETS_TEST_GITHUB_SECRET = GITHUB_SECRET;
    // The production logger, writing to memory instead of stdout.
    app = createApp(loadConfigFile(path.join(dir, 'deployer.yaml')), jsonLogger((l) => lines.push(l)));
    ff.http('secrets-test', app.handler);
    server = getTestServer('secrets-test');
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await app.close();
    await identity.close();
    delete process.env.SECRETS_TEST_GITHUB_SECRET;
  });

  async function deployWith(token: string): Promise<{ status: number; text: string }> {
    const res = await fetch(`${url}/deploy`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ target: 'web', image: `${REPO}:1` }),
    });
    return { status: res.status, text: await res.text() };
  }

  /** Parts of a presented token that must appear nowhere: the whole, and each JWT segment. */
  function fragments(token: string): string[] {
    return [token, ...token.split('.').filter((s) => s.length >= 16)];
  }

  const cases: [string, () => string, RegExp][] = [
    ['a Google access token', () => identity.mintAccessToken(CALLER).token, /^invalid ID token: malformed/],
    ['an opaque string', () => 'opaque-0123456789abcdef0123456789abcdef', /^invalid ID token: malformed/],
    ['an ID token signed by an unknown key', () => identity.mintIdToken({ audience: AUDIENCE, email: CALLER, signWithUnknownKey: true }), /^invalid ID token: bad signature/],
    ['an ID token for another audience', () => identity.mintIdToken({ audience: 'https://elsewhere.example', email: CALLER }), /^invalid ID token: wrong audience/],
    ['an expired ID token', () => identity.mintIdToken({ audience: AUDIENCE, email: CALLER, expiresInSeconds: -600 }), /^invalid ID token: expired/],
    ['a JWT whose payload is not JSON', () => `eyJhbGciOiJSUzI1NiJ9.${Buffer.from('not json at all, really').toString('base64url')}.c2lnbmF0dXJlc2lnbmF0dXJl`, /^invalid ID token: malformed/],
  ];
  for (const [name, make, reason] of cases) {
    test(`${name}: 401 with a fixed reason; neither the answer nor the log holds the token`, async () => {
      const token = make();
      const before = lines.length;
      const res = await deployWith(token);
      assert.equal(res.status, 401, res.text);
      const body = JSON.parse(res.text) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'UNAUTHENTICATED');
      const logged = lines.slice(before);
      assert.ok(logged.length >= 1, 'the refusal is logged');
      for (const line of logged) JSON.parse(line); // each is one valid JSON entry
      for (const part of fragments(token)) {
        assert.ok(!res.text.includes(part), `answer echoes the token: ${res.text}`);
        assert.ok(!logged.join('').includes(part), `log echoes the token: ${logged.join('')}`);
      }
      assert.match(body.error.message, reason);
    });
  }

  test('a webhook secret registered at start-up is redacted from any log text', () => {
    const before = lines.length;
    // A message that (by some future bug) carries the secret, and a field that does.
    jsonLogger((l) => lines.push(l))('ERROR', `upstream said: bad secret ${GITHUB_SECRET}`, { detail: { echoed: `x=${GITHUB_SECRET}` } });
    const logged = lines.slice(before).join('');
    assert.ok(!logged.includes(GITHUB_SECRET), logged);
    assert.match(logged, /\[redacted\]/);
  });

  test('a wrong GitHub signature is refused without the secret or the signature in answer or log', async () => {
    const before = lines.length;
    const signature = `sha256=${'ab'.repeat(32)}`;
    const res = await fetch(`${url}/webhooks/github`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'ping', 'x-hub-signature-256': signature },
      body: '{}',
    });
    const text = await res.text();
    assert.equal(res.status, 401, text);
    const logged = lines.slice(before).join('');
    assert.ok(logged.length > 0);
    for (const s of [GITHUB_SECRET, 'ab'.repeat(32)]) {
      assert.ok(!text.includes(s) && !logged.includes(s));
    }
  });
});
