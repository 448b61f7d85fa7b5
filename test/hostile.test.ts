// The hostile corpus (test/hostile/corpus.ts) against the sandbox-backed function, over raw
// sockets. For every row: the documented status and a JSON body, nothing applied in the
// target namespace (asked of the API server), and the process still answering /healthz.
// After all rows: objects outside the namespace unchanged, no prototype polluted, no
// credential in the logs.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { KubeConfig, KubernetesObjectApi } from '@kubernetes/client-node';
import { rawRequest, type RawRequest } from './hostile/client.ts';
import { AUDIENCES, CALLER, CORPUS, GHCR, GITHUB_SECRET, GITLAB_IMAGE, GITLAB_TOKEN, REPO, SUBSCRIPTION, sign, type Credential, type Row } from './hostile/corpus.ts';
import { configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { idToken, kubectlJson, namespace, useSandboxEnv } from './support/sandbox.ts';

process.env.HOSTILE_GITHUB_SECRET = GITHUB_SECRET;
process.env.HOSTILE_GITLAB_TOKEN = GITLAB_TOKEN;

/** Every kind a target here could create, and what a Deployment would bring along. */
const KINDS: [string, string][] = [
  ['apps/v1', 'Deployment'], ['apps/v1', 'ReplicaSet'], ['v1', 'Pod'], ['v1', 'Service'], ['v1', 'ConfigMap'], ['v1', 'Secret'],
  ['batch/v1', 'Job'], ['batch/v1', 'CronJob'], ['apps/v1', 'StatefulSet'], ['apps/v1', 'DaemonSet'], ['v1', 'ServiceAccount'],
  ['rbac.authorization.k8s.io/v1', 'Role'], ['rbac.authorization.k8s.io/v1', 'RoleBinding'],
];
/** What the control plane itself puts in every namespace. */
const BUILT_IN = new Set(['ConfigMap/kube-root-ca.crt', 'ServiceAccount/default']);
/** Objects the `elsewhere` and `clusterwide` targets would create outside the namespace. */
const FOREIGN: [string, string, string?][] = [['deployment', 'sneaky', 'kube-system'], ['clusterrole', 'gke-deployer-test-role']];

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** Tokens the identity fake will not mint: unsigned, and HMAC-signed with a guessable key. */
function unsignedToken(alg: 'none' | 'HS256', audience: string): string {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url({ alg, typ: 'JWT' });
  const claims = b64url({ iss: 'https://accounts.google.com', aud: audience, sub: '1', email: CALLER, email_verified: true, iat: now, exp: now + 3600 });
  const signature = alg === 'none' ? '' : createHmac('sha256', 'secret').update(`${head}.${claims}`).digest('base64url');
  return `${head}.${claims}.${signature}`;
}

/** The audience a route's callers are minted for. */
function audienceOf(path: string): keyof typeof AUDIENCES | undefined {
  if (path.startsWith('/deploy')) return 'direct';
  if (path.startsWith('/pubsub')) return 'pubsub';
  if (path.startsWith('/scheduler')) return 'scheduler';
  return undefined;
}

async function credentials(row: Row, minted: string[]): Promise<Record<string, string>> {
  const audience = audienceOf(row.path);
  const auth: Credential =
    row.auth ?? (row.path === '/webhooks/github' ? { hub: sign(row.body ?? '') } : row.path === '/webhooks/gitlab' ? { gitlab: GITLAB_TOKEN } : audience ? { oidc: 'valid' } : 'none');
  if (auth === 'none') return {};
  if ('authorization' in auth) return { authorization: auth.authorization };
  if ('hub' in auth) return { 'x-hub-signature-256': auth.hub };
  if ('gitlab' in auth) return { 'x-gitlab-token': auth.gitlab };
  const aud = AUDIENCES[auth.audience ?? audience ?? 'direct'];
  let token: string;
  if (auth.oidc === 'alg-none' || auth.oidc === 'hs256') token = unsignedToken(auth.oidc === 'alg-none' ? 'none' : 'HS256', aud);
  else {
    token = await idToken({
      audience: aud,
      email: auth.oidc === 'other-account' ? 'intruder@sandbox-project.iam.gserviceaccount.com' : CALLER,
      ...(auth.oidc === 'expired' && { expiresInSeconds: -600 }),
      ...(auth.oidc === 'forged' && { signWithUnknownKey: true }),
      ...(auth.oidc === 'unverified-email' && { emailVerified: false }),
    });
  }
  minted.push(token);
  return { authorization: `Bearer ${token}` };
}

/** Objects in the namespace that the control plane did not put there, asked of the API server as its admin. */
async function applied(api: KubernetesObjectApi, ns: string): Promise<string[]> {
  const lists = await Promise.all(KINDS.map(async ([apiVersion, kind]) => (await api.list(apiVersion, kind, ns)).items.map((o) => `${kind}/${o.metadata?.name}`)));
  return lists.flat().filter((n) => !BUILT_IN.has(n));
}

/** resourceVersion of each foreign object, or "absent". */
async function foreignState(): Promise<string[]> {
  return Promise.all(
    FOREIGN.map(async ([kind, name, ns]) => {
      try {
        const o = await kubectlJson<{ metadata: { resourceVersion: string } }>([...(ns ? ['-n', ns] : []), 'get', kind, name]);
        return `${kind}/${name}@${o.metadata.resourceVersion}`;
      } catch (err) {
        if (String((err as { stderr?: string }).stderr).includes('NotFound')) return `${kind}/${name} absent`;
        throw err;
      }
    }),
  );
}

describe(`hostile corpus: ${CORPUS.length} requests`, { timeout: 600_000 }, () => {
  let fn: RunningFunction;
  let port: number;
  let ns: string;
  let foreignBefore: string[];
  let api: KubernetesObjectApi;
  const minted: string[] = [];

  before(async () => {
    assert.ok(CORPUS.length >= 60, `only ${CORPUS.length} rows`);
    const info = await useSandboxEnv();
    ns = await namespace('hostile');
    const admin = new KubeConfig();
    admin.loadFromFile(info.kubeconfig);
    api = KubernetesObjectApi.makeApiClient(admin);
    const manifests = (file: string) => ({ cluster: 'sandbox', namespace: ns, manifests: [file], container: 'web', images: [REPO] });
    const yaml = configYaml({
      auth: {
        direct: { audience: AUDIENCES.direct, serviceAccounts: [CALLER] },
        pubsub: { audience: AUDIENCES.pubsub, serviceAccounts: [CALLER], subscriptions: [SUBSCRIPTION] },
        scheduler: { audience: AUDIENCES.scheduler, serviceAccounts: [CALLER] },
        github: { secretEnv: 'HOSTILE_GITHUB_SECRET' },
        gitlab: { tokenEnv: 'HOSTILE_GITLAB_TOKEN' },
        certsUrl: info.certsUrl,
      },
      clusters: { sandbox: gkeCluster(info) },
      targets: {
        web: webTarget(ns, { accept: ['intent'] }),
        locked: webTarget(ns),
        elsewhere: manifests('other-namespace.yaml'),
        clusterwide: manifests('cluster-scoped.yaml'),
      },
      rules: [
        { source: 'github', repository: 'Codertocat/Hello-World', branch: 'master', image: `${GHCR}:\${sha}`, targets: ['web'] },
        { source: 'gitlab', repository: 'mike/diaspora', image: `${GITLAB_IMAGE}:\${shortSha}`, targets: ['web'] },
        { source: 'artifact-registry', repository: REPO, tags: 'v*', targets: ['web'] },
      ],
    });
    fn = await startFunction(yaml, {
      'web.yaml': fixture('manifests/web.yaml'),
      'other-namespace.yaml': fixture('manifests/other-namespace.yaml'),
      'cluster-scoped.yaml': fixture('manifests/cluster-scoped.yaml'),
    });
    port = Number(new URL(fn.url).port);
    foreignBefore = await foreignState();
    assert.deepEqual(await applied(api, ns), [], 'the namespace starts empty');
  });
  after(() => fn.close());

  for (const row of CORPUS) {
    const shown = row.path.length > 48 ? `${row.path.slice(0, 24)}…` : row.path;
    test(`${row.method ?? 'POST'} ${shown}: ${row.name} → ${row.expect.status}`, async () => {
      const headers: Record<string, string> = {
        ...(row.contentType !== null && { 'content-type': row.contentType ?? 'application/json' }),
        ...(await credentials(row, minted)),
        ...row.headers,
      };
      const request: RawRequest = { method: row.method ?? 'POST', path: row.path, headers, ...(row.body !== undefined && { body: row.body }), ...(row.stream && { stream: row.stream }) };
      const a = await rawRequest(port, request);

      assert.equal(a.status, row.expect.status, a.text.slice(0, 500));
      assert.match(String(a.headers['content-type']), /^application\/json/);
      assert.ok(a.json, `not JSON: ${a.text.slice(0, 200)}`);
      if ('code' in row.expect) {
        const results = a.json.results as { error?: { code: string } }[] | undefined;
        const code = (a.json.error as { code?: string } | undefined)?.code ?? results?.[0]?.error?.code;
        assert.equal(a.json.status, 'error', a.text);
        assert.equal(code, row.expect.code, a.text);
        assert.equal(a.json.acknowledged, row.expect.acknowledged, a.text);
        assert.equal(typeof a.json.requestId, 'string');
      } else {
        assert.equal(a.json.status, row.expect.outcome, a.text);
      }

      assert.deepEqual(await applied(api, ns), [], 'nothing is applied');
      const health = await rawRequest(port, { method: 'GET', path: '/healthz' });
      assert.deepEqual([health.status, health.json], [200, { status: 'ok' }], 'the process still answers');
    });
  }

  test('afterwards: objects outside the namespace unchanged, no prototype polluted, no credential logged', async () => {
    assert.deepEqual(await foreignState(), foreignBefore);
    const probe: Record<string, unknown> = {};
    assert.equal(probe.dryRun, undefined);
    assert.equal(probe.force, undefined);
    const logs = JSON.stringify(fn.logs);
    assert.ok(minted.length > 10);
    for (const token of minted) assert.ok(!logs.includes(token.split('.')[2] || token), 'a token reached the logs');
    assert.ok(!logs.includes(GITHUB_SECRET) && !logs.includes(GITLAB_TOKEN));
    // Refusals are logged as such: nothing deployed, every 413 answered by the body guard.
    assert.equal(fn.logs.filter((l) => l.message.startsWith('deployed')).length, 0);
    assert.ok(fn.logs.some((l) => l.code === 'PAYLOAD_TOO_LARGE' && l.status === 413));
  });
});
