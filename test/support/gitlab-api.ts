// A small fake of GitLab's REST API (v4): the commit status endpoint the report stage calls,
// as documented (https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit):
//   POST /api/v4/projects/:id/statuses/:sha   201 {id, sha, status, name, target_url, description}
// `:id` is a number or the URL-encoded project path. States pending, running, success, failed,
// canceled; a status still running cannot be set running again (400, as GitLab's state machine
// answers "Cannot transition status via :run from :running"). A wrong PRIVATE-TOKEN 401.
import { isOneOf, startApiFake, type ApiFake } from './api-fake.ts';

const STATES = ['pending', 'running', 'success', 'failed', 'canceled'] as const;

export interface GitlabFake extends ApiFake {
  /** States posted per `project@sha name`, in order. */
  statuses: Map<string, { state: string; description?: unknown; target_url?: unknown }[]>;
}

export async function startGitlabApi(token: string): Promise<GitlabFake> {
  const statuses: GitlabFake['statuses'] = new Map();
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
    ],
  });
  return { ...fake, statuses };
}
