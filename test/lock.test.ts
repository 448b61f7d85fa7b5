// Fairness of the sticky per-target Lease (src/apply/lock.ts): an instance that never goes
// idle must not keep another instance's deploy of the target waiting until its deadline.
// Two TargetLeases stand for two instances, against the sandbox's API server, with a short
// Lease so that renewals (and so hand-overs) come within a second or two.
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { TargetLeases, leaseName, WAITING, WAITING_UNTIL, type TargetRef } from '../src/apply/lock.ts';
import { ClusterRegistry } from '../src/cluster/registry.ts';
import { DeployError } from '../src/errors.ts';
import { kubectl, kubectlJson, namespace, sandbox } from './support/sandbox.ts';
import { until } from './support/until.ts';

const LEASE = 2; // seconds

interface Lease {
  metadata: { annotations?: Record<string, string> };
  spec: { holderIdentity?: string };
}

const leaseOf = (ns: string, target: string) => kubectlJson<Lease>(['-n', ns, 'get', 'lease', leaseName(target)]);

describe('TargetLeases: fairness', () => {
  let registry: ClusterRegistry;
  before(async () => {
    const info = await sandbox();
    registry = new ClusterRegistry(new Map([['c', { kubeconfig: { path: info.kubeconfig } }]]));
  });
  after(() => registry.close());

  test('a busy holder yields the Lease to a waiting instance at its next renewal, and gets it back', async () => {
    const ref = { cluster: 'c', namespace: await namespace('fair'), target: 'busy' };
    const client = await registry.client('c');
    const a = new TargetLeases({ leaseSeconds: LEASE });
    const b = new TargetLeases({ leaseSeconds: LEASE, idleMs: 50 });
    (await a.acquire(client, ref, Date.now() + 10_000)).done('keep');
    // b: a deadline well beyond one Lease duration; a: deploys back to back, never idle.
    const seen: { b: 'waiting' | 'served' | Error } = { b: 'waiting' };
    let holderInBTurn: string | undefined;
    let aTurnsBefore = 0;
    let aTurnsAfter = 0;
    const bWaits = b.acquire(client, ref, Date.now() + 3 * LEASE * 1000).then(
      async (tenure) => {
        holderInBTurn = (await leaseOf(ref.namespace, ref.target)).spec.holderIdentity;
        seen.b = 'served';
        tenure.done('keep');
      },
      (err: unknown) => void (seen.b = err instanceof Error ? err : new Error(String(err))),
    );
    try {
      // a keeps deploying until b's wait has ended either way, and a few turns more.
      while (seen.b === 'waiting' || aTurnsAfter < 3) {
        const tenure = await a.acquire(client, ref, Date.now() + 10 * LEASE * 1000);
        if (seen.b === 'waiting') aTurnsBefore++;
        else aTurnsAfter++;
        await sleep(5); // the deploy's own requests
        tenure.done('keep');
      }
      await bWaits;
      assert.ok(aTurnsBefore > 0, 'a was deploying while b waited');
      const outcome = seen.b;
      assert.equal(outcome, 'served', `b starved: ${outcome instanceof DeployError ? `${outcome.code}: ${outcome.message}` : String(outcome)}`);
      assert.equal(holderInBTurn, b.holder, 'b held the Lease during its turn');
      assert.equal((await leaseOf(ref.namespace, ref.target)).spec.holderIdentity, a.holder, 'a holds it again');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  /** Takes the Lease as if more than half of it had gone already, so a's next turn renews it. */
  async function heldHalfAgo(t: TestContext, a: TargetLeases, ref: TargetRef): Promise<void> {
    const client = await registry.client('c');
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() - LEASE * 1000 * 0.6 });
    try {
      (await a.acquire(client, ref, Number.POSITIVE_INFINITY)).done(new Map());
    } finally {
      t.mock.timers.reset();
    }
  }

  test('a stale waiter is ignored: the holder keeps the Lease and clears the record', async (t) => {
    const ref = { cluster: 'c', namespace: await namespace('fair'), target: 'stale' };
    const client = await registry.client('c');
    const a = new TargetLeases({ leaseSeconds: LEASE, idleMs: 600_000 });
    try {
      await heldHalfAgo(t, a, ref);
      const past = new Date(Date.now() - 60_000).toISOString();
      await kubectl(['-n', ref.namespace, 'annotate', 'lease', leaseName(ref.target), `${WAITING}=gone/0`, `${WAITING_UNTIL}=${past}`]);
      // a's renewal meets the annotation's write, reads the Lease, and finds nobody waiting.
      const tenure = await a.acquire(client, ref, Date.now() + 10_000);
      assert.equal(tenure.knowledge, undefined, 'someone wrote the Lease since: a knows nothing');
      tenure.done('keep');
      const lease = await leaseOf(ref.namespace, ref.target);
      assert.equal(lease.spec.holderIdentity, a.holder);
      assert.equal(lease.metadata.annotations?.[WAITING], undefined);
    } finally {
      await a.close();
    }
  });

  test('a waiter that went away holds things up for one Lease duration at most', async (t) => {
    const ref = { cluster: 'c', namespace: await namespace('fair'), target: 'ghost' };
    const client = await registry.client('c');
    const a = new TargetLeases({ leaseSeconds: LEASE, idleMs: 600_000 });
    try {
      await heldHalfAgo(t, a, ref);
      const soon = new Date(Date.now() + LEASE * 1000).toISOString();
      await kubectl(['-n', ref.namespace, 'annotate', 'lease', leaseName(ref.target), `${WAITING}=gone/0`, `${WAITING_UNTIL}=${soon}`]);
      // a hands the Lease to the recorded waiter, which never takes it: it expires, and a takes it again.
      const tenure = await a.acquire(client, ref, Date.now() + 10 * LEASE * 1000);
      tenure.done('keep');
      assert.equal((await leaseOf(ref.namespace, ref.target)).spec.holderIdentity, a.holder);
    } finally {
      await a.close();
    }
  });
});

describe('TargetLeases at the documented durations', () => {
  // README (The Lease is the instance's): a 20 s Lease, renewed when a deploy starts with
  // less than half of it left and while a turn lasts, handed back after 2 s without a deploy.
  // Two instances with the defaults (nothing injected), against the sandbox's API server;
  // the Lease read as the API server holds it.
  let registry: ClusterRegistry;
  before(async () => {
    const info = await sandbox();
    registry = new ClusterRegistry(new Map([['c', { kubeconfig: { path: info.kubeconfig } }]]));
  });
  after(() => registry.close());

  test('20 s on the object; a long turn keeps at least half of it; deploys renew it once half has gone, not before; another instance gets it 2 s after the last deploy', { timeout: 90_000 }, async () => {
    const ref = { cluster: 'c', namespace: await namespace('lease-real'), target: 'real' };
    const client = await registry.client('c');
    // Deploys of another target, whose Lease is taken fresh for them.
    const busy = { ...ref, target: 'busy' };
    const read = async (of = ref) => (await client.get({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: leaseName(of.target), namespace: of.namespace } })) as
      | { spec: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string } }
      | undefined;
    const renewed = async (of = ref) => Date.parse((await read(of))?.spec.renewTime ?? '');
    const a = new TargetLeases();
    const b = new TargetLeases();
    try {
      // A turn of 12 s (a long preDeploy run): sampled, the Lease never has less than half left.
      const turn = await a.acquire(client, ref, Date.now() + 30_000);
      const first = await read();
      assert.equal(first?.spec.leaseDurationSeconds, 20);
      assert.equal(first.spec.holderIdentity, a.holder);
      const renewals = new Set<number>([Date.parse(first.spec.renewTime ?? '')]);
      for (const end = Date.now() + 12_000; Date.now() < end; await sleep(250)) {
        const at = await renewed();
        renewals.add(at);
        assert.ok(Date.now() - at < 10_000 + 500, `during the turn, ${Date.now() - at} ms since the last renewal`);
      }
      turn.done('keep');
      assert.ok(renewals.size >= 2, 'renewed during the turn');

      // Deploys every 0.5 s: a never goes idle. The first to start with less than half (10 s) left renews it; none before.
      (await a.acquire(client, busy, Date.now() + 10_000)).done('keep');
      const r0 = await renewed(busy);
      const turns: { startedAgo: number; renewTime: number }[] = [];
      let ended: number;
      for (;;) {
        const startedAgo = Date.now() - r0;
        const tenure = await a.acquire(client, busy, Date.now() + 10_000);
        turns.push({ startedAgo, renewTime: await renewed(busy) });
        tenure.done('keep');
        ended = performance.now();
        if (turns.at(-1)!.renewTime !== r0 || startedAgo >= 15_000) break;
        await sleep(500);
      }
      const early = turns.filter((x) => x.startedAgo < 10_000 - 300);
      assert.ok(early.length >= 10, JSON.stringify(turns));
      assert.ok(early.every((x) => x.renewTime === r0), `renewed with more than half left: ${JSON.stringify(turns)}`);
      const renewing = turns.at(-1)!;
      assert.ok(renewing.renewTime > r0 && renewing.startedAgo >= 10_000 - 300 && renewing.startedAgo <= 10_000 + 1_000, `renewed by the turn started ${renewing.startedAgo} ms after the last renewal: ${JSON.stringify(turns)}`);

      // a's last deploy has just ended; b wants the target at once and records itself as the
      // waiter. a hands the Lease back (straight to b) 2 s after its last deploy, not before.
      const handedBack = until("the Lease out of a's hands", async () => (await read(busy))?.spec.holderIdentity !== a.holder && performance.now() - ended, { everyMs: 20, timeoutMs: 10_000 });
      const tenure = await b.acquire(client, busy, Date.now() + 30_000);
      const taken = performance.now() - ended;
      tenure.done('keep');
      const back = await handedBack;
      assert.ok(back >= 2_000 - 50 && back <= 2_000 + 1_000, `handed back ${Math.round(back)} ms after a's last deploy`);
      assert.ok(taken >= back && taken <= 2_000 + 2_000, `b took the Lease ${Math.round(taken)} ms after a's last deploy`);
      const lease = await read(busy);
      assert.equal(lease?.spec.holderIdentity, b.holder);
      assert.equal(lease.spec.leaseDurationSeconds, 20);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
