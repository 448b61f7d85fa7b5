// The queue's parts on their own (src/queue/, the queued-intent path of src/sources/pubsub.ts,
// the reporters around it): the message format, its proof judged at publishTime with a real
// RSA key and certificate, the trace context carried, and how a queued report ends.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { selfSignedCertPem } from '../../sandbox/google/x509.ts';
import type { DeployIntent } from '../../src/core/intent.ts';
import type { DeployResult } from '../../src/core/result.ts';
import { DeployError } from '../../src/errors.ts';
import { proofAudience, queuedMessage, queuedPayload, readPayload, splitQueued } from '../../src/queue/message.ts';
import { githubState } from '../../src/report/github-status.ts';
import { gitlabState } from '../../src/report/gitlab-status.ts';
import type { IntentOutcome } from '../../src/report/outcome.ts';
import type { Reporter } from '../../src/report/reporter.ts';
import { queuedWithReporters } from '../../src/report/reporters.ts';
import { OidcVerifier } from '../../src/sources/auth/oidc.ts';
import { logTraceOf, traceparentOf } from '../../src/sources/http.ts';
import { pubsubSource } from '../../src/sources/pubsub.ts';
import type { Config } from '../../src/config/load.ts';

const intent: DeployIntent = {
  target: 'web',
  image: 'europe-docker.pkg.dev/p/r/web:v1',
  dryRun: false,
  requestId: 'req-1',
  source: 'github/push',
  eventId: 'delivery-1',
  eventTime: '2026-12-01T10:00:00.000Z',
  commit: { host: 'github', repository: 'o/r', sha: 'a'.repeat(40) },
  gitRef: { branch: 'main' },
  report: { queued: true, githubDeployment: 42 },
};

/**
 * An RSA key named `kid` and a certs endpoint serving its self-signed certificate as Google
 * serves its own, for the describe block that calls this; `verifier` checks against it.
 */
function signingKey(kid: string): { privateKey: KeyObject; verifier: () => OidcVerifier } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = selfSignedCertPem({ publicKey, privateKey, commonName: kid, validDays: 1 });
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600' }).end(JSON.stringify({ [kid]: pem })));
  let verifier: OidcVerifier | undefined;
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    verifier = new OidcVerifier(`http://127.0.0.1:${(server.address() as AddressInfo).port}/certs`);
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { privateKey, verifier: () => verifier! };
}

describe('the queued message', () => {
  test('carries the intent whole, back as it was sent, never a dry run', () => {
    const payload = queuedPayload(intent);
    const m = queuedMessage(intent, payload, 'proof-token', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    assert.equal(m.orderingKey, 'web');
    assert.deepEqual(m.attributes, { 'gke-deployer': 'queued-intent', target: 'web', eventId: 'delivery-1', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
    const parts = splitQueued(JSON.parse(m.data.toString('utf8')));
    assert.deepEqual(parts, { payload, proof: 'proof-token' });
    assert.deepEqual(readPayload(parts.payload), intent);
  });

  test('a break-glass override travels with the intent: queued, it is still deployed through a closed window', () => {
    const overridden = { ...intent, override: { by: 'ops@p.iam.gserviceaccount.com', reason: 'incident 42' } };
    assert.deepEqual(readPayload(queuedPayload(overridden)).override, overridden.override);
  });

  test('the proof audience names the payload\'s bytes: any change gives another', () => {
    const payload = queuedPayload(intent);
    assert.equal(proofAudience(payload), proofAudience(queuedPayload({ ...intent })));
    assert.match(proofAudience(payload), /^gke-deployer:queue:sha256:[0-9a-f]{64}$/);
    assert.notEqual(proofAudience(payload), proofAudience(queuedPayload({ ...intent, image: `${intent.image}x` })));
    assert.notEqual(proofAudience(payload), proofAudience(queuedPayload({ ...intent, force: true })));
  });

  test('anything but the exact shape is refused, saying where', () => {
    assert.throws(() => splitQueued({ intent: '{}' }), /not a queued intent: proof/);
    assert.throws(() => splitQueued({ intent: '{}', proof: 't', extra: 1 }), /not a queued intent/);
    const payload = JSON.parse(queuedPayload(intent)) as { intent: Record<string, unknown> };
    assert.throws(() => readPayload(JSON.stringify({ ...payload, intent: { ...payload.intent, dryRun: true } })), /intent: Unrecognized key/);
    assert.throws(() => readPayload(JSON.stringify({ ...payload, v: 2 })), /invalid queued intent: v/);
    assert.throws(() => readPayload(JSON.stringify({ ...payload, intent: { ...payload.intent, eventTime: 'yesterday' } })), /intent\.eventTime/);
    assert.throws(() => readPayload('not json'), /not JSON/);
  });
});

describe('the trace context', () => {
  test('a W3C traceparent is carried as it is; X-Cloud-Trace-Context becomes one', () => {
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    assert.equal(traceparentOf({ traceparent: tp }), tp);
    assert.equal(traceparentOf({ 'x-cloud-trace-context': '105445aa7843bc8bf206b12000100000/1;o=1' }), '00-105445aa7843bc8bf206b12000100000-0000000000000001-01');
    assert.equal(traceparentOf({ 'x-cloud-trace-context': '105445AA7843BC8BF206B12000100000/255' }), '00-105445aa7843bc8bf206b12000100000-00000000000000ff-00');
    // A malformed traceparent (all-zero trace id) is not carried; Google's header then is.
    assert.equal(traceparentOf({ traceparent: `00-${'0'.repeat(32)}-b7ad6b7169203331-01`, 'x-cloud-trace-context': '105445aa7843bc8bf206b12000100000' }), '00-105445aa7843bc8bf206b12000100000-0000000000000001-00');
    assert.equal(traceparentOf({ traceparent: 'garbage' }), undefined);
    assert.deepEqual(logTraceOf(tp, 'p'), { trace: 'projects/p/traces/0af7651916cd43dd8448eb211c80319c', traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', sampled: true });
    assert.deepEqual(logTraceOf(traceparentOf({ 'x-cloud-trace-context': '105445AA7843BC8BF206B12000100000/255' }), 'p'), { trace: 'projects/p/traces/105445aa7843bc8bf206b12000100000', traceId: '105445aa7843bc8bf206b12000100000', spanId: '00000000000000ff', sampled: false });
    assert.deepEqual(logTraceOf(undefined, 'p'), {});
  });
});

describe('the proof, judged at publishTime', () => {
  const kid = 'test-key-1';
  const key = signingKey(kid);
  const { privateKey } = key;
  const SA = 'deployer@p.iam.gserviceaccount.com';
  const audience = proofAudience(queuedPayload(intent));

  const token = (claims: { iat: number; exp: number; aud?: string; email?: string; iss?: string }) =>
    new SignJWT({ email: claims.email ?? SA, email_verified: true })
      .setProtectedHeader({ alg: 'RS256', kid })
      .setIssuer(claims.iss ?? 'https://accounts.google.com')
      .setAudience(claims.aud ?? audience)
      .setIssuedAt(claims.iat)
      .setExpirationTime(claims.exp)
      .sign(privateKey);
  const refusal = async (p: Promise<unknown>) => {
    const err = await p.then(() => 'verified', (e: unknown) => e);
    assert.ok(err instanceof DeployError, String(err));
    return `${err.code}: ${err.message}`;
  };

  test('a redelivery hours later verifies: the token was valid when Pub/Sub took the message', async () => {
    const now = Math.floor(Date.now() / 1000);
    const t = await token({ iat: now - 3 * 3600, exp: now - 2 * 3600 });
    await key.verifier().verifyAt(t, { audience, email: SA }, new Date((now - 3 * 3600 + 5) * 1000));
    // The same message published (again) now is refused.
    assert.equal(await refusal(key.verifier().verifyAt(t, { audience, email: SA }, new Date(now * 1000))), 'UNAUTHENTICATED: invalid ID token: expired');
  });

  test('refused: another audience, another signer, another issuer, a token from after the publish', async () => {
    const now = Math.floor(Date.now() / 1000);
    const at = new Date(now * 1000);
    const ok = { iat: now - 10, exp: now + 3600 };
    assert.equal(await refusal(key.verifier().verifyAt(await token({ ...ok, aud: proofAudience('{}') }), { audience, email: SA }, at)), 'UNAUTHENTICATED: invalid ID token: wrong audience');
    assert.equal(await refusal(key.verifier().verifyAt(await token({ ...ok, email: 'someone@p.iam.gserviceaccount.com' }), { audience, email: SA }, at)), `UNAUTHENTICATED: ID token is not the deployer's own (${SA})`);
    assert.equal(await refusal(key.verifier().verifyAt(await token({ ...ok, iss: 'https://evil.example' }), { audience, email: SA }, at)), 'UNAUTHENTICATED: invalid ID token: wrong issuer');
    assert.equal(await refusal(key.verifier().verifyAt(await token({ iat: now + 3600, exp: now + 7200 }), { audience, email: SA }, at)), 'UNAUTHENTICATED: invalid ID token: not yet valid');
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const forged = await new SignJWT({ email: SA, email_verified: true }).setProtectedHeader({ alg: 'RS256', kid }).setIssuer('https://accounts.google.com').setAudience(audience).setIssuedAt(ok.iat).setExpirationTime(ok.exp).sign(other);
    assert.equal(await refusal(key.verifier().verifyAt(forged, { audience, email: SA }, at)), 'UNAUTHENTICATED: invalid ID token: bad signature');
    assert.equal(await refusal(key.verifier().verifyAt('not.a.token', { audience, email: SA }, at)), 'UNAUTHENTICATED: invalid ID token: malformed');
  });

  test('certificates that cannot be fetched are no verdict: retryable, so Pub/Sub delivers it again', async () => {
    const unreachable = new OidcVerifier('http://127.0.0.1:1/certs');
    const now = Math.floor(Date.now() / 1000);
    const err = await unreachable.verifyAt(await token({ iat: now, exp: now + 60 }), { audience, email: SA }, new Date()).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof DeployError);
    assert.equal(err.code, 'QUEUE_UNAVAILABLE');
    assert.equal(err.retryable, true);
  });
});

describe('/pubsub and queued intents', () => {
  const push = (subscription: string, attributes: Record<string, string>) => ({
    headers: { 'content-type': 'application/json' },
    rawBody: Buffer.from(JSON.stringify({
      message: { data: Buffer.from(JSON.stringify({ intent: queuedPayload(intent), proof: 'x.y.z' })).toString('base64'), attributes, messageId: '7', publishTime: new Date().toISOString() },
      subscription,
    })),
  }) as unknown as Parameters<ReturnType<typeof pubsubSource>['receive']>[0];
  const QUEUE = 'projects/p/subscriptions/queue';
  const routing = { rules: [], targets: new Map() } satisfies Pick<Config, 'rules' | 'targets'>;
  const source = pubsubSource('none', { ...routing, queue: { subscription: QUEUE, identity: () => Promise.resolve('deployer@p.iam.gserviceaccount.com') } }, new OidcVerifier('http://127.0.0.1:1/certs'));
  const queued = { 'gke-deployer': 'queued-intent' };

  test('a queued intent from any other subscription is refused before anything is read of it', () => {
    assert.throws(() => source.receive(push('projects/p/subscriptions/other', queued)), /Pub\/Sub message 7 from projects\/p\/subscriptions\/other: a queued intent is accepted only from the subscription named in queue.subscription/);
    const noQueue = pubsubSource('none', routing, new OidcVerifier());
    assert.throws(() => noQueue.receive(push(QUEUE, queued)), /accepted only from the subscription named in queue.subscription/);
  });

  test('on the queue subscription only queued intents are accepted, and only once proven', async () => {
    assert.throws(() => source.receive(push(QUEUE, {})), /only queued intents .* are accepted from the queue's subscription/);
    const d = source.receive(push(QUEUE, queued));
    assert.equal(d.id, 'req-1', 'the request that queued it');
    assert.deepEqual(d.intents, [{ ...intent, dryRun: false }]);
    assert.ok(d.proven, 'a proof to check before acting');
    // Not even a token: refused (and so acknowledged) before anyone is asked, naming the message.
    await assert.rejects(d.proven(), (e: unknown) => e instanceof DeployError && e.code === 'BAD_REQUEST' && /^Pub\/Sub message 7 .*not proven.*malformed$/.test(e.message));
  });
});

describe('reporting a queued intent', () => {
  const result = (status: DeployResult['status']): IntentOutcome => ({ ok: true, result: { status, target: 'web', cluster: 'c', namespace: 'n', image: 'i', requestId: 'r', dryRun: false, objects: [], elapsedMs: 1 } });

  test('a duplicate of a queued intent is that same event delivered again: its own report ends a success', () => {
    assert.deepEqual([githubState(result('duplicate'), true), gitlabState(result('duplicate'), true)], ['success', 'success']);
    assert.deepEqual([githubState(result('duplicate')), gitlabState(result('duplicate'))], ['inactive', 'canceled'], 'not queued: a separate report of a skipped deploy');
    assert.deepEqual([githubState(result('stale'), true), gitlabState(result('rolled-back'), true)], ['inactive', 'failed'], 'every other outcome as before');
  });

  test('what a reporter made when queueing rides in the message; a failed publish ends its report as an error', async () => {
    const calls: string[] = [];
    const fake: Reporter = {
      name: 'fake',
      begin: () => undefined,
      queued: (i) => {
        calls.push(`queued ${i.eventId}`);
        return Promise.resolve({ report: { githubDeployment: 9 }, finish: (o) => Promise.resolve(void calls.push(`finish ${o.ok ? o.result.status : o.error.code}`)) });
      },
    };
    const sent: DeployIntent[] = [];
    const enqueue = queuedWithReporters((i) => Promise.resolve(void sent.push(i)), [fake], () => undefined);
    const { report: _r, ...plain } = intent;
    await enqueue(plain);
    assert.deepEqual(sent.map((i) => i.report), [{ queued: true, githubDeployment: 9 }]);

    const failing = queuedWithReporters(() => Promise.reject(new DeployError('QUEUE_UNAVAILABLE', 'down')), [fake], () => undefined);
    await assert.rejects(failing(plain), /down/);
    assert.deepEqual(calls, ['queued delivery-1', 'queued delivery-1', 'finish QUEUE_UNAVAILABLE']);
  });
});

describe('the route verifier\'s refusal reasons (README: "wrong issuer", "not yet valid")', () => {
  const kid = 'route-key';
  const key = signingKey(kid);
  const { privateKey } = key;
  const settings = { audience: 'https://deployer.example/deploy', serviceAccounts: ['ci@p.iam.gserviceaccount.com'] };
  const sign = (iss: string, iat: number) =>
    new SignJWT({ email: settings.serviceAccounts[0], email_verified: true }).setProtectedHeader({ alg: 'RS256', kid }).setIssuer(iss).setAudience(settings.audience).setIssuedAt(iat).setExpirationTime(iat + 3600).sign(privateKey);

  test('a good token passes; another issuer is "wrong issuer"; one issued an hour ahead is "not yet valid"', async () => {
    const now = Math.floor(Date.now() / 1000);
    assert.equal(await key.verifier().verify(await sign('https://accounts.google.com', now), settings), settings.serviceAccounts[0]);
    await assert.rejects(key.verifier().verify(await sign('https://evil.example', now), settings), { message: 'invalid ID token: wrong issuer' });
    await assert.rejects(key.verifier().verify(await sign('https://accounts.google.com', now + 3600), settings), { message: 'invalid ID token: not yet valid' });
  });
});

describe('dry runs post no status (README)', () => {
  test('neither GitHub nor GitLab is called for a dry run, deployed or queued', async () => {
    const calls: string[] = [];
    const server = http.createServer((req, res) => {
      calls.push(`${req.method} ${req.url}`);
      res.writeHead(500).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const { githubReporter } = await import('../../src/report/github-status.ts');
      const { gitlabReporter } = await import('../../src/report/gitlab-status.ts');
      const signal = AbortSignal.timeout(5000);
      const dry = { ...intent, dryRun: true, report: undefined };
      const gitlabDry = { ...dry, commit: { host: 'gitlab' as const, repository: 'g/p', sha: 'b'.repeat(40) } };
      const pairs = [[githubReporter({ apiUrl, token: 't' }), dry], [gitlabReporter({ apiUrl, token: 't' }), gitlabDry]] as const;
      for (const [reporter, i] of pairs) {
        assert.equal(reporter.begin(i, signal), undefined, reporter.name);
        assert.equal(await reporter.queued?.(i, signal), undefined, reporter.name);
      }
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(calls, [], 'nothing posted for the dry runs');
      // The same intents, not dry runs, do post: the silence above is the dry run's.
      for (const [reporter, i] of pairs) assert.notEqual(reporter.begin({ ...i, dryRun: false }, signal), undefined, reporter.name);
      const deadline = Date.now() + 5000;
      while (calls.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(calls.length, 2, JSON.stringify(calls));
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
