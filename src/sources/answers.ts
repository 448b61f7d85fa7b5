// How each kind of sender is answered. A source picks one of these; the outcome says
// what happened, the sender's delivery rules say what status tells it the right thing.
import type { DeployStatus } from '../core/result.ts';
import { retryable, succeeded, type IntentOutcome, type Outcome } from '../report/outcome.ts';
import { errorBody } from './http.ts';

export interface Answer {
  status: number;
  body: Record<string, unknown>;
}

export type Answerer = (outcome: Outcome, requestId: string) => Answer;

/** What a caller that reads statuses (POST /deploy, Scheduler) is told about a finished deploy. */
const RESULT_HTTP: Record<DeployStatus, number> = {
  ready: 200,
  applied: 200,
  'dry-run': 200,
  'rolled-back': 422,
  failed: 422,
  'timed-out': 504,
  /** Written, not rolled out: the Deployment is paused, and stays on its old Pods until someone resumes it. */
  paused: 409,
  duplicate: 200,
  /** A newer deploy won; `force: true` on /deploy overrides. */
  stale: 409,
  /** Accepted, not deployed yet: a window or an approval holds it (the body says which, and its eventId). */
  held: 202,
  /** A newer held intent for the target stands instead. */
  superseded: 409,
  /** This release was rolled back on the target; `force: true` overrides. */
  quarantined: 409,
  /** Held for approval too long (an /approve that came too late). */
  expired: 410,
  /** What POST /reject answers: done as asked. */
  rejected: 200,
};

function one(o: IntentOutcome, requestId: string, resultStatus: (s: DeployStatus) => number): Answer {
  return o.ok ? { status: resultStatus(o.result.status), body: { ...o.result } } : { status: o.error.http, body: { ...errorBody(o.error, requestId) } };
}

function summary(results: IntentOutcome[], requestId: string): Record<string, unknown> {
  const ok = results.filter(succeeded).length;
  return {
    status: ok === results.length ? 'applied' : ok === 0 ? 'error' : 'partial',
    requestId,
    results: results.map((r) => (r.ok ? r.result : { target: r.target, ...errorBody(r.error, requestId) })),
  };
}

function firstFailureStatus(results: IntentOutcome[], resultStatus: (s: DeployStatus) => number): number {
  const statuses = results.map((r) => (r.ok ? resultStatus(r.result.status) : r.error.http));
  return statuses.find((s) => s === 503 || s === 504) ?? statuses.find((s) => s >= 300) ?? 200;
}

/** `single`: one deploy answers with its own result (else always the summary with `results`). */
function statusLike(resultStatus: (s: DeployStatus) => number, ignored: number, single = true): Answerer {
  return (o, requestId) => {
    switch (o.kind) {
      case 'refused':
        return { status: o.error.http, body: { ...errorBody(o.error, requestId) } };
      case 'ignored':
        return { status: ignored, body: { status: 'ignored', reason: o.reason, requestId } };
      case 'replied':
        return { status: o.status, body: { ...o.body, requestId } };
      case 'queued':
        // Accepted, not done: the deploy runs when the queue delivers it.
        return { status: 202, body: { status: 'queued', requestId, intents: o.intents } };
      case 'done':
        if (o.results.length === 1 && single) return one(o.results[0]!, requestId, resultStatus);
        return { status: firstFailureStatus(o.results, resultStatus), body: summary(o.results, requestId) };
    }
  };
}

/** POST /deploy and Cloud Scheduler: the status says how it ended (422 rolled back or failed, 504 timed out, 409 stale or paused). */
export const statusAnswer: Answerer = statusLike((s) => RESULT_HTTP[s], 202);

/**
 * GitHub and GitLab: a finished deploy is a delivered event (200 with the outcome in the
 * body, whatever it was); only refusals and errors get their own status.
 */
export const webhookAnswer: Answerer = statusLike(() => 200, 202);

/**
 * Pub/Sub acknowledges 102/200/201/202/204 and redelivers anything else. So: a bad token
 * 401 (not acknowledged: fixing the subscription lets it through), anything a redelivery
 * can fix 503, everything else 200 — with `acknowledged: true` when it failed, since
 * redelivering would only fail again. Ignored messages answer 200, not 202: the emulator
 * redelivers a 202 every second.
 */
const pubsubBody = statusLike((s) => RESULT_HTTP[s], 200, false);

export const ackAnswer: Answerer = (o, requestId) => {
  if (o.kind === 'refused' && o.error.code === 'UNAUTHENTICATED') return statusAnswer(o, requestId);
  const base = pubsubBody(o, requestId);
  if (retryable(o)) return { status: 503, body: base.body };
  const failed = o.kind === 'refused' || (o.kind === 'done' && !o.results.every(succeeded));
  return { status: 200, body: { ...base.body, ...(failed && { acknowledged: true }) } };
};
