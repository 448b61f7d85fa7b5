import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffMs, retryAfterMs, retrying, type RetryOptions } from '../../src/cluster/retry.ts';

class Transient extends Error {
  afterMs?: number;
}

function options(over: Partial<RetryOptions> = {}): RetryOptions {
  return {
    deadline: Date.now() + 5_000,
    baseMs: 10,
    capMs: 40,
    classify: (err) => (err instanceof Transient ? { retry: true, ...(err.afterMs !== undefined && { afterMs: err.afterMs }) } : { retry: false }),
    ...over,
  };
}

test('transient failures are retried until an attempt succeeds', async () => {
  const attempts: number[] = [];
  const value = await retrying((n) => {
    attempts.push(n);
    return n < 3 ? Promise.reject(new Transient('try again')) : Promise.resolve('done');
  }, options());
  assert.equal(value, 'done');
  assert.deepEqual(attempts, [0, 1, 2, 3]);
});

test('a permanent failure is thrown at once', async () => {
  let calls = 0;
  const permanent = new Error('bad manifest');
  await assert.rejects(
    retrying(() => {
      calls++;
      return Promise.reject(permanent);
    }, options()),
    (err) => err === permanent,
  );
  assert.equal(calls, 1);
});

test('full jitter: a uniform wait between 0 and the capped exponential', () => {
  const b = { baseMs: 100, capMs: 1_000 };
  assert.equal(backoffMs(0, b, () => 0), 0);
  assert.equal(backoffMs(0, b, () => 0.5), 50);
  assert.equal(backoffMs(3, b, () => 0.5), 400);
  assert.equal(backoffMs(10, b, () => 0.5), 500, 'capped');
  assert.equal(backoffMs(60, b, () => 0.999_999), 999.999, 'no overflow however many attempts');
});

test("the server's Retry-After is waited out, even when the jitter would wait less", async () => {
  const started = Date.now();
  let calls = 0;
  await retrying(() => (calls++ === 0 ? Promise.reject(Object.assign(new Transient('429'), { afterMs: 300 })) : Promise.resolve()), options({ random: () => 0 }));
  assert.ok(Date.now() - started >= 290, `waited ${Date.now() - started} ms`);
});

test('no attempt starts after the deadline; the last error is what the caller sees', async () => {
  const starts: number[] = [];
  const deadline = Date.now() + 250;
  let last: Error | undefined;
  await assert.rejects(
    retrying(() => {
      starts.push(Date.now());
      last = new Transient(`failure ${starts.length}`);
      return Promise.reject(last);
    }, options({ deadline, baseMs: 20, capMs: 80 })),
    (err) => err === last,
  );
  assert.ok(starts.length >= 3, `${starts.length} attempts`);
  assert.ok(starts.every((t) => t <= deadline));
  assert.ok(Date.now() <= deadline + 50, 'gave up by the deadline');
});

test('a Retry-After beyond the deadline gives up at once rather than sleeping past it', async () => {
  const started = Date.now();
  await assert.rejects(
    retrying(() => Promise.reject(Object.assign(new Transient('429'), { afterMs: 60_000 })), options({ deadline: Date.now() + 2_000 })),
    /429/,
  );
  assert.ok(Date.now() - started < 200);
});

test('an abort stops the wait and the retries', async () => {
  const controller = new AbortController();
  const started = Date.now();
  setTimeout(() => controller.abort(), 50);
  await assert.rejects(
    retrying(() => Promise.reject(Object.assign(new Transient('503'), { afterMs: 10_000 })), options({ deadline: Date.now() + 30_000, signal: controller.signal })),
    /503/,
  );
  assert.ok(Date.now() - started < 1_000);
});

test('Retry-After: delay-seconds or an HTTP date; anything else is ignored', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(retryAfterMs('2', now), 2_000);
  assert.equal(retryAfterMs(' 0 ', now), 0);
  assert.equal(retryAfterMs('Thu, 01 Jan 2026 00:00:05 GMT', now), 5_000);
  assert.equal(retryAfterMs('Wed, 31 Dec 2025 23:59:00 GMT', now), 0, 'a date in the past: at once');
  assert.ok((retryAfterMs('9'.repeat(30), now) ?? 0) > 86_400_000, 'a huge value stays huge: the caller gives up');
  for (const bad of [undefined, '', '-1', '1.5', 'soon']) assert.equal(retryAfterMs(bad, now), undefined, String(bad));
});
