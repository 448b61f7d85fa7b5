// Never go backwards, never apply twice: an intent is judged against the event the live
// workload records (annotations written by the deploy that set it). Two events for commits
// of one repository are ordered by the commits' history when the caller can ask the Git host
// (`Ancestry`); otherwise, and for events without a commit, by their times.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { DeployIntent } from '../core/intent.ts';
import { ANNOTATIONS, commitStamp, isWorkload, parseCommitStamp, type CommitRef } from './render.ts';

export interface RecordedEvent {
  eventId: string;
  eventTime: string;
  /** The commit stamp (render.ts commitStamp), when the event deploys a Git commit. */
  commit?: string;
}

/** The intent's event as a workload (or a hold) records it: what another intent is judged against. */
export function eventOf(intent: Pick<DeployIntent, 'eventId' | 'eventTime' | 'commit'>): RecordedEvent {
  return { eventId: intent.eventId, eventTime: intent.eventTime, ...(intent.commit && { commit: commitStamp(intent.commit) }) };
}

/**
 * How the event's commit (head) relates to the recorded one (base), as the Git host's compare
 * API says: `ahead` newer, `behind` older. `undefined` when it cannot tell (no token, a failed
 * or slow call). Given by the caller: this stage knows no Git host and no HTTP.
 */
export type Ancestry = (recorded: CommitRef, event: CommitRef) => Promise<'ahead' | 'behind' | 'identical' | 'diverged' | undefined>;

export type Verdict =
  | { verdict: 'apply' }
  /** `by`: what found a stale event older, its commit's history or its time. */
  | { verdict: 'stale'; recorded: RecordedEvent; by: 'commit' | 'time' }
  /** `rolledBack`: the recorded event's deploy was rolled back (a redelivery answers that again, and deploys nothing). */
  | { verdict: 'duplicate'; recorded: RecordedEvent; rolledBack?: { restoredImage?: string } };

export function recordedEvent(live: KubernetesObject | undefined): RecordedEvent | undefined {
  const a = live?.metadata?.annotations;
  const eventId = a?.[ANNOTATIONS.eventId];
  const eventTime = a?.[ANNOTATIONS.eventTime];
  const commit = a?.[ANNOTATIONS.commit];
  return eventId !== undefined && eventTime !== undefined ? { eventId, eventTime, ...(commit !== undefined && { commit }) } : undefined;
}

/**
 * `force` lets an older event through on purpose (a manual rollback); a duplicate never applies
 * twice. The commits decide when both events carry one of the same repository and `ancestry`
 * knows how they relate; diverged histories and unknown answers fall back to the times.
 */
export async function judge(live: KubernetesObject | undefined, event: RecordedEvent, force = false, ancestry?: Ancestry): Promise<Verdict> {
  const recorded = recordedEvent(live);
  if (!recorded) return { verdict: 'apply' };
  if (recorded.eventId === event.eventId) {
    const a = live?.metadata?.annotations;
    if (a?.[ANNOTATIONS.rolledBack] !== recorded.eventId) return { verdict: 'duplicate', recorded };
    const restoredImage = a[ANNOTATIONS.image];
    return { verdict: 'duplicate', recorded, rolledBack: restoredImage !== undefined ? { restoredImage } : {} };
  }
  if (force) return { verdict: 'apply' };
  const relation = await commitRelation(parseCommitStamp(recorded.commit), parseCommitStamp(event.commit), ancestry);
  if (relation === 'behind') return { verdict: 'stale', recorded, by: 'commit' };
  if (relation === 'ahead' || relation === 'identical') return { verdict: 'apply' };
  if (Date.parse(event.eventTime) < Date.parse(recorded.eventTime)) return { verdict: 'stale', recorded, by: 'time' };
  return { verdict: 'apply' };
}

async function commitRelation(recorded: CommitRef | undefined, event: CommitRef | undefined, ancestry: Ancestry | undefined): ReturnType<Ancestry> {
  if (!recorded || !event || recorded.host !== event.host || recorded.repository !== event.repository) return undefined;
  // The same commit again (a push, then its workflow run) is not older.
  if (recorded.sha === event.sha) return 'identical';
  if (!ancestry) return undefined;
  try {
    return await ancestry(recorded, event);
  } catch {
    return undefined;
  }
}

/** The object whose record speaks for the target: its first workload, else its first object. */
export function anchorOf(objects: readonly KubernetesObject[]): KubernetesObject | undefined {
  return objects.find(isWorkload) ?? objects[0];
}
