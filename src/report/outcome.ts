// What became of one event: the value the report stage logs and each source turns into
// its own answer (HTTP status, Pub/Sub ack). Stages produce it; none of them knows HTTP.
import type { ClusterStatus, DeployStatus, TargetResult } from '../core/result.ts';
import type { DeployError } from '../errors.ts';
import type { Severity } from '../core/log.ts';

export type IntentOutcome = { ok: true; result: TargetResult } | { ok: false; target: string; error: DeployError };

export type Outcome =
  /** Refused before any intent existed: bad caller, malformed request. */
  | { kind: 'refused'; error: DeployError }
  /** Nothing to deploy: an event type that is not acted on, or no rule matched. */
  | { kind: 'ignored'; reason: string }
  /** Answered as is without deploying (GitHub's ping). */
  | { kind: 'replied'; status: number; body: Record<string, unknown> }
  /** Published to the queue (src/queue/), to be deployed when its subscription delivers it; nothing deployed yet. */
  | { kind: 'queued'; intents: QueuedIntentRef[] }
  | { kind: 'done'; results: IntentOutcome[] };

/** What a `queued` answer says of each intent: enough to find its deploy later (logs, result topic). */
export interface QueuedIntentRef {
  target: string;
  image?: string;
  eventId: string;
}

/**
 * What each status means for the report, one row per status (typed over every DeployStatus: a
 * new status does not compile until it has a row, so it never falls through to a default).
 * - succeeded: done as asked, or rightly skipped (a newer or the same event was already applied).
 *   Not a success: Pub/Sub acknowledges it flagged `acknowledged: true`; a sequential fan-out
 *   stops there; a summary counts it as failed.
 * - severity: the deploy's log line. ERROR for a deploy that failed (rolled back or not);
 *   WARNING for one that needs a look but did not fail: timed out (a redelivery looks again),
 *   stale (skipped), paused (written, waiting for someone to resume the Deployment).
 */
const MEANING: Record<DeployStatus, { succeeded: boolean; severity: Severity }> = {
  ready: { succeeded: true, severity: 'INFO' },
  applied: { succeeded: true, severity: 'INFO' },
  'dry-run': { succeeded: true, severity: 'INFO' },
  duplicate: { succeeded: true, severity: 'INFO' },
  stale: { succeeded: true, severity: 'WARNING' },
  'timed-out': { succeeded: false, severity: 'WARNING' },
  paused: { succeeded: false, severity: 'WARNING' },
  'rolled-back': { succeeded: false, severity: 'ERROR' },
  failed: { succeeded: false, severity: 'ERROR' },
  // Waits for a window or an approval: someone may have to act, nothing failed.
  held: { succeeded: true, severity: 'NOTICE' },
  superseded: { succeeded: true, severity: 'INFO' },
  // A release known to fail, refused before anything ran: acknowledged, not redelivered.
  quarantined: { succeeded: false, severity: 'WARNING' },
  expired: { succeeded: false, severity: 'WARNING' },
  // A person said no: rightly not deployed.
  rejected: { succeeded: true, severity: 'NOTICE' },
};

/** Not a failure: done as asked, or rightly skipped (MEANING). */
export const SUCCEEDED: ReadonlySet<DeployStatus> = new Set((Object.keys(MEANING) as DeployStatus[]).filter((s) => MEANING[s].succeeded));

/** How one intent ended, as the status tables of the reporters key it: its status, or `error`. */
export function endedAs(o: IntentOutcome): DeployStatus | 'error' {
  return o.ok ? o.result.status : 'error';
}

/**
 * How a report that began when the intent was queued ends. A `duplicate` there is Pub/Sub
 * delivering that same message again (after an instance stopped mid-rollout, or at least once
 * more): the event's own report, whose deploy is applied and, with a rollout wait, judged Ready
 * again by this delivery; it ends as `ready` would, not as a skipped deploy's separate report.
 */
export function reportedAs(o: IntentOutcome, queued: boolean): DeployStatus | 'error' {
  const ended = endedAs(o);
  return queued && ended === 'duplicate' ? 'ready' : ended;
}

export function succeeded(o: IntentOutcome): boolean {
  return o.ok && SUCCEEDED.has(o.result.status);
}

/**
 * The overall status of a target on several clusters is the first of these that any of its
 * clusters reached: worst first, so a failure anywhere is never hidden by a success elsewhere.
 * `ready` ranks below `applied`/`dry-run` and above `duplicate`: after a redelivery, a cluster
 * that already had the event answers `duplicate` while the one that failed before is now
 * `ready`, and the event is then deployed everywhere. `skipped` (sequential: after an earlier
 * cluster's failure) never decides, since that failure already does. `paused` ranks below the
 * failures (nothing failed: the new template waits for a resume) and above every success.
 */
const ORDER = ['failed', 'timed-out', 'rolled-back', 'quarantined', 'paused', 'rejected', 'expired', 'held', 'superseded', 'stale', 'dry-run', 'applied', 'ready', 'duplicate'] as const;
/** The order itself when it ranks every status; else a type naming the unranked ones, so WORST_FIRST does not compile. */
type RanksEvery<T extends readonly DeployStatus[]> = [Exclude<DeployStatus, T[number]>] extends [never] ? T : { unranked: Exclude<DeployStatus, T[number]> };
export const WORST_FIRST: RanksEvery<typeof ORDER> = ORDER;

export function worstStatus(statuses: readonly ClusterStatus[]): DeployStatus {
  const rank = (s: ClusterStatus) => (s === 'skipped' ? WORST_FIRST.length : WORST_FIRST.indexOf(s));
  const worst = statuses.reduce<ClusterStatus | undefined>((w, s) => (w === undefined || rank(s) < rank(w) ? s : w), undefined);
  // Only a list of nothing but skipped clusters gets here; a sequential run always deploys its first.
  return worst === undefined || worst === 'skipped' ? 'failed' : worst;
}

/**
 * Whether a finished deploy may end otherwise if delivered again. A rollout still going when the
 * request's time ran out ends in an unknown state: a redelivery looks again. A failed or
 * rolled-back one would only fail again. A target on several clusters counts each cluster: one
 * timed out, or failed with a retryable error (CLUSTER_UNAVAILABLE…), makes the whole retryable;
 * the redelivery is safe since the clusters that already have the event answer `duplicate`.
 */
export function resultRetryable(result: TargetResult): boolean {
  if (!('clusters' in result)) return result.status === 'timed-out';
  return result.clusters.some((c) => c.status === 'timed-out' || c.error?.retryable === true);
}

/** Whether the sender should deliver the event again: some part may still succeed later. */
export function retryable(o: Outcome): boolean {
  if (o.kind === 'refused') return o.error.retryable;
  if (o.kind !== 'done') return false;
  return o.results.some((r) => (r.ok ? resultRetryable(r.result) : r.error.retryable));
}

export function severityOf(o: IntentOutcome): Severity {
  // A deploy that could not run is an error whether or not a redelivery may fix it.
  if (!o.ok) return 'ERROR';
  const severity = MEANING[o.result.status].severity;
  // Released, with something left behind that the set no longer holds: someone should look.
  return severity === 'INFO' && notPruned(o.result) ? 'WARNING' : severity;
}

function notPruned(r: TargetResult): boolean {
  return 'clusters' in r ? r.clusters.some((c) => c.notPruned !== undefined) : r.notPruned !== undefined;
}
