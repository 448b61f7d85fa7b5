// One deploy of a target at a time, across every instance: a coordination.k8s.io Lease
// `gke-deployer.<target>` in the target's namespace. Cloud Run runs many instances, so an
// in-process mutex alone would not do; within one instance, deploys of a target also take
// turns (a queue per target), so a redelivery to the same instance waits its turn.
//
// The Lease is the instance's, not one deploy's: it keeps it between deploys, renews it
// when a deploy starts with less than half of it left (and while a long turn lasts, below),
// and hands it back (clears the holder, keeping the object) once the target has been idle
// for IDLE_MS, or on close.
// Every write is conditional on the resourceVersion the instance last saw, so the Lease's
// resourceVersion is a witness: while it is unchanged since this instance's own last write,
// nobody else has held the Lease, so no other gke-deployer has written the target, and what
// this instance learned from its own last apply still holds (`Tenure.knowledge`).
//
// Fairness: an instance that keeps receiving deploys of a target never goes idle, so another
// instance that wants the Lease records itself on it as the waiter (annotations WAITING and
// WAITING_UNTIL; one at a time, first come first served). That write fails the holder's next
// renewal, and the holder hands the Lease straight to the waiter instead (so does its
// hand-back), then waits its own turn. A waiter's record lasts one Lease duration at most,
// renewed while it waits, so a waiter that went away costs at most that.
//
// Writes never outlive the Lease. A turn renews the Lease while it lasts (a keep-alive:
// a preDeploy Job can run for minutes), and every write in a turn goes through a fenced
// client (`Tenure.fence`, src/cluster/client.ts): each attempt, retries included, must end
// before the Lease could pass to someone else (the Lease time left, less SAFETY_MS for
// clock skew), on the client and on the API server (its `timeout` parameter), renewing
// first when less than a quarter of the Lease is left. So a write held up (a slow
// admission webhook, a slow API server, a retry budget) is abandoned, not landed after
// another instance took the Lease and wrote a newer event. Why not a resourceVersion
// precondition on each write instead: controllers' status writes change the workload's
// resourceVersion all the time, so the precondition would need a read before every
// write (no more warm path, one request per object) and would still fail on a mere
// status update; the Lease bound costs no request while the Lease is fresh.
// A waiter that records itself during a long turn is kept on the Lease by its renewals
// and gets the Lease when the turn ends (at the next turn's start, or the hand-back).
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { KubernetesObject } from '@kubernetes/client-node';
import { ApiException } from '@kubernetes/client-node/dist/gen/apis/exception.js';
import type { KubeClient, WriteFence } from '../cluster/client.ts';
import { DeployError } from '../errors.ts';
import { apiError } from './errors.ts';

/**
 * How long a Lease lasts without renewal: how long a frozen or dead holder keeps others
 * waiting. A deploy starts with at least half of it left, for its decide-and-apply; its
 * turn renews it while it lasts.
 */
export const LEASE_SECONDS = 20;
/** An idle target's Lease goes back after this long without a deploy. */
export const IDLE_MS = 2_000;
/** On the Lease: the instance waiting for it (one at a time), and until when (RFC 3339). */
export const WAITING = 'gke-deployer/waiting';
export const WAITING_UNTIL = 'gke-deployer/waiting-until';
/** The longest pause between two looks at a Lease someone else holds. */
const POLL_MS = 1_000;
/** How long close() waits for running turns and hand-backs. */
const CLOSE_MS = 3_000;
/**
 * Kept back from the Lease's end for every write: clock skew between instances (another
 * instance judges expiry by its own clock against our renewTime) and the API server's
 * last step after its deadline check. At most a tenth of the Lease (short test Leases).
 */
export const SAFETY_MS = 2_000;

export function leaseName(target: string): string {
  return `gke-deployer.${target}`;
}

/** What this instance knows of a target's objects: its own last apply's answers, by objectKey. */
export type Knowledge = ReadonlyMap<string, KubernetesObject>;

/** One deploy's turn with the Lease held. */
export interface Tenure {
  /** Known while the tenure has been unbroken since this instance's last apply; otherwise read the cluster. */
  readonly knowledge: Knowledge | undefined;
  /** Bounds every write of the turn by the Lease (KubeClient.fenced): no write lands after the Lease could have passed on. */
  readonly fence: WriteFence;
  /** Ends the turn: what the deploy learned (its applies' answers), 'keep' (nothing written), or 'drop'. */
  done(learned: Knowledge | 'keep' | 'drop'): void;
}

export interface TargetRef {
  cluster: string;
  namespace: string;
  target: string;
}

interface State {
  ref: TargetRef;
  /** The end of the queue of deploys of this target in this instance. */
  tail: Promise<void>;
  /** Deploys queued or running (and idle releases). */
  busy: number;
  /** The Lease as this instance last wrote it (held or handed back); undefined when unknown. */
  lease: (KubernetesObject & { spec?: LeaseSpec }) | undefined;
  holding: boolean;
  /** Local clock when the held Lease's renewTime was written (taken before sending). */
  renewedAt: number;
  /** A renewal during a turn (keep-alive or fence), shared by whoever needs it meanwhile. */
  renewing: Promise<void> | undefined;
  knowledge: Knowledge | undefined;
  /** Bumped by forget(): a turn that started before it learns nothing. */
  epoch: number;
  client: KubeClient | undefined;
  timer: NodeJS.Timeout | undefined;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export class TargetLeases {
  /** This instance: its host name (the Cloud Run instance) and a random part. */
  readonly holder = `${hostname().slice(0, 60)}/${randomBytes(6).toString('hex')}`;
  private readonly states = new Map<string, State>();
  private readonly idleMs: number;
  /** LEASE_SECONDS, shorter in tests. */
  private readonly leaseSeconds: number;
  /** SAFETY_MS, or a tenth of a short (test) Lease. */
  private readonly safetyMs: number;
  private closed = false;

  constructor(opts: { idleMs?: number; leaseSeconds?: number } = {}) {
    this.idleMs = opts.idleMs ?? IDLE_MS;
    this.leaseSeconds = opts.leaseSeconds ?? LEASE_SECONDS;
    this.safetyMs = Math.min(SAFETY_MS, this.leaseSeconds * 100);
  }

  /** Waits for this instance's turn, then for the Lease, until `deadline`; then CLUSTER_UNAVAILABLE (retryable). */
  async acquire(client: KubeClient, ref: TargetRef, deadline: number): Promise<Tenure> {
    if (this.closed) throw new DeployError('CLUSTER_UNAVAILABLE', 'the deployer is shutting down; try again');
    const st = this.state(ref);
    const release = await this.turn(st);
    try {
      st.client = client;
      await this.hold(st, client, deadline);
    } catch (err) {
      release();
      throw err;
    }
    const epoch = st.epoch;
    let ended = false;
    // Keep-alive: a long turn (a preDeploy Job) keeps the Lease; a failed renewal is retried
    // at the next tick, and the fence refuses writes once too little is left.
    const leaseMs = this.leaseSeconds * 1000;
    const keepAlive = setInterval(() => {
      // Renewed once a quarter has gone: at least half is left whenever a renewal starts.
      if (st.renewedAt + leaseMs - Date.now() < (leaseMs * 3) / 4) this.renewInTurn(st, client).catch(() => {});
    }, leaseMs / 4);
    keepAlive.unref();
    return {
      knowledge: st.knowledge,
      fence: {
        writeBy: async () => {
          if (ended) throw new DeployError('INTERNAL', `a write of target "${ref.target}" after its turn ended`);
          return this.writeBy(st, client);
        },
      },
      done: (learned) => {
        if (ended) return;
        ended = true;
        clearInterval(keepAlive);
        // Learned only under a tenure that cannot have lapsed meanwhile.
        const intact = st.holding && epoch === st.epoch && Date.now() < st.renewedAt + this.leaseSeconds * 1000;
        if (learned === 'drop' || !intact) st.knowledge = undefined;
        else if (learned !== 'keep') st.knowledge = learned;
        release();
      },
    };
  }

  /** This instance wrote the target outside a turn (a rollback): what it knew may be wrong now. */
  forget(ref: TargetRef): void {
    const st = this.states.get(key(ref));
    if (!st) return;
    st.epoch++;
    st.knowledge = undefined;
  }

  /**
   * Hands back every Lease this instance holds (on SIGTERM, or the app's close), after the
   * turns already running; at most CLOSE_MS, after which the Leases simply expire.
   */
  async close(): Promise<void> {
    this.closed = true;
    const all = Promise.all([...this.states.values()].map((st) => this.idle(st, true)));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((r) => (timer = setTimeout(r, CLOSE_MS)))]);
    clearTimeout(timer);
  }

  private state(ref: TargetRef): State {
    const k = key(ref);
    let st = this.states.get(k);
    if (!st) {
      st = { ref, tail: Promise.resolve(), busy: 0, lease: undefined, holding: false, renewedAt: 0, renewing: undefined, knowledge: undefined, epoch: 0, client: undefined, timer: undefined };
      this.states.set(k, st);
    }
    return st;
  }

  /** Queues for the target; resolves with the function that ends the turn. */
  private async turn(st: State): Promise<() => void> {
    st.busy++;
    clearTimeout(st.timer);
    const before = st.tail;
    let end!: () => void;
    st.tail = new Promise((r) => (end = r));
    await before;
    return () => {
      st.busy--;
      end();
      if (st.busy === 0 && st.holding && !this.closed) {
        st.timer = setTimeout(() => void this.idle(st), this.idleMs);
        st.timer.unref();
      }
    };
  }

  private async idle(st: State, closing = false): Promise<void> {
    clearTimeout(st.timer);
    if (!closing && st.busy > 0) return;
    const release = await this.turn(st);
    try {
      await this.handBack(st);
    } finally {
      release();
    }
  }

  private async hold(st: State, client: KubeClient, deadline: number): Promise<void> {
    await st.renewing?.catch(() => {}); // the last turn's keep-alive, still on its way
    const now = Date.now();
    // A waiter seen by a renewal during the last turn gets the Lease now.
    if (st.holding && st.lease && now < st.renewedAt + (this.leaseSeconds * 1000) / 2 && !this.waiterFor(st.lease, now)) return;
    // Someone waits for ours (recorded when we took it): yield instead of renewing.
    const yielding = st.holding;
    if (st.lease && !(st.holding && this.waiterFor(st.lease, now))) {
      // Renew ours, or take back the one we handed back. Conditional on the resourceVersion
      // we wrote: success proves nobody held it since, so what we know still holds. A waiter
      // recording itself on the Lease also fails it: then we hand the Lease over.
      const spec = st.lease.spec ?? {};
      const body = leaseBody(st, st.lease.metadata?.resourceVersion, {
        ...spec,
        holderIdentity: this.holder,
        ...(!st.holding && { acquireTime: microTime(now) }),
        renewTime: microTime(now),
      });
      try {
        this.took(st, await client.replace(body), now);
        return;
      } catch (err) {
        if (!raced(err)) {
          this.lost(st);
          throw apiError(err, body, 'lock (renew Lease)');
        }
      }
    }
    this.lost(st);
    await this.acquireAfresh(st, client, deadline, yielding);
  }

  /**
   * Someone else may have held the Lease since our last write: start over, knowing nothing.
   * `yielding`: we held it until now, so a waiter recorded on it gets it before we may again.
   */
  private async acquireAfresh(st: State, client: KubeClient, deadline: number, yielding: boolean): Promise<void> {
    const ref = leaseBody(st, undefined, {});
    for (let attempt = 0; ; attempt++) {
      const now = Date.now();
      try {
        this.took(st, await client.create(leaseBody(st, undefined, { holderIdentity: this.holder, leaseDurationSeconds: this.leaseSeconds, acquireTime: microTime(now), renewTime: microTime(now) })), now);
        return;
      } catch (err) {
        if (!(err instanceof ApiException && err.code === 409)) throw apiError(err, ref, 'lock (create Lease)');
      }
      const current: State['lease'] = await client.get(ref).catch((err: unknown) => { throw apiError(err, ref, 'lock (read Lease)'); });
      if (current === undefined) continue; // deleted between our create and read: create again
      const spec = current.spec ?? {};
      const waiter = this.waiterFor(current, Date.now());
      let wait = Math.random() * Math.min(POLL_MS, 50 * 2 ** Math.min(attempt, 5));
      yielding &&= spec.holderIdentity === this.holder;
      if (yielding && waiter) {
        try {
          await client.replace(handOver(st, current, waiter));
          // Then wait like anyone else; those already waiting get the first chance to record themselves.
          yielding = false;
          wait = POLL_MS;
        } catch (err) {
          if (!raced(err)) throw apiError(err, ref, 'lock (hand over Lease)');
        }
      } else if (free(current, this.holder) && (!waiter || spec.holderIdentity === this.holder)) {
        // Handed back, expired (its holder died or froze), ours from an answer that was lost,
        // or handed over to us. A waiter recorded meanwhile keeps its place: we yield to it
        // at our next renewal.
        const taken = Date.now();
        try {
          const body = leaseBody(st, current.metadata?.resourceVersion, {
            ...spec,
            holderIdentity: this.holder,
            leaseDurationSeconds: this.leaseSeconds,
            acquireTime: microTime(taken),
            renewTime: microTime(taken),
            leaseTransitions: (spec.leaseTransitions ?? 0) + 1,
          }, waiter ? waitingOf(current) : undefined);
          this.took(st, await client.replace(body), taken);
          return;
        } catch (err) {
          if (!raced(err)) throw apiError(err, ref, 'lock (take over Lease)');
        }
      } else if (!free(current, this.holder)) {
        await this.recordWaiting(st, client, current, deadline);
      }
      if (Date.now() + wait > deadline) {
        throw new DeployError('CLUSTER_UNAVAILABLE', `another deploy of target "${st.ref.target}" still holds Lease ${st.ref.namespace}/${leaseName(st.ref.target)}; try again`);
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  /**
   * Records us as the Lease's waiter when nobody else is (first come, first served), at most
   * one Lease duration ahead, renewed while we wait: a waiter that went away holds the Lease
   * up for one Lease duration at most. It ends a poll before our deadline, so a Lease handed
   * to us is seen before we give up. Lost races are simply retried.
   */
  private async recordWaiting(st: State, client: KubeClient, current: KubernetesObject & { spec?: LeaseSpec }, deadline: number): Promise<void> {
    const now = Date.now();
    if (this.waiterFor(current, now)) return; // someone else is first
    const recorded = waitingOf(current);
    const until = Math.min(deadline - POLL_MS, now + this.leaseSeconds * 1000);
    if (until <= now) return;
    if (recorded?.[WAITING] === this.holder && until - Date.parse(recorded[WAITING_UNTIL]) < (this.leaseSeconds * 1000) / 2) return;
    const body = leaseBody(st, current.metadata?.resourceVersion, current.spec ?? {}, { [WAITING]: this.holder, [WAITING_UNTIL]: new Date(until).toISOString() });
    await client.replace(body).catch((err: unknown) => {
      if (!raced(err)) throw apiError(err, body, 'lock (wait for Lease)');
    });
  }

  /** The instance recorded as waiting for the Lease, unless it is us or its wait has ended. */
  private waiterFor(lease: KubernetesObject, now: number): string | undefined {
    const recorded = waitingOf(lease);
    return recorded && isLive(recorded, now) && recorded[WAITING] !== this.holder ? recorded[WAITING] : undefined;
  }

  /**
   * Hands the Lease back (or straight to its waiter), keeping the object: when nobody else
   * wrote it meanwhile, its resourceVersion stays the witness of who held it last.
   */
  private async handBack(st: State): Promise<void> {
    await st.renewing?.catch(() => {});
    if (!st.holding || !st.lease || !st.client) return;
    const client = st.client;
    const to = this.waiterFor(st.lease, Date.now());
    st.holding = false;
    try {
      st.lease = await client.replace(handOver(st, st.lease, to));
      if (to) this.lost(st);
    } catch (err) {
      // Taken over after it expired, or no answer: either way we know nothing now.
      this.lost(st);
      if (!(err instanceof ApiException && err.code === 409)) return;
      // Or a waiter recorded itself since our last write: pass the Lease on rather than let it expire.
      const current: State['lease'] = await client.get(leaseBody(st, undefined, {})).catch(() => undefined);
      if (current?.spec?.holderIdentity !== this.holder) return;
      await client.replace(handOver(st, current, this.waiterFor(current, Date.now()))).catch(() => undefined);
    }
  }

  /**
   * When a write starting now must have landed: before the Lease could pass to someone
   * else, less SAFETY_MS. Renews first when less than a quarter of the Lease is left (a
   * long turn; the keep-alive usually did already), and refuses once the Lease is lost.
   */
  private async writeBy(st: State, client: KubeClient): Promise<number> {
    const leaseMs = this.leaseSeconds * 1000;
    if (st.holding && st.renewedAt + leaseMs - this.safetyMs - Date.now() < leaseMs / 4) {
      // A renewal that could not be sent leaves what is left of the Lease to use.
      await this.renewInTurn(st, client).catch((err: unknown) => {
        if (!st.holding) throw err;
      });
    }
    if (!st.holding) throw this.lostError(st);
    return st.renewedAt + leaseMs - this.safetyMs;
  }

  /** One renewal at a time during a turn; whoever needs one meanwhile waits for it. */
  private renewInTurn(st: State, client: KubeClient): Promise<void> {
    st.renewing ??= this.renewHeld(st, client).finally(() => (st.renewing = undefined));
    return st.renewing;
  }

  /**
   * Renews the Lease in the middle of a turn, conditional on what we last wrote. A waiter
   * that recorded itself meanwhile fails it: the Lease is still ours (same holder and
   * renewTime: nobody took it), so it is renewed with the waiter's record kept, and the
   * waiter gets it once this turn ends. Anything else: lost, and the turn's writes stop.
   */
  private async renewHeld(st: State, client: KubeClient): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const lease = st.lease;
      if (!st.holding || !lease) break;
      const now = Date.now();
      const body = leaseBody(st, lease.metadata?.resourceVersion, { ...lease.spec, holderIdentity: this.holder, renewTime: microTime(now) }, waitingOf(lease));
      try {
        this.took(st, await client.replace(body), now);
        return;
      } catch (err) {
        if (!raced(err)) throw apiError(err, body, 'lock (renew Lease)');
      }
      const current: State['lease'] = await client.get(leaseBody(st, undefined, {})).catch((err: unknown) => { throw apiError(err, body, 'lock (read Lease)'); });
      const untouched = current?.spec?.holderIdentity === this.holder && current.spec.renewTime === lease.spec?.renewTime;
      if (!untouched) break;
      st.lease = current; // only annotations changed: renew from here
      // A waiter rewriting its record again and again: still ours; the next renewal tries again.
      if (attempt >= 3) throw new DeployError('CLUSTER_UNAVAILABLE', `Lease ${st.ref.namespace}/${leaseName(st.ref.target)} kept changing while renewing it; try again`);
    }
    this.lost(st);
    throw this.lostError(st);
  }

  private lostError(st: State): DeployError {
    return new DeployError('CLUSTER_UNAVAILABLE', `the deploy lost Lease ${st.ref.namespace}/${leaseName(st.ref.target)} of target "${st.ref.target}" before its writes were done (it expired and another deploy may hold it); nothing more is written, try again`);
  }

  private took(st: State, lease: KubernetesObject, at: number): void {
    st.lease = lease;
    st.holding = true;
    st.renewedAt = at;
  }

  private lost(st: State): void {
    st.lease = undefined;
    st.holding = false;
    st.knowledge = undefined;
  }

}

/** The Lease as we write it: with `annotations` (a waiter's record) or none. */
function leaseBody(st: State, resourceVersion: string | undefined, spec: LeaseSpec, annotations?: Record<string, string>): KubernetesObject & { spec: LeaseSpec } {
  const metadata = { name: leaseName(st.ref.target), namespace: st.ref.namespace, ...(resourceVersion !== undefined && { resourceVersion }), ...(annotations && { annotations }) };
  return { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata, spec };
}

/** Our Lease, handed to `to` (renewed in its name, so it has a full Lease to take it) or to nobody; no waiter recorded. */
function handOver(st: State, lease: KubernetesObject & { spec?: LeaseSpec }, to: string | undefined): KubernetesObject & { spec: LeaseSpec } {
  const { holderIdentity: _ours, ...spec } = lease.spec ?? {};
  const now = microTime(Date.now());
  const given = to ? { ...spec, holderIdentity: to, acquireTime: now, renewTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : spec;
  return leaseBody(st, lease.metadata?.resourceVersion, given);
}

type Waiting = Record<typeof WAITING | typeof WAITING_UNTIL, string>;

/** The waiter's record on a Lease, if any. */
function waitingOf(lease: KubernetesObject): Waiting | undefined {
  const a = lease.metadata?.annotations;
  const waiter = a?.[WAITING];
  const until = a?.[WAITING_UNTIL];
  return waiter && until ? { [WAITING]: waiter, [WAITING_UNTIL]: until } : undefined;
}

/** Whether a waiter's record still counts: its wait has not ended (an unreadable time has). */
export function isLive(recorded: Waiting, now: number): boolean {
  const until = Date.parse(recorded[WAITING_UNTIL]);
  return Number.isFinite(until) && until > now;
}

/** A lost race: the Lease changed (409) or went (404) since it was read; read it again. */
function raced(err: unknown): boolean {
  return err instanceof ApiException && (err.code === 409 || err.code === 404);
}

function key(ref: TargetRef): string {
  return `${ref.cluster}/${ref.namespace}/${ref.target}`;
}

/** Nobody's (handed back), expired, or already ours. */
function free(lease: KubernetesObject & { spec?: LeaseSpec }, holder: string): boolean {
  const spec = lease.spec;
  if (!spec?.holderIdentity || spec.holderIdentity === holder) return true;
  const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
  return renewed + (spec.leaseDurationSeconds ?? LEASE_SECONDS) * 1000 < Date.now();
}

/** RFC 3339 with microseconds, as a Lease's MicroTime fields must be. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
