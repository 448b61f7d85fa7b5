import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inPool, inPoolSettled } from '../../src/pool.ts';

/** A task per item that finishes when the test says so, recording how many ran at once. */
function gated(n: number) {
  const gates = Array.from({ length: n }, () => Promise.withResolvers<void>());
  const started: number[] = [];
  let running = 0;
  let most = 0;
  const fn = async (item: number): Promise<number> => {
    started.push(item);
    most = Math.max(most, ++running);
    try {
      await gates[item]!.promise;
    } finally {
      running--;
    }
    return item * 10;
  };
  return { gates, started, fn, most: () => most };
}

const tick = () => new Promise((r) => setImmediate(r));

test('at most `limit` at once; results in item order whatever order they finish in', async () => {
  const g = gated(5);
  const all = inPool([0, 1, 2, 3, 4], 2, g.fn);
  await tick();
  assert.deepEqual(g.started, [0, 1]);
  for (const i of [4, 3, 2, 1, 0]) g.gates[i]!.resolve();
  assert.deepEqual(await all, [0, 10, 20, 30, 40]);
  assert.equal(g.most(), 2);
});

test('after a failure no new item starts, those in flight finish, the earliest failure is thrown', async () => {
  const g = gated(6);
  const finished: number[] = [];
  const all = inPool([0, 1, 2, 3, 4, 5], 3, async (i) => {
    const v = await g.fn(i);
    finished.push(i);
    return v;
  });
  await tick();
  assert.deepEqual(g.started, [0, 1, 2]);
  g.gates[2]!.reject(new Error('two'));
  g.gates[1]!.reject(new Error('one'));
  await tick();
  g.gates[0]!.resolve();
  await assert.rejects(all, /one/);
  assert.deepEqual(g.started, [0, 1, 2], 'nothing started after the failures');
  assert.deepEqual(finished, [0], 'the one in flight finished');
});

test('settled: every item runs and reports', async () => {
  const results = await inPoolSettled([1, 2, 3], 2, (i) => (i === 2 ? Promise.reject(new Error('no')) : Promise.resolve(i)));
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
});

test('inPool keeps the order and never runs more than the limit at once', async () => {
  let running = 0;
  let peak = 0;
  const gates: (() => void)[] = [];
  const work = inPool([1, 2, 3, 4, 5], 2, async (n) => {
    running++;
    peak = Math.max(peak, running);
    await new Promise<void>((resolve) => gates.push(resolve));
    running--;
    return n * 10;
  });
  // Release one waiting call at a time, each after the helper had its chance to start more.
  for (let released = 0; released < 5; released++) {
    while (gates.length === 0) await new Promise((r) => setImmediate(r));
    assert.ok(running <= 2);
    gates.shift()?.();
  }
  assert.deepEqual(await work, [10, 20, 30, 40, 50]);
  assert.equal(peak, 2);
  await assert.rejects(inPool([1], 0, (n) => Promise.resolve(n)), RangeError);
});
