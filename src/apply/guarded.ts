// A deploy's decide-and-write under the target's Lease: judge the event against the one
// the anchor records (stale? duplicate?), then run the deploy's writes (preDeploy Jobs,
// applies; a reconcile first reads what to re-apply). Under an unbroken tenure the record
// and each object's state come from this instance's own last apply (src/apply/lock.ts),
// so a warm deploy sends nothing but its applies. Every write of the turn goes through
// the fenced client, so none lands after the Lease could have passed to someone else.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { KubeClient } from '../cluster/client.ts';
import { objectKey, type Applied } from './apply.ts';
import { apiError } from './errors.ts';
import type { Knowledge, TargetLeases, TargetRef } from './lock.ts';
import { judge, type Ancestry, type RecordedEvent, type Verdict } from './order.ts';

export interface Guard extends TargetRef {
  /** Epoch ms by which the Lease must be had. */
  deadline: number;
  /** The object whose record speaks for the target (in the target's namespace); none: nothing to judge (a reconcile reads its record in the turn). */
  anchor: KubernetesObject | undefined;
  event: RecordedEvent;
  /** Let an older event through on purpose. */
  force: boolean;
  /** How two commits relate, asked of the Git host under the Lease (none: times alone). */
  ancestry?: Ancestry | undefined;
}

/** What the turn's work gets: the instance's knowledge of the target's objects, and the client to write with. */
export interface Turn {
  /** This instance's own last applies under an unbroken tenure; undefined: read the objects. */
  known: Knowledge | undefined;
  /** The caller's client with every write bounded by the Lease (KubeClient.fenced). */
  client: KubeClient;
  /** The anchor as judged (undefined when there is none, or it does not exist yet). */
  anchor?: KubernetesObject | undefined;
}

/**
 * The turn applied the target's objects (and wrote `known` besides, e.g. the ApplySet
 * parent: what the next turn may take as read), or ended before that with `result` (none of
 * the target's objects written).
 */
export type TurnOutcome<R> = { applied: Applied[]; known?: KubernetesObject[] } | { result: R };

export type Guarded<R = never> = Exclude<Verdict, { verdict: 'apply' }> | TurnOutcome<R>;

export async function guardedApply<R = never>(leases: TargetLeases, client: KubeClient, guard: Guard, run: (turn: Turn) => Promise<TurnOutcome<R>>): Promise<Guarded<R>> {
  const tenure = await leases.acquire(client, guard, guard.deadline);
  let learned: Knowledge | 'keep' | 'drop' = 'drop';
  try {
    let live: KubernetesObject | undefined;
    if (guard.anchor) {
      const anchor = guard.anchor;
      live = tenure.knowledge?.get(objectKey(anchor)) ?? (await client.get(anchor).catch((err: unknown) => { throw apiError(err, anchor, 'read'); }));
      const v = await judge(live, guard.event, guard.force, guard.ancestry);
      if (v.verdict !== 'apply') {
        learned = 'keep';
        return v;
      }
    }
    const outcome = await run({ known: tenure.knowledge, client: client.fenced(tenure.fence), anchor: live });
    learned = 'applied' in outcome ? new Map([...outcome.applied.map((a) => a.change.after), ...(outcome.known ?? [])].map((o) => [objectKey(o), o])) : 'keep';
    return outcome;
  } finally {
    tenure.done(learned);
  }
}
