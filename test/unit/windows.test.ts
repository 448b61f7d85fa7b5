// Deploy windows (src/control/windows.ts): weekly and one-time entries in their time zones,
// deny over allow, and the configuration's checks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configSchema } from '../../src/config/schema.ts';
import { instant, judgeWindows } from '../../src/control/windows.ts';

const at = (iso: string) => Date.parse(iso);
const windows = {
  business: { allow: [{ days: ['MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY'] as const, startTime: '09:00', endTime: '17:00', timeZone: 'America/New_York' }] },
  holidays: { deny: [{ start: '2026-12-24T00:00:00', end: '2026-12-27T00:00:00', timeZone: 'Europe/Berlin' }] },
  friday: { deny: [{ days: ['FRIDAY'] as const, startTime: '15:00', endTime: '24:00', timeZone: 'UTC' }] },
};
type Windows = Parameters<typeof judgeWindows>[1];
const judge = (names: string[], iso: string) => judgeWindows(names, windows as unknown as Windows, at(iso));

test('weekly allow: inside its days and hours in its own time zone, not outside', () => {
  // Tuesday 2026-12-01 14:00 UTC is 09:00 in New York: open; 13:59 UTC is 08:59 there: closed.
  assert.deepEqual(judge(['business'], '2026-12-01T14:00:00Z'), { open: true });
  assert.deepEqual(judge(['business'], '2026-12-01T13:59:00Z'), { open: false, reason: 'outside the allowed times of window "business"' });
  // 17:00 is the end, exclusive; Saturday never.
  assert.equal(judge(['business'], '2026-12-01T22:00:00Z').open, false);
  assert.equal(judge(['business'], '2026-12-05T15:00:00Z').open, false);
});

test('one-time deny: wall-clock times in its zone; deny wins over allow', () => {
  // 2026-12-24T00:00 Berlin is 2026-12-23T23:00Z.
  assert.equal(judge(['holidays'], '2026-12-23T22:59:59Z').open, true);
  const inside = judge(['holidays', 'business'], '2026-12-23T23:00:00Z');
  assert.equal(inside.open, false);
  assert.match((inside as { reason: string }).reason, /^window "holidays" denies deploys now \(2026-12-24T00:00:00 to 2026-12-27T00:00:00 Europe\/Berlin\)$/);
  // Thursday 24th at 15:00 New York: business hours, but the holiday deny wins.
  assert.equal(judge(['business', 'holidays'], '2026-12-24T20:00:00Z').open, false);
  assert.equal(judge(['holidays'], '2026-12-26T23:00:00Z').open, true);
});

test('endTime 24:00 covers the day to its end; no window, no hold', () => {
  assert.equal(judge(['friday'], '2026-12-04T23:59:59Z').open, false);
  assert.equal(judge(['friday'], '2026-12-05T00:00:00Z').open, true);
  assert.deepEqual(judgeWindows([], {}, Date.now()), { open: true });
});

test('a wall-clock instant follows daylight saving time; an offset is taken as written', () => {
  assert.equal(instant('2026-07-01T12:00:00', 'Europe/Berlin'), at('2026-07-01T10:00:00Z'));
  assert.equal(instant('2026-01-01T12:00:00', 'Europe/Berlin'), at('2026-01-01T11:00:00Z'));
  assert.equal(instant('2026-03-08T12:00:00', 'America/New_York'), at('2026-03-08T16:00:00Z'));
  assert.equal(instant('2026-01-01T12:00:00+05:00', 'Europe/Berlin'), at('2026-01-01T07:00:00Z'));
});

test('the configuration refuses unknown zones, bad times and days, empty windows', () => {
  const base = { auth: { direct: 'none' }, clusters: {}, targets: {} };
  const problems = (w: unknown) => {
    const r = configSchema.safeParse({ ...base, windows: { w } });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  assert.deepEqual(problems({ deny: [{ days: ['MONDAY'], startTime: '09:00', endTime: '17:00', timeZone: 'Europe/Berlin' }] }), []);
  assert.deepEqual(problems({ deny: [{ days: ['MONDAY'], startTime: '09:00', endTime: '17:00', timeZone: 'Mars/Olympus' }] }), ['windows.w.deny.0.timeZone: must be an IANA time zone, e.g. Europe/Berlin']);
  assert.ok(problems({ allow: [{ days: ['MONDAY'], startTime: '17:00', endTime: '09:00', timeZone: 'UTC' }] }).length > 0, 'start after end');
  assert.ok(problems({ allow: [{ days: ['FUNDAY'], startTime: '09:00', endTime: '17:00', timeZone: 'UTC' }] }).length > 0, 'unknown day');
  assert.ok(problems({ allow: [{ days: ['MONDAY'], startTime: '9:00', endTime: '17:00', timeZone: 'UTC' }] }).length > 0, 'HH:MM');
  assert.ok(problems({ deny: [{ start: 'christmas', end: '2026-12-27T00:00:00Z', timeZone: 'UTC' }] }).length > 0, 'RFC 3339');
  assert.match(problems({}).join(), /needs allow, deny or both/);
});
