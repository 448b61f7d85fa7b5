// Every status has a place: each status a deploy can end in (DEPLOY_STATUSES) walks through
// every table that maps outcomes (the worst-first order and the success set, the log
// severity, the HTTP status, the Pub/Sub acknowledgement, the GitHub and GitLab states)
// and through the README's tables. The tables are typed Record<DeployStatus, …>, so a new
// status does not compile without a place; this says the README keeps up too.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DEPLOY_STATUSES, type DeployResult, type DeployStatus } from '../../src/core/result.ts';
import { githubState } from '../../src/report/github-status.ts';
import { gitlabState } from '../../src/report/gitlab-status.ts';
import { SUCCEEDED, WORST_FIRST, severityOf, succeeded, worstStatus, type IntentOutcome, type Outcome } from '../../src/report/outcome.ts';
import { ackAnswer, statusAnswer, webhookAnswer } from '../../src/sources/answers.ts';

const result = (status: DeployStatus): DeployResult => ({
  status, target: 'web', cluster: 'c', namespace: 'n', image: 'r/i:1', requestId: 'id', dryRun: false, reason: `why it is ${status}`, objects: [], elapsedMs: 1,
});
const ok = (status: DeployStatus): IntentOutcome => ({ ok: true, result: result(status) });
const done = (status: DeployStatus): Outcome => ({ kind: 'done', results: [ok(status)] });

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The statuses named in the first column of the README table whose header row starts with `header`. */
function readmeColumn(header: string): string[] {
  const lines = README.split('\n');
  const start = lines.findIndex((l) => l.startsWith(header));
  assert.ok(start >= 0, `README has a table headed ${header}`);
  const names: string[] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const first = line.split('|')[1] ?? '';
    if (first.trim().startsWith('(') || first.includes('error')) continue; // "(deploy starts)", "error (…)"
    names.push(...[...first.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]!));
  }
  return names;
}

test('every status is a place in each table, exactly once', () => {
  assert.deepEqual([...WORST_FIRST].sort(), [...DEPLOY_STATUSES].sort(), 'WORST_FIRST');
  assert.equal(new Set(WORST_FIRST).size, WORST_FIRST.length);
  for (const s of SUCCEEDED) assert.ok(DEPLOY_STATUSES.includes(s));
});

for (const status of DEPLOY_STATUSES) {
  test(`${status}: placed in every table`, () => {
    assert.ok(WORST_FIRST.includes(status));
    assert.equal(worstStatus([status]), status);
    assert.ok(['INFO', 'NOTICE', 'WARNING', 'ERROR'].includes(severityOf(ok(status))), `severity ${severityOf(ok(status))}`);
    const direct = statusAnswer(done(status), 'id').status;
    assert.ok(Number.isInteger(direct) && direct >= 200 && direct < 600, `/deploy answers ${direct}`);
    assert.equal(webhookAnswer(done(status), 'id').status, 200);
    // Pub/Sub: acknowledged (200), or redelivered (503); a failure acknowledged is flagged.
    const ack = ackAnswer(done(status), 'id');
    assert.ok(ack.status === 200 || ack.status === 503, `/pubsub answers ${ack.status}`);
    assert.equal(ack.body.acknowledged === true, ack.status === 200 && !succeeded(ok(status)));
    // What did not succeed is never answered 200 to a caller that reads statuses (a success
    // may be: stale is 409, so that a caller learns a newer deploy won).
    if (!SUCCEEDED.has(status)) assert.notEqual(direct, 200, `/deploy answers ${direct}`);
    // Final states, but for `held`: it waits, and its report stays open (pending) until it is deployed or dropped.
    const open = status === 'held' ? ['pending'] : [];
    assert.ok(['success', 'failure', 'inactive', ...open].includes(githubState(ok(status))), `GitHub ${githubState(ok(status))}`);
    assert.ok(['success', 'failed', 'canceled', ...open].includes(gitlabState(ok(status))), `GitLab ${gitlabState(ok(status))}`);
    assert.equal(githubState(ok(status)) === 'success', gitlabState(ok(status)) === 'success');
    // Logged at ERROR only what failed: never a success, whatever Pub/Sub is told.
    if (SUCCEEDED.has(status)) assert.notEqual(severityOf(ok(status)), 'ERROR');
  });
}

test('the README names every status in its outcome tables and the worst-first order', () => {
  assert.deepEqual(readmeColumn('| outcome (`status`) |').filter((s) => s !== 'skipped').sort(), [...DEPLOY_STATUSES].sort(), 'Routes: the outcome table');
  assert.deepEqual(readmeColumn('| outcome | GitHub | GitLab |').sort(), [...DEPLOY_STATUSES].filter((s) => s !== 'dry-run').sort(), 'report: the GitHub/GitLab table (dry runs post none)');
  const order = README.split('\n').find((l) => /^`failed` > /.test(l));
  assert.equal(order, WORST_FIRST.map((s) => `\`${s}\``).join(' > '), 'Several clusters: the worst-first order');
  const attribute = README.split('\n').find((l) => l.startsWith('| `status` | the body'));
  for (const s of DEPLOY_STATUSES) assert.ok(attribute?.includes(`\`${s}\``), `report.topic's status attribute lists ${s}`);
});

test('held: 202 with its hold, acknowledged, GitHub and GitLab pending, a NOTICE; rejected, superseded: skips', () => {
  assert.equal(statusAnswer(done('held'), 'id').status, 202);
  assert.deepEqual([ackAnswer(done('held'), 'id').status, ackAnswer(done('held'), 'id').body.acknowledged], [200, undefined]);
  assert.deepEqual([githubState(ok('held')), gitlabState(ok('held'))], ['pending', 'pending']);
  assert.equal(severityOf(ok('held')), 'NOTICE');
  assert.deepEqual([statusAnswer(done('quarantined'), 'id').status, ackAnswer(done('quarantined'), 'id').body.acknowledged, githubState(ok('quarantined'))], [409, true, 'failure']);
  assert.deepEqual([statusAnswer(done('superseded'), 'id').status, githubState(ok('superseded')), gitlabState(ok('superseded'))], [409, 'inactive', 'canceled']);
  assert.deepEqual([statusAnswer(done('expired'), 'id').status, githubState(ok('expired'))], [410, 'inactive']);
  assert.deepEqual([statusAnswer(done('rejected'), 'id').status, githubState(ok('rejected')), gitlabState(ok('rejected'))], [200, 'failure', 'canceled']);
});

test('paused: 409, acknowledged, GitHub failure and GitLab failed with the reason, a WARNING', () => {
  assert.equal(statusAnswer(done('paused'), 'id').status, 409);
  assert.deepEqual([ackAnswer(done('paused'), 'id').status, ackAnswer(done('paused'), 'id').body.acknowledged], [200, true]);
  assert.deepEqual([githubState(ok('paused')), gitlabState(ok('paused'))], ['failure', 'failed']);
  assert.equal(severityOf(ok('paused')), 'WARNING');
  assert.equal(SUCCEEDED.has('paused'), false);
  // Worse than a skip, better than anything that failed.
  assert.equal(worstStatus(['paused', 'stale']), 'paused');
  assert.equal(worstStatus(['paused', 'rolled-back']), 'rolled-back');
});
