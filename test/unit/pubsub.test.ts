// The Pub/Sub source on its own: envelopes (push, CloudEvents binary and structured),
// the three kinds of message, and every refusal, from the recorded fixtures.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { Request } from '@google-cloud/functions-framework';
import { parseConfig } from '../../src/config/load.ts';
import type { PubsubAuth, Rule } from '../../src/config/schema.ts';
import { DeployError, type ErrorCode } from '../../src/errors.ts';
import { OidcVerifier } from '../../src/sources/auth/oidc.ts';
import { ackAnswer } from '../../src/sources/answers.ts';
import { decodeBase64, MESSAGE_PUBLISHED, pubsubSource } from '../../src/sources/pubsub.ts';
import { router } from '../../src/sources/router.ts';
import type { Delivery } from '../../src/sources/source.ts';

const REPO = 'europe-docker.pkg.dev/sandbox-project/apps/web';
const DIGEST = 'sha256:325ea4ffaff86cd961a90d6ffe248c0d61cb36f2deae56727d16a7a09c5a918f';

interface Envelope {
  message: { data?: string; attributes?: Record<string, string>; messageId: string; publishTime?: string };
  subscription: string;
  [k: string]: unknown;
}

function event<T = Envelope>(name: string): T {
  return JSON.parse(readFileSync(new URL(`../fixtures/events/pubsub-${name}.json`, import.meta.url), 'utf8')) as T;
}

/** What functions-framework hands the function: parsed headers and the raw body. */
function request(body: unknown, headers: Record<string, string> = {}): Request {
  const raw = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return {
    method: 'POST',
    path: '/pubsub',
    headers: { 'content-type': 'application/json', 'content-length': String(raw.length), ...headers },
    rawBody: raw,
    body,
  } as unknown as Request;
}

function withData(data: string | object, attributes?: Record<string, string>, messageId = '4242'): Envelope {
  return {
    message: {
      data: Buffer.from(typeof data === 'string' ? data : JSON.stringify(data)).toString('base64'),
      ...(attributes && { attributes }),
      messageId,
      publishTime: '2025-03-14T09:31:07.112Z',
    },
    subscription: 'projects/sandbox-project/subscriptions/gke-deployer',
  };
}

const rule = (r: Record<string, unknown>) => r as Rule;
const tagged: Rule[] = [
  rule({ source: 'artifact-registry', repository: REPO, tags: 'v*', targets: ['web'] }),
  rule({ source: 'cloud-build', repository: REPO, tags: 'v*', targets: ['web'] }),
];

/** `web` accepts deploy intents over Pub/Sub; `locked` does not (the default). */
const targets = new Map([
  ['web', { accept: ['intent'] }],
  ['locked', { accept: [] }],
]);

const receive = (body: unknown, headers?: Record<string, string>, rules: Rule[] = tagged, auth: PubsubAuth = 'none'): Delivery =>
  pubsubSource(auth, { rules, targets }, new OidcVerifier()).receive(request(body, headers));

function refused(body: unknown, code: ErrorCode, message: RegExp, headers?: Record<string, string>, rules?: Rule[], auth?: PubsubAuth): void {
  assert.throws(
    () => receive(body, headers, rules, auth),
    (e: unknown) => {
      assert.ok(e instanceof DeployError, String(e));
      assert.equal(e.code, code, e.message);
      assert.match(e.message, message);
      return true;
    },
  );
}

describe('the three kinds of message', () => {
  test('(a) a deploy intent deploys as POST /deploy would', () => {
    const d = receive(event('intent'));
    assert.equal(d.id, '13672593821468057');
    assert.deepEqual(d.intents, [{ target: 'web', image: `${REPO}:1.4.0`, dryRun: false, source: 'pubsub/intent' }]);
    assert.deepEqual(d.context, {
      messageId: '13672593821468057',
      subscription: 'projects/sandbox-project/subscriptions/gke-deployer-deploy-requests',
      delivery: 'push',
      publishTime: '2025-03-14T09:26:53.589Z',
      kind: 'intent',
    });
  });

  test('(a) dryRun is passed on; unknown fields and wrong types are refused', () => {
    assert.equal(receive(withData({ target: 'web', image: `${REPO}:1`, dryRun: true })).intents[0]?.dryRun, true);
    refused(withData({ target: 'web', image: `${REPO}:1`, force: true }), 'BAD_REQUEST', /message 4242 .*invalid deploy intent.*force/);
    refused(withData({ target: 'web', image: 7 }), 'BAD_REQUEST', /image/);
    refused(withData({ target: '', image: `${REPO}:1` }), 'BAD_REQUEST', /target/);
  });

  test('(a) only a target with accept: [intent] takes deploy intents; an unknown target is left to the pipeline', () => {
    refused(withData({ target: 'locked', image: `${REPO}:1` }), 'BAD_REQUEST', /message 4242 .*target "locked" does not accept deploy intents over Pub\/Sub/);
    assert.deepEqual(receive(withData({ target: 'nosuch', image: `${REPO}:1` })).intents.map((i) => i.target), ['nosuch']);
    // Rules still route Artifact Registry and Cloud Build messages to a target without accept.
    const toLocked = [rule({ source: 'artifact-registry', repository: REPO, targets: ['locked'] })];
    assert.deepEqual(receive(withData({ action: 'INSERT', tag: `${REPO}:v2` }), {}, toLocked).intents.map((i) => i.target), ['locked']);
  });

  test('(b) an Artifact Registry INSERT deploys repo:tag@digest to every matching target, once each', () => {
    const d = receive(event('artifact-registry-insert'));
    assert.equal(d.id, '13672601495527316');
    assert.deepEqual(d.intents, [{ target: 'web', image: `${REPO}:v1.4.0@${DIGEST}`, dryRun: false, source: 'pubsub/artifact-registry' }]);
    assert.equal(d.context?.kind, 'artifact-registry');
    assert.equal(d.context?.action, 'INSERT');

    const rules = [
      ...tagged,
      rule({ source: 'artifact-registry', repository: REPO, targets: ['web', 'canary'] }),
      rule({ source: 'artifact-registry', repository: REPO, tags: '>=2.0.0', targets: ['next'] }),
    ];
    assert.deepEqual(
      receive(event('artifact-registry-insert'), {}, rules).intents.map((i) => [i.target, i.image]),
      [['web', `${REPO}:v1.4.0@${DIGEST}`], ['canary', `${REPO}:v1.4.0@${DIGEST}`]],
    );
  });

  test('(b) a tag-only INSERT deploys by tag', () => {
    const d = receive(withData({ action: 'INSERT', tag: `${REPO}:v2` }));
    assert.deepEqual(d.intents.map((i) => i.image), [`${REPO}:v2`]);
  });

  test('(b) unmatched repository or tag: ignored, saying why', () => {
    const other = receive(withData({ action: 'INSERT', digest: `europe-docker.pkg.dev/sandbox-project/apps/api@${DIGEST}`, tag: 'europe-docker.pkg.dev/sandbox-project/apps/api:v1' }));
    assert.deepEqual(other.intents, []);
    assert.match(other.ignored ?? '', /no artifact-registry rule matches europe-docker\.pkg\.dev\/sandbox-project\/apps\/api:v1@sha256/);
    const untagged = receive(withData({ action: 'INSERT', tag: `${REPO}:latest` }));
    assert.deepEqual(untagged.intents, []);
  });

  test("(b') DELETE is ignored", () => {
    const d = receive(event('artifact-registry-delete'), {}, [rule({ source: 'artifact-registry', repository: REPO, targets: ['web'] })]);
    assert.deepEqual(d.intents, []);
    assert.match(d.ignored ?? '', /DELETE of .*web:v1\.3\.0: deletions are not deployed/);
    assert.equal(d.id, '13672788109145522');
  });

  test("(b'') a digest-only INSERT: ignored by a tags rule, deployed by digest by a rule without tags", () => {
    const ignored = receive(event('artifact-registry-insert-digest-only'));
    assert.deepEqual(ignored.intents, []);
    assert.match(ignored.ignored ?? '', /digest-only/);
    const pinned = receive(event('artifact-registry-insert-digest-only'), {}, [rule({ source: 'artifact-registry', repository: REPO, targets: ['pinned'] })]);
    assert.deepEqual(pinned.intents, [{ target: 'pinned', image: `${REPO}@${DIGEST}`, dryRun: false, source: 'pubsub/artifact-registry' }]);
  });

  test('(b) other actions are ignored; INSERTs that make no sense are refused', () => {
    assert.match(receive(withData({ action: 'UPDATE', tag: `${REPO}:v1` })).ignored ?? '', /action UPDATE is not acted on/);
    refused(withData({ action: 'INSERT' }), 'BAD_REQUEST', /INSERT without digest or tag/);
    refused(withData({ action: 'INSERT', digest: `${REPO}:v1` }), 'BAD_REQUEST', /digest: .* has no digest/);
    refused(withData({ action: 'INSERT', tag: 'v1.4.0' }), 'BAD_REQUEST', /tag: .*needs a tag or a digest/);
    refused(withData({ action: 'INSERT', digest: `${REPO}@sha256:abc` }), 'BAD_REQUEST', /not a valid image reference/);
    refused(withData({ action: 'INSERT', digest: `${REPO}@${DIGEST}`, tag: 'europe-docker.pkg.dev/p/other/img:v1' }), 'BAD_REQUEST', /two repositories/);
    refused(withData({ action: 42 }), 'BAD_REQUEST', /invalid Artifact Registry notification: action/);
  });

  test('(c) a successful Cloud Build deploys its pushed image by digest, one deploy per target', () => {
    const d = receive(event('cloud-build-success'));
    assert.equal(d.id, '13672601782019873');
    // Ordered by when the build finished, not when the notification was published.
    assert.deepEqual(d.intents, [{ target: 'web', image: `${REPO}:v1.4.0@${DIGEST}`, dryRun: false, source: 'pubsub/cloud-build', eventTime: '2025-03-14T09:31:05.996184Z' }]);
    assert.equal(d.context?.buildId, '5f4b2c1e-8d3a-4e7b-9c61-2a0f9e8d7c6b');
    assert.equal(d.context?.buildStatus, 'SUCCESS');
    assert.equal(d.context?.commit, '8f3c2a1d9b7e6f5a4c3b2a1908f7e6d5c4b3a291');
    // Without tags, both pushed names (:v1.4.0 and :8f3c2a1) match: the target still gets one deploy.
    const any = receive(event('cloud-build-success'), {}, [rule({ source: 'cloud-build', repository: REPO, targets: ['web'] })]);
    assert.deepEqual(any.intents.map((i) => i.image), [`${REPO}:v1.4.0@${DIGEST}`]);
    // Artifact Registry rules do not apply to Cloud Build notifications.
    assert.deepEqual(receive(event('cloud-build-success'), {}, [rule({ source: 'artifact-registry', repository: REPO, targets: ['web'] })]).intents, []);
  });

  test('(c) any other status is ignored, whatever the data', () => {
    const working = receive(event('cloud-build-working'));
    assert.deepEqual(working.intents, []);
    assert.match(working.ignored ?? '', /is WORKING: only SUCCESS deploys/);
    for (const status of ['QUEUED', 'FAILURE', 'TIMEOUT', 'CANCELLED']) {
      assert.deepEqual(receive(withData('not even JSON', { buildId: 'b-1', status })).intents, []);
    }
  });

  test('(c) refused: attributes and data disagree, a malformed Build, no status; a build without images is ignored', () => {
    const build = JSON.parse(Buffer.from(event('cloud-build-success').message.data!, 'base64').toString('utf8')) as Record<string, unknown>;
    refused(withData({ ...build, id: 'another-build' }, { buildId: build.id as string, status: 'SUCCESS' }), 'BAD_REQUEST', /disagrees with itself/);
    refused(withData({ ...build, results: { images: [{ name: REPO, digest: 'sha256:short' }] } }, { buildId: build.id as string, status: 'SUCCESS' }), 'BAD_REQUEST', /results\.images\.0\.digest/);
    refused(withData(build, { buildId: build.id as string }), 'BAD_REQUEST', /Cloud Build notification attributes: status/);
    // A name reported with its digest is still read as repository:tag.
    const pinnedName = receive(withData({ ...build, results: { images: [{ name: `${REPO}:v9@${DIGEST}`, digest: DIGEST }] } }, { buildId: build.id as string, status: 'SUCCESS' }));
    assert.deepEqual(pinnedName.intents.map((i) => i.image), [`${REPO}:v9@${DIGEST}`]);
    const none = receive(withData({ ...build, results: {} }, { buildId: build.id as string, status: 'SUCCESS' }));
    assert.match(none.ignored ?? '', /reports no pushed images/);
  });

  test('data of no known kind is refused, naming the message', () => {
    refused(withData({ hello: 'world' }), 'BAD_REQUEST', /^Pub\/Sub message 4242 from projects\/sandbox-project\/subscriptions\/gke-deployer: message data is none of/);
    refused(withData([1, 2]), 'BAD_REQUEST', /none of/);
  });
});

describe('envelopes', () => {
  test('Eventarc, structured mode: the push body is the CloudEvent data', () => {
    const d = receive(event('eventarc-structured'), { 'content-type': 'application/cloudevents+json; charset=utf-8' });
    assert.equal(d.id, '13672601495527317');
    assert.equal(d.context?.delivery, 'cloudevent-structured');
    assert.deepEqual(d.intents.map((i) => i.image), [`${REPO}:v1.4.0@${DIGEST}`]);
  });

  test('Eventarc, binary mode: ce-* headers, the push body as is', () => {
    const headers = {
      'ce-specversion': '1.0', 'ce-type': MESSAGE_PUBLISHED, 'ce-id': '13672601495527316',
      'ce-source': '//pubsub.googleapis.com/projects/sandbox-project/topics/gcr', 'ce-time': '2025-03-14T09:31:07.112Z',
    };
    const d = receive(event('artifact-registry-insert'), headers);
    assert.equal(d.context?.delivery, 'cloudevent-binary');
    assert.equal(d.id, '13672601495527316');
    assert.deepEqual(d.intents.map((i) => i.image), [`${REPO}:v1.4.0@${DIGEST}`]);
    refused(event('artifact-registry-insert'), 'BAD_REQUEST', /CloudEvent type "google.cloud.storage.object.v1.finalized" is not handled/, { ...headers, 'ce-type': 'google.cloud.storage.object.v1.finalized' });
    refused(event('artifact-registry-insert'), 'BAD_REQUEST', /invalid CloudEvent headers: .*ce-id/, { 'ce-specversion': '1.0', 'ce-type': MESSAGE_PUBLISHED });
  });

  test('CloudEvents that are not a published message, or carry no message, are refused', () => {
    const ce = event<Record<string, unknown>>('eventarc-structured');
    const structured = { 'content-type': 'application/cloudevents+json' };
    refused({ ...ce, type: 'google.cloud.audit.log.v1.written' }, 'BAD_REQUEST', /is not handled here/, structured);
    refused({ ...ce, specversion: '0.3' }, 'BAD_REQUEST', /invalid CloudEvent: specversion/, structured);
    refused({ ...ce, data: { subscription: 's' } }, 'BAD_REQUEST', /invalid CloudEvent data: message/, structured);
  });

  test('the fields Pub/Sub adds (message_id, publish_time, deliveryAttempt, orderingKey) are accepted', () => {
    const body = { ...event('intent'), deliveryAttempt: 3 };
    body.message = { ...body.message, orderingKey: 'web' } as Envelope['message'];
    const d = receive(body);
    assert.equal(d.context?.deliveryAttempt, '3');
    assert.equal(d.intents.length, 1);
  });

  test('refused: malformed base64, non-UTF-8 or non-JSON data, no data — each naming the message id', () => {
    const body = event('intent');
    refused({ ...body, message: { ...body.message, data: 'eyJ0YXJnZXQiOi*=' } }, 'BAD_REQUEST', /message 13672593821468057 .*not valid base64/);
    refused({ ...body, message: { ...body.message, data: 'abcde' } }, 'BAD_REQUEST', /not valid base64/);
    refused(withData('{"target": "web", '), 'BAD_REQUEST', /message 4242 .*message data is not JSON/);
    refused({ ...body, message: { ...body.message, data: Buffer.from([0xff, 0xfe, 0x7b]).toString('base64') } }, 'BAD_REQUEST', /not UTF-8/);
    const { data: _none, ...noData } = body.message;
    refused({ ...body, message: { ...noData, attributes: { a: 'b' } } }, 'BAD_REQUEST', /message 13672593821468057 .*message has no data/);
  });

  test('refused: envelopes without message id or subscription, odd publish times, too many attributes', () => {
    const body = event('intent');
    const { messageId: _id, ...noId } = body.message;
    refused({ ...body, message: noId }, 'BAD_REQUEST', /invalid Pub\/Sub push body: message\.messageId/);
    refused({ ...body, message: { ...body.message, messageId: 'has spaces' } }, 'BAD_REQUEST', /messageId/);
    refused({ message: body.message }, 'BAD_REQUEST', /subscription/);
    refused({ ...body, message: { ...body.message, publishTime: 'yesterday' } }, 'BAD_REQUEST', /publishTime/);
    const many = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`k${i}`, 'v']));
    refused({ ...body, message: { ...body.message, attributes: many } }, 'BAD_REQUEST', /at most 100 attributes/);
    refused({ ...body, message: { ...body.message, attributes: { a: 7 } } }, 'BAD_REQUEST', /attributes\.a/);
  });

  test('an unwrapped push (bare data as the body) is refused with a hint', () => {
    refused({ action: 'INSERT', tag: `${REPO}:v1` }, 'BAD_REQUEST', /payload unwrapping is not supported/);
  });

  test('content types other than JSON and CloudEvents JSON, and bodies over the limit, are refused', () => {
    refused('target=web', 'UNSUPPORTED_MEDIA_TYPE', /application\/json or application\/cloudevents\+json/, { 'content-type': 'text/plain' });
    refused({ ...event<Envelope>('intent'), pad: 'x'.repeat(1024 * 1024) }, 'PAYLOAD_TOO_LARGE', /limit/);
  });
});

test('base64: standard or URL-safe, padded or not; anything else refused', () => {
  assert.equal(decodeBase64('aGk/Pz8+').toString(), 'hi???>');
  assert.equal(decodeBase64('aGk_Pz8-').toString(), 'hi???>');
  assert.equal(decodeBase64('aGk=').toString(), 'hi');
  assert.equal(decodeBase64('aGk').toString(), 'hi');
  assert.equal(decodeBase64('').length, 0);
  for (const bad of ['aGk==', 'a', 'aGk?', 'aG k=', 'aGk/Pz8-', '====', 'aGk=aGk=']) {
    assert.throws(() => decodeBase64(bad), /not valid base64/, bad);
  }
});

describe('auth.pubsub.subscriptions', () => {
  const only = (auth: Record<string, unknown>) => ({ ...auth, subscriptions: ['projects/sandbox-project/subscriptions/gke-deployer'] }) as PubsubAuth;

  test('a message from a listed subscription is read as usual, with a token or with token: none', () => {
    assert.equal(receive(withData({ target: 'web', image: `${REPO}:1` }), {}, tagged, only({ token: 'none' })).intents.length, 1);
    const oidc = only({ audience: 'https://x.run.app/pubsub', serviceAccounts: ['push@p.iam.gserviceaccount.com'] });
    assert.equal(receive(withData({ action: 'INSERT', tag: `${REPO}:v2` }), {}, tagged, oidc).intents.length, 1);
  });

  test('any other subscription is refused (acknowledged), whatever the message asks', () => {
    // The intent fixture comes from projects/sandbox-project/subscriptions/gke-deployer-deploy-requests.
    refused(event('intent'), 'BAD_REQUEST', /from projects\/sandbox-project\/subscriptions\/gke-deployer-deploy-requests: the subscription is not one of auth\.pubsub\.subscriptions/, {}, tagged, only({ token: 'none' }));
    const other = { ...withData({ action: 'INSERT', tag: `${REPO}:v2` }), subscription: 'projects/evil/subscriptions/gke-deployer' };
    refused(other, 'BAD_REQUEST', /not one of auth\.pubsub\.subscriptions/, {}, tagged, only({ token: 'none' }));
    // Eventarc carries the subscription inside the CloudEvent data.
    refused(event('eventarc-structured'), 'BAD_REQUEST', /not one of/, { 'content-type': 'application/cloudevents+json' }, tagged, only({ token: 'none' }));
  });
});

test('authentication: "none" and token: none let anyone in; OIDC without a bearer token is refused before anything else', async () => {
  for (const auth of ['none', { token: 'none' }] as PubsubAuth[]) {
    assert.equal(await pubsubSource(auth, { rules: tagged, targets }, new OidcVerifier()).authenticate(request(event('intent'))), 'unauthenticated');
  }
  const oidc = pubsubSource({ audience: 'https://x.run.app/pubsub', serviceAccounts: ['push@p.iam.gserviceaccount.com'] }, { rules: tagged, targets }, new OidcVerifier());
  await assert.rejects(oidc.authenticate(request(event('intent'))), (e: unknown) => e instanceof DeployError && e.code === 'UNAUTHENTICATED');
  assert.equal(oidc.answer, ackAnswer);
});

test('token: none is unauthenticated access, and the router says so at start-up as for none', () => {
  for (const pubsub of ['none', '{ token: none, subscriptions: [projects/p/subscriptions/s] }']) {
    const warnings: string[] = [];
    const config = parseConfig(`auth: { direct: { audience: a, serviceAccounts: [ci@p.iam.gserviceaccount.com] }, pubsub: ${pubsub} }\nclusters: {}\ntargets: {}\n`, '/nowhere/deployer.yaml');
    router({ config, deploy: () => Promise.reject(new Error('never called')), log: (severity, message) => severity === 'WARNING' && warnings.push(message) });
    assert.deepEqual(warnings, ['auth.pubsub is "none": its route accepts unauthenticated callers; use this only locally or with an emulator'], pubsub);
  }
});
