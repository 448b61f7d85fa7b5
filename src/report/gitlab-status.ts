// GitLab commit statuses (`report.gitlab`) for deploys of a GitLab commit: `pending` when it is
// queued, `running` as the
// deploy starts, then `success`, `failed` or `canceled` (see gitlabState), named
// `gke-deployer/<target>`, with the outcome's reason and the log link. They show on the
// commit, its merge requests and its pipelines. Plain fetch: one call per state.
//
// Endpoint (https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit):
//   POST /projects/:id/statuses/:sha
//        {state: pending|running|success|failed|canceled, name, target_url, description} → 201
//   :id is the project's numeric id or its URL-encoded path (group%2Fproject).
// Commit statuses rather than the Deployments API (POST /projects/:id/deployments, PUT
// /projects/:id/deployments/:deployment_id): those need the ref and whether it is a tag, and
// create environments as a side effect; a status needs only the commit.
// Token: a project, group or personal access token with the `api` scope (Developer role).
import type { DeployIntent } from '../core/intent.ts';
import { REPORT_LIMITS } from './limits.ts';
import { endedAs, reportedAs, type IntentOutcome } from './outcome.ts';
import { aborted, describeOutcome, type Reporter } from './reporter.ts';

export type GitlabState = 'pending' | 'running' | 'success' | 'failed' | 'canceled';

/**
 * Outcome → final state. GitLab has no `error` state: errors are `failed` like failed rollouts,
 * and like a paused Deployment (written, not rolled out). Stale and duplicate deploys changed
 * nothing: `canceled` (`skipped` exists only from GitLab 17.5).
 */
const GITLAB_STATES: Record<ReturnType<typeof endedAs>, GitlabState> = {
  ready: 'success',
  applied: 'success',
  'dry-run': 'success',
  stale: 'canceled',
  duplicate: 'canceled',
  'rolled-back': 'failed',
  failed: 'failed',
  'timed-out': 'failed',
  paused: 'failed',
  held: 'pending',
  superseded: 'canceled',
  quarantined: 'failed',
  expired: 'canceled',
  rejected: 'canceled',
  error: 'failed',
};

/** `queued`: the status was posted `pending` when the intent was queued (outcome.ts, reportedAs). */
export function gitlabState(o: IntentOutcome, queued = false): GitlabState {
  return GITLAB_STATES[reportedAs(o, queued)];
}

export interface GitlabSettings {
  /** https://gitlab.com/api/v4, or a self-managed instance's https://HOST/api/v4. */
  apiUrl: string;
  token: string;
  logUrl?: ((intent: DeployIntent) => string) | undefined;
}

export function gitlabReporter(settings: GitlabSettings): Reporter {
  /** Posts a state of one intent's status; undefined when the intent is not a GitLab commit's. */
  function poster(intent: DeployIntent) {
    const commit = intent.commit;
    if (commit?.host !== 'gitlab' || intent.dryRun) return undefined;
    const url = `${settings.apiUrl}/projects/${encodeURIComponent(commit.repository)}/statuses/${commit.sha}`;
    const logUrl = settings.logUrl?.(intent);
    // The same name from queued to done: GitLab shows one status that moves on.
    return async (state: GitlabState, description: string, bound: AbortSignal) => {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'private-token': settings.token, 'user-agent': 'gke-deployer' },
        body: JSON.stringify({ state, name: `gke-deployer/${intent.target}`, description, ...(logUrl && { target_url: logUrl }) }),
        signal: bound,
      });
      if (!res.ok) throw new Error(`GitLab answered ${res.status} to POST /projects/:id/statuses/:sha: ${(await res.text()).slice(0, REPORT_LIMITS.errorExcerptLength)}`);
      await res.body?.cancel();
    };
  }
  const final = (outcome: IntentOutcome) => describeOutcome(outcome, REPORT_LIMITS.gitlabDescriptionLength);

  return {
    name: 'gitlab',
    begin(intent, signal) {
      const post = poster(intent);
      if (!post) return undefined;
      // Alongside the deploy, never delaying it. finish waits for it: a late `running` would
      // land after, and hide, the final state.
      const running = post('running', clip(`deploying ${intent.image ?? 'the recorded image'} to ${intent.target}`), signal).then(
        () => ({ ok: true as const }),
        (err: unknown) => ({ ok: false as const, err }),
      );
      return {
        async finish(outcome, bound) {
          const began = await Promise.race([running, aborted(bound).then(() => undefined)]);
          // The final state stands on its own: it is posted even when `running` failed.
          await post(gitlabState(outcome, intent.report?.queued === true), final(outcome), bound);
          if (began && !began.ok) throw began.err;
        },
      };
    },
    async queued(intent, signal) {
      const post = poster(intent);
      if (!post) return undefined;
      await post('pending', clip(`queued: ${intent.image ?? 'the recorded image'} to ${intent.target}`), signal);
      return { finish: (outcome, bound) => post(gitlabState(outcome), final(outcome), bound) };
    },
  };
}

function clip(text: string): string {
  const max = REPORT_LIMITS.gitlabDescriptionLength;
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
