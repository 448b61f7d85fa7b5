// Jobs in a target's manifests: a Job's pod template is immutable, so a finished Job is
// replaced by a deploy that changes it, and a running one is left alone (409).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { REPO, configYaml, fixture, gkeCluster } from './support/config.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { kubectl, kubectlJson, namespace, useSandboxEnv } from './support/sandbox.ts';

interface Job {
  metadata: { uid: string };
  spec: { template: { spec: { containers: { image: string }[] } } };
  status?: { conditions?: { type: string; status: string }[] };
}

const job = (ns: string) => kubectlJson<Job>(['-n', ns, 'get', 'job', 'migrate']);

describe('Jobs', () => {
  let fn: RunningFunction;
  let ns: string;

  before(async () => {
    const info = await useSandboxEnv();
    ns = await namespace('jobs');
    // Replacement semantics only: the rollout wait for Jobs is tested in rollout.test.ts.
    fn = await startFunction(
      configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { migrate: { cluster: 'sandbox', namespace: ns, manifests: ['job.yaml'], images: [REPO], rollout: { wait: false } } } }),
      { 'job.yaml': fixture('manifests/job.yaml') },
    );
  });
  after(() => fn.close());

  const deploy = (tag: string) => fn.post('/deploy', { target: 'migrate', image: `${REPO}:${tag}` });
  const actions = (body: Record<string, unknown>) => (body.objects as { action: string }[] | undefined)?.map((o) => o.action);

  test('a finished Job is replaced by a deploy with a new image, and left alone by an identical one', async () => {
    const first = await deploy('1');
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(actions(first.body), ['created']);
    await kubectl(['-n', ns, 'wait', '--for=condition=Complete', 'job/migrate', '--timeout=60s']);
    const old = await job(ns);

    const second = await deploy('2');
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.deepEqual(actions(second.body), ['replaced']);
    const replaced = await job(ns);
    assert.notEqual(replaced.metadata.uid, old.metadata.uid);
    assert.equal(replaced.spec.template.spec.containers[0]?.image, `${REPO}:2`);

    await kubectl(['-n', ns, 'wait', '--for=condition=Complete', 'job/migrate', '--timeout=60s']);
    const third = await deploy('2');
    assert.equal(third.status, 200, JSON.stringify(third.body));
    assert.deepEqual(actions(third.body), ['unchanged']);
    assert.equal((await job(ns)).metadata.uid, replaced.metadata.uid);
  });

  test('a Job still running is not replaced: 409, untouched', async () => {
    // kwok never lets a crash* container finish (sandbox/kube/README.md).
    await kubectl(['-n', ns, 'delete', 'job', 'migrate', '--wait=true']);
    assert.equal((await deploy('crash-loop')).status, 200);
    const running = await job(ns);
    const res = await deploy('3');
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.match((res.body.error as { message: string }).message, /still running/);
    const now = await job(ns);
    assert.equal(now.metadata.uid, running.metadata.uid);
    assert.equal(now.spec.template.spec.containers[0]?.image, `${REPO}:crash-loop`);
  });
});
