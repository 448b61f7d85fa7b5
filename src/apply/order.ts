// Never go backwards, never apply twice: an intent is judged against the event the live
// workload records (annotations written by the deploy that set it).
import type { KubernetesObject } from '@kubernetes/client-node';
import { ANNOTATIONS, isWorkload } from './render.ts';

export interface RecordedEvent {
  eventId: string;
  eventTime: string;
}

export type Verdict = { verdict: 'apply' } | { verdict: 'stale' | 'duplicate'; recorded: RecordedEvent };

export function recordedEvent(live: KubernetesObject | undefined): RecordedEvent | undefined {
  const a = live?.metadata?.annotations;
  const eventId = a?.[ANNOTATIONS.eventId];
  const eventTime = a?.[ANNOTATIONS.eventTime];
  return eventId !== undefined && eventTime !== undefined ? { eventId, eventTime } : undefined;
}

/** `force` lets an older event through on purpose (a manual rollback); a duplicate never applies twice. */
export function judge(live: KubernetesObject | undefined, event: RecordedEvent, force = false): Verdict {
  const recorded = recordedEvent(live);
  if (!recorded) return { verdict: 'apply' };
  if (recorded.eventId === event.eventId) return { verdict: 'duplicate', recorded };
  if (!force && Date.parse(event.eventTime) < Date.parse(recorded.eventTime)) return { verdict: 'stale', recorded };
  return { verdict: 'apply' };
}

/** The object whose record speaks for the target: its first workload, else its first object. */
export function anchorOf(objects: readonly KubernetesObject[]): KubernetesObject | undefined {
  return objects.find(isWorkload) ?? objects[0];
}
