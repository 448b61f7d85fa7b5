// Production controls, between policy and release: an intent that may not deploy now (a
// closed window, an approval awaited) is held in the target's namespace, not dropped and not
// failed. A newer intent replaces an older held one (the stale rule decides which is newer);
// a hold ends when its window opens and it is approved, and is then deployed by a /scheduler
// call or the /approve itself, judged again like any deploy. Time is the deployer's own clock
// (injected for tests), never a time the event carries.
import type { Config, Target } from '../config/load.ts';
import type { ClusterRegistry } from '../cluster/registry.ts';
import { eventOf, judge, type Ancestry } from '../apply/order.ts';
import type { KubeClient } from '../cluster/client.ts';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { DeployIntent } from '../core/intent.ts';
import type { DeployResult, DeployStatus } from '../core/result.ts';
import { DeployError } from '../errors.ts';
import { closeHold, readHold, writeHold, type Closed, type Hold } from './holds.ts';
import { judgeWindows } from './windows.ts';

/** Reports the end of an intent decided here, not by its own deploy (a held one superseded, expired or rejected). */
export type Settle = (intent: DeployIntent, result: DeployResult) => Promise<void>;

export interface ControlDeps {
  config: Config;
  clusters: ClusterRegistry;
  ancestry?: Ancestry | undefined;
  /** Epoch ms (DEPLOYER_CLOCK_FILE in tests). */
  now: () => number;
  settle: Settle;
}

/** A held intent whose hold has ended: deploy `intent`, then `finished` drops the record. */
export interface Release {
  intent: DeployIntent;
  finished(keep: boolean): Promise<void>;
}

export interface Decision {
  kind: 'approve' | 'reject';
  target: string;
  eventId: string;
  /** The verified caller. */
  by: string;
}

/** How often a hold is read and written again when another instance changed it meanwhile. */
const ATTEMPTS = 3;

export class Controls {
  private readonly deps: ControlDeps;

  constructor(deps: ControlDeps) {
    this.deps = deps;
  }

  /** Whether the target has a window or an approval at all: other targets never read a hold. */
  static controlled(target: Target): boolean {
    return target.windows !== undefined || target.approval !== undefined;
  }

  /**
   * Before a deploy: the intent's `held` result when a window or an approval holds it (or
   * `superseded` when a newer one is held already); undefined to deploy now. A reconcile (it
   * re-applies the running release) and a dry run (it writes nothing) are never held.
   */
  async hold(intent: DeployIntent, target: Target): Promise<DeployResult | undefined> {
    if (!Controls.controlled(target) || intent.image === undefined || intent.dryRun) return undefined;
    const now = this.deps.now();
    const reason = this.waitsFor(intent, target, now);
    if (reason === undefined) return undefined;
    const client = await this.deps.clusters.client(target.cluster);
    for (let i = 0; i < ATTEMPTS; i++) {
      const record = await readHold(client, target.name, target.namespace);
      const current = record?.hold;
      // The same event again (a redelivery, a replay): held as it is, approvals kept.
      if (current?.intent.eventId === intent.eventId) return this.result('held', current, target, intent);
      const expired = current !== undefined && this.expired(current, now);
      if (current && !expired) {
        const v = await judge(record.live, eventOf(intent), false, this.deps.ancestry);
        if (v.verdict === 'stale') {
          return this.result('superseded', { intent, reason, heldAt: new Date(now).toISOString() }, target, intent, `a newer event (${current.intent.eventId}, ${current.intent.image ?? ''}) is held for ${target.name} already; this older one is not held`);
        }
      }
      const hold: Hold = {
        intent: { ...intent, report: { ...intent.report, held: true } },
        reason,
        heldAt: new Date(now).toISOString(),
        ...(target.approval && { expiresAt: new Date(now + target.approval.expireAfter).toISOString() }),
      };
      if (!(await writeHold(client, hold, target.namespace, record?.live))) continue;
      if (current) {
        const ended = expired ? this.expiredResult(current, target) : this.result('superseded', current, target, current.intent, `replaced by the newer event ${intent.eventId} (${intent.image})`);
        await this.deps.settle(current.intent, ended);
      }
      return this.result('held', hold, target, intent);
    }
    throw new DeployError('CLUSTER_UNAVAILABLE', `the hold of ${target.name} changed ${ATTEMPTS} times while being written; send it again`);
  }

  /**
   * A /scheduler call for the target: the held intent once its hold has ended (the window is
   * open, it is approved), to deploy in its place; an expired one is dropped and reported.
   */
  async released(targetName: string): Promise<Release | undefined> {
    const target = this.deps.config.targets.get(targetName);
    if (!target || !Controls.controlled(target)) return undefined;
    const client = await this.deps.clusters.client(target.cluster);
    const record = await readHold(client, target.name, target.namespace);
    if (!record?.hold) return undefined;
    const now = this.deps.now();
    if (this.expired(record.hold, now)) {
      await this.close(client, record.live, record.hold, this.expiredResult(record.hold, target), 'expired');
      return undefined;
    }
    const intent = releasedIntent(record.hold);
    return this.waitsFor(intent, target, now) === undefined ? this.release(client, record.live, intent) : undefined;
  }

  /** POST /approve or /reject: the release to deploy now, or the answer (held until the window opens, rejected, expired). */
  async decide(d: Decision): Promise<{ release: Release } | { result: DeployResult }> {
    const target = this.deps.config.targets.get(d.target);
    if (!target) throw new DeployError('UNKNOWN_TARGET', `unknown target "${d.target}"`);
    if (!target.approval) throw new DeployError('BAD_REQUEST', `target "${d.target}" takes no approvals (it has no approval: in the configuration)`);
    if (!target.approval.approvers.includes(d.by)) throw new DeployError('FORBIDDEN', `${d.by} is not an approver of ${d.target}`);
    const client = await this.deps.clusters.client(target.cluster);
    const record = await readHold(client, target.name, target.namespace);
    const current = record?.hold;
    if (!record || current?.intent.eventId !== d.eventId) {
      const held = current ? `; it holds ${current.intent.eventId}` : '';
      throw new DeployError('HOLD_NOT_FOUND', `${d.target} holds no event ${d.eventId} (released, replaced, expired or never held)${held}`);
    }
    const now = this.deps.now();
    if (this.expired(current, now)) {
      const result = this.expiredResult(current, target);
      await this.close(client, record.live, current, result, 'expired');
      return { result };
    }
    if (d.kind === 'reject') {
      const result = this.result('rejected', current, target, current.intent, `rejected by ${d.by}`);
      if (!(await this.close(client, record.live, current, result, 'rejected'))) throw changed(d);
      return { result };
    }
    const approved: Hold = { ...current, approvedBy: d.by, approvedAt: new Date(now).toISOString() };
    const intent = releasedIntent(approved);
    const still = this.waitsFor(intent, target, now);
    if (still === undefined) return { release: this.release(client, record.live, intent) };
    // Approved, and a window still closed: recorded, deployed by the /scheduler call once it opens.
    if (!(await writeHold(client, { ...approved, reason: still }, target.namespace, record.live))) throw changed(d);
    return { result: this.result('held', { ...approved, reason: still }, target, intent) };
  }

  /** What the intent waits for now, or undefined when nothing holds it. */
  private waitsFor(intent: DeployIntent, target: Target, now: number): string | undefined {
    const reasons: string[] = [];
    if (target.windows && !intent.override) {
      const w = judgeWindows(target.windows, this.deps.config.windows, now);
      if (!w.open) reasons.push(w.reason);
    }
    if (target.approval && intent.approvedBy === undefined) reasons.push(`awaits approval by one of ${target.approval.approvers.join(', ')} (POST /approve)`);
    return reasons.length > 0 ? reasons.join('; ') : undefined;
  }

  private expired(hold: Hold, now: number): boolean {
    return hold.approvedBy === undefined && hold.expiresAt !== undefined && Date.parse(hold.expiresAt) <= now;
  }

  private expiredResult(hold: Hold, target: Target): DeployResult {
    return this.result('expired', hold, target, hold.intent, `held since ${hold.heldAt} and not approved by ${hold.expiresAt ?? ''}`);
  }

  /** Closes the hold as read and reports how its intent ended; false when it changed meanwhile. */
  private async close(client: KubeClient, live: KubernetesObject, hold: Hold, result: DeployResult, state: Closed): Promise<boolean> {
    const closed = await closeHold(client, live, state, new Date(this.deps.now()).toISOString());
    // Reported once: by whoever closed it.
    if (closed) await this.deps.settle(hold.intent, result);
    return closed;
  }

  private release(client: KubeClient, live: KubernetesObject, intent: DeployIntent): Release {
    return {
      intent,
      // Closed only as it was read: a newer intent held meanwhile stays.
      finished: async (keep) => void (keep ? undefined : await closeHold(client, live, 'released', new Date(this.deps.now()).toISOString())),
    };
  }

  private result(status: DeployStatus, hold: Hold, target: Target, intent: DeployIntent, reason = hold.reason): DeployResult {
    return {
      status,
      target: target.name,
      cluster: target.cluster,
      namespace: target.namespace,
      image: intent.image ?? '',
      requestId: intent.requestId,
      dryRun: false,
      reason,
      hold: {
        eventId: hold.intent.eventId,
        heldAt: hold.heldAt,
        ...(hold.expiresAt !== undefined && { expiresAt: hold.expiresAt }),
        ...(hold.approvedBy !== undefined && { approvedBy: hold.approvedBy }),
      },
      objects: [],
      elapsedMs: 0,
    };
  }
}

/** The held intent as it is deployed: with its approval. */
function releasedIntent(hold: Hold): DeployIntent {
  return { ...hold.intent, ...(hold.approvedBy !== undefined && { approvedBy: hold.approvedBy }) };
}

function changed(d: Decision): DeployError {
  return new DeployError('CLUSTER_UNAVAILABLE', `the hold of ${d.target} changed while being ${d.kind === 'approve' ? 'approved' : 'rejected'}; send it again`);
}
