// What a deploy does under its target's Lease (src/apply/lock.ts, guarded.ts,
// deploy/cluster-deploy.ts), against the sandbox's API server, with two or three
// in-process instances (each its own TargetLeases, as separate Cloud Run instances):
// - a write held up past the Lease never lands once another instance took the Lease;
// - a reconcile decides what to re-apply under the Lease, so it never puts back the image
//   from before a deploy that was writing meanwhile;
// - preDeploy Jobs run one at a time per target, under a Lease kept alive while they run.
// Slowness comes from a validating admission webhook that holds one write until released
// (test/support/holding-webhook.ts) and from the fault proxy in front of the API server.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TargetLeases } from '../src/apply/lock.ts';
import { ClusterRegistry } from '../src/cluster/registry.ts';
import { parseConfig, type Target } from '../src/config/load.ts';
import { clusterDeployer, type ClusterDeployer } from '../src/deploy/cluster-deploy.ts';
import type { DeployIntent } from '../src/core/intent.ts';
import type { DeployResult } from '../src/core/result.ts';
import { DeployError } from '../src/errors.ts';
import { runName } from '../src/rollout/pre-deploy.ts';
import { REPO, fixture } from './support/config.ts';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.ts';
import { holdingWebhook, type HoldingWebhook } from './support/holding-webhook.ts';
import { accessToken, exists, kubectlJson, namespace, sandbox } from './support/sandbox.ts';

const LEASE = 2; // seconds: expiry and renewals within a test's time
/** For the preDeploy test, a Lease long enough for renewals on a loaded machine, and a run wait (rollout.timeout) of several of them. */
const JOBS_LEASE = 4;
const RUN_WAIT = 4 * JOBS_LEASE * 1000;

interface Workload {
  metadata: { annotations?: Record<string, string> };
  spec: { template: { spec: { containers: { image: string }[] } } };
}

const deployment = (ns: string) => kubectlJson<Workload>(['-n', ns, 'get', 'deployment', 'web']);
const imageOf = async (ns: string) => (await deployment(ns)).spec.template.spec.containers[0]?.image;
const eventOf = async (ns: string) => (await deployment(ns)).metadata.annotations?.['gke-deployer/event-id'];

let seq = 0;
/** An intent as a source would make it; events later in a test are newer. */
function intent(target: string, tag: string | undefined, eventId = `ev-${++seq}-${tag ?? 'reconcile'}`): DeployIntent {
  return {
    target,
    ...(tag !== undefined && { image: `${REPO}:${tag}` }),
    dryRun: false,
    requestId: `req-${eventId}`,
    source: tag === undefined ? 'scheduler/reconcile' : 'direct',
    eventId,
    eventTime: new Date().toISOString(),
  };
}

/** Settles to the result or the DeployError, so a test can look at either. */
const outcome = (p: Promise<DeployResult>): Promise<DeployResult | DeployError> => p.catch((err: unknown) => {
  if (err instanceof DeployError) return err;
  throw err;
});

/** A target `web` (web.yaml, no rollout wait) in `ns`, plus `extra`, as the config file states it. */
async function targetIn(ns: string, extra: Record<string, unknown> = {}, files: Record<string, string> = {}): Promise<Target> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lease-turns-'));
  await writeFile(path.join(dir, 'web.yaml'), fixture('manifests/web.yaml'));
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  const spec = { cluster: 'c', namespace: ns, manifests: ['web.yaml'], container: 'web', images: [REPO], rollout: { wait: false }, ...extra };
  const config = parseConfig(JSON.stringify({ auth: { direct: 'none' }, clusters: { c: { inCluster: true } }, targets: { web: spec } }), path.join(dir, 'deployer.yaml'), {});
  return config.targets.get('web')!;
}

describe('deploys under the target Lease', () => {
  let direct: ClusterRegistry;
  let proxy: FaultProxy;
  let proxied: ClusterRegistry;
  const leases: TargetLeases[] = [];
  const instance = (registry: ClusterRegistry, opts: { leaseSeconds?: number; idleMs?: number }): ClusterDeployer => {
    const l = new TargetLeases(opts);
    leases.push(l);
    return clusterDeployer({ clusters: registry, leases: l });
  };

  before(async () => {
    const info = await sandbox();
    direct = new ClusterRegistry(new Map([['c', { kubeconfig: { path: info.kubeconfig } }]]));
    proxy = await startFaultProxy({ upstream: info.server, upstreamCaPem: await readFile(info.caFile, 'utf8') });
    const tokenFile = path.join(await mkdtemp(path.join(tmpdir(), 'lease-turns-token-')), 'token');
    await writeFile(tokenFile, await accessToken(info.serviceAccount));
    // Requests longer than the test's Lease, so only the Lease bound can cut a held write short.
    proxied = new ClusterRegistry(new Map([['c', { endpoint: { server: proxy.server, caFile: proxy.caFile, tokenFile } }]]), { attemptTimeoutMs: 8_000, budgetMs: 1_000 });
  });
  after(async () => {
    await Promise.all(leases.map((l) => l.close()));
    await Promise.all([direct.close(), proxied.close()]);
    await proxy.close();
  });

  test('a write held up past the Lease does not land: another instance took the Lease and wrote a newer event', async (t) => {
    const ns = await namespace('lease-late');
    const target = await targetIn(ns);
    const hook: HoldingWebhook = await holdingWebhook(ns, `${REPO}:1`);
    t.after(() => hook.close());
    // a reaches the API server through the proxy (so its Lease renewals can fail); b directly.
    const a = instance(proxied, { leaseSeconds: LEASE, idleMs: 50 });
    const b = instance(direct, { leaseSeconds: LEASE, idleMs: 50 });
    assert.equal((await b(target, intent('web', '0'))).status, 'applied');

    // a judges E1 and sends its apply, which the webhook holds.
    const e1 = outcome(a(target, intent('web', '1')));
    await hook.held;
    // From now on the API server is unavailable to a for its Lease: it cannot renew it.
    proxy.failNext('503', 10_000, (r) => r.method === 'PUT' && r.path.includes(`/namespaces/${ns}/leases/`));
    // b takes the expired Lease and applies the newer E2.
    const e2 = intent('web', '2');
    const second = await b(target, e2, { deadline: Date.now() + 15_000 });
    assert.equal(second.status, 'applied', JSON.stringify(second));
    hook.release();
    const first = await e1;

    assert.equal(await imageOf(ns), `${REPO}:2`, "the cluster runs E2's image, not the late write's");
    assert.equal(await eventOf(ns), e2.eventId);
    assert.ok(first instanceof DeployError, `a's late write answered success: ${JSON.stringify(first)}`);
    assert.equal(first.code, 'CLUSTER_UNAVAILABLE', first.message);
    // Each of a's writes told the API server when to give up (it abandons the request then); dry runs write nothing.
    const writes = proxy.requests().filter((r) => r.method === 'PATCH' && r.path.includes(`/namespaces/${ns}/deployments/web`) && !r.path.includes('dryRun='));
    assert.ok(writes.length > 0);
    for (const w of writes) assert.match(w.path, /[?&]timeout=\d+ms(&|$)/);
  });

  test("a reconcile that starts while a deploy writes re-applies that deploy's image and keeps its event", async (t) => {
    const ns = await namespace('lease-reconcile');
    const target = await targetIn(ns);
    const hook = await holdingWebhook(ns, `${REPO}:2`);
    t.after(() => hook.close());
    // The deploying instance, and the Scheduler's reconcile on another one (seen through the proxy).
    const a = instance(direct, { idleMs: 50 });
    const scheduler = instance(proxied, { idleMs: 50 });
    assert.equal((await a(target, intent('web', '1'))).status, 'applied');

    const e2 = intent('web', '2');
    const deploying = a(target, e2);
    await hook.held;
    const leaseAsks = () => proxy.requests().filter((r) => r.path.includes(`/namespaces/${ns}/leases`)).length;
    const before = leaseAsks();
    const reconciling = scheduler(target, intent('web', undefined));
    // The reconcile has started and is waiting for the Lease the deploy holds.
    while (leaseAsks() === before) await new Promise((r) => setTimeout(r, 10));
    hook.release();
    assert.equal((await deploying).status, 'applied');
    const reconciled = await reconciling;
    assert.equal(reconciled.status, 'applied', JSON.stringify(reconciled));

    assert.equal(await imageOf(ns), `${REPO}:2`, 'the reconcile put back the image from before E2');
    assert.equal(reconciled.image, `${REPO}:2`);
    assert.equal(await eventOf(ns), e2.eventId, "the reconcile replaced E2's record");
    // A redelivery of E2 is E2 again, not an older event.
    const redelivered = await a(target, e2);
    assert.equal(redelivered.status, 'duplicate', JSON.stringify(redelivered));
  });

  test('preDeploy Jobs run one at a time per target, under a Lease renewed while they run', async () => {
    const ns = await namespace('lease-jobs');
    // Its Pod fits no node: the run stays active until deleted.
    const target = await targetIn(ns, { preDeploy: ['stuck.yaml'], rollout: { wait: false, timeout: `${RUN_WAIT / 1000}s` } }, { 'stuck.yaml': fixture('manifests/job-stuck.yaml') });
    const a = instance(direct, { leaseSeconds: JOBS_LEASE, idleMs: 50 });
    const b = instance(direct, { leaseSeconds: JOBS_LEASE, idleMs: 50 });
    const e1 = intent('web', '1');
    const aStarted = Date.now();
    const running = outcome(a(target, e1));
    const runA = runName('stuck', e1.requestId);
    while (!(await exists('job', runA, ns))) await new Promise((r) => setTimeout(r, 50));

    // E2 while a's run goes on, waiting for several Lease durations (until shortly before
    // a's deploy gives up on its run): the Lease stays a's all along.
    const e2 = intent('web', '2');
    const runB = runName('stuck', e2.requestId);
    const during = await outcome(b(target, e2, { deadline: aStarted + RUN_WAIT - JOBS_LEASE * 1000 }));
    assert.equal(await exists('job', runB, ns), false, `a second preDeploy run started while the first ran (E2 answered ${JSON.stringify(during)})`);
    assert.ok(during instanceof DeployError, JSON.stringify(during));
    assert.equal(during.code, 'CLUSTER_UNAVAILABLE', during.message);

    // a's deploy gives up on its run (timed-out), which goes on: E2 again still waits for it.
    const first = await running;
    assert.ok(!(first instanceof DeployError), first instanceof DeployError ? `${first.code}: ${first.message}` : '');
    assert.equal(first.status, 'timed-out');
    assert.equal(first.stage, 'preDeploy');
    const again = await outcome(b(target, e2, { deadline: Date.now() + 3 * JOBS_LEASE * 1000 }));
    assert.equal(await exists('job', runB, ns), false, `a second preDeploy run started while the first ran (E2 answered ${JSON.stringify(again)})`);
    assert.ok(again instanceof DeployError, JSON.stringify(again));
    assert.equal(again.code, 'JOB_RUNNING', again.message);
    assert.match(again.message, new RegExp(runA));
  });
});
