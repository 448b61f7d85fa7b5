// POST /scheduler: Cloud Scheduler's OIDC-authenticated jobs. Without an image the
// target is reconciled to what the deployer last applied, undoing drift made by hand.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { exists, idToken, kubectl, kubectlJson, namespace, useSandboxEnv } from './support/sandbox.ts';

const AUDIENCE = 'https://gke-deployer.example.run.app/scheduler';
const SCHEDULER_SA = 'scheduler@sandbox-project.iam.gserviceaccount.com';

/** The preDeploy runs in `ns`, by name. */
async function jobNames(ns: string): Promise<string[]> {
  const list = await kubectlJson<{ items: { metadata: { name: string } }[] }>(['-n', ns, 'get', 'jobs']);
  return list.items.map((j) => j.metadata.name).sort();
}

async function image(ns: string): Promise<string | undefined> {
  const d = await kubectlJson<{ spec: { template: { spec: { containers: { image: string }[] } } } }>(['-n', ns, 'get', 'deployment', 'web']);
  return d.spec.template.spec.containers[0]?.image;
}

describe('POST /scheduler', () => {
  let fn: RunningFunction;
  let ns: string;
  let untouched: string;
  let migrating: string;
  let auth: Record<string, string>;

  before(async () => {
    const info = await useSandboxEnv();
    ns = await namespace('sched');
    untouched = await namespace('sched-never');
    migrating = await namespace('sched-migrate');
    fn = await startFunction(
      configYaml({
        auth: { direct: 'none', scheduler: { audience: AUDIENCE, serviceAccounts: [SCHEDULER_SA] }, certsUrl: info.certsUrl },
        clusters: { sandbox: gkeCluster(info) },
        // never: no test deploys it, so its check holds in any test order.
        targets: { web: webTarget(ns), never: webTarget(untouched), migrating: webTarget(migrating, { preDeploy: ['migrate.yaml'] }) },
      }),
      { 'web.yaml': fixture('manifests/web.yaml'), 'migrate.yaml': fixture('manifests/migrate.yaml') },
    );
    auth = { authorization: `Bearer ${await idToken({ audience: AUDIENCE, email: SCHEDULER_SA })}` };
  });
  after(() => fn.close());

  test('reconcile before anything was deployed → 404 NOT_DEPLOYED, nothing applied', async () => {
    const res = await fn.post('/scheduler', { target: 'never' }, auth);
    assert.equal(res.status, 404, JSON.stringify(res.body));
    assert.equal((res.body.error as { code: string }).code, 'NOT_DEPLOYED');
    assert.equal(await exists('deployment', 'web', untouched), false);
  });

  test('without a token, or with one for another audience → 401', async () => {
    assert.equal((await fn.post('/scheduler', { target: 'web' })).status, 401);
    const wrong = await idToken({ audience: 'https://elsewhere', email: SCHEDULER_SA });
    assert.equal((await fn.post('/scheduler', { target: 'web' }, { authorization: `Bearer ${wrong}` })).status, 401);
  });

  test('reconcile restores an image changed by hand and recreates a Service deleted by hand', async () => {
    const deployed = await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` });
    assert.equal(deployed.status, 200, JSON.stringify(deployed.body));

    await kubectl(['-n', ns, 'set', 'image', 'deployment/web', `web=${REPO}:hotfix-by-hand`]);
    await kubectl(['-n', ns, 'delete', 'service', 'web']);
    assert.equal(await image(ns), `${REPO}:hotfix-by-hand`);
    assert.equal(await exists('service', 'web', ns), false);

    const res = await fn.post('/scheduler', { target: 'web' }, { ...auth, 'x-cloudscheduler-jobname': 'projects/p/locations/l/jobs/reconcile-web' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.reconciled, true);
    assert.equal(res.body.image, `${REPO}:1.0.0`);
    assert.deepEqual(
      (res.body.objects as { kind: string; action: string }[]).map((o) => `${o.kind}:${o.action}`),
      ['Deployment:configured', 'Service:created'],
    );
    assert.equal(await image(ns), `${REPO}:1.0.0`);
    assert.equal(await exists('service', 'web', ns), true);
  });

  test('a reconcile runs the preDeploy Jobs only for an image that is not running already', async () => {
    const deployed = await fn.post('/deploy', { target: 'migrating', image: `${REPO}:1.0.0` });
    assert.equal(deployed.status, 200, JSON.stringify(deployed.body));
    const runs = await jobNames(migrating);
    assert.equal(runs.length, 1, 'the deploy ran its preDeploy Job');

    const same = await fn.post('/scheduler', { target: 'migrating' }, auth);
    assert.equal(same.status, 200, JSON.stringify(same.body));
    assert.equal(same.body.preDeploy, undefined, JSON.stringify(same.body));
    assert.deepEqual(await jobNames(migrating), runs, 'a reconcile of the running image ran the preDeploy Job again');

    // Drift: the workload runs another image, so re-applying the recorded one runs them.
    await kubectl(['-n', migrating, 'set', 'image', 'deployment/web', `web=${REPO}:hotfix-by-hand`]);
    const drifted = await fn.post('/scheduler', { target: 'migrating' }, auth);
    assert.equal(drifted.status, 200, JSON.stringify(drifted.body));
    assert.equal((await jobNames(migrating)).length, 2, 'the reconcile that puts the recorded image back ran its preDeploy Job');
    assert.equal(await image(migrating), `${REPO}:1.0.0`);
  });

  test('with an image it deploys that image (a scheduled promotion)', async () => {
    const res = await fn.post('/scheduler', { target: 'web', image: `${REPO}:2.0.0` }, auth);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(await image(ns), `${REPO}:2.0.0`);
    const d = await kubectlJson<{ metadata: { annotations: Record<string, string> } }>(['-n', ns, 'get', 'deployment', 'web']);
    assert.equal(d.metadata.annotations['gke-deployer/source'], 'scheduler/promote');
  });

  test('an invalid body → 400', async () => {
    const res = await fn.post('/scheduler', { target: 'web', image: 42 }, auth);
    assert.equal(res.status, 400);
  });
});
