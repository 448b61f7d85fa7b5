// How two commits of one repository relate, asked of the Git host that holds them: the
// `Ancestry` the apply stage orders Git events by (src/apply/order.ts). Built here, from the
// `report.github` / `report.gitlab` settings (their token reads the repository), and handed
// down by the orchestrator, so the apply stage stays ignorant of Git hosts and HTTP.
//
// Endpoints:
//   GitHub  GET /repos/{owner}/{repo}/compare/{base}...{head}?per_page=1
//           → 200 {status: ahead | behind | identical | diverged, …}
//           (https://docs.github.com/en/rest/commits/commits#compare-two-commits; per_page
//           keeps the listed commits to one, the status is over the whole range)
//   GitLab  GET /projects/:id/repository/merge_base?refs[]=base&refs[]=head → 200 {id, …}
//           (https://docs.gitlab.com/api/repositories/#merge-base): the base itself means the
//           head descends from it (ahead); the head itself means behind; another commit, diverged.
// Each call is bounded (ANCESTRY_TIMEOUT_MS): it runs under the target's Lease. Any failure is
// an unknown answer, and the times decide. Answers are facts about immutable commits: cached.
import type { ReportConfig } from '../config/schema.ts';
import type { Ancestry } from '../apply/order.ts';
import type { CommitRef } from '../apply/render.ts';

/** Under the Lease (20 s): a slow host costs at most this, then the times decide. */
export const ANCESTRY_TIMEOUT_MS = 3_000;
const CACHE_SIZE = 256;

type Relation = Awaited<ReturnType<Ancestry>>;

interface Host {
  apiUrl: string;
  token: string;
}

/**
 * The ancestry of the hosts `report` configures a token for; undefined when none is (Git events
 * are then ordered by time). `warn` hears why a question went unanswered (never the token).
 */
export function gitAncestry(report: ReportConfig | undefined, env: NodeJS.ProcessEnv, warn: (message: string) => void = () => {}): Ancestry | undefined {
  const host = (settings: { tokenEnv: string; apiUrl: string } | undefined): Host | undefined => {
    const token = settings ? env[settings.tokenEnv]?.trim() : undefined;
    return settings && token ? { apiUrl: settings.apiUrl, token } : undefined;
  };
  const github = host(report?.github);
  const gitlab = host(report?.gitlab);
  if (!github && !gitlab) return undefined;
  const cache = new Map<string, Exclude<Relation, undefined>>();

  return async (recorded, event) => {
    const key = `${recorded.host}:${recorded.repository}@${recorded.sha}...${event.sha}`;
    const known = cache.get(key);
    if (known) return known;
    let relation: Relation;
    try {
      if (recorded.host === 'github' && github) relation = await githubCompare(github, recorded, event);
      else if (recorded.host === 'gitlab' && gitlab) relation = await gitlabMergeBase(gitlab, recorded, event);
      else return undefined;
    } catch (err) {
      warn(`could not compare ${recorded.repository} ${recorded.sha.slice(0, 12)}...${event.sha.slice(0, 12)} on ${recorded.host}: ${(err as Error).message}; ordering by event time`);
      return undefined;
    }
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
    cache.set(key, relation);
    return relation;
  };
}

async function githubCompare(host: Host, base: CommitRef, head: CommitRef): Promise<Exclude<Relation, undefined>> {
  const [owner, repo] = base.repository.split('/');
  if (!owner || !repo) throw new Error(`"${base.repository}" is not owner/name`);
  const url = `${host.apiUrl}/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/compare/${base.sha}...${head.sha}?per_page=1`;
  const body = await getJson(url, { authorization: `Bearer ${host.token}`, accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' });
  const status = (body as { status?: unknown }).status;
  if (status === 'ahead' || status === 'behind' || status === 'identical' || status === 'diverged') return status;
  throw new Error(`GitHub's compare answered status ${JSON.stringify(status)}`);
}

async function gitlabMergeBase(host: Host, base: CommitRef, head: CommitRef): Promise<Exclude<Relation, undefined>> {
  const url = `${host.apiUrl}/projects/${encodeURIComponent(base.repository)}/repository/merge_base?refs[]=${base.sha}&refs[]=${head.sha}`;
  const body = await getJson(url, { 'private-token': host.token });
  const id = (body as { id?: unknown }).id;
  if (typeof id !== 'string') throw new Error('GitLab\'s merge_base answered no commit id');
  if (id === base.sha) return id === head.sha ? 'identical' : 'ahead';
  return id === head.sha ? 'behind' : 'diverged';
}

async function getJson(url: string, headers: Record<string, string>): Promise<unknown> {
  const res = await fetch(url, { headers: { ...headers, 'user-agent': 'gke-deployer' }, signal: AbortSignal.timeout(ANCESTRY_TIMEOUT_MS) });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`${new URL(url).pathname.replace(/\/compare\/.*|\/repository\/.*/, '/…')} answered ${res.status}`);
  }
  return await res.json();
}
