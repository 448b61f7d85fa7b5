// How an event is ordered against the one the workload records (src/apply/order.ts): by the
// commits' ancestry when both carry a commit of one repository and the host can tell, else by
// the events' times; `force` alone lets an older one through.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KubernetesObject } from '@kubernetes/client-node';
import { judge, type Ancestry } from '../../src/apply/order.ts';

const OLD = 'a'.repeat(40);
const NEW = 'b'.repeat(40);

function workload(annotations: Record<string, string>): KubernetesObject {
  return { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', annotations } };
}

/** The workload as a deploy of `sha` at `time` left it. */
const running = (sha: string, time: string, repository = 'acme/web') =>
  workload({ 'gke-deployer/event-id': `e-${sha.slice(0, 4)}`, 'gke-deployer/event-time': time, 'gke-deployer/commit': `github:${repository}@${sha}` });

const event = (sha: string, time: string, repository = 'acme/web') => ({ eventId: `e-${sha.slice(0, 4)}-again`, eventTime: time, commit: `github:${repository}@${sha}` });

/** An ancestry that answers `relation` and records what it was asked. */
function answering(relation: Awaited<ReturnType<Ancestry>>): Ancestry & { asked: string[] } {
  const asked: string[] = [];
  const fn = (recorded: { sha: string }, incoming: { sha: string }) => {
    asked.push(`${recorded.sha.slice(0, 1)}...${incoming.sha.slice(0, 1)}`);
    return Promise.resolve(relation);
  };
  return Object.assign(fn, { asked });
}

describe('judge: commits before times', () => {
  test('an event for a commit behind the running one is stale, though its time is later', async () => {
    const ancestry = answering('behind');
    const v = await judge(running(NEW, '2026-06-01T10:00:00Z'), event(OLD, '2026-06-01T11:00:00Z'), false, ancestry);
    assert.equal(v.verdict, 'stale');
    assert.deepEqual(ancestry.asked, ['b...a'], 'asked with the recorded commit as base, the event\'s as head');
  });

  test('an event for a commit ahead of the running one applies, though its time is earlier (CI runs finishing out of order)', async () => {
    const v = await judge(running(OLD, '2026-06-01T10:00:00Z'), event(NEW, '2026-06-01T09:00:00Z'), false, answering('ahead'));
    assert.equal(v.verdict, 'apply');
  });

  test('diverged, or an unknown answer (no token, a failed call): the times decide', async () => {
    for (const relation of ['diverged', undefined] as const) {
      assert.equal((await judge(running(OLD, '2026-06-01T10:00:00Z'), event(NEW, '2026-06-01T09:00:00Z'), false, answering(relation))).verdict, 'stale', String(relation));
      assert.equal((await judge(running(OLD, '2026-06-01T10:00:00Z'), event(NEW, '2026-06-01T11:00:00Z'), false, answering(relation))).verdict, 'apply', String(relation));
    }
  });

  test('an ancestry that throws is an unknown answer: the times decide', async () => {
    const failing: Ancestry = () => Promise.reject(new Error('socket hang up'));
    assert.equal((await judge(running(OLD, '2026-06-01T10:00:00Z'), event(NEW, '2026-06-01T09:00:00Z'), false, failing)).verdict, 'stale');
  });

  test('force deploys an older commit on purpose, without asking', async () => {
    const ancestry = answering('behind');
    assert.equal((await judge(running(NEW, '2026-06-01T10:00:00Z'), event(OLD, '2026-06-01T11:00:00Z'), true, ancestry)).verdict, 'apply');
    assert.deepEqual(ancestry.asked, []);
  });

  test('the same event id is a duplicate, without asking', async () => {
    const ancestry = answering('behind');
    const v = await judge(running(NEW, '2026-06-01T10:00:00Z'), { ...event(NEW, '2026-06-01T10:00:00Z'), eventId: 'e-bbbb' }, false, ancestry);
    assert.equal(v.verdict, 'duplicate');
    assert.deepEqual(ancestry.asked, []);
  });

  test('the same commit is not older: it applies, without asking', async () => {
    const ancestry = answering('behind');
    assert.equal((await judge(running(NEW, '2026-06-01T10:00:00Z'), event(NEW, '2026-06-01T10:00:00Z'), false, ancestry)).verdict, 'apply');
    assert.deepEqual(ancestry.asked, []);
  });

  test('commits of another repository, or an event or record without one: never asked, the times decide', async () => {
    const ancestry = answering('behind');
    assert.equal((await judge(running(NEW, '2026-06-01T10:00:00Z', 'acme/other'), event(OLD, '2026-06-01T11:00:00Z'), false, ancestry)).verdict, 'apply');
    assert.equal((await judge(running(NEW, '2026-06-01T10:00:00Z'), { eventId: 'direct', eventTime: '2026-06-01T11:00:00Z' }, false, ancestry)).verdict, 'apply');
    const unstamped = workload({ 'gke-deployer/event-id': 'x', 'gke-deployer/event-time': '2026-06-01T10:00:00Z' });
    assert.equal((await judge(unstamped, event(OLD, '2026-06-01T09:00:00Z'), false, ancestry)).verdict, 'stale');
    assert.deepEqual(ancestry.asked, []);
  });

  test('a stale verdict says what decided it, and the recorded commit', async () => {
    const byCommit = await judge(running(NEW, '2026-06-01T10:00:00Z'), event(OLD, '2026-06-01T11:00:00Z'), false, answering('behind'));
    assert.deepEqual(byCommit, { verdict: 'stale', by: 'commit', recorded: { eventId: 'e-bbbb', eventTime: '2026-06-01T10:00:00Z', commit: `github:acme/web@${NEW}` } });
    const byTime = await judge(running(NEW, '2026-06-01T10:00:00Z'), event(OLD, '2026-06-01T09:00:00Z'));
    assert.equal(byTime.verdict === 'stale' && byTime.by, 'time');
  });
});
