// A small fake of GitHub's REST API: the two Deployments endpoints the report stage calls,
// shaped as documented (https://docs.github.com/en/rest/deployments/deployments#create-a-deployment,
// https://docs.github.com/en/rest/deployments/statuses#create-a-deployment-status):
//   POST /repos/{owner}/{repo}/deployments                         201 {id, ref, sha, environment, …}; 422 without ref
//   POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses 201 {id, state, …}; 404 unknown deployment; 422 bad state
// Any other path 404 {message: "Not Found"}; a wrong token 401 {message: "Bad credentials"}.
import { isOneOf, startApiFake, type ApiFake } from './api-fake.ts';

const STATES = ['error', 'failure', 'inactive', 'in_progress', 'queued', 'pending', 'success'] as const;

export interface GithubFake extends ApiFake {
  /** Deployments created, by id: repository, body, and the states posted in order. */
  deployments: Map<number, { repository: string; body: Record<string, unknown>; states: { state: string; description?: unknown; log_url?: unknown; environment?: unknown }[] }>;
}

export async function startGithubApi(token: string): Promise<GithubFake> {
  const deployments: GithubFake['deployments'] = new Map();
  let seq = 1000;
  const fake = await startApiFake({
    // Octokit sends a personal access token as `token <t>`; `Bearer <t>` is accepted too.
    authenticated: (req) => req.headers.authorization === `token ${token}` || req.headers.authorization === `Bearer ${token}`,
    routes: [
      ['POST', /^\/repos\/([^/]+)\/([^/]+)\/deployments$/, (call, m) => {
        const { ref, environment } = call.body;
        if (!isOneOf(ref)) return { status: 422, body: { message: 'Invalid request.\n\n"ref" wasn\'t supplied.' } };
        const id = ++seq;
        deployments.set(id, { repository: `${m[1]}/${m[2]}`, body: call.body, states: [] });
        return { status: 201, body: { id, node_id: `DE_${id}`, sha: ref, ref, task: 'deploy', environment: environment ?? 'production', payload: call.body.payload ?? {}, created_at: new Date().toISOString() } };
      }],
      ['POST', /^\/repos\/([^/]+)\/([^/]+)\/deployments\/(\d+)\/statuses$/, (call, m) => {
        const d = deployments.get(Number(m[3]));
        if (!d || d.repository !== `${m[1]}/${m[2]}`) return { status: 404, body: { message: 'Not Found' } };
        const { state, description, log_url, environment } = call.body;
        if (!isOneOf(state, STATES)) return { status: 422, body: { message: 'Validation Failed', errors: [{ field: 'state', code: 'invalid' }] } };
        if (typeof description === 'string' && description.length > 140) return { status: 422, body: { message: 'Validation Failed', errors: [{ field: 'description', code: 'too_long' }] } };
        d.states.push({ state, description, log_url, environment });
        return { status: 201, body: { id: ++seq, state, description: description ?? '', environment: environment ?? d.body.environment, log_url: log_url ?? '', target_url: log_url ?? '' } };
      }],
    ],
  });
  return { ...fake, deployments };
}
