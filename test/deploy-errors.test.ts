// Every failure POST /deploy can answer, each checked for its status code and for
// nothing applied — by asking the API server, not the function.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { accessToken, control, exists, kubectl, kubectlJson, namespace, sandbox, useSandboxEnv } from './support/sandbox.ts';

function errorCode(body: Record<string, unknown>): string | undefined {
  return (body.error as { code?: string } | undefined)?.code;
}

describe('POST /deploy failures', () => {
  let fn: RunningFunction;
  let ns: string;

  before(async () => {
    const info = await useSandboxEnv();
    ns = await namespace('err');
    const target = (extra: Record<string, unknown>) => ({ cluster: 'sandbox', namespace: ns, images: [REPO], ...extra });
    fn = await startFunction(
      configYaml({
        clusters: { sandbox: gkeCluster(info) },
        targets: {
          web: webTarget(ns),
          broken: target({ manifests: ['invalid-second.yaml'] }),
          typo: target({ manifests: ['typo.yaml'] }),
          elsewhere: target({ manifests: ['other-namespace.yaml'] }),
          scoped: target({ manifests: ['cluster-scoped.yaml'] }),
          'bump-missing': target({ deployment: 'nope', container: 'web' }),
          bump: target({ deployment: 'owned', container: 'web' }),
          'bump-forced': target({ deployment: 'owned', container: 'web', force: true }),
        },
      }),
      {
        'web.yaml': fixture('manifests/web.yaml'),
        'invalid-second.yaml': fixture('manifests/invalid-second.yaml'),
        'typo.yaml': fixture('manifests/typo.yaml'),
        'other-namespace.yaml': fixture('manifests/other-namespace.yaml'),
        'cluster-scoped.yaml': fixture('manifests/cluster-scoped.yaml'),
      },
    );
  });
  after(() => fn.close());

  const cases: [string, () => unknown, number, string][] = [
    ['missing image', () => ({ target: 'web' }), 400, 'BAD_REQUEST'],
    ['unknown field', () => ({ target: 'web', image: `${REPO}:1`, extra: true }), 400, 'BAD_REQUEST'],
    ['invalid image reference', () => ({ target: 'web', image: 'Not An Image!' }), 400, 'INVALID_IMAGE'],
    ['image without tag or digest', () => ({ target: 'web', image: REPO }), 400, 'INVALID_IMAGE'],
    ['image from another repository', () => ({ target: 'web', image: 'docker.io/evil/web:1' }), 403, 'IMAGE_NOT_ALLOWED'],
    ['unknown target', () => ({ target: 'nope', image: `${REPO}:1` }), 404, 'UNKNOWN_TARGET'],
    ['body over 1 MiB', () => ({ target: 'web', image: `${REPO}:1`, pad: 'x'.repeat(1024 * 1024) }), 413, 'PAYLOAD_TOO_LARGE'],
  ];
  for (const [name, body, status, code] of cases) {
    test(`${name} → ${status} ${code}, nothing applied`, async () => {
      const res = await fn.post('/deploy', body());
      assert.equal(res.status, status, JSON.stringify(res.body));
      assert.equal(res.body.status, 'error');
      assert.equal(errorCode(res.body), code);
      assert.ok(typeof res.body.requestId === 'string');
      assert.equal(await exists('deployment', 'web', ns), false);
    });
  }

  test('not JSON → our own 400 BAD_REQUEST naming the parse error, nothing applied', async () => {
    const res = await fn.post('/deploy', '{"target": "web", ');
    assert.equal(res.status, 400);
    assert.equal(res.body.status, 'error');
    assert.equal(errorCode(res.body), 'BAD_REQUEST');
    assert.match((res.body.error as { message: string }).message, /^body is not valid JSON: /);
    assert.ok(typeof res.body.requestId === 'string');
    assert.equal(await exists('deployment', 'web', ns), false);
  });

  test('wrong content type → 415', async () => {
    const res = await fetch(`${fn.url}/deploy`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'target=web' });
    assert.equal(res.status, 415);
    assert.equal(await exists('deployment', 'web', ns), false);
  });

  test('one invalid object among several → 400, and the valid one is not applied either', async () => {
    const res = await fn.post('/deploy', { target: 'broken', image: `${REPO}:1` });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(errorCode(res.body), 'INVALID_MANIFEST');
    assert.match((res.body.error as { message: string }).message, /broken/);
    assert.equal(await exists('configmap', 'first', ns), false);
    assert.equal(await exists('deployment', 'broken', ns), false);
  });

  test('a misspelt field → 400 naming it, never silently dropped; nothing applied', async () => {
    const res = await fn.post('/deploy', { target: 'typo', image: `${REPO}:1` });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(errorCode(res.body), 'INVALID_MANIFEST');
    assert.match((res.body.error as { message: string }).message, /replicsa/);
    assert.equal(await exists('deployment', 'typo', ns), false);
  });

  test('a manifest naming another namespace → 403, nothing applied', async () => {
    const res = await fn.post('/deploy', { target: 'elsewhere', image: `${REPO}:1` });
    assert.equal(res.status, 403);
    assert.equal(errorCode(res.body), 'NAMESPACE_NOT_ALLOWED');
    assert.equal(await exists('deployment', 'sneaky', 'kube-system'), false);
    assert.equal(await exists('deployment', 'sneaky', ns), false);
  });

  test('a cluster-scoped kind the target does not list → 403, and its Job is not applied either', async () => {
    const res = await fn.post('/deploy', { target: 'scoped', image: `${REPO}:1` });
    assert.equal(res.status, 403);
    assert.equal(errorCode(res.body), 'KIND_NOT_ALLOWED');
    assert.equal(await exists('clusterrole', 'gke-deployer-test-role'), false);
    assert.equal(await exists('job', 'migrate', ns), false);
  });

  test('image-only target whose Deployment does not exist → 404', async () => {
    const res = await fn.post('/deploy', { target: 'bump-missing', image: `${REPO}:1` });
    assert.equal(res.status, 404);
    assert.equal(errorCode(res.body), 'DEPLOYMENT_NOT_FOUND');
    assert.equal(await exists('deployment', 'nope', ns), false);
  });

  test('a field owned by another manager → 409 and untouched; with force: true → taken over', async () => {
    // Another team's field manager owns the image.
    const manifest = JSON.stringify({
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'owned', namespace: ns },
      spec: { selector: { matchLabels: { app: 'owned' } }, template: { metadata: { labels: { app: 'owned' } }, spec: { containers: [{ name: 'web', image: `${REPO}:owned` }] } } },
    });
    await kubectl(['apply', '--server-side', '--field-manager=platform-team', '-f', '-'], manifest);

    const res = await fn.post('/deploy', { target: 'bump', image: `${REPO}:mine` });
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(errorCode(res.body), 'CONFLICT');
    assert.match((res.body.error as { message: string }).message, /platform-team/);
    const live = await kubectlJson<{ spec: { template: { spec: { containers: { image: string }[] } } } }>(['-n', ns, 'get', 'deployment', 'owned']);
    assert.equal(live.spec.template.spec.containers[0]?.image, `${REPO}:owned`);

    const forced = await fn.post('/deploy', { target: 'bump-forced', image: `${REPO}:mine` });
    assert.equal(forced.status, 200, JSON.stringify(forced.body));
    assert.deepEqual(
      (forced.body.objects as Record<string, unknown>[]).map(({ kind, name, namespace, action }) => ({ kind, name, namespace, action })),
      [{ kind: 'Deployment', name: 'owned', namespace: ns, action: 'configured' }],
    );
    const after = await kubectlJson<{ spec: { template: { spec: { containers: { image: string }[] } } } }>(['-n', ns, 'get', 'deployment', 'owned']);
    assert.equal(after.spec.template.spec.containers[0]?.image, `${REPO}:mine`);
  });
});

describe('POST /deploy when Google or the cluster fails', () => {
  test('Container API unavailable → 503; permission denied → 502; nothing applied', async () => {
    const info = await useSandboxEnv();
    const ns = await namespace('gapi');
    const config = configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns) } });
    for (const [failure, status, code] of [
      ['UNAVAILABLE', 503, 'CONTAINER_API_UNAVAILABLE'],
      ['PERMISSION_DENIED', 502, 'CONTAINER_API_ERROR'],
    ] as const) {
      // A fresh instance: a warm one would not ask the Container API at all.
      const fn = await startFunction(config, { 'web.yaml': fixture('manifests/web.yaml') });
      await control({ containerApiFailure: failure });
      try {
        const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:1` });
        assert.equal(res.status, status, JSON.stringify(res.body));
        assert.equal(errorCode(res.body), code);
      } finally {
        await control({ containerApiFailure: null });
        await fn.close();
      }
      assert.equal(await exists('deployment', 'web', ns), false);
    }
  });

  test('API server unreachable → 503', async () => {
    const info = await sandbox();
    const fn = await startFunction(
      configYaml({
        clusters: { down: { endpoint: { server: 'https://127.0.0.1:1', caFile: info.caFile, tokenFile: 'token' } } },
        targets: { web: { ...webTarget('default'), cluster: 'down' } },
      }),
      { 'web.yaml': fixture('manifests/web.yaml'), token: 'x' },
    );
    try {
      const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:1` });
      assert.equal(res.status, 503, JSON.stringify(res.body));
      assert.equal(errorCode(res.body), 'CLUSTER_UNAVAILABLE');
    } finally {
      await fn.close();
    }
  });

  test('an identity without RBAC rights → 502 CLUSTER_FORBIDDEN naming RBAC, nothing applied', async () => {
    const info = await sandbox();
    const ns = await namespace('rbac');
    const fn = await startFunction(
      configYaml({
        clusters: { limited: { endpoint: { server: info.server, caFile: info.caFile, tokenFile: 'token' } } },
        targets: { web: { ...webTarget(ns), cluster: 'limited' } },
      }),
      { 'web.yaml': fixture('manifests/web.yaml'), token: await accessToken('nobody@sandbox-project.iam.gserviceaccount.com') },
    );
    try {
      const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:1` });
      assert.equal(res.status, 502, JSON.stringify(res.body));
      assert.equal(errorCode(res.body), 'CLUSTER_FORBIDDEN');
      assert.match((res.body.error as { message: string }).message, /RBAC/);
      assert.equal(await exists('deployment', 'web', ns), false);
    } finally {
      await fn.close();
    }
  });
});
