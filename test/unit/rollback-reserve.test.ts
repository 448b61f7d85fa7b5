// README (DEPLOY_DEADLINE_SECONDS): the rollout wait leaves a quarter of the request's time
// for a rollback, at most 60 s. test/rollout.test.ts shows the quarter at 10 s; the cap only
// bites past 240 s, so it is checked here at the real default (540 s), not waited for.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deadlineMs } from '../../src/app.ts';
import { rollbackReserveMs } from '../../src/deploy/cluster-deploy.ts';

test('the default deadline (540 s) keeps 60 s for a rollback, not a quarter (135 s)', () => {
  const request = deadlineMs({});
  assert.equal(request, 540_000);
  assert.equal(rollbackReserveMs(request), 60_000);
});

test('a quarter below the cap: 10 s keeps 2.5 s, 240 s keeps 60 s, 3600 s still 60 s', () => {
  assert.equal(rollbackReserveMs(deadlineMs({ DEPLOY_DEADLINE_SECONDS: '10' })), 2_500);
  assert.equal(rollbackReserveMs(deadlineMs({ DEPLOY_DEADLINE_SECONDS: '200' })), 50_000);
  assert.equal(rollbackReserveMs(deadlineMs({ DEPLOY_DEADLINE_SECONDS: '240' })), 60_000);
  assert.equal(rollbackReserveMs(deadlineMs({ DEPLOY_DEADLINE_SECONDS: '3600' })), 60_000);
});
