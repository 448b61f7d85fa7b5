// A paused Deployment (kubectl rollout pause) takes the new template but rolls nothing
// out until it is resumed. A deploy to it is `paused`: written, not rolled out, and not
// rolled back (there is no failure to undo, and the pause is someone's decision). Callers
// that read statuses get 409; Pub/Sub acknowledges it (a redelivery would find it paused
// again); the log line is a WARNING.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { kubectl, kubectlJson, namespace, useSandboxEnv } from './support/sandbox.ts';

interface Result {
  status: string;
  reason?: string;
  stage?: string;
  rolledBack?: unknown;
  failedImage?: string;
  objects: { kind: string; name: string; action: string; readiness?: string; message?: string }[];
}
interface Deployment {
  spec: { paused?: boolean; template: { spec: { containers: { image: string }[] } } };
}
interface PodList {
  items: { metadata: { deletionTimestamp?: string }; spec: { containers: { image: string }[] } }[];
}

describe('a deploy to a paused Deployment', () => {
  let fn: RunningFunction;
  let ns: string;
  const deployment = () => kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
  /** The images the running Pods were started with. */
  const podImages = async () => {
    const pods = await kubectlJson<PodList>(['-n', ns, 'get', 'pods', '-l', 'app=web']);
    return [...new Set(pods.items.filter((p) => !p.metadata.deletionTimestamp).map((p) => p.spec.containers[0]?.image))];
  };

  before(async () => {
    const info = await useSandboxEnv();
    ns = await namespace('paused');
    fn = await startFunction(
      configYaml({
        auth: { direct: 'none', pubsub: 'none' },
        clusters: { sandbox: gkeCluster(info) },
        targets: { web: webTarget(ns) },
        rules: [{ source: 'artifact-registry', repository: REPO, targets: ['web'] }],
      }),
      { 'web.yaml': fixture('manifests/web.yaml') },
    );
    const first = await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` });
    assert.equal(first.body.status, 'ready', JSON.stringify(first.body));
    await kubectl(['-n', ns, 'rollout', 'pause', 'deployment/web']);
  });
  after(() => fn.close());

  test('/deploy answers 409 paused: the template is written, nothing rolled out, nothing rolled back', async () => {
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.1` });
    assert.equal(res.status, 409, JSON.stringify(res.body));
    const body = res.body as unknown as Result;
    assert.equal(body.status, 'paused');
    assert.equal(body.stage, 'rollout');
    assert.match(body.reason ?? '', /^deployment "web" is paused: .*kubectl rollout resume/);
    assert.equal(body.rolledBack, undefined);
    const dep = body.objects.find((o) => o.kind === 'Deployment');
    assert.deepEqual([dep?.action, dep?.readiness], ['configured', 'paused']);

    const live = await deployment();
    assert.equal(live.spec.paused, true, 'the pause is left alone');
    assert.equal(live.spec.template.spec.containers[0]?.image, `${REPO}:1.0.1`, 'written');
    assert.deepEqual(await podImages(), [`${REPO}:1.0.0`], 'not rolled out');
    assert.ok(fn.logs.some((l) => l.severity === 'WARNING' && l.requestId === res.body.requestId && l.status === 'paused'), 'a WARNING line');
  });

  test('/pubsub acknowledges it, flagged as not a success', async () => {
    const message = {
      message: { data: Buffer.from(JSON.stringify({ action: 'INSERT', tag: `${REPO}:1.0.2` })).toString('base64'), messageId: '7100001', publishTime: new Date().toISOString() },
      subscription: 'projects/sandbox-project/subscriptions/gke-deployer-paused',
    };
    const res = await fn.post('/pubsub', message);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.acknowledged, true);
    const result = (res.body.results as Result[])[0];
    assert.equal(result?.status, 'paused');
    assert.equal((await deployment()).spec.template.spec.containers[0]?.image, `${REPO}:1.0.2`);
    assert.deepEqual(await podImages(), [`${REPO}:1.0.0`]);
    assert.ok(!fn.logs.some((l) => l.severity === 'ERROR' && l.requestId === '7100001'), 'not an ERROR: nothing failed');
  });
});
