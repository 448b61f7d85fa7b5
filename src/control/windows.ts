// Deploy windows (`windows.<name>`), judged by the deployer's own clock, never by a time the
// event carries: modelled on Cloud Deploy's deploy policies. Deny wins over allow; a target
// with allow entries deploys only inside one of them.
import type { WindowEntry, WindowSpec } from '../config/schema.ts';

export type WindowVerdict = { open: true } | { open: false; reason: string };

export function judgeWindows(names: readonly string[], windows: Readonly<Record<string, WindowSpec>>, now: number): WindowVerdict {
  const named = names.map((name) => ({ name, spec: windows[name]! }));
  for (const { name, spec } of named) {
    const hit = spec.deny?.find((e) => inside(e, now));
    if (hit) return { open: false, reason: `window "${name}" denies deploys now (${describe(hit)})` };
  }
  const allowing = named.filter(({ spec }) => spec.allow !== undefined);
  if (allowing.length === 0 || allowing.some(({ spec }) => spec.allow!.some((e) => inside(e, now)))) return { open: true };
  return { open: false, reason: `outside the allowed times of window ${allowing.map(({ name }) => `"${name}"`).join(', ')}` };
}

function inside(entry: WindowEntry, now: number): boolean {
  if ('days' in entry) {
    const { day, time } = wallClock(now, entry.timeZone);
    return (entry.days as readonly string[]).includes(day) && entry.startTime <= time && time < entry.endTime;
  }
  return instant(entry.start, entry.timeZone) <= now && now < instant(entry.end, entry.timeZone);
}

function describe(entry: WindowEntry): string {
  return 'days' in entry ? `${entry.days.join(',')} ${entry.startTime}-${entry.endTime} ${entry.timeZone}` : `${entry.start} to ${entry.end} ${entry.timeZone}`;
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** The weekday (MONDAY…) and HH:MM the clocks of `timeZone` show at `at`. */
function wallClock(at: number, timeZone: string): { day: string; time: string; parts: Record<string, string> } {
  let f = formats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'long', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
    formats.set(timeZone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(at).map((p) => [p.type, p.value]));
  return { day: (parts.weekday ?? '').toUpperCase(), time: `${parts.hour}:${parts.minute}`, parts };
}

/** An RFC 3339 time; one without an offset is the wall-clock time in `timeZone` (DST included). */
export function instant(value: string, timeZone: string): number {
  if (/(Z|[+-]\d{2}:\d{2})$/i.test(value)) return Date.parse(value);
  const asUtc = Date.parse(`${value}Z`);
  // The zone's offset at that moment, found twice: the second time at the corrected instant (DST changes).
  const offset = (t: number) => {
    const p = wallClock(t, timeZone).parts;
    return Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute), Number(p.second)) - Math.floor(t / 1000) * 1000;
  };
  const first = asUtc - offset(asUtc);
  return asUtc - offset(first);
}
