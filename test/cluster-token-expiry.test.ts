// Short-lived tokens: with 5-second access tokens from the metadata server, 50 deploys
// spread over 20 seconds to a gke cluster all succeed, and the token is fetched anew
// as it nears expiry rather than on every deploy.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction } from './support/function.ts';
import { control, namespace, stats, useSandboxEnv } from './support/sandbox.ts';

/** web.yaml scaled to zero: many Deployments here, and their Pods would only load the sandbox for later tests. */
function idleWeb(): string {
  const yaml = fixture('manifests/web.yaml');
  assert.match(yaml, /replicas: 2\n/);
  return yaml.replace('replicas: 2\n', 'replicas: 0\n');
}

const DEPLOYS = 50;
const SPREAD_MS = 20_000;

test('5-second tokens: 50 deploys over 20 s all succeed', { timeout: 90_000 }, async () => {
  const info = await useSandboxEnv();
  const ns = await namespace('expiry');
  await control({ tokenLifetimeSeconds: 5 });
  const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns) } }), {
    'web.yaml': idleWeb(),
  });
  try {
    const fetchesBefore = (await stats()).metadata.token;
    const started = Date.now();
    const eventTime = new Date(started).toISOString();
    const results = await Promise.all(
      Array.from({ length: DEPLOYS }, async (_, i) => {
        await sleep((i * SPREAD_MS) / DEPLOYS);
        // One event time for all: which of two overlapping deploys is newer is not this test's question.
        const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:short-${i}`, eventTime });
        return `${i}: ${res.status}${res.status === 200 ? '' : ` ${JSON.stringify(res.body)}`}`;
      }),
    );
    assert.ok(Date.now() - started >= SPREAD_MS * 0.95);
    assert.deepEqual(results, results.map((r) => `${r.split(':')[0]}: 200`));
    const fetches = (await stats()).metadata.token - fetchesBefore;
    // A token is refreshed once a quarter of its life is left: every ~3.75 s, not per deploy.
    assert.ok(fetches >= 4 && fetches < DEPLOYS / 2, `${fetches} token fetches for ${DEPLOYS} deploys over 20 s`);
  } finally {
    await fn.close();
    await control({ tokenLifetimeSeconds: 3600 });
  }
});
