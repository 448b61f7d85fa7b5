// A deploy's decide-and-write under the target's Lease: judge the event against the one
// the anchor records (stale? duplicate?), then apply. Under an unbroken tenure the record
// and each object's state come from this instance's own last apply (src/apply/lock.ts),
// so a warm deploy sends nothing but its applies.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { KubeClient } from '../cluster/client.ts';
import { objectKey, type Applied } from './apply.ts';
import { apiError } from './errors.ts';
import type { Knowledge, TargetLeases, TargetRef } from './lock.ts';
import { judge, type RecordedEvent, type Verdict } from './order.ts';

export interface Guard extends TargetRef {
  /** Epoch ms by which the Lease must be had. */
  deadline: number;
  /** The object whose record speaks for the target (in the target's namespace); none: nothing to judge. */
  anchor: KubernetesObject | undefined;
  event: RecordedEvent;
  /** Let an older event through on purpose. */
  force: boolean;
}

export type Guarded = { verdict: Exclude<Verdict['verdict'], 'apply'>; recorded: RecordedEvent } | { applied: Applied[] };

/** `apply` gets what the instance knows of the target's objects (undefined: read them). */
export async function guardedApply(leases: TargetLeases, client: KubeClient, guard: Guard, apply: (known: Knowledge | undefined) => Promise<Applied[]>): Promise<Guarded> {
  const tenure = await leases.acquire(client, guard, guard.deadline);
  let learned: Knowledge | 'keep' | 'drop' = 'drop';
  try {
    if (guard.anchor) {
      const anchor = guard.anchor;
      const live = tenure.knowledge?.get(objectKey(anchor)) ?? (await client.get(anchor).catch((err: unknown) => { throw apiError(err, anchor, 'read'); }));
      const v = judge(live, guard.event, guard.force);
      if (v.verdict !== 'apply') {
        learned = 'keep';
        return v;
      }
    }
    const applied = await apply(tenure.knowledge);
    learned = new Map(applied.map((a) => [objectKey(a.change.applied), a.change.after]));
    return { applied };
  } finally {
    tenure.done(learned);
  }
}
