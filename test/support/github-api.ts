// A small fake of GitHub's REST API: the two Deployments endpoints the report stage calls,
// shaped as documented (https://docs.github.com/en/rest/deployments/deployments#create-a-deployment,
// https://docs.github.com/en/rest/deployments/statuses#create-a-deployment-status):
//   POST /repos/{owner}/{repo}/deployments                         201 {id, ref, sha, environment, …}; 422 without ref
//   POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses 201 {id, state, …}; 404 unknown deployment; 422 bad state
//   GET  /repos/{owner}/{repo}/deployments?sha=&environment=&per_page= 200 [{id, sha, environment, payload, …}], newest first
// and the compare endpoint the ancestry of Git events asks (https://docs.github.com/en/rest/commits/commits#compare-two-commits),
// over the commits the test puts in `graph`:
//   GET  /repos/{owner}/{repo}/compare/{base}...{head}   200 {status: ahead|behind|identical|diverged, ahead_by,
//        behind_by, total_commits, base_commit, merge_base_commit, commits (per_page of them), files};
//        404 {message: "Not Found"} for a commit it does not have or no common ancestor
// Any other path 404 {message: "Not Found"}; a wrong token 401 {message: "Bad credentials"}.
import { CommitGraph, isOneOf, startApiFake, type ApiFake } from './api-fake.ts';

const STATES = ['error', 'failure', 'inactive', 'in_progress', 'queued', 'pending', 'success'] as const;

export interface GithubFake extends ApiFake {
  /** Deployments created, by id: repository, body, and the states posted in order. */
  deployments: Map<number, { repository: string; body: Record<string, unknown>; states: { state: string; description?: unknown; log_url?: unknown; environment?: unknown }[] }>;
  /** The commits compare knows, by repository `owner/name`. */
  graph: CommitGraph;
  /** Set: compare answers this status (GitHub having a bad day) instead. */
  compareFails?: number | undefined;
}

export async function startGithubApi(token: string): Promise<GithubFake> {
  const deployments: GithubFake['deployments'] = new Map();
  const graph = new CommitGraph();
  const state: { compareFails?: number | undefined } = {};
  let seq = 1000;
  const commit = (sha: string) => ({ sha, node_id: `C_${sha.slice(0, 8)}`, commit: { message: `commit ${sha.slice(0, 7)}` }, parents: [] });
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
      ['GET', /^\/repos\/([^/]+)\/([^/]+)\/deployments$/, (call, m) => {
        const [sha, environment] = [call.query.get('sha'), call.query.get('environment')];
        const listed = [...deployments.entries()]
          .filter(([, d]) => d.repository === `${m[1]}/${m[2]}` && (sha === null || d.body.ref === sha) && (environment === null || d.body.environment === environment))
          .reverse()
          .slice(0, Number(call.query.get('per_page') ?? 30))
          .map(([id, d]) => ({ id, sha: d.body.ref, ref: d.body.ref, task: 'deploy', environment: d.body.environment, payload: d.body.payload ?? {} }));
        return { status: 200, body: listed };
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
      ['GET', /^\/repos\/([^/]+)\/([^/]+)\/compare\/([0-9a-f]{40,64})\.\.\.([0-9a-f]{40,64})$/, (call, m) => {
        if (state.compareFails !== undefined) return { status: state.compareFails, body: { message: 'Server Error' } };
        const [repository, base, head] = [`${m[1]}/${m[2]}`, m[3]!, m[4]!];
        if (!graph.has(repository, base) || !graph.has(repository, head)) return { status: 404, body: { message: 'Not Found' } };
        const mergeBase = graph.mergeBase(repository, base, head);
        if (mergeBase === undefined) return { status: 404, body: { message: `No common ancestor between ${base} and ${head}.` } };
        const fromBase = new Set(graph.ancestry(repository, base));
        const fromHead = new Set(graph.ancestry(repository, head));
        const ahead = [...fromHead].filter((c) => !fromBase.has(c));
        const behindBy = [...fromBase].filter((c) => !fromHead.has(c)).length;
        const status = ahead.length === 0 ? (behindBy === 0 ? 'identical' : 'behind') : behindBy === 0 ? 'ahead' : 'diverged';
        const perPage = Number(call.query.get('per_page') ?? 250);
        return {
          status: 200,
          body: { status, ahead_by: ahead.length, behind_by: behindBy, total_commits: ahead.length, base_commit: commit(base), merge_base_commit: commit(mergeBase), commits: ahead.reverse().slice(0, perPage).map(commit), files: [] },
        };
      }],
    ],
  });
  return {
    ...fake,
    deployments,
    graph,
    get compareFails() { return state.compareFails; },
    set compareFails(v) { state.compareFails = v; },
  };
}
