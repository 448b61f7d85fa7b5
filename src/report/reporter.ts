// What a reporter is (src/report/reporters.ts composes them), and what they share: the
// result body, a one-line description, the log link, and bounding a call by a signal.
import type { DeployIntent } from '../core/intent.ts';
import type { TargetResult } from '../core/result.ts';
import type { IntentOutcome } from './outcome.ts';

/** One deploy's report, begun when the deploy starts. */
export interface DeployReport {
  /** Says how it ended. `signal` aborts when the bound is reached. Throws on failure (logged by the caller). */
  finish(outcome: IntentOutcome, signal: AbortSignal): Promise<void>;
}

export interface Reporter {
  /** For log lines: `topic`, `github`, `gitlab`. */
  readonly name: string;
  /** Starts whatever runs alongside the deploy (bounded by `signal`); undefined when the intent is not this reporter's. */
  begin(intent: DeployIntent, signal: AbortSignal): DeployReport | undefined;
  /**
   * The intent is being queued, to be deployed by a later request (src/queue/): reports that it
   * waits (GitHub `queued`, GitLab `pending`). `report` is what its deploy needs to update the
   * same report rather than start another (a GitHub Deployment's id); `finish` says it could not
   * be queued. Undefined when the intent is not this reporter's.
   */
  queued?(intent: DeployIntent, signal: AbortSignal): Promise<QueuedReport | undefined>;
  close?(): Promise<void>;
}

export interface QueuedReport extends DeployReport {
  report?: DeployIntent['report'];
}

/** Resolves once `signal` aborts (never rejects). */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** `promise`, or a rejection with the signal's reason once it aborts. */
export async function within<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return Promise.race([promise, aborted(signal).then(() => Promise.reject(signal.reason instanceof Error ? signal.reason : new Error('aborted')))]);
}

/** `report.logUrl` with the deploy's fields filled in, URL-encoded. */
export function logUrlFor(template: string): (intent: DeployIntent) => string {
  return (intent) =>
    template.replace(/\$\{(requestId|target|eventId|sha)\}/g, (_m, key: string) => {
      const value = key === 'sha' ? (intent.commit?.sha ?? '') : key === 'target' ? intent.target : key === 'eventId' ? intent.eventId : intent.requestId;
      return encodeURIComponent(value);
    });
}

/** The body /deploy answers for this outcome (an error's, with the target added); published as it is, whatever its shape. */
export function resultBody(o: IntentOutcome, requestId: string): Record<string, unknown> {
  return o.ok ? { ...o.result } : { status: 'error', target: o.target, error: { code: o.error.code, message: o.error.message }, requestId };
}

/** One line for a status description: the reason, or what was deployed. */
export function describeOutcome(o: IntentOutcome, max: number): string {
  const reason = o.ok ? reasonOf(o.result) : undefined;
  const text = !o.ok ? `${o.error.code}: ${o.error.message}` : reason ? `${o.result.status}: ${reason}` : `${o.result.status}: ${o.result.image ?? ''}`;
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** A fan-out's reason names each cluster that did not end ready, with its own reason. */
export function reasonOf(r: TargetResult): string | undefined {
  if (!('clusters' in r)) return r.reason;
  const notes = r.clusters.filter((c) => c.status !== 'ready' && c.status !== 'applied').map((c) => `${c.cluster} ${c.status}${c.reason ?? c.error?.message ? ` (${c.reason ?? c.error?.message})` : ''}`);
  return notes.length > 0 ? notes.join('; ') : undefined;
}
