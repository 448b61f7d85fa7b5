// The report stage: one log line per deploy, and one per request that deployed nothing.
// A deploy's line is also what the log-based metrics count (deploy/gcloud/setup.sh): its
// `target`, `cluster`, `status`, `elapsedMs` and `readyMs` are their labels and values.
import type { DeployResult, FanOutResult } from '../core/result.ts';
import type { LogFields, Logger } from '../core/log.ts';
import { severityOf, type IntentOutcome, type Outcome } from './outcome.ts';

export function reportIntent(log: Logger, o: IntentOutcome, fields: LogFields): void {
  if (!o.ok) {
    log(severityOf(o), `deploy to ${o.target} failed: ${o.error.message}`, { ...fields, target: o.target, status: 'error', code: o.error.code, retryable: o.error.retryable });
    return;
  }
  const r = o.result;
  if ('clusters' in r) return reportFanOut(log, o, r, fields);
  const what = r.status === 'dry-run' ? 'dry run of' : r.status === 'ready' || r.status === 'applied' ? 'deployed' : 'deploy of';
  const manifests = r.release?.manifests ? ` with manifests ${r.release.manifests.artifact}` : '';
  log(severityOf(o), `${what} ${r.image}${manifests} to ${r.target}: ${r.status}${r.reason ? ` (${r.reason})` : ''}`, {
    ...fields,
    target: r.target,
    cluster: r.cluster,
    status: r.status,
    ...(r.stage && { stage: r.stage }),
    ...released(r),
    objects: r.objects.map(({ diff: _diff, ...rest }) => rest),
    elapsedMs: r.elapsedMs,
    ...readyMsOf(r),
  });
}

/** How long the release took to be Ready: its slowest object's time (a metric's value). */
function readyMsOf(r: DeployResult): { readyMs?: number } {
  const times = r.status === 'ready' ? r.objects.flatMap((o) => (o.readyMs === undefined ? [] : [o.readyMs])) : [];
  return times.length > 0 ? { readyMs: Math.max(...times) } : {};
}

/** A target on several clusters: still one line, with each cluster's outcome in it. */
function reportFanOut(log: Logger, o: IntentOutcome, r: FanOutResult, fields: LogFields): void {
  const each = r.clusters.map((c) => `${c.cluster} ${c.status}${c.error ? ` ${c.error.code}` : ''}`).join(', ');
  log(severityOf(o), `deploy of ${r.image ?? 'the recorded image'} to ${r.target} on ${r.clusters.length} clusters: ${r.status} (${each})`, {
    ...fields,
    target: r.target,
    status: r.status,
    clusters: r.clusters.map((c) => ({
      cluster: c.cluster,
      status: c.status,
      ...(c.reason && { reason: c.reason }),
      ...(c.error && { code: c.error.code, retryable: c.error.retryable }),
      ...(c.stage && { stage: c.stage }),
      ...released(c),
      objects: c.objects.map(({ diff: _diff, ...rest }) => rest),
      elapsedMs: c.elapsedMs,
    })),
    elapsedMs: r.elapsedMs,
  });
}

/** What was released (the image pinned or not, the manifests digest), restored and pruned. */
function released(r: Pick<DeployResult, 'release' | 'failedImage' | 'restoredImage' | 'restoredManifests' | 'pruned' | 'notPruned'>): LogFields {
  return {
    ...(r.release && { release: r.release }),
    ...(r.failedImage && { failedImage: r.failedImage, restoredImage: r.restoredImage }),
    ...(r.restoredManifests && { restoredManifests: r.restoredManifests }),
    ...(r.pruned && { pruned: r.pruned }),
    ...(r.notPruned && { notPruned: r.notPruned }),
  };
}

/** The request's own line, when no deploy line already said what happened. */
export function reportOutcome(log: Logger, o: Outcome, answered: number, fields: LogFields): void {
  const acknowledged = answered === 200 && o.kind === 'refused';
  switch (o.kind) {
    case 'refused':
      log(o.error.http >= 500 || acknowledged ? 'ERROR' : 'WARNING', o.error.message, {
        ...fields, code: o.error.code, answered, ...(acknowledged && { acknowledged: true }),
      });
      return;
    case 'ignored':
      log('INFO', `ignored: ${o.reason}`, { ...fields, answered });
      return;
    case 'replied':
      log('INFO', `answered ${o.status} without deploying`, { ...fields, answered });
      return;
    case 'queued':
      log('INFO', `queued ${o.intents.map((i) => `${i.target} (${i.image ?? 'reconcile'}, event ${i.eventId})`).join(', ')}`, { ...fields, answered, queued: o.intents });
      return;
    case 'done':
      if (o.results.length > 1) log('INFO', `${o.results.length} deploys done`, { ...fields, answered });
  }
}
