// Whether someone else changed a workload after a deploy wrote it, judged by server-side
// apply's field ownership (metadata.managedFields): only the fields the deploy's field
// manager applied count. One judgement for the rollback (src/rollout/rollback.ts) and for a
// redelivery that resumes a cut-short rollout (src/rollout/resume.ts).
import { isDeepStrictEqual } from 'node:util';
import type { KubernetesObject } from '@kubernetes/client-node';
import { isRecord } from '../guards.ts';

/** One step of a fieldsV1 path: `f:name` (a field), `k:{…}` (a list item by key), `v:…` (a set item), `i:N`. */
type Path = readonly string[];

interface Entry {
  manager?: string;
  operation?: string;
  subresource?: string;
  time?: unknown;
  fieldsV1?: unknown;
}

export type Judgement =
  /** `leaveOut`: fields the deploy applied that a scaler took since (replicas): a restore must not send them. */
  | { changed: false; leaveOut: Path[] }
  /** `by`: the managers that changed them, when known. */
  | { changed: true; by: string[] };

/**
 * Writes that are no change of a release: a controller's `status`, and a scaler's `scale`
 * (an HPA, `kubectl scale`), which sets replicas only.
 */
const NOT_A_CHANGE = new Set(['status', 'scale']);

/**
 * Whether anyone changed, after the deploy, a field the deploy's manager applied.
 *
 * With `applied` (the apply's answer): each field our manager owned there is compared with
 * its live value. A field now held only through the `scale` subresource was scaled, not
 * changed. Our own manager's later write counts as a change too (a newer deploy of the
 * target): the caller recognises its own restore by its stamps before asking.
 *
 * Without it (a redelivery: that answer is gone), ownership and times stand in for the
 * values: a write by another manager, not a status or scale one, later than our manager's
 * last apply, that holds a spec field or one of our metadata fields (times are whole
 * seconds: a change within the second of the apply is not seen).
 */
export function judgeChanges(live: KubernetesObject, fieldManager: string, applied?: KubernetesObject): Judgement {
  const entries = (live.metadata?.managedFields ?? []) as Entry[];
  const ours = ourEntry(applied ?? live, fieldManager);
  const ourSet = ours?.fieldsV1;
  if (!ours || !isRecord(ourSet)) return { changed: true, by: [] };
  if (applied === undefined) {
    const at = (m: Entry) => (m.time === undefined ? Number.NaN : new Date(m.time as string | Date).getTime());
    const by = entries.filter((m) => countsAsWriter(m, fieldManager) && at(m) > at(ours) && overlaps(m.fieldsV1, ourSet));
    return by.length > 0 ? { changed: true, by: names(by) } : { changed: false, leaveOut: [] };
  }
  const leaveOut: Path[] = [];
  const by: Entry[] = [];
  let changed = false;
  for (const path of leaves(ourSet)) {
    const owners = entries.filter((m) => holds(m.fieldsV1, path));
    const stillOurs = owners.some((m) => m.manager === fieldManager && m.operation === 'Apply' && !m.subresource);
    if (isDeepStrictEqual(valueAt(live, path), valueAt(applied, path))) {
      // Same value, someone else's now: a restore sending it would take it back.
      if (!stillOurs && owners.length > 0) leaveOut.push(path);
      continue;
    }
    if (owners.length > 0 && owners.every((m) => m.subresource === 'scale')) {
      leaveOut.push(path);
      continue;
    }
    changed = true;
    by.push(...owners.filter((m) => countsAsWriter(m, fieldManager)));
  }
  return changed ? { changed: true, by: names(by) } : { changed: false, leaveOut };
}

/** The body without `paths` (map fields only: list items are left as they are). */
export function withoutFields<T extends KubernetesObject>(body: T, paths: readonly Path[]): T {
  const copy = structuredClone(body);
  for (const path of paths) {
    if (!path.every((s) => s.startsWith('f:'))) continue;
    let cur: unknown = copy;
    for (const s of path.slice(0, -1)) cur = isRecord(cur) ? cur[s.slice(2)] : undefined;
    if (isRecord(cur)) delete cur[path.at(-1)!.slice(2)];
  }
  return copy;
}

function ourEntry(obj: KubernetesObject, fieldManager: string): Entry | undefined {
  return ((obj.metadata?.managedFields ?? []) as Entry[]).find((m) => m.manager === fieldManager && m.operation === 'Apply' && !m.subresource);
}

function countsAsWriter(m: Entry, fieldManager: string): boolean {
  return m.manager !== fieldManager && !NOT_A_CHANGE.has(m.subresource ?? '');
}

function names(entries: readonly Entry[]): string[] {
  return [...new Set(entries.map((m) => m.manager).filter((m): m is string => m !== undefined))];
}

/** Every leaf of a fieldsV1 set (a field with nothing owned beneath it, or an item owned as a whole). */
function leaves(set: Record<string, unknown>, prefix: Path = []): Path[] {
  const out: Path[] = [];
  for (const [k, v] of Object.entries(set)) {
    if (k === '.') continue;
    const path = [...prefix, k];
    const children = isRecord(v) ? Object.keys(v).filter((c) => c !== '.') : [];
    if (children.length === 0) out.push(path);
    else out.push(...leaves(v as Record<string, unknown>, path));
  }
  return out;
}

function holds(set: unknown, path: Path): boolean {
  let cur = set;
  for (const s of path) {
    if (!isRecord(cur) || !(s in cur)) return false;
    cur = cur[s];
  }
  return true;
}

/**
 * Whether a later writer's set holds a field that our set holds, or any spec field: a write
 * beside ours in the spec (a new env var, a resource limit) changes what the deploy rolled out.
 */
function overlaps(theirs: unknown, ours: Record<string, unknown>): boolean {
  if (!isRecord(theirs)) return false;
  if ('f:spec' in theirs) return true;
  return leaves(theirs).some((path) => holds(ours, path));
}

/** The value a fieldsV1 path names in an object; a set item (`v:`) as whether it is there. */
function valueAt(obj: unknown, path: Path): unknown {
  let cur = obj;
  for (const s of path) {
    if (s.startsWith('f:')) cur = isRecord(cur) ? cur[s.slice(2)] : undefined;
    else if (s.startsWith('k:')) {
      const key = JSON.parse(s.slice(2)) as Record<string, unknown>;
      cur = Array.isArray(cur) ? cur.find((item) => isRecord(item) && Object.entries(key).every(([k, v]) => isDeepStrictEqual(item[k], v))) : undefined;
    } else if (s.startsWith('v:')) {
      const value: unknown = JSON.parse(s.slice(2));
      return Array.isArray(cur) && cur.some((item) => isDeepStrictEqual(item, value));
    } else if (s.startsWith('i:')) cur = Array.isArray(cur) ? cur[Number(s.slice(2))] : undefined;
    else return undefined;
  }
  return cur;
}
