// What became of one event: the value the report stage logs and each source turns into
// its own answer (HTTP status, Pub/Sub ack). Stages produce it; none of them knows HTTP.
import type { DeployResult, DeployStatus } from '../deploy/result.ts';
import type { DeployError } from '../errors.ts';
import type { Severity } from './log.ts';

export type IntentOutcome = { ok: true; result: DeployResult } | { ok: false; target: string; error: DeployError };

export type Outcome =
  /** Refused before any intent existed: bad caller, malformed request. */
  | { kind: 'refused'; error: DeployError }
  /** Nothing to deploy: an event type that is not acted on, or no rule matched. */
  | { kind: 'ignored'; reason: string }
  /** Answered as is without deploying (GitHub's ping). */
  | { kind: 'replied'; status: number; body: Record<string, unknown> }
  | { kind: 'done'; results: IntentOutcome[] };

/** Not a failure: done as asked, or rightly skipped (a newer or the same event was already applied). */
export const SUCCEEDED: ReadonlySet<DeployStatus> = new Set(['ready', 'applied', 'dry-run', 'stale', 'duplicate']);

export function succeeded(o: IntentOutcome): boolean {
  return o.ok && SUCCEEDED.has(o.result.status);
}

/** Whether the sender should deliver the event again: some part may still succeed later. */
export function retryable(o: Outcome): boolean {
  if (o.kind === 'refused') return o.error.retryable;
  if (o.kind !== 'done') return false;
  // A rollout still going when the request's time ran out ends in an unknown state: a
  // redelivery looks again. A failed or rolled-back one would only fail again.
  return o.results.some((r) => (r.ok ? r.result.status === 'timed-out' : r.error.retryable));
}

export function severityOf(o: IntentOutcome): Severity {
  // A deploy that could not run is an error whether or not a redelivery may fix it.
  if (!o.ok) return 'ERROR';
  switch (o.result.status) {
    case 'rolled-back':
    case 'failed':
      return 'ERROR';
    case 'timed-out':
    case 'stale':
      return 'WARNING';
    default:
      return 'INFO';
  }
}
