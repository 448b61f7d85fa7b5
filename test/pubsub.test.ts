// POST /pubsub, end to end: the real Pub/Sub emulator pushing to the running function,
// deploys checked with the API server, and the ack/nack answers checked by counting what
// the emulator (re)delivers. Then OIDC, the three kinds of message and the CloudEvents
// envelopes, POSTed directly from the recorded fixtures.
// The emulator acknowledges 200, 201 and 204 but redelivers a 202 (the service acks it
// too), and it redelivers a refused push about once a second, without backoff.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pubsubRest, type PubsubRest } from '../sandbox/pubsub.ts';
import { MESSAGE_PUBLISHED } from '../src/sources/pubsub.ts';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { accessToken, control, exists, idToken, kubectlJson, namespace, useSandboxEnv } from './support/sandbox.ts';

const DIGEST = 'sha256:325ea4ffaff86cd961a90d6ffe248c0d61cb36f2deae56727d16a7a09c5a918f';
const OTHER_REPO = 'europe-docker.pkg.dev/sandbox-project/apps/api';
const ACK_DEADLINE_SECONDS = 10;
const WEB = { 'web.yaml': fixture('manifests/web.yaml') };

interface Deployment {
  metadata: { annotations: Record<string, string> };
  spec: { template: { spec: { containers: { image: string }[] } } };
}

async function live(ns: string): Promise<{ image: string | undefined; source: string | undefined; requestId: string | undefined }> {
  const d = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
  return {
    image: d.spec.template.spec.containers[0]?.image,
    source: d.metadata.annotations['gke-deployer/source'],
    requestId: d.metadata.annotations['gke-deployer/request-id'],
  };
}

const registryRule = (target: string, extra: Record<string, unknown> = {}) => ({ source: 'artifact-registry', repository: REPO, tags: 'v*', targets: [target], ...extra });
const buildRule = (target: string) => ({ source: 'cloud-build', repository: REPO, tags: 'v*', targets: [target] });

type Envelope = { message: { data?: string; attributes?: Record<string, string>; messageId: string; publishTime?: string }; subscription: string };

function event<T = Envelope>(name: string): T {
  return JSON.parse(fixture(`events/pubsub-${name}.json`)) as T;
}

/** A push envelope as Pub/Sub sends it, with a fresh message id. */
function envelope(data: string | object, attributes?: Record<string, string>): Envelope {
  return {
    message: {
      data: Buffer.from(typeof data === 'string' ? data : JSON.stringify(data)).toString('base64'),
      ...(attributes && { attributes }),
      messageId: String(BigInt(`0x${randomBytes(6).toString('hex')}`)),
      publishTime: new Date().toISOString(),
    },
    subscription: 'projects/sandbox-project/subscriptions/gke-deployer-test',
  };
}

async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await check();
    if (got) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

interface Push {
  messageId: string | undefined;
  status: number;
  body: Record<string, unknown>;
  at: number;
}

/** Marks a sentinel message (see pastAckDeadline): the recorder answers it itself. */
const SENTINEL = { 'gke-deployer-test': 'sentinel' };

/**
 * Sits between the emulator and the function: forwards each push and records what was
 * answered. A sentinel's first push is held unanswered, so the emulator delivers it again
 * once its ack deadline has passed; its second push is acknowledged here.
 */
async function recorder(fn: RunningFunction): Promise<{ url: string; pushes: Push[]; of(id: string): Push[]; close(): Promise<void> }> {
  const pushes: Push[] = [];
  const held = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let messageId: string | undefined;
      let sentinel = false;
      try {
        const message = (JSON.parse(body.toString('utf8')) as Envelope).message;
        messageId = message.messageId;
        sentinel = message.attributes?.['gke-deployer-test'] === SENTINEL['gke-deployer-test'];
      } catch {
        messageId = undefined;
      }
      if (sentinel) {
        const first = !pushes.some((p) => p.messageId === messageId);
        pushes.push({ messageId, status: first ? 0 : 200, body: {}, at: Date.now() });
        if (first) held.add(res);
        else res.writeHead(204).end();
        return;
      }
      void fetch(fn.url + (req.url ?? '/'), { method: 'POST', headers: { 'content-type': req.headers['content-type'] ?? '' }, body }).then(async (answer) => {
        const text = await answer.text();
        pushes.push({ messageId, status: answer.status, body: JSON.parse(text) as Record<string, unknown>, at: Date.now() });
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(text);
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    pushes,
    of: (id) => pushes.filter((p) => p.messageId === id),
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of held) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections(); // the emulator keeps its connections alive
      }),
  };
}

/**
 * Waits for the event "the ack deadline of every message published so far has passed":
 * a sentinel, published now, whose first push goes unanswered, is delivered again only
 * once its own deadline (which started after theirs) has passed. An unacknowledged
 * earlier message would have been redelivered by then.
 */
async function pastAckDeadline(pubsub: PubsubRest, topic: string, rec: Awaited<ReturnType<typeof recorder>>): Promise<void> {
  const id = await pubsub.publish(topic, { data: '{}', attributes: SENTINEL });
  await until('the sentinel\'s redelivery after its ack deadline', () => rec.of(id).length >= 2, (ACK_DEADLINE_SECONDS + 20) * 1000);
}

/** A TCP proxy to the API server that can be taken down and brought back on the same port. */
async function tcpProxy(target: URL): Promise<{ port: number; down(): Promise<void>; up(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    /** Also ends kept-alive connections: the function must find the API server gone. */
    async down() {
      if (!server.listening) return;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
    async up() {
      server.listen(port, '127.0.0.1');
      await once(server, 'listening');
    },
  };
}

describe('POST /pubsub through the Pub/Sub emulator', { timeout: 120_000 }, () => {
  let fn: RunningFunction;
  let rec: Awaited<ReturnType<typeof recorder>>;
  let pubsub: PubsubRest;
  let ns: string;
  const topic = `gcr-${randomBytes(4).toString('hex')}`;
  const subscription = `${topic}-push`;
  const published: string[] = [];

  before(async () => {
    const info = await useSandboxEnv();
    assert.ok(info.pubsub, 'the sandbox runs the Pub/Sub emulator');
    ns = await namespace('pubsub');
    fn = await startFunction(
      configYaml({ auth: { direct: 'none', pubsub: 'none' }, clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns) }, rules: [registryRule('web')] }),
      WEB,
    );
    rec = await recorder(fn);
    pubsub = pubsubRest(info.pubsub, info.project);
    await pubsub.createTopic(topic);
    await pubsub.createPushSubscription({ topic, name: subscription, pushEndpoint: `${rec.url}/pubsub`, ackDeadlineSeconds: ACK_DEADLINE_SECONDS });
  });
  after(async () => {
    await pubsub.deleteSubscription(subscription);
    await rec.close();
    await fn.close();
  });

  async function publish(data: object | string): Promise<string> {
    const id = await pubsub.publish(topic, { data: typeof data === 'string' ? data : JSON.stringify(data) });
    published.push(id);
    return id;
  }

  test('a notification for an unmatched repository deploys nothing and is acknowledged (200 ignored)', async () => {
    const id = await publish({ action: 'INSERT', digest: `${OTHER_REPO}@${DIGEST}`, tag: `${OTHER_REPO}:v1.4.0` });
    const [push] = await until('the push', () => rec.of(id).length > 0 && rec.of(id));
    assert.equal(push?.status, 200, JSON.stringify(push?.body));
    assert.equal(push?.body.status, 'ignored');
    assert.match(String(push?.body.reason), /no artifact-registry rule matches europe-docker\.pkg\.dev\/sandbox-project\/apps\/api:v1\.4\.0@sha256/);
    assert.equal(push?.body.requestId, id);
    assert.equal(await exists('deployment', 'web', ns), false);
  });

  test('a malformed message is acknowledged (200) with an ERROR log naming it, and nothing is applied', async () => {
    const id = await publish('{"action": "INSERT", "tag": ');
    const [push] = await until('the push', () => rec.of(id).length > 0 && rec.of(id));
    assert.equal(push?.status, 200, JSON.stringify(push?.body));
    assert.equal(push?.body.acknowledged, true);
    assert.ok(fn.logs.some((l) => l.severity === 'ERROR' && l.message.includes(`Pub/Sub message ${id} `) && /not JSON/.test(l.message)), JSON.stringify(fn.logs));
    assert.equal(await exists('deployment', 'web', ns), false);
  });

  test('an Artifact Registry INSERT deploys the matching target, by digest', async () => {
    const id = await publish({ action: 'INSERT', digest: `${REPO}@${DIGEST}`, tag: `${REPO}:v1.4.0` });
    const [push] = await until('the push', () => rec.of(id).length > 0 && rec.of(id));
    assert.equal(push?.status, 200, JSON.stringify(push?.body));
    assert.deepEqual(await live(ns), { image: `${REPO}:v1.4.0@${DIGEST}`, source: 'pubsub/artifact-registry', requestId: id });
    const line = fn.logs.find((l) => l.message.startsWith('deployed') && l.requestId === id);
    assert.equal(line?.messageId, id);
    assert.equal(line?.subscription, `projects/sandbox-project/subscriptions/${subscription}`);
    assert.equal(line?.kind, 'artifact-registry');
  });

  test('no redelivery: past the ack deadline, each message was delivered exactly once', async () => {
    // Its own messages (an ignored one and a deploy), plus any the other tests published.
    const own = [
      await publish({ action: 'INSERT', digest: `${OTHER_REPO}@${DIGEST}`, tag: `${OTHER_REPO}:v1.4.1` }),
      await publish({ action: 'INSERT', digest: `${REPO}@${DIGEST}`, tag: `${REPO}:v1.4.1` }),
    ];
    for (const id of own) await until('the push', () => rec.of(id).length > 0);
    await pastAckDeadline(pubsub, topic, rec);
    for (const id of published) assert.equal(rec.of(id).length, 1, `message ${id}: ${JSON.stringify(rec.of(id).map((p) => p.status))}`);
    assert.equal(rec.pushes.filter((p) => p.status !== 0 && !published.includes(p.messageId ?? '')).length, 1, 'only the sentinel\'s second push besides');
    assert.equal(rec.pushes.filter((p) => published.includes(p.messageId ?? '')).length, published.length);
  });
});

test('transient failure: API server unreachable → 503, and the emulator\'s redelivery deploys once it is back', { timeout: 120_000 }, async (t) => {
  const info = await useSandboxEnv();
  assert.ok(info.pubsub);
  const ns = await namespace('pubsub-503');
  const proxy = await tcpProxy(new URL(info.server));
  const fn = await startFunction(
    configYaml({
      auth: { direct: 'none', pubsub: 'none' },
      clusters: { sandbox: { endpoint: { server: `https://127.0.0.1:${proxy.port}`, caFile: info.caFile, tokenFile: 'token' } } },
      targets: { web: webTarget(ns) },
      rules: [registryRule('web')],
    }),
    { ...WEB, token: await accessToken(info.serviceAccount) },
  );
  const rec = await recorder(fn);
  const pubsub = pubsubRest(info.pubsub, info.project);
  const topic = `gcr-${randomBytes(4).toString('hex')}`;
  await pubsub.createTopic(topic);
  await pubsub.createPushSubscription({ topic, name: `${topic}-push`, pushEndpoint: `${rec.url}/pubsub`, ackDeadlineSeconds: ACK_DEADLINE_SECONDS });
  try {
    await proxy.down();
    const id = await pubsub.publish(topic, { data: JSON.stringify({ action: 'INSERT', digest: `${REPO}@${DIGEST}`, tag: `${REPO}:v2.0.0` }) });

    const failed = await until('three refused deliveries', () => rec.of(id).length >= 3 && rec.of(id));
    for (const push of failed) {
      assert.equal(push.status, 503, JSON.stringify(push.body));
      assert.equal((push.body.results as { error: { code: string } }[])[0]?.error.code, 'CLUSTER_UNAVAILABLE');
    }
    assert.ok(fn.logs.some((l) => l.severity === 'ERROR' && l.requestId === id && l.code === 'CLUSTER_UNAVAILABLE' && l.acknowledged === undefined));

    await proxy.up();
    const ok = await until('a successful redelivery', () => rec.of(id).find((p) => p.status === 200));
    assert.equal(await exists('deployment', 'web', ns), true);
    assert.deepEqual(await live(ns), { image: `${REPO}:v2.0.0@${DIGEST}`, source: 'pubsub/artifact-registry', requestId: id });

    const gaps = rec.of(id).slice(1).map((p, i) => p.at - rec.of(id)[i]!.at);
    t.diagnostic(`deliveries: ${rec.of(id).map((p) => p.status).join(', ')}; gaps between them (ms): ${gaps.join(', ')}`);
    // Acknowledged: nothing more arrives for it, even past the ack deadline.
    const count = rec.of(id).length;
    await pastAckDeadline(pubsub, topic, rec);
    assert.equal(rec.of(id).length, count);
    assert.equal(rec.of(id).at(-1), ok);
  } finally {
    await pubsub.deleteSubscription(`${topic}-push`);
    await rec.close();
    await fn.close();
    await proxy.down();
  }
});

describe('POST /pubsub with auth.pubsub OIDC', () => {
  const AUDIENCE = 'https://gke-deployer-abc123-ew.a.run.app/pubsub';
  const PUSHER = 'pubsub-push@sandbox-project.iam.gserviceaccount.com';
  /** The subscription the intent fixture was pushed by. */
  const INTENTS = 'projects/sandbox-project/subscriptions/gke-deployer-deploy-requests';
  let fn: RunningFunction;
  let ns: string;

  before(async () => {
    const info = await useSandboxEnv();
    ns = await namespace('pubsub-auth');
    fn = await startFunction(
      configYaml({
        auth: { direct: 'none', pubsub: { audience: AUDIENCE, serviceAccounts: [PUSHER], subscriptions: [INTENTS] }, certsUrl: info.certsUrl },
        clusters: { sandbox: gkeCluster(info) },
        targets: { web: webTarget(ns, { accept: ['intent'] }) },
      }),
      WEB,
    );
  });
  after(() => fn.close());

  /** The Deployment's resourceVersion, or absent: "nothing applied" whichever tests ran before. */
  const state = async (): Promise<string> =>
    (await exists('deployment', 'web', ns)) ? (await kubectlJson<{ metadata: { resourceVersion: string } }>(['-n', ns, 'get', 'deployment', 'web'])).metadata.resourceVersion : 'absent';

  /** Neither the answer nor the production logger's lines since `from` hold the token or a long JWT segment of it. */
  function assertNotEchoed(headers: Record<string, string>, answer: unknown, from: number): void {
    const logged = fn.lines.slice(from).join('');
    assert.ok(logged.length > 0, 'the request is logged');
    const token = headers.authorization?.slice('Bearer '.length);
    if (!token) return;
    for (const part of [token, ...token.split('.').filter((p) => p.length >= 16)]) {
      assert.ok(!JSON.stringify(answer).includes(part), `the answer echoes the token: ${JSON.stringify(answer)}`);
      assert.ok(!logged.includes(part), `the log echoes the token: ${logged}`);
    }
  }

  const bearer = async (req: Parameters<typeof idToken>[0]) => ({ authorization: `Bearer ${await idToken(req)}` });
  const rejected: [string, () => Promise<Record<string, string>>][] = [
    ['no token (what the emulator sends)', () => Promise.resolve({})],
    ['wrong audience', () => bearer({ audience: 'https://gke-deployer-abc123-ew.a.run.app/deploy', email: PUSHER })],
    ['email not allowed', () => bearer({ audience: AUDIENCE, email: 'someone-else@sandbox-project.iam.gserviceaccount.com' })],
    ['email not verified', () => bearer({ audience: AUDIENCE, email: PUSHER, emailVerified: false })],
    ['expired beyond the clock skew', () => bearer({ audience: AUDIENCE, email: PUSHER, expiresInSeconds: -600 })],
    ['bad signature', () => bearer({ audience: AUDIENCE, email: PUSHER, signWithUnknownKey: true })],
  ];
  for (const [name, headers] of rejected) {
    test(`${name} → 401 (not acknowledged: Pub/Sub retries), nothing applied, the token in neither answer nor log`, async () => {
      const sent = await headers();
      const [before, from] = [await state(), fn.lines.length];
      const res = await fn.post('/pubsub', event('intent'), sent);
      assert.equal(res.status, 401, JSON.stringify(res.body));
      assert.equal((res.body.error as { code: string }).code, 'UNAUTHENTICATED');
      assert.equal(res.body.acknowledged, undefined);
      assert.equal(await state(), before);
      assertNotEchoed(sent, res.body, from);
    });
  }

  test('a valid token, but a subscription not in auth.pubsub.subscriptions → 200 acknowledged, ERROR log, nothing applied', async () => {
    // Any subscription the push service account may be attached to carries a valid token.
    const sent = { ...event('intent'), subscription: 'projects/sandbox-project/subscriptions/anyone-can-publish' };
    const headers = await bearer({ audience: AUDIENCE, email: PUSHER });
    const [before, from] = [await state(), fn.lines.length];
    const res = await fn.post('/pubsub', sent, headers);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assertNotEchoed(headers, res.body, from);
    assert.equal(res.body.acknowledged, true);
    assert.equal((res.body.error as { code: string }).code, 'BAD_REQUEST');
    const line = fn.logs.find((l) => /subscriptions\/anyone-can-publish: the subscription is not one of auth\.pubsub\.subscriptions/.test(l.message));
    assert.equal(line?.severity, 'ERROR');
    assert.equal(await state(), before);
  });

  test('an ID token for the audience from an allowed service account is accepted, and deploys', async () => {
    const headers = await bearer({ audience: AUDIENCE, email: PUSHER });
    const from = fn.lines.length;
    const res = await fn.post('/pubsub', event('intent'), headers);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(await live(ns), { image: `${REPO}:1.4.0`, source: 'pubsub/intent', requestId: '13672593821468057' });
    const line = fn.logs.find((l) => l.message.startsWith('deployed'));
    assert.equal(line?.caller, PUSHER);
    assertNotEchoed(headers, res.body, from);
  });
});

describe('POST /pubsub: the kinds of message and the CloudEvents envelopes', () => {
  const ACCEPT = { accept: ['intent'] };
  let fn: RunningFunction;
  // One namespace per target, so each test sees only what its message did.
  const ns: Record<'intent' | 'registry' | 'build' | 'fresh', string> = { intent: '', registry: '', build: '', fresh: '' };

  before(async () => {
    const info = await useSandboxEnv();
    for (const key of Object.keys(ns) as (keyof typeof ns)[]) ns[key] = await namespace(`pubsub-${key}`);
    fn = await startFunction(
      configYaml({
        auth: { direct: 'none', pubsub: 'none' },
        clusters: { sandbox: gkeCluster(info) },
        // Deploy intents over Pub/Sub are opt-in per target; registry and build take only their rules' messages.
        targets: { web: webTarget(ns.intent, ACCEPT), registry: webTarget(ns.registry), build: webTarget(ns.build), fresh: webTarget(ns.fresh, ACCEPT) },
        rules: [registryRule('registry'), buildRule('build')],
      }),
      WEB,
    );
  });
  after(() => fn.close());

  test('Cloud Build WORKING is ignored (200, status ignored)', async () => {
    const res = await fn.post('/pubsub', event('cloud-build-working'));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'ignored');
    assert.match(String(res.body.reason), /is WORKING: only SUCCESS deploys/);
    assert.equal(await exists('deployment', 'web', ns.build), false);
  });

  test('Cloud Build SUCCESS deploys the image it pushed, by digest', async () => {
    const res = await fn.post('/pubsub', event('cloud-build-success'));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(await live(ns.build), { image: `${REPO}:v1.4.0@${DIGEST}`, source: 'pubsub/cloud-build', requestId: '13672601782019873' });
    // The artifact-registry rule is not a cloud-build rule.
    assert.equal(await exists('deployment', 'web', ns.registry), false);
    const line = fn.logs.find((l) => l.requestId === '13672601782019873' && l.message.startsWith('deployed'));
    assert.equal(line?.buildId, '5f4b2c1e-8d3a-4e7b-9c61-2a0f9e8d7c6b');
  });

  test('an Artifact Registry DELETE, and a digest-only INSERT against a tags rule, are ignored (200, status ignored)', async () => {
    for (const name of ['artifact-registry-delete', 'artifact-registry-insert-digest-only']) {
      const res = await fn.post('/pubsub', event(name));
      assert.equal(res.status, 200, `${name}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.status, 'ignored');
    }
    assert.equal(await exists('deployment', 'web', ns.registry), false);
    assert.ok(fn.logs.some((l) => l.severity === 'INFO' && l.message.startsWith('ignored: Artifact Registry DELETE') && l.messageId === '13672788109145522'));
  });

  test('Eventarc structured mode (application/cloudevents+json) deploys', async () => {
    const res = await fn.post('/pubsub', event('eventarc-structured'), { 'content-type': 'application/cloudevents+json; charset=utf-8' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(await live(ns.registry), { image: `${REPO}:v1.4.0@${DIGEST}`, source: 'pubsub/artifact-registry', requestId: '13672601495527317' });
    assert.equal(fn.logs.find((l) => l.requestId === '13672601495527317')?.delivery, 'cloudevent-structured');
  });

  test('Eventarc binary mode (ce-* headers) deploys', async () => {
    const body = event('intent');
    const res = await fn.post('/pubsub', body, {
      'ce-specversion': '1.0',
      'ce-type': MESSAGE_PUBLISHED,
      'ce-source': '//pubsub.googleapis.com/projects/sandbox-project/topics/deploy-requests',
      'ce-id': body.message.messageId,
      'ce-time': body.message.publishTime ?? '',
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(await live(ns.intent), { image: `${REPO}:1.4.0`, source: 'pubsub/intent', requestId: body.message.messageId });
    assert.equal(fn.logs.find((l) => l.requestId === body.message.messageId)?.delivery, 'cloudevent-binary');
  });

  const intent = { target: 'fresh', image: `${REPO}:9.9.9` };
  const malformed: [string, () => Envelope, RegExp][] = [
    ['malformed base64', () => {
      const e = envelope(intent);
      e.message.data = `${e.message.data!.slice(0, 10)}*${e.message.data!.slice(11)}`;
      return e;
    }, /not valid base64/],
    ['data that is not JSON', () => envelope(`target=fresh image=${REPO}:9.9.9`), /message data is not JSON/],
    ['an intent with an unknown field', () => envelope({ ...intent, namespace: 'kube-system' }), /invalid deploy intent in the message data: \(body\): Unrecognized key: "namespace"/],
  ];
  for (const [name, body, reason] of malformed) {
    test(`${name} → 200 acknowledged, ERROR log naming the message, nothing applied`, async () => {
      const sent = body();
      const res = await fn.post('/pubsub', sent);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.acknowledged, true);
      assert.equal((res.body.error as { code: string }).code, 'BAD_REQUEST');
      const line = fn.logs.find((l) => l.message.includes(`Pub/Sub message ${sent.message.messageId} `));
      assert.equal(line?.severity, 'ERROR');
      assert.match(line.message, reason);
      assert.equal(line.acknowledged, true);
      assert.equal(await exists('deployment', 'web', ns.fresh), false);
    });
  }

  test('an unknown target → 200 acknowledged, ERROR log with the message id, nothing applied', async () => {
    const sent = envelope({ target: 'nope', image: `${REPO}:9.9.9` });
    const res = await fn.post('/pubsub', sent);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.acknowledged, true);
    assert.equal((res.body.results as { error: { code: string } }[])[0]?.error.code, 'UNKNOWN_TARGET');
    const line = fn.logs.find((l) => l.requestId === sent.message.messageId);
    assert.equal(line?.severity, 'ERROR');
    assert.equal(line.messageId, sent.message.messageId);
    assert.equal(line.code, 'UNKNOWN_TARGET');
    assert.equal(await exists('deployment', 'web', ns.fresh), false);
  });

  test('an image outside the target\'s repositories → 200 acknowledged, nothing applied', async () => {
    const res = await fn.post('/pubsub', envelope({ target: 'fresh', image: 'docker.io/evil/web:1' }));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal((res.body.results as { error: { code: string } }[])[0]?.error.code, 'IMAGE_NOT_ALLOWED');
    assert.equal(await exists('deployment', 'web', ns.fresh), false);
  });

  test('a content type other than JSON → acknowledged (200) with UNSUPPORTED_MEDIA_TYPE: Pub/Sub would only resend it', async () => {
    const res = await fetch(`${fn.url}/pubsub`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify(envelope(intent)) });
    const body = (await res.json()) as { acknowledged?: boolean; error: { code: string } };
    assert.equal(res.status, 200);
    assert.equal(body.error.code, 'UNSUPPORTED_MEDIA_TYPE');
    assert.equal(body.acknowledged, true);
    assert.equal(await exists('deployment', 'web', ns.fresh), false);
  });

  test('Container API down → 503, not acknowledged, nothing applied; the redelivery deploys', async () => {
    const info = await useSandboxEnv();
    const own = await namespace('pubsub-cold');
    // A fresh instance: a warm one has the cluster's endpoint cached and would not ask.
    const cold = await startFunction(configYaml({ auth: { direct: 'none', pubsub: 'none' }, clusters: { sandbox: gkeCluster(info) }, targets: { fresh: webTarget(own, ACCEPT) } }), WEB);
    const sent = envelope({ target: 'fresh', image: `${REPO}:5.0.0` });
    try {
      await control({ containerApiFailure: 'UNAVAILABLE' });
      const res = await cold.post('/pubsub', sent);
      assert.equal(res.status, 503, JSON.stringify(res.body));
      assert.equal(res.body.acknowledged, undefined);
      assert.equal((res.body.results as { error: { code: string } }[])[0]?.error.code, 'CONTAINER_API_UNAVAILABLE');
      assert.equal(await exists('deployment', 'web', own), false);
      await control({ containerApiFailure: null });
      const again = await cold.post('/pubsub', sent);
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.deepEqual(await live(own), { image: `${REPO}:5.0.0`, source: 'pubsub/intent', requestId: sent.message.messageId });
    } finally {
      await control({ containerApiFailure: null });
      await cold.close();
    }
  });

  test('a deploy intent for a target without accept: [intent] → 200 acknowledged, ERROR log, nothing applied', async () => {
    // The registry target holds what its rule deployed (Eventarc structured mode, above).
    const before = await exists('deployment', 'web', ns.registry) ? await live(ns.registry) : undefined;
    const sent = envelope({ target: 'registry', image: `${REPO}:9.9.9` });
    const res = await fn.post('/pubsub', sent);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.acknowledged, true);
    assert.equal((res.body.error as { code: string }).code, 'BAD_REQUEST');
    const line = fn.logs.find((l) => l.message.includes(`Pub/Sub message ${sent.message.messageId} `));
    assert.equal(line?.severity, 'ERROR');
    assert.match(line.message, /target "registry" does not accept deploy intents over Pub\/Sub/);
    assert.deepEqual(await exists('deployment', 'web', ns.registry) ? await live(ns.registry) : undefined, before);
  });

  test('an envelope that is not JSON → our JSON BAD_REQUEST, acknowledged (functions-framework never parses it)', async () => {
    const res = await fn.post('/pubsub', '{"message": {"data": ');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.acknowledged, true);
    assert.equal((res.body.error as { code: string }).code, 'BAD_REQUEST');
    assert.match((res.body.error as { message: string }).message, /body is not valid JSON/);
    assert.equal(await exists('deployment', 'web', ns.fresh), false);
  });

  test('without auth.pubsub there is no /pubsub route', async () => {
    const info = await useSandboxEnv();
    const bare = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns.fresh) } }), WEB);
    try {
      const res = await bare.post('/pubsub', event('intent'));
      assert.equal(res.status, 404);
      assert.equal(await exists('deployment', 'web', ns.fresh), false);
    } finally {
      await bare.close();
    }
  });
});
