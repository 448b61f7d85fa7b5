// The Google fakes against the real client libraries: google-auth-library (ADC on the
// metadata server, OIDC verification) and @google-cloud/container (gRPC GetCluster).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { X509Certificate, createPublicKey, type JsonWebKey } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { ClusterManagerClient } from '@google-cloud/container';
import { OAuth2Client } from 'google-auth-library';
import { startGoogleFakes, type GoogleFakes, type GoogleStats } from '../../sandbox/google/index.ts';

const run = promisify(execFile);
const PROJECT = 'sandbox-project';
const SA = 'deployer@sandbox-project.iam.gserviceaccount.com';
const repoRoot = path.resolve(import.meta.dirname, '../..');

async function withFakes(fn: (g: GoogleFakes) => Promise<void>, tokenLifetimeSeconds?: number): Promise<void> {
  const g = await startGoogleFakes({ project: PROJECT, serviceAccount: SA, tokenLifetimeSeconds });
  try {
    await fn(g);
  } finally {
    await g.close();
  }
}

async function post(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

interface ReviewStatus {
  authenticated: boolean;
  user?: { username: string; uid: string; groups: string[] };
  audiences?: string[];
  error?: string;
}

async function review(g: GoogleFakes, token: string, apiVersion = 'authentication.k8s.io/v1', audiences?: string[]) {
  const { status, json } = await post(`${g.identityUrl}/tokenreview`, {
    apiVersion,
    kind: 'TokenReview',
    spec: { token, ...(audiences ? { audiences } : {}) },
  });
  assert.equal(status, 200);
  assert.equal(json.apiVersion, apiVersion);
  assert.equal(json.kind, 'TokenReview');
  return json.status as ReviewStatus;
}

async function stats(g: GoogleFakes): Promise<GoogleStats> {
  return (await (await fetch(`${g.identityUrl}/stats`)).json()) as GoogleStats;
}

/**
 * Runs google-auth-library in a child with only the env the function gets, so no
 * module-level cache or env var leaks between tests. Prints JSON on stdout.
 */
async function adcChild(g: GoogleFakes, script: string): Promise<Record<string, unknown>> {
  const home = await mkdtemp(path.join(tmpdir(), 'adc-home-'));
  try {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: repoRoot,
      timeout: 30_000,
      env: {
        PATH: process.env.PATH,
        HOME: home, // no ~/.config/gcloud ADC file can be picked up
        CLOUDSDK_CONFIG: home,
        GCE_METADATA_HOST: new URL(g.identityUrl).host,
        GOOGLE_CLOUD_PROJECT: PROJECT,
        METADATA_SERVER_DETECTION: 'assume-present',
      },
    });
    return JSON.parse(stdout) as Record<string, unknown>;
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

const ADC_SCRIPT = `
import { GoogleAuth } from 'google-auth-library';
const auth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
const first = await auth.getAccessToken();
const second = await auth.getAccessToken();
const creds = await auth.getCredentials();
const idClient = await auth.getIdTokenClient('https://deployer.example/push');
const idToken = (await idClient.getRequestHeaders()).get('authorization')?.replace(/^Bearer /, '');
console.log(JSON.stringify({ first, second, projectId: await auth.getProjectId(), email: creds.client_email,
  universe: await auth.getUniverseDomain(), idToken }));
`;

test('ADC on the fake metadata server yields tokens the token webhook accepts', async () => {
  await withFakes(async (g) => {
    const out = await adcChild(g, ADC_SCRIPT);
    const first = out.first as string;
    assert.ok(first.startsWith('ya29.sandbox.'), 'an opaque access token');
    assert.ok(out.second === first, 'a 3600 s token is cached by the client');
    assert.equal(out.projectId, PROJECT);
    assert.equal(out.email, SA);
    assert.equal(out.universe, 'googleapis.com');
    const afterOne = await stats(g);
    assert.deepEqual({ ...afterOne, metadata: { token: afterOne.metadata.token } }, { containerApi: { getCluster: 0, unauthenticated: 0 }, metadata: { token: 1 }, tokenReview: { rejected: 0 } });
    assert.ok(Math.abs(afterOne.metadata.lastExpiresAt - (Date.now() + 3600_000)) < 60_000, 'the token\'s expiry is reported');

    const status = await review(g, first);
    assert.equal(status.authenticated, true);
    assert.equal(status.user?.username, SA);
    assert.match(status.user?.uid ?? '', /^1\d{20}$/);
    assert.deepEqual(status.user?.groups, ['system:authenticated']);

    // The metadata identity endpoint's ID token verifies like a Google one.
    const verifier = new OAuth2Client({ endpoints: { oauth2FederatedSignonPemCertsUrl: `${g.identityUrl}/oauth2/v1/certs` } });
    const ticket = await verifier.verifyIdToken({ idToken: out.idToken as string, audience: 'https://deployer.example/push' });
    assert.equal(ticket.getPayload()?.email, SA);
    assert.equal(ticket.getPayload()?.sub, status.user?.uid);
  });
});

test('short-lived metadata tokens are refetched and expire at the token webhook', async () => {
  await withFakes(async (g) => {
    const { status, json } = await post(`${g.identityUrl}/control`, { tokenLifetimeSeconds: 2 });
    assert.equal(status, 200);
    assert.equal(json.tokenLifetimeSeconds, 2);
    const out = await adcChild(g, ADC_SCRIPT);
    // Under the client's 5-minute eager-refresh threshold every call fetches anew.
    assert.ok(out.second !== out.first, 'a fresh token per call');
    assert.equal((await stats(g)).metadata.token, 2);
    const token = out.second as string;
    assert.equal((await review(g, token)).authenticated, true);
    await sleep(2100);
    const expired = await review(g, token);
    assert.equal(expired.authenticated, false);
    assert.match(expired.error ?? '', /expired/);
    assert.equal(expired.user, undefined);
  });
});

test('rejectNextTokenReviews: the next metadata-server token is refused once (revoked), then all is normal again', async () => {
  await withFakes(async (g) => {
    const metadataToken = async (): Promise<string> => {
      const res = await fetch(`${g.identityUrl}/computeMetadata/v1/instance/service-accounts/default/token`, { headers: { 'Metadata-Flavor': 'Google' } });
      return ((await res.json()) as { access_token: string }).access_token;
    };
    const set = await post(`${g.identityUrl}/control`, { rejectNextTokenReviews: 1 });
    assert.equal(set.status, 200);
    assert.equal(set.json.rejectNextTokenReviews, 1);
    // A token a test minted by hand is not what the function uses: never refused.
    const minted = await post(`${g.identityUrl}/access-token`, { email: SA });
    assert.equal((await review(g, minted.json.token as string)).authenticated, true);
    const first = await metadataToken();
    const refused = await review(g, first);
    assert.equal(refused.authenticated, false);
    assert.match(refused.error ?? '', /revoked/);
    assert.equal((await review(g, first)).authenticated, false, 'a revoked token stays revoked');
    assert.equal((await review(g, await metadataToken())).authenticated, true, 'only the next one');
    assert.deepEqual((await stats(g)).tokenReview, { rejected: 1 });
    assert.equal((await post(`${g.identityUrl}/control`, { rejectNextTokenReviews: -1 })).status, 400);
  });
});

test('token webhook: v1beta1, audiences, minted identities, unknown and malformed input', async () => {
  await withFakes(async (g) => {
    const other = await post(`${g.identityUrl}/access-token`, { email: 'no-rbac@sandbox-project.iam.gserviceaccount.com' });
    assert.equal(other.status, 200);
    assert.equal(other.json.expiresIn, 3600);
    const v1beta1 = await review(g, other.json.token as string, 'authentication.k8s.io/v1beta1', ['https://kubernetes.default.svc']);
    assert.equal(v1beta1.user?.username, 'no-rbac@sandbox-project.iam.gserviceaccount.com');
    assert.deepEqual(v1beta1.audiences, ['https://kubernetes.default.svc']);

    const stale = await post(`${g.identityUrl}/access-token`, { email: SA, lifetimeSeconds: -1 });
    assert.equal(stale.json.expiresIn, -1);
    assert.equal((await review(g, stale.json.token as string)).authenticated, false);

    const unknown = await review(g, 'ya29.not-from-here');
    assert.equal(unknown.authenticated, false);
    assert.ok(unknown.error);

    assert.equal((await post(`${g.identityUrl}/tokenreview`, { kind: 'TokenReview', spec: { token: 'x' } })).status, 400);
    assert.equal((await post(`${g.identityUrl}/access-token`, { email: 'not an email' })).status, 400);
    assert.equal((await post(`${g.identityUrl}/control`, { tokenLifetimeSeconds: 0 })).status, 400);
    assert.equal((await post(`${g.identityUrl}/control`, { bogus: 1 })).status, 400);
    const bad = await fetch(`${g.identityUrl}/tokenreview`, { method: 'POST', body: '{"kind":' });
    assert.equal(bad.status, 400);
    const big = await fetch(`${g.identityUrl}/id-token`, { method: 'POST', body: 'x'.repeat(65 * 1024) });
    assert.equal(big.status, 413);
    assert.equal((await fetch(`${g.identityUrl}/nope`)).status, 404);
    assert.equal((await fetch(`${g.identityUrl}/tokenreview`)).status, 405);
    // The server is still fine after all that.
    assert.equal((await review(g, other.json.token as string)).authenticated, true);
  });
});

test('metadata server contract: Metadata-Flavor both ways, default SA, 404s', async () => {
  await withFakes(async (g) => {
    const md = (p: string, headers: Record<string, string> = { 'Metadata-Flavor': 'Google' }) =>
      fetch(`${g.identityUrl}/computeMetadata/v1/${p}`, { headers });
    const denied = await md('project/project-id', {});
    assert.equal(denied.status, 403);
    assert.equal(denied.headers.get('metadata-flavor'), 'Google');
    assert.equal((await md('project/project-id', { 'Metadata-Flavor': 'Google', 'X-Forwarded-For': '1.2.3.4' })).status, 403);
    const ping = await md('instance');
    assert.equal(ping.status, 200);
    assert.equal(ping.headers.get('metadata-flavor'), 'Google');
    assert.equal(await (await md('project/project-id')).text(), PROJECT);
    assert.equal(await (await md('universe/universe-domain')).text(), 'googleapis.com');
    assert.equal(await (await md('instance/service-accounts/default/email')).text(), SA);
    const tok = (await (await md('instance/service-accounts/default/token?scopes=a,b')).json()) as Record<string, unknown>;
    assert.equal(tok.token_type, 'Bearer');
    assert.equal(tok.expires_in, 3600);
    assert.equal(typeof tok.access_token, 'string');
    assert.equal((await md('instance/service-accounts/default/identity')).status, 400, 'audience is required');
    assert.equal((await md('instance/service-accounts/other@x.iam.gserviceaccount.com/token')).status, 404);
    assert.equal((await md('instance/nope')).status, 404);
    assert.equal((await stats(g)).metadata.token, 1);
  });
});

test('the real ClusterManagerClient gets registered clusters over plaintext gRPC', async () => {
  await withFakes(async (g) => {
    const caPem = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';
    g.addCluster({ project: PROJECT, location: 'europe-west1', name: 'prod', endpoint: '127.0.0.1:6443', caPem });
    const [host, port] = g.containerApiEndpoint.split(':');
    const client = new ClusterManagerClient({
      apiEndpoint: host,
      port: Number(port),
      sslCreds: grpc.credentials.createInsecure(),
      universeDomain: 'googleapis.com',
    });
    try {
      const name = `projects/${PROJECT}/locations/europe-west1/clusters/prod`;
      const [cluster] = await client.getCluster({ name });
      assert.equal(cluster.name, 'prod');
      assert.equal(cluster.endpoint, '127.0.0.1:6443');
      assert.equal(cluster.location, 'europe-west1');
      assert.equal(cluster.status, 'RUNNING');
      assert.equal(Buffer.from(cluster.masterAuth?.clusterCaCertificate ?? '', 'base64').toString(), caPem);

      const [legacy] = await client.getCluster({ projectId: PROJECT, zone: 'europe-west1', clusterId: 'prod' });
      assert.equal(legacy.endpoint, '127.0.0.1:6443');

      await assert.rejects(client.getCluster({ name: `projects/${PROJECT}/locations/europe-west1/clusters/nope` }), (err: Error & { code?: number }) => {
        assert.equal(err.code, grpc.status.NOT_FOUND);
        assert.match(err.message, /Not found: projects\/sandbox-project\/locations\/europe-west1\/clusters\/nope/);
        return true;
      });
      assert.equal((await stats(g)).containerApi.getCluster, 3);

      // Failure knob through /control, as a test in another process would turn it.
      assert.equal((await post(`${g.identityUrl}/control`, { containerApiFailure: 'PERMISSION_DENIED' })).status, 200);
      await assert.rejects(client.getCluster({ name }), { code: grpc.status.PERMISSION_DENIED });
      assert.equal((await post(`${g.identityUrl}/control`, { containerApiFailure: 'UNAVAILABLE' })).status, 200);
      // UNAVAILABLE is retried by the client for ~20 s by default; `retry: null` shows the raw status.
      const before = g.stats().containerApi.getCluster;
      await assert.rejects(client.getCluster({ name }, { retry: null }), {
        code: grpc.status.UNAVAILABLE,
        message: '14 UNAVAILABLE: The service is currently unavailable.',
      });
      assert.equal(g.stats().containerApi.getCluster, before + 1);
      assert.equal((await post(`${g.identityUrl}/control`, { containerApiFailure: 'NOT_A_CODE' })).status, 400);
      const cleared = await post(`${g.identityUrl}/control`, { containerApiFailure: null });
      assert.equal(cleared.json.containerApiFailure, null);
      const [again] = await client.getCluster({ name });
      assert.equal(again.endpoint, '127.0.0.1:6443');
      assert.deepEqual(await stats(g), { containerApi: { getCluster: 6, unauthenticated: 0 }, metadata: { token: 0, lastExpiresAt: 0 }, tokenReview: { rejected: 0 } });
    } finally {
      await client.close();
    }
  });
});

test('OIDC ID tokens verify with OAuth2Client; wrong audience, expired and forged ones do not', async () => {
  await withFakes(async (g) => {
    const audience = 'https://deployer.example/pubsub';
    const pushSa = 'pubsub-push@sandbox-project.iam.gserviceaccount.com';
    const mint = async (extra: Record<string, unknown> = {}) => {
      const { status, json } = await post(`${g.identityUrl}/id-token`, { audience, email: pushSa, ...extra });
      assert.equal(status, 200);
      return json.token as string;
    };
    const verifier = new OAuth2Client({ endpoints: { oauth2FederatedSignonPemCertsUrl: `${g.identityUrl}/oauth2/v1/certs` } });

    const ticket = await verifier.verifyIdToken({ idToken: await mint(), audience });
    const payload = ticket.getPayload();
    assert.equal(payload?.email, pushSa);
    assert.equal(payload?.email_verified, true);
    assert.equal(payload?.iss, 'https://accounts.google.com');
    assert.equal(payload?.aud, audience);
    assert.match(payload?.sub ?? '', /^1\d{20}$/);
    assert.equal(payload?.azp, payload?.sub);

    await assert.rejects(verifier.verifyIdToken({ idToken: await mint(), audience: 'https://elsewhere.example' }), /Wrong recipient/);
    // Beyond the library's 300 s clock skew.
    await assert.rejects(verifier.verifyIdToken({ idToken: await mint({ expiresInSeconds: -600 }), audience }), /Token used too late/);
    await assert.rejects(verifier.verifyIdToken({ idToken: await mint({ signWithUnknownKey: true }), audience }), /Invalid token signature/);
    await assert.rejects(verifier.verifyIdToken({ idToken: await mint({ issuer: 'https://evil.example' }), audience }), /Invalid issuer/);
    const unverified = await verifier.verifyIdToken({ idToken: await mint({ emailVerified: false }), audience });
    assert.equal(unverified.getPayload()?.email_verified, false);

    // v1 serves X.509 certificates like Google; v3 the same key as a JWKS.
    const v1 = await fetch(`${g.identityUrl}/oauth2/v1/certs`);
    assert.match(v1.headers.get('cache-control') ?? '', /public, max-age=\d+/);
    const certs = (await v1.json()) as Record<string, string>;
    const [kid, pem] = Object.entries(certs)[0] ?? [];
    assert.ok(kid && pem);
    const cert = new X509Certificate(pem);
    assert.ok(cert.verify(cert.publicKey), 'self-signed');
    const jwks = (await (await fetch(`${g.identityUrl}/oauth2/v3/certs`)).json()) as { keys: (JsonWebKey & { kid?: string })[] };
    const jwk = jwks.keys[0];
    assert.ok(jwk);
    assert.equal(jwk.kid, kid);
    assert.ok(createPublicKey({ key: jwk, format: 'jwk' }).equals(cert.publicKey));
  });
});
