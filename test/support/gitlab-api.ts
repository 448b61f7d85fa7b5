// A small fake of GitLab's REST API (v4): the commit status endpoint the report stage calls,
// as documented (https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit):
//   POST /api/v4/projects/:id/statuses/:sha   201 {id, sha, status, name, target_url, description}
// `:id` is a number or the URL-encoded project path. States pending, running, success, failed,
// canceled; a status still running cannot be set running again (400, as GitLab's state machine
// answers "Cannot transition status via :run from :running"). A wrong PRIVATE-TOKEN 401.
// And the merge base the ancestry of Git events asks (https://docs.gitlab.com/api/repositories/#merge-base),
// over the commits the test puts in `graph`:
//   GET /api/v4/projects/:id/repository/merge_base?refs[]=a&refs[]=b   200 the commit {id, short_id, title, parent_ids, …};
//       400 {message: "Provide at least 2 refs"}; 404 {message: "404 Commit Not Found"} for an unknown ref or no common ancestor
import { CommitGraph, isOneOf, startApiFake, type ApiFake } from './api-fake.ts';

const STATES = ['pending', 'running', 'success', 'failed', 'canceled'] as const;

export interface GitlabFake extends ApiFake {
  /** States posted per `project@sha name`, in order. */
  statuses: Map<string, { state: string; description?: unknown; target_url?: unknown }[]>;
  /** The commits merge_base knows, by project path (group/project). */
  graph: CommitGraph;
}

export async function startGitlabApi(token: string): Promise<GitlabFake> {
  const statuses: GitlabFake['statuses'] = new Map();
  const graph = new CommitGraph();
  let seq = 500;
  const fake = await startApiFake({
    prefix: '/api/v4',
    authenticated: (req) => req.headers['private-token'] === token,
    routes: [
      ['POST', /^\/projects\/([^/]+)\/statuses\/([0-9a-f]{40,64})$/, (call, m) => {
        const { state, name = 'default', description, target_url } = call.body;
        if (!isOneOf(state, STATES)) return { status: 400, body: { error: 'state does not have a valid value' } };
        const key = `${decodeURIComponent(m[1]!)}@${m[2]} ${String(name)}`;
        const history = statuses.get(key) ?? [];
        if (state === 'running' && history.at(-1)?.state === 'running') return { status: 400, body: { message: 'Cannot transition status via :run from :running' } };
        history.push({ state, description, target_url });
        statuses.set(key, history);
        return { status: 201, body: { id: ++seq, sha: m[2], status: state, name, target_url: target_url ?? null, description: description ?? null } };
      }],
      ['GET', /^\/projects\/([^/]+)\/repository\/merge_base$/, (call, m) => {
        const project = decodeURIComponent(m[1]!);
        const refs = call.query.getAll('refs[]');
        if (refs.length < 2) return { status: 400, body: { message: 'Provide at least 2 refs' } };
        if (!refs.every((r) => graph.has(project, r))) return { status: 404, body: { message: '404 Commit Not Found' } };
        const base = refs.slice(1).reduce<string | undefined>((acc, r) => (acc === undefined ? undefined : graph.mergeBase(project, acc, r)), refs[0]);
        if (base === undefined) return { status: 404, body: { message: '404 Commit Not Found' } };
        return { status: 200, body: { id: base, short_id: base.slice(0, 8), title: `commit ${base.slice(0, 7)}`, message: `commit ${base.slice(0, 7)}\n`, parent_ids: graph.parentsOf(project, base) } };
      }],
    ],
  });
  return { ...fake, statuses, graph };
}
