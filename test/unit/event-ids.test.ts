// Where each sender's event id and time come from (issue: never go backwards, never twice).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Rule } from '../../src/config/schema.ts';
import { interpretMessage } from '../../src/sources/pubsub-messages.ts';
import { decodeBase64 } from '../../src/sources/pubsub.ts';
import { gitlabSource } from '../../src/sources/gitlab.ts';
import { directSource } from '../../src/sources/direct.ts';
import { pubsubSource } from '../../src/sources/pubsub.ts';
import { OidcVerifier } from '../../src/sources/auth/oidc.ts';
import { DeployError } from '../../src/errors.ts';
import type { Request } from '@google-cloud/functions-framework';

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/events/${name}`, import.meta.url), 'utf8')) as Record<string, unknown>;

test('a Cloud Build notification orders its deploys by the build finishTime', () => {
  const envelope = fixture('pubsub-cloud-build-success.json') as { message: { data: string; attributes: Record<string, string> } };
  const data = decodeBase64(envelope.message.data);
  const build = JSON.parse(data.toString('utf8')) as { finishTime: string; results: { images: { name: string }[] } };
  const repository = build.results.images[0]!.name.split('@')[0]!.split(':')[0]!;
  const rules: Rule[] = [{ source: 'cloud-build', repository, targets: ['web'] }];
  const what = interpretMessage(data, envelope.message.attributes, rules);
  assert.ok(what.intents.length > 0, JSON.stringify(what));
  for (const intent of what.intents) assert.equal(intent.eventTime, build.finishTime);
});

test("GitLab: Idempotency-Key (the same on GitLab's retries) is the event id, else X-Gitlab-Webhook-UUID", () => {
  process.env.EVENT_IDS_TEST_TOKEN = 'tok';
  const source = gitlabSource({ tokenEnv: 'EVENT_IDS_TEST_TOKEN' }, []);
  const body = readFileSync(new URL('../fixtures/events/gitlab-push.json', import.meta.url));
  const req = (headers: Record<string, string>) =>
    ({ headers: { 'content-type': 'application/json', 'x-gitlab-event': 'Push Hook', 'content-length': String(body.length), ...headers }, rawBody: body, body: {} }) as unknown as Request;
  assert.equal(source.receive(req({ 'idempotency-key': 'a1b2-key', 'x-gitlab-webhook-uuid': 'c3d4-uuid' })).id, 'a1b2-key');
  assert.equal(source.receive(req({ 'x-gitlab-webhook-uuid': 'c3d4-uuid' })).id, 'c3d4-uuid');
});

// Issue 17 item 4: no time a caller controls may block later deploys.
const arrival = (body: Buffer | string) => ({ 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });

test('/deploy refuses an eventTime more than a minute ahead of the clock (400), and takes one within it', () => {
  const source = directSource('none', new OidcVerifier());
  const req = (eventTime: string) => {
    const body = JSON.stringify({ target: 'web', image: 'ghcr.io/acme/web:1', eventTime });
    return { headers: arrival(body), rawBody: Buffer.from(body), body: {} } as unknown as Request;
  };
  assert.throws(() => source.receive(req('2099-01-01T00:00:00Z')), (e: unknown) => e instanceof DeployError && e.code === 'BAD_REQUEST' && /eventTime 2099-01-01T00:00:00Z is in the future/.test(e.message));
  assert.throws(() => source.receive(req(new Date(Date.now() + 5 * 60_000).toISOString())), (e: unknown) => e instanceof DeployError && e.code === 'BAD_REQUEST');
  const near = new Date(Date.now() + 10_000).toISOString();
  assert.equal(source.receive(req(near)).intents[0]?.eventTime, near);
});

test("a Cloud Build notification's finishTime is bounded by the message's publishTime (Google's, not the build's)", () => {
  const envelope = fixture('pubsub-cloud-build-success.json') as { message: { data: string; attributes: Record<string, string>; publishTime: string } };
  const build = JSON.parse(decodeBase64(envelope.message.data).toString('utf8')) as { finishTime: string; results: { images: { name: string }[] } };
  const repository = build.results.images[0]!.name.split('@')[0]!.split(':')[0]!;
  const source = pubsubSource('none', { rules: [{ source: 'cloud-build', repository, targets: ['web'] }], targets: new Map() }, new OidcVerifier());
  const post = (finishTime: string) => {
    const data = Buffer.from(JSON.stringify({ ...build, finishTime })).toString('base64');
    const body = JSON.stringify({ ...envelope, message: { ...envelope.message, data } });
    return source.receive({ headers: arrival(body), rawBody: Buffer.from(body), body: {} } as unknown as Request);
  };
  const future = post('2099-01-01T00:00:00Z');
  assert.ok(future.intents.length > 0, JSON.stringify(future));
  for (const i of future.intents) assert.equal(i.eventTime, envelope.message.publishTime);
  // A finishTime before the publishTime is kept: it orders builds better than when they were announced.
  for (const i of post(build.finishTime).intents) assert.equal(i.eventTime, build.finishTime);
});
