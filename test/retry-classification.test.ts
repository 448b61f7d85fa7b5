// Which failures Pub/Sub redelivers, through the sandbox: only those a redelivery can fix.
// Before the error table, RBAC denials and Container API NOT_FOUND were redelivered forever
// (they answered 503), and a running Job's 409 was acknowledged, losing the deploy.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { namespace, useSandboxEnv } from './support/sandbox.ts';

let seq = 0;
/** /pubsub answers `{status, results: [...]}`, one result per deploy the message caused. */
const firstError = (body: Record<string, unknown>) => (body.results as { error?: { code: string } }[] | undefined)?.[0]?.error?.code;
const push = (tag: string) => ({
  message: { data: Buffer.from(JSON.stringify({ action: 'INSERT', tag: `${REPO}:${tag}` })).toString('base64'), messageId: `${Date.now()}${++seq}`, publishTime: new Date().toISOString() },
  subscription: 'projects/sandbox-project/subscriptions/gke-deployer-retry',
});

describe('/pubsub redelivers only what a redelivery can fix', () => {
  let fn: RunningFunction;

  before(async () => {
    const info = await useSandboxEnv();
    const ns = await namespace('rc');
    const noWait = { rollout: { wait: false } };
    fn = await startFunction(
      configYaml({
        auth: { direct: 'none', pubsub: 'none' },
        clusters: { sandbox: gkeCluster(info), gone: { gke: { project: info.project, location: info.location, name: 'no-such-cluster' } } },
        targets: {
          forbidden: webTarget(ns, { manifests: ['cluster-scoped.yaml'], clusterScoped: ['ClusterRole'], ...noWait }),
          lost: webTarget(ns, { cluster: 'gone', ...noWait }),
          busy: webTarget(ns, { manifests: ['job-stuck.yaml'], ...noWait }),
        },
        rules: ['forbidden', 'lost', 'busy'].map((t) => ({ source: 'artifact-registry', repository: REPO, tags: `${t}-*`, targets: [t] })),
      }),
      { 'web.yaml': fixture('manifests/web.yaml'), 'cluster-scoped.yaml': fixture('manifests/cluster-scoped.yaml'), 'job-stuck.yaml': fixture('manifests/job-stuck.yaml') },
    );
  });
  after(() => fn.close());

  test('an RBAC denial is acknowledged (redelivering will not grant the right)', async () => {
    const res = await fn.post('/pubsub', push('forbidden-1'));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.acknowledged, true);
    assert.equal(firstError(res.body), 'CLUSTER_FORBIDDEN');
  });

  test('a cluster the Container API does not know is acknowledged', async () => {
    const res = await fn.post('/pubsub', push('lost-1'));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.acknowledged, true);
    assert.equal(firstError(res.body), 'CONTAINER_API_ERROR');
  });

  test('a Job still running is redelivered (it will finish), not acknowledged and lost', async () => {
    assert.equal((await fn.post('/pubsub', push('busy-1'))).status, 200);
    const res = await fn.post('/pubsub', push('busy-2'));
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal(res.body.acknowledged, undefined);
  });
});
