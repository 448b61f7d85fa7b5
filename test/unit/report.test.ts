// The report stage's rules without a cluster: its configuration, the outcome → status
// tables, the result message, and the wrapper's promises (errors are outcomes too; a
// reporter that fails or hangs never fails or holds the deploy past the bound).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import type { DeployIntent } from '../../src/core/intent.ts';
import type { Deployer } from '../../src/core/intent.ts';
import type { DeployResult, DeployStatus, FanOutResult, ReleaseInfo } from '../../src/core/result.ts';
import { DeployError } from '../../src/errors.ts';
import { githubState } from '../../src/report/github-status.ts';
import { gitlabState } from '../../src/report/gitlab-status.ts';
import { jsonLogger } from '../../src/core/log.ts';
import type { IntentOutcome } from '../../src/report/outcome.ts';
import { reportIntent } from '../../src/report/report.ts';
import { describeOutcome, logUrlFor, type Reporter } from '../../src/report/reporter.ts';
import { withReporters } from '../../src/report/reporters.ts';
import { messageFor } from '../../src/report/topic.ts';
import { configProblems } from '../support/config.ts';

const BASE = `
auth: { direct: none }
clusters: { prod: { gke: { project: p, location: l, name: c } } }
targets: { web: { cluster: prod, namespace: web, deployment: web, images: [europe-docker.pkg.dev/p/apps/web] } }
`;

const problems = (report: string, env: NodeJS.ProcessEnv = {}) => configProblems(`${BASE}report: ${report}\n`, env);

describe('report configuration', () => {
  test('a full topic name, https API URLs (http only to loopback), defaults filled in', () => {
    const config = parseConfig(`${BASE}report: { topic: projects/p/topics/deploy-results, github: { tokenEnv: GH }, gitlab: { tokenEnv: GL, apiUrl: "http://127.0.0.1:9/api/v4/" } }\n`, '/nowhere/deployer.yaml', { GH: 'x', GL: 'y' });
    assert.deepEqual(config.report, {
      topic: 'projects/p/topics/deploy-results',
      github: { tokenEnv: 'GH', apiUrl: 'https://api.github.com' },
      gitlab: { tokenEnv: 'GL', apiUrl: 'http://127.0.0.1:9/api/v4' },
    });
    assert.equal(parseConfig(BASE, '/nowhere/deployer.yaml', {}).report, undefined);
  });

  test('refused: a bare topic id, an http URL off this machine, an unknown log URL field, a token variable not set', () => {
    assert.match(problems('{ topic: deploy-results }').join('\n'), /^report\.topic: must be a full topic name/);
    assert.match(problems('{ github: { tokenEnv: GH, apiUrl: "http://github.example.com/api/v3" } }', { GH: 'x' }).join('\n'), /^report\.github\.apiUrl: must be https:\/\//);
    assert.match(problems('{ logUrl: "https://logs.example.com/?q=${commit}" }').join('\n'), /^report\.logUrl: knows only/);
    assert.deepEqual(problems('{ gitlab: { tokenEnv: GL_STATUS_TOKEN } }', {}), ['report.gitlab.tokenEnv: environment variable GL_STATUS_TOKEN is not set']);
  });

  test('on Cloud Run an http API URL is refused, even to loopback', () => {
    const got = problems('{ github: { tokenEnv: GH, apiUrl: "http://localhost:8080" } }', { GH: 'x', K_SERVICE: 'deployer' });
    assert.ok(got.some((p) => p.startsWith('report.github.apiUrl: must be https:// in production')), got.join('\n'));
  });
});

const intent: DeployIntent = {
  target: 'web', image: 'europe-docker.pkg.dev/p/apps/web:v1', dryRun: false, requestId: 'r-1', source: 'github/push', eventId: 'e/1', eventTime: '2026-11-01T00:00:00Z',
  commit: { host: 'github', repository: 'o/r', sha: 'a'.repeat(40) },
};
const result = (status: DeployStatus, extra: Partial<DeployResult> = {}): DeployResult => ({
  status, target: 'web', cluster: 'prod', namespace: 'web', image: intent.image!, requestId: 'r-1', dryRun: false, objects: [], elapsedMs: 5, ...extra,
});
const ok = (status: DeployStatus): IntentOutcome => ({ ok: true, result: result(status) });
const error: IntentOutcome = { ok: false, target: 'web', error: new DeployError('IMAGE_NOT_ALLOWED', 'not allowed') };

test('outcome → GitHub and GitLab states', () => {
  const table: [IntentOutcome, string, string][] = [
    [ok('ready'), 'success', 'success'],
    [ok('applied'), 'success', 'success'],
    [ok('rolled-back'), 'failure', 'failed'],
    [ok('failed'), 'failure', 'failed'],
    [ok('timed-out'), 'failure', 'failed'],
    [ok('paused'), 'failure', 'failed'],
    [ok('stale'), 'inactive', 'canceled'],
    [ok('duplicate'), 'inactive', 'canceled'],
    [error, 'error', 'failed'],
  ];
  for (const [o, github, gitlab] of table) assert.deepEqual([githubState(o), gitlabState(o)], [github, gitlab], o.ok ? o.result.status : 'error');
});

test('the result message: the answer body, attributes for filters, an error with its code', () => {
  const m = messageFor(intent, ok('ready'));
  assert.deepEqual(JSON.parse(m.data.toString()), result('ready'));
  assert.deepEqual(m.attributes, { target: 'web', status: 'ready', source: 'github/push', eventId: 'e/1', requestId: 'r-1' });
  const e = messageFor(intent, error);
  assert.deepEqual(JSON.parse(e.data.toString()), { status: 'error', target: 'web', error: { code: 'IMAGE_NOT_ALLOWED', message: 'not allowed' }, requestId: 'r-1' });
  assert.equal(e.attributes.code, 'IMAGE_NOT_ALLOWED');
  assert.equal(e.attributes.status, 'error');
});

test('logUrl fills in the deploy, URL-encoded', () => {
  assert.equal(logUrlFor('https://logs.example.com/q?id=${requestId}&e=${eventId}&c=${sha}')(intent), `https://logs.example.com/q?id=r-1&e=e%2F1&c=${'a'.repeat(40)}`);
});

describe('withReporters', () => {
  const lines: { severity: string; message: string; reporter?: string }[] = [];
  const log = jsonLogger((l) => lines.push(JSON.parse(l) as (typeof lines)[number]));

  test('an error is reported as an outcome, and still thrown to the caller', async () => {
    const seen: IntentOutcome[] = [];
    const reporter: Reporter = { name: 'probe', begin: () => ({ finish: (o) => Promise.resolve(void seen.push(o)) }) };
    const failing: Deployer = () => Promise.reject(new DeployError('CLUSTER_UNAVAILABLE', 'down'));
    await assert.rejects(withReporters(failing, [reporter], log)(intent), (e: unknown) => e instanceof DeployError && e.code === 'CLUSTER_UNAVAILABLE');
    assert.equal(seen.length, 1);
    assert.ok(!seen[0]!.ok && seen[0]!.error.code === 'CLUSTER_UNAVAILABLE');
  });

  test('a reporter that throws or never answers: logged, and the result still returned', async () => {
    lines.length = 0;
    const throws: Reporter = { name: 'throws', begin: () => { throw new Error('boom'); } };
    const hangs: Reporter = { name: 'hangs', begin: () => ({ finish: () => new Promise(() => undefined) }) };
    const deploy: Deployer = () => Promise.resolve(result('ready'));
    const got = await withReporters(deploy, [throws, hangs], log)(intent);
    assert.equal(got.status, 'ready');
    assert.ok(lines.some((l) => l.severity === 'WARNING' && l.reporter === 'throws' && /boom/.test(l.message)), JSON.stringify(lines));
    assert.ok(lines.some((l) => l.severity === 'WARNING' && /answering without waiting/.test(l.message)), JSON.stringify(lines));
  });
});

describe('describeOutcome', () => {
  const one = { status: 'rolled-back', target: 'web', cluster: 'eu', namespace: 'web', image: 'img:v2', requestId: 'r', dryRun: false, reason: 'ImagePullBackOff', objects: [], elapsedMs: 1 } satisfies DeployResult;
  test('a single cluster: its status and reason, or the image when there is no reason', () => {
    assert.equal(describeOutcome({ ok: true, result: one }, 140), 'rolled-back: ImagePullBackOff');
    assert.equal(describeOutcome({ ok: true, result: { ...one, status: 'ready', reason: undefined } }, 140), 'ready: img:v2');
  });
  test('a fan-out names each cluster that did not end ready, with its reason or error', () => {
    const result = {
      status: 'failed' as const, target: 'web', namespace: 'web', image: 'img:v2', requestId: 'r', dryRun: false, strategy: 'parallel' as const, elapsedMs: 1,
      clusters: [
        { cluster: 'eu', status: 'ready' as const, objects: [], elapsedMs: 1 },
        { cluster: 'us', status: 'failed' as const, objects: [], elapsedMs: 1, error: { code: 'CLUSTER_UNAVAILABLE' as const, message: 'unreachable', retryable: true } },
        { cluster: 'asia', status: 'skipped' as const, objects: [], elapsedMs: 0 },
      ],
    };
    assert.equal(describeOutcome({ ok: true, result }, 140), 'failed: us failed (unreachable); asia skipped');
    assert.equal(describeOutcome({ ok: true, result }, 13), 'failed: us f…', 'cut to the limit, ellipsis included');
  });
});

describe('reportIntent: a release in the log line', () => {
  const REPO = 'europe-docker.pkg.dev/p/apps/web';
  const D = (c: string) => `sha256:${c.repeat(64)}`;
  const release: ReleaseInfo = { image: `${REPO}:v2`, pinned: true, manifests: { artifact: `${REPO}-deploy:v2@${D('a')}`, digest: D('a') } };
  const lines: Record<string, unknown>[] = [];
  const log = jsonLogger((l) => lines.push(JSON.parse(l) as Record<string, unknown>));

  test('the message names the manifests artifact; the fields carry the release, what was pruned and restored', () => {
    lines.length = 0;
    const r = result('rolled-back', {
      image: `${REPO}:v2@${D('b')}`, release, pruned: ['ConfigMap/old'], failedImage: `${REPO}:v2@${D('b')}`, restoredImage: `${REPO}:v1@${D('c')}`,
      restoredManifests: `${REPO}-deploy@${D('d')}`, reason: 'ImagePullBackOff',
    });
    reportIntent(log, { ok: true, result: r }, { requestId: 'r-1' });
    assert.equal(lines.length, 1);
    const line = lines[0]!;
    assert.equal(line.message, `deploy of ${REPO}:v2@${D('b')} with manifests ${REPO}-deploy:v2@${D('a')} to web: rolled-back (ImagePullBackOff)`);
    assert.deepEqual(line.release, release);
    assert.deepEqual(line.pruned, ['ConfigMap/old']);
    assert.equal(line.restoredManifests, `${REPO}-deploy@${D('d')}`);
    assert.equal(line.restoredImage, `${REPO}:v1@${D('c')}`);
  });

  test('a release without manifests (a file target) names none; nothing pruned or restored, no such field', () => {
    lines.length = 0;
    const unpinned: ReleaseInfo = { image: 'ghcr.io/o/web:v2', pinned: false, notPinned: 'ghcr.io is not Artifact Registry' };
    reportIntent(log, { ok: true, result: result('ready', { image: 'ghcr.io/o/web:v2', release: unpinned }) }, {});
    const line = lines[0]!;
    assert.equal(line.message, 'deployed ghcr.io/o/web:v2 to web: ready');
    assert.deepEqual(line.release, unpinned);
    for (const key of ['pruned', 'restoredManifests', 'restoredImage']) assert.equal(key in line, false, key);
  });

  test('a fan-out: each cluster carries its own release and what it pruned', () => {
    lines.length = 0;
    const other: ReleaseInfo = { ...release, manifests: { artifact: `${REPO}-deploy:v2@${D('e')}`, digest: D('e') } };
    const fan: FanOutResult = {
      status: 'ready', target: 'web', namespace: 'web', image: `${REPO}:v2`, requestId: 'r-1', dryRun: false, strategy: 'parallel', elapsedMs: 3,
      clusters: [
        { cluster: 'eu', status: 'ready', release, pruned: ['Service/old'], objects: [], elapsedMs: 1 },
        { cluster: 'us', status: 'ready', release: other, objects: [], elapsedMs: 2 },
      ],
    };
    reportIntent(log, { ok: true, result: fan }, {});
    const clusters = lines[0]!.clusters as Record<string, unknown>[];
    assert.deepEqual(clusters.map((c) => c.release), [release, other]);
    assert.deepEqual(clusters.map((c) => c.pruned), [['Service/old'], undefined]);
  });

  test('a ready release whose prune could not run is logged as a WARNING, saying why; ready without notPruned (pruned or not) is INFO', () => {
    lines.length = 0;
    const notPruned = 'CLUSTER_FORBIDDEN: list ConfigMap: the cluster refused the deployer\'s identity';
    reportIntent(log, { ok: true, result: result('ready', { release, notPruned }) }, {});
    reportIntent(log, { ok: true, result: result('ready', { release }) }, {});
    reportIntent(log, { ok: true, result: result('ready', { release, pruned: ['Service/old'] }) }, {});
    assert.deepEqual(lines.map((l) => [l.severity, l.notPruned]), [['WARNING', notPruned], ['INFO', undefined], ['INFO', undefined]]);
  });

  test('a fan-out where one cluster could not prune: its one line is a WARNING; where every cluster pruned, INFO', () => {
    lines.length = 0;
    const fan = (notPruned?: string): FanOutResult => ({
      status: 'ready', target: 'web', namespace: 'web', image: `${REPO}:v2`, requestId: 'r-1', dryRun: false, strategy: 'parallel', elapsedMs: 3,
      clusters: [
        { cluster: 'eu', status: 'ready', release, pruned: ['Service/old'], objects: [], elapsedMs: 1 },
        { cluster: 'us', status: 'ready', release, ...(notPruned !== undefined && { notPruned }), objects: [], elapsedMs: 2 },
      ],
    });
    reportIntent(log, { ok: true, result: fan('CLUSTER_FORBIDDEN: list ConfigMap') }, {});
    reportIntent(log, { ok: true, result: fan() }, {});
    assert.deepEqual(lines.map((l) => l.severity), ['WARNING', 'INFO']);
    assert.deepEqual((lines[0]!.clusters as Record<string, unknown>[]).map((c) => c.notPruned), [undefined, 'CLUSTER_FORBIDDEN: list ConfigMap']);
  });
});
