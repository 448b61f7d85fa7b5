// A target on several clusters, without a cluster: the configuration it takes, the order
// "worst" uses, how its result is answered.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import type { ClusterResult, ClusterStatus, DeployStatus, FanOutResult } from '../../src/core/result.ts';
import { DeployError, type ErrorCode } from '../../src/errors.ts';
import { WORST_FIRST, retryable, severityOf, worstStatus, type Outcome } from '../../src/report/outcome.ts';
import { ackAnswer, statusAnswer, webhookAnswer } from '../../src/sources/answers.ts';
import { configProblems } from '../support/config.ts';

const CLUSTERS = `
auth: { direct: none }
clusters:
  eu: { gke: { project: p, location: europe-west1, name: eu } }
  us: { gke: { project: p, location: us-central1, name: us } }
`;
const target = (fields: string) => `${CLUSTERS}targets:\n  web: { namespace: web, deployment: web, images: [r.io/a/web], ${fields} }\n`;

const problems = (yaml: string) => configProblems(yaml);

function expectProblem(yaml: string, re: RegExp): void {
  const got = problems(yaml);
  assert.ok(got.some((p) => re.test(p)), `${re} not in:\n${got.join('\n')}`);
}

test('clusters: a list, in order; parallel with maxParallel 4 unless stated', () => {
  const cfg = parseConfig(target('clusters: [us, eu]'), '/nowhere/deployer.yaml');
  const t = cfg.targets.get('web');
  assert.deepEqual(t?.clusters, ['us', 'eu']);
  assert.equal(t?.cluster, 'us');
  assert.equal(t?.multiCluster, true);
  assert.equal(t?.strategy, 'parallel');
  assert.equal(t?.rollout.maxParallel, 4);

  const seq = parseConfig(target('clusters: [eu, us], strategy: sequential, rollout: { maxParallel: 1 }'), '/nowhere/deployer.yaml').targets.get('web');
  assert.equal(seq?.strategy, 'sequential');
  assert.equal(seq?.rollout.maxParallel, 1);
});

test('cluster: keeps working, as a target on one cluster with the single-cluster answer', () => {
  const t = parseConfig(target('cluster: eu'), '/nowhere/deployer.yaml').targets.get('web');
  assert.deepEqual(t?.clusters, ['eu']);
  assert.equal(t?.cluster, 'eu');
  assert.equal(t?.multiCluster, false);
});

test('a target needs exactly one of cluster or clusters', () => {
  expectProblem(target('cluster: eu, clusters: [us]'), /^targets\.web: needs exactly one of cluster \(one cluster\) or clusters/);
  expectProblem(target(''), /^targets\.web: needs exactly one of cluster \(one cluster\) or clusters/);
});

test('clusters must be non-empty, unique and configured', () => {
  expectProblem(target('clusters: []'), /^targets\.web\.clusters: must name at least one cluster$/);
  expectProblem(target('clusters: [eu, us, eu]'), /^targets\.web\.clusters\.2: "eu" is listed twice$/);
  expectProblem(target('clusters: [eu, asia]'), /^targets\.web\.clusters\.1: unknown cluster "asia"$/);
});

test('strategy and rollout.maxParallel are checked', () => {
  expectProblem(target('clusters: [eu, us], strategy: canary'), /^targets\.web\.strategy: must be parallel or sequential$/);
  expectProblem(target('clusters: [eu, us], rollout: { maxParallel: 0 }'), /^targets\.web\.rollout\.maxParallel: /);
  expectProblem(target('clusters: [eu, us], rollout: { maxParallel: 1.5 }'), /^targets\.web\.rollout\.maxParallel: /);
});

test('worst first: failed > timed-out > rolled-back > quarantined > paused > rejected > expired > held > superseded > stale > dry-run > applied > ready > duplicate', () => {
  assert.deepEqual(WORST_FIRST, ['failed', 'timed-out', 'rolled-back', 'quarantined', 'paused', 'rejected', 'expired', 'held', 'superseded', 'stale', 'dry-run', 'applied', 'ready', 'duplicate']);
  // Every status has its place, once.
  const all: DeployStatus[] = ['ready', 'applied', 'rolled-back', 'failed', 'timed-out', 'paused', 'dry-run', 'stale', 'duplicate', 'held', 'superseded', 'quarantined', 'expired', 'rejected'];
  assert.deepEqual([...WORST_FIRST].sort(), [...all].sort());
  // Each status beats every one after it, whichever order the clusters answered in.
  WORST_FIRST.forEach((worse, i) => {
    for (const better of WORST_FIRST.slice(i + 1)) {
      assert.equal(worstStatus([better, worse]), worse);
      assert.equal(worstStatus([worse, better]), worse);
    }
  });
  assert.equal(worstStatus(['ready', 'ready']), 'ready');
  // A redelivery: the cluster that had the event is a duplicate, the other now ready.
  assert.equal(worstStatus(['duplicate', 'ready']), 'ready');
  // skipped never decides: the failure before it does.
  assert.equal(worstStatus(['rolled-back', 'skipped']), 'rolled-back');
  assert.equal(worstStatus(['skipped']), 'failed');
});

const cluster = (name: string, status: ClusterStatus, code?: ErrorCode): ClusterResult => {
  const e = code && new DeployError(code, `${code} on ${name}`);
  return { cluster: name, status, objects: [], elapsedMs: 1, ...(e && { reason: e.message, error: { code: e.code, message: e.message, retryable: e.retryable } }) };
};
const fanOut = (...clusters: ClusterResult[]): FanOutResult => ({
  status: worstStatus(clusters.map((c) => c.status)),
  target: 'web', namespace: 'web', image: 'r.io/a/web:1', requestId: 'id', dryRun: false, strategy: 'parallel', clusters, elapsedMs: 2,
});
const done = (r: FanOutResult): Outcome => ({ kind: 'done', results: [{ ok: true, result: r }] });

// [what, result, /deploy & scheduler, webhooks, pubsub, pubsub acknowledged-as-failed]
const rows: [string, FanOutResult, number, number, number, boolean][] = [
  ['both ready', fanOut(cluster('eu', 'ready'), cluster('us', 'ready')), 200, 200, 200, false],
  ['one rolled back', fanOut(cluster('eu', 'ready'), cluster('us', 'rolled-back')), 422, 200, 200, true],
  ['one timed out: redeliver', fanOut(cluster('eu', 'ready'), cluster('us', 'timed-out')), 504, 200, 503, false],
  ['one failed, one timed out: redeliver (the failed one runs again)', fanOut(cluster('eu', 'failed'), cluster('us', 'timed-out')), 422, 200, 503, false],
  ['one unreachable: failed, redeliver', fanOut(cluster('eu', 'ready'), cluster('us', 'failed', 'CLUSTER_UNAVAILABLE')), 422, 200, 503, false],
  ['one forbidden: failed for good', fanOut(cluster('eu', 'ready'), cluster('us', 'failed', 'CLUSTER_FORBIDDEN')), 422, 200, 200, true],
  ['sequential: the canary failed, the rest skipped', fanOut(cluster('eu', 'rolled-back'), cluster('us', 'skipped')), 422, 200, 200, true],
  ['redelivered: duplicate and ready', fanOut(cluster('eu', 'duplicate'), cluster('us', 'ready')), 200, 200, 200, false],
  ['one stale', fanOut(cluster('eu', 'ready'), cluster('us', 'stale')), 409, 200, 200, false],
  ['one paused: written there, not rolled out', fanOut(cluster('eu', 'ready'), cluster('us', 'paused')), 409, 200, 200, true],
];

for (const [name, result, direct, webhook, pubsub, acknowledged] of rows) {
  test(`multi-cluster answers: ${name}`, () => {
    const o = done(result);
    assert.equal(statusAnswer(o, 'id').status, direct, '/deploy');
    assert.equal(webhookAnswer(o, 'id').status, webhook, 'webhooks');
    const ack = ackAnswer(o, 'id');
    assert.equal(ack.status, pubsub, '/pubsub');
    assert.equal(ack.body.acknowledged === true, acknowledged, 'acknowledged');
    assert.equal(retryable(o), pubsub === 503);
    // The body is the result itself: overall status and one entry per cluster.
    const body = statusAnswer(o, 'id').body;
    assert.equal(body.status, result.status);
    assert.deepEqual((body.clusters as ClusterResult[]).map((c) => c.cluster), ['eu', 'us']);
    assert.equal(severityOf({ ok: true, result }), ['failed', 'rolled-back'].includes(result.status) ? 'ERROR' : ['timed-out', 'stale', 'paused'].includes(result.status) ? 'WARNING' : 'INFO');
  });
}
