// How each sender is told what became of its event: one row per outcome and sender.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DeployResult, DeployStatus } from '../../src/core/result.ts';
import { DeployError, type ErrorCode } from '../../src/errors.ts';
import type { Outcome } from '../../src/report/outcome.ts';
import { ackAnswer, statusAnswer, webhookAnswer } from '../../src/sources/answers.ts';

const result = (status: DeployStatus): DeployResult => ({
  status, target: 'web', cluster: 'c', namespace: 'n', image: 'r/i:1', requestId: 'id', dryRun: false, objects: [], elapsedMs: 1,
});
const done = (...s: (DeployStatus | ErrorCode)[]): Outcome => ({
  kind: 'done',
  results: s.map((x) => (x === x.toLowerCase() ? { ok: true, result: result(x as DeployStatus) } : { ok: false, target: 'web', error: new DeployError(x as ErrorCode, 'm') })),
});
const refused = (code: ErrorCode): Outcome => ({ kind: 'refused', error: new DeployError(code, 'm') });

// [outcome, /deploy & scheduler, webhooks, pubsub, pubsub acknowledged-as-failed]
const rows: [string, Outcome, number, number, number, boolean][] = [
  ['ready', done('ready'), 200, 200, 200, false],
  ['applied', done('applied'), 200, 200, 200, false],
  ['dry-run', done('dry-run'), 200, 200, 200, false],
  ['rolled-back', done('rolled-back'), 422, 200, 200, true],
  ['failed', done('failed'), 422, 200, 200, true],
  ['timed-out: unknown state, redeliver', done('timed-out'), 504, 200, 503, false],
  // Written, not rolled out: a redelivery would find it paused again.
  ['paused: written, not rolled out', done('paused'), 409, 200, 200, true],
  ['field conflict is permanent', done('CONFLICT'), 409, 409, 200, true],
  ['a running Job will finish: redeliver', done('JOB_RUNNING'), 409, 409, 503, false],
  ['RBAC denial is permanent', done('CLUSTER_FORBIDDEN'), 502, 502, 200, true],
  ['Container API NOT_FOUND is permanent', done('CONTAINER_API_ERROR'), 502, 502, 200, true],
  ['internal errors are permanent', done('INTERNAL'), 500, 500, 200, true],
  ['cluster unavailable: redeliver', done('CLUSTER_UNAVAILABLE'), 503, 503, 503, false],
  ['bad token: not acknowledged', refused('UNAUTHENTICATED'), 401, 401, 401, false],
  ['malformed: acknowledged', refused('BAD_REQUEST'), 400, 400, 200, true],
  ['ignored', { kind: 'ignored', reason: 'r' }, 202, 202, 200, false],
  // Accepted, not yet deployed (the queue delivers it to /pubsub, which never queues).
  ['queued', { kind: 'queued', intents: [{ target: 'web', image: 'r/i:1', eventId: 'e' }] }, 202, 202, 200, false],
  ['nothing could be queued: send again', refused('QUEUE_UNAVAILABLE'), 503, 503, 503, false],
  ['one of two failed', done('ready', 'IMAGE_NOT_ALLOWED'), 403, 403, 200, true],
  ['one of two retryable', done('IMAGE_NOT_ALLOWED', 'CLUSTER_UNAVAILABLE'), 503, 503, 503, false],
];

for (const [name, outcome, direct, webhook, pubsub, acknowledged] of rows) {
  test(`answers: ${name}`, () => {
    assert.equal(statusAnswer(outcome, 'rid').status, direct, 'status');
    assert.equal(webhookAnswer(outcome, 'rid').status, webhook, 'webhook');
    const ack = ackAnswer(outcome, 'rid');
    assert.equal(ack.status, pubsub, 'pubsub');
    assert.equal(ack.body.acknowledged === true, acknowledged, 'acknowledged');
  });
}

test('a single deploy answers with its result; several with a summary', () => {
  assert.equal(statusAnswer(done('rolled-back'), 'rid').body.status, 'rolled-back');
  const many = statusAnswer(done('ready', 'failed'), 'rid').body;
  assert.equal(many.status, 'partial');
  assert.equal((many.results as unknown[]).length, 2);
  assert.equal(statusAnswer(done('CONFLICT'), 'rid').body.requestId, 'rid');
});

test('a queued answer says which intents wait, under the request id', () => {
  const intents = [{ target: 'web', image: 'r/i:1', eventId: 'e1' }, { target: 'api', eventId: 'e1' }];
  for (const answer of [statusAnswer, webhookAnswer]) {
    assert.deepEqual(answer({ kind: 'queued', intents }, 'rid'), { status: 202, body: { status: 'queued', requestId: 'rid', intents } });
  }
});
