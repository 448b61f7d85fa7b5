// GitHub deployment statuses (`report.github`) for deploys of a GitHub commit: as the deploy
// starts, a Deployment of the commit to the environment named after the target, with status
// `in_progress` (a queued intent's was made `queued` when it was queued, and its id carried);
// once it ends, `success`, `failure`, `error` or `inactive` (see githubState) with the
// outcome's reason and the log link. @octokit/core is imported only when configured.
//
// Endpoints (https://docs.github.com/en/rest/deployments/deployments#create-a-deployment and
// https://docs.github.com/en/rest/deployments/statuses#create-a-deployment-status):
//   POST /repos/{owner}/{repo}/deployments
//        {ref, environment, auto_merge, required_contexts, description, payload} → 201 {id, …}
//        (202 {message} when it merged the default branch in first: auto_merge false avoids it;
//        409 when required status checks failed: required_contexts [] skips them, since the
//        deployer runs only for commits its rules already chose)
//   POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses
//        {state, log_url, description (≤ 140 characters), environment} → 201
// Token: a classic token with `repo_deployment` (or `repo`), or a fine-grained token or app
// with "Deployments: write".
import type { Octokit } from '@octokit/core';
import type { DeployIntent } from '../core/intent.ts';
import { REPORT_LIMITS } from './limits.ts';
import { isRecord } from '../guards.ts';
import { endedAs, reportedAs, type IntentOutcome } from './outcome.ts';
import { describeOutcome, within, type Reporter } from './reporter.ts';

export type GithubState = 'queued' | 'pending' | 'in_progress' | 'success' | 'failure' | 'error' | 'inactive';

/**
 * Outcome → final state. Stale and duplicate deploys changed nothing: their Deployment (made
 * before the deploy knew) is closed `inactive`, so the environment's active deployment stays
 * the one that did apply. An error (the deploy could not run) is `error`; a deploy that ran and
 * did not become ready (rolled back, failed, timed out, paused: written but not rolled out) is
 * `failure`.
 */
const GITHUB_STATES: Record<ReturnType<typeof endedAs>, GithubState> = {
  ready: 'success',
  applied: 'success',
  'dry-run': 'success',
  stale: 'inactive',
  duplicate: 'inactive',
  'rolled-back': 'failure',
  failed: 'failure',
  'timed-out': 'failure',
  paused: 'failure',
  // Waiting for a window or an approval: the Deployment stays open.
  held: 'pending',
  superseded: 'inactive',
  quarantined: 'failure',
  expired: 'inactive',
  rejected: 'failure',
  error: 'error',
};

/** `queued`: the Deployment was made when the intent was queued (outcome.ts, reportedAs). */
export function githubState(o: IntentOutcome, queued = false): GithubState {
  return GITHUB_STATES[reportedAs(o, queued)];
}

export interface GithubSettings {
  /** https://api.github.com, or GitHub Enterprise Server's https://HOST/api/v3. */
  apiUrl: string;
  token: string;
  logUrl?: ((intent: DeployIntent) => string) | undefined;
}

export function githubReporter(settings: GithubSettings): Reporter {
  let client: Promise<Octokit> | undefined;
  const octokit = (): Promise<Octokit> => {
    client ??= import('@octokit/core').then(({ Octokit }) => new Octokit({ auth: settings.token, baseUrl: settings.apiUrl, userAgent: 'gke-deployer' }));
    client.catch(() => (client = undefined));
    return client;
  };

  /** The API calls for one intent's Deployment; undefined when the intent is not a GitHub commit's. */
  function deploymentOf(intent: DeployIntent) {
    const commit = intent.commit;
    if (commit?.host !== 'github' || intent.dryRun) return undefined;
    const [owner, repo] = commit.repository.split('/');
    if (!owner || !repo) return undefined;
    const logUrl = settings.logUrl?.(intent);
    const status = async (gh: Octokit, id: number, state: GithubState, description: string, bound: AbortSignal) => {
      await gh.request('POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses', {
        owner, repo, deployment_id: id, state, description, environment: intent.target, ...(logUrl && { log_url: logUrl }), request: { signal: bound },
      });
    };
    const create = async (gh: Octokit, signal: AbortSignal): Promise<number> => {
      const created = await gh.request('POST /repos/{owner}/{repo}/deployments', {
        owner,
        repo,
        ref: commit.sha,
        environment: intent.target,
        auto_merge: false,
        required_contexts: [],
        description: clip(`gke-deployer: ${intent.image ?? 'reconcile'}`),
        payload: { requestId: intent.requestId, eventId: intent.eventId, source: intent.source, ...(intent.image && { image: intent.image }) },
        request: { signal },
      });
      const id = 'id' in created.data ? created.data.id : undefined;
      if (typeof id !== 'number') throw new Error(`GitHub created no deployment (${created.status}): ${'message' in created.data ? String(created.data.message) : ''}`);
      return id;
    };
    /** The Deployment made for this very event (its payload names it), among the commit's latest for the target. */
    const find = async (gh: Octokit, signal: AbortSignal): Promise<number | undefined> => {
      const listed = await gh.request('GET /repos/{owner}/{repo}/deployments', { owner, repo, sha: commit.sha, environment: intent.target, per_page: 30, request: { signal } });
      const id = listed.data.find((x) => isRecord(x.payload) && x.payload.eventId === intent.eventId)?.id;
      return typeof id === 'number' ? id : undefined;
    };
    /** How it ended, on Deployment `id` once `begun` settled (its failure is the report's). */
    const finisher = (begun: Promise<{ gh: Octokit; id: number }>) => {
      const settled = begun.then((v) => ({ ok: true as const, ...v }), (err: unknown) => ({ ok: false as const, err }));
      return async (outcome: IntentOutcome, bound: AbortSignal) => {
        const b = await within(settled, bound);
        if (!b.ok) throw b.err;
        await status(b.gh, b.id, githubState(outcome, intent.report?.queued === true), describeOutcome(outcome, REPORT_LIMITS.githubDescriptionLength), bound);
      };
    };
    return { status, create, find, finisher };
  }

  return {
    name: 'github',
    begin(intent, signal) {
      const d = deploymentOf(intent);
      if (!d) return undefined;
      // Alongside the deploy: never delays it. A queued intent's Deployment exists already.
      const started = (async () => {
        const gh = await within(octokit(), signal);
        // A held intent released: its Deployment was made when it was held (src/control/).
        const id = intent.report?.githubDeployment ?? (intent.report?.held ? await d.find(gh, signal) : undefined) ?? (await d.create(gh, signal));
        await d.status(gh, id, 'in_progress', clip(`deploying ${intent.image ?? 'the recorded image'} to ${intent.target}`), signal);
        return { gh, id };
      })();
      return { finish: d.finisher(started) };
    },
    async queued(intent, signal) {
      const d = deploymentOf(intent);
      if (!d) return undefined;
      const gh = await within(octokit(), signal);
      const id = await d.create(gh, signal);
      await d.status(gh, id, 'queued', clip(`queued: ${intent.image ?? 'the recorded image'} to ${intent.target}`), signal);
      return { report: { githubDeployment: id }, finish: d.finisher(Promise.resolve({ gh, id })) };
    },
  };
}

function clip(text: string): string {
  const max = REPORT_LIMITS.githubDescriptionLength;
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
