// Which waiter's record on a target's Lease counts (src/apply/lock.ts): one whose wait has
// ended, or whose time cannot be read, is ignored, so a waiter that gave up or died costs
// at most the time it asked for.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WAITING, WAITING_UNTIL, isLive } from '../../src/apply/lock.ts';

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
