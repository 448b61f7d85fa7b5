// Which waiter's record on a target's Lease counts (src/apply/lock.ts): one whose wait has
// ended, or whose time cannot be read, is ignored, so a waiter that gave up or died costs
// at most the time it asked for.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { ApiException, type KubernetesObject } from '@kubernetes/client-node';
import { SAFETY_MS, TargetLeases, WAITING, WAITING_UNTIL, isLive } from '../../src/apply/lock.ts';
import type { KubeClient } from '../../src/cluster/client.ts';
import { DeployError } from '../../src/errors.ts';

const now = Date.parse('2026-06-01T12:00:00Z');
const record = (until: string) => ({ [WAITING]: 'host/abc', [WAITING_UNTIL]: until });

test('a waiter counts until its waiting-until, and not after', () => {
  assert.equal(isLive(record('2026-06-01T12:00:05Z'), now), true);
  assert.equal(isLive(record('2026-06-01T12:00:05.123Z'), now), true);
  assert.equal(isLive(record('2026-06-01T11:59:59Z'), now), false, 'stale: its wait ended');
  assert.equal(isLive(record('2026-06-01T12:00:00Z'), now), false, 'ends at waiting-until');
});

test('a waiting-until that cannot be read does not count', () => {
  assert.equal(isLive(record(''), now), false);
  assert.equal(isLive(record('soon'), now), false);
});

// A turn's writes are bounded by the Lease (Tenure.fence): each must land before the Lease
// could pass to another instance, less a safety margin; a turn renews the Lease when too
// little is left, and stops writing once the Lease is lost. A small in-memory Lease store
// stands for the API server (the sandbox tests in test/lease-turns.test.ts do it for real).
class LeaseStore {
  lease: (KubernetesObject & { spec?: Record<string, unknown> }) | undefined;
  rv = 0;
  replaced = 0;

  create(obj: KubernetesObject): Promise<KubernetesObject> {
    if (this.lease) return Promise.reject(new ApiException(409, 'exists', {}, {}));
    return Promise.resolve(this.store(obj));
  }

  replace(obj: KubernetesObject): Promise<KubernetesObject> {
    if (!this.lease) return Promise.reject(new ApiException(404, 'not found', {}, {}));
    if (obj.metadata?.resourceVersion !== this.lease.metadata?.resourceVersion) return Promise.reject(new ApiException(409, 'conflict', {}, {}));
    this.replaced++;
    return Promise.resolve(this.store(obj));
  }

  get(): Promise<KubernetesObject | undefined> {
    return Promise.resolve(this.lease && structuredClone(this.lease));
  }

  /** Someone else writes the Lease (a waiter's record, or a new holder). */
  change(fn: (lease: KubernetesObject & { spec?: Record<string, unknown> }) => void): void {
    fn(this.lease!);
    this.lease!.metadata!.resourceVersion = String(++this.rv);
  }

  private store(obj: KubernetesObject): KubernetesObject {
    this.lease = { ...structuredClone(obj), metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } };
    return structuredClone(this.lease);
  }
}

const ref = { cluster: 'c', namespace: 'n', target: 't' };

/** A test with a 20 s Lease over the in-memory store, Date mocked from `now`. */
function leaseTest(name: string, fn: (t: TestContext, store: LeaseStore, client: KubeClient, leases: TargetLeases) => Promise<void>): void {
  test(name, async (t) => {
    const store = new LeaseStore();
    const leases = new TargetLeases({ leaseSeconds: 20, idleMs: 600_000 });
    t.mock.timers.enable({ apis: ['Date'], now });
    try {
      await fn(t, store, store as unknown as KubeClient, leases);
    } finally {
      t.mock.timers.reset();
      await leases.close();
    }
  });
}

leaseTest('a write in a turn must land before the Lease could pass on; with less than a quarter left it renews first', async (t, store, client, leases) => {
  const tenure = await leases.acquire(client, ref, now + 10_000);
  assert.equal(await tenure.fence.writeBy(), now + 20_000 - SAFETY_MS, 'the Lease time less the safety margin');
  assert.equal(store.replaced, 0, 'a fresh Lease is not renewed');
  t.mock.timers.setTime(now + 14_000); // 4 s left after the margin: less than a quarter
  assert.equal(await tenure.fence.writeBy(), now + 14_000 + 20_000 - SAFETY_MS, 'renewed, from the renewal on');
  assert.equal(store.replaced, 1);
  tenure.done('keep');
});

leaseTest('once another instance took the Lease, a turn sends no more writes: CLUSTER_UNAVAILABLE', async (t, store, client, leases) => {
  const tenure = await leases.acquire(client, ref, now + 10_000);
  // Frozen past the Lease: it expired, and another instance took it.
  t.mock.timers.setTime(now + 25_000);
  store.change((l) => (l.spec = { ...l.spec, holderIdentity: 'other/1', renewTime: new Date(now + 24_000).toISOString() }));
  await assert.rejects(tenure.fence.writeBy(), (err: unknown) => err instanceof DeployError && err.code === 'CLUSTER_UNAVAILABLE' && /lost Lease/.test(err.message));
  tenure.done('keep');
});

leaseTest("a renewal during a turn keeps a waiter's record, and the next turn hands the Lease to the waiter", async (t, store, client, leases) => {
  const tenure = await leases.acquire(client, ref, now + 10_000);
  store.change((l) => (l.metadata = { ...l.metadata, annotations: { [WAITING]: 'waiter/1', [WAITING_UNTIL]: new Date(now + 20_000).toISOString() } }));
  t.mock.timers.setTime(now + 14_000);
  // The renewal meets the waiter's write, finds the Lease still ours, and renews it.
  assert.equal(await tenure.fence.writeBy(), now + 14_000 + 20_000 - SAFETY_MS);
  assert.equal(store.lease?.spec?.holderIdentity, leases.holder);
  assert.equal(store.lease?.metadata?.annotations?.[WAITING], 'waiter/1', "the waiter's record stays");
  tenure.done('keep');
  // The next turn yields: the waiter gets the Lease (and this one then waits its turn, in vain here).
  await assert.rejects(leases.acquire(client, ref, Date.now() + 100), (err: unknown) => err instanceof DeployError && err.code === 'CLUSTER_UNAVAILABLE');
  assert.equal(store.lease?.spec?.holderIdentity, 'waiter/1');
});
