// Where each sender's event id and time come from (issue: never go backwards, never twice).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Rule } from '../../src/config/schema.ts';
import { interpretMessage } from '../../src/sources/pubsub-messages.ts';
import { decodeBase64 } from '../../src/sources/pubsub.ts';
import { gitlabSource } from '../../src/sources/gitlab.ts';
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
