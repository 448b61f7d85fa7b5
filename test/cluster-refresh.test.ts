// How a warm instance notices change: an ADC token refused by the cluster is fetched
// anew (not served again from the library's cache) and the call retried once, and an
// endpoint that stops answering makes the retried call look the cluster up again.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { test } from 'node:test';
import { AdcToken } from '../src/cluster/adc-token.ts';
import { startIdentityServer } from '../sandbox/google/identity.ts';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { startFunction } from './support/function.ts';
import { control, namespace, startTlsContainerApi, stats, useSandboxEnv } from './support/sandbox.ts';

/** A TCP proxy to `port` that can be closed, like an endpoint that moved away. */
async function proxyTo(port: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Runs `body` with ADC pointed at a metadata server of its own whose tokens live `lifetimeSeconds`. */
async function withMetadataServer(lifetimeSeconds: number, body: (identity: Awaited<ReturnType<typeof startIdentityServer>>) => Promise<void>): Promise<void> {
  const identity = await startIdentityServer({ project: 'sandbox-project', serviceAccount: 'd@sandbox-project.iam.gserviceaccount.com', tokenLifetimeSeconds: lifetimeSeconds });
  const saved = { host: process.env.GCE_METADATA_HOST, project: process.env.GOOGLE_CLOUD_PROJECT };
  process.env.GCE_METADATA_HOST = identity.metadataHost;
  process.env.GOOGLE_CLOUD_PROJECT = 'sandbox-project';
  try {
    await body(identity);
  } finally {
    process.env.GCE_METADATA_HOST = saved.host;
    process.env.GOOGLE_CLOUD_PROJECT = saved.project;
    await identity.close();
  }
}

test('ADC tokens: cached until a quarter of their lifetime is left, shared by concurrent callers, refetched after a 401', async (t) => {
  await withMetadataServer(4, async (identity) => {
    const token = new AdcToken();
    const [a, b] = await Promise.all([token.authorization(), token.authorization()]);
    assert.equal(a, b);
    assert.equal(identity.stats().metadata.token, 1, 'concurrent callers share one fetch');
    assert.equal(await token.authorization(), a);
    assert.equal(identity.stats().metadata.token, 1, 'a fresh token is reused');

    token.invalidate(); // what a 401 from the cluster does
    const c = await token.authorization();
    assert.notEqual(c, a, 'a refused token is never handed out again');
    assert.equal(identity.stats().metadata.token, 2);

    // Move the clock (Date only: sockets and timers stay real) into the last quarter of
    // the 4 s lifetime, instead of sleeping there.
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    t.mock.timers.tick(2900);
    assert.equal(await token.authorization(), c, 'still outside the last quarter');
    assert.equal(identity.stats().metadata.token, 2);
    t.mock.timers.tick(300);
    assert.notEqual(await token.authorization(), c);
    assert.equal(identity.stats().metadata.token, 3);
    t.mock.timers.reset();
  });
});

test('ADC tokens of the usual hour are refetched at most 5 minutes before they expire (README: "refreshed before it expires")', async (t) => {
  await withMetadataServer(3600, async (identity) => {
    const token = new AdcToken();
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    const first = await token.authorization();
    // A quarter of an hour would be 15 minutes early: the cap is 5.
    t.mock.timers.tick(54 * 60_000);
    assert.equal(await token.authorization(), first, '6 minutes before expiry: still the same token');
    assert.equal(identity.stats().metadata.token, 1);
    t.mock.timers.tick(2 * 60_000);
    assert.notEqual(await token.authorization(), first, '4 minutes before expiry: a new one');
    assert.equal(identity.stats().metadata.token, 2);
    t.mock.timers.reset();
  });
});

test('gke: the cluster refuses the token once (401) → one token refresh → the retry deploys', async () => {
  const info = await useSandboxEnv();
  const ns = await namespace('revoked');
  // A cold function: its first token is the one the cluster refuses (a warm token would
  // be served from the API server's authentication cache without a review).
  const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns) } }), {
    'web.yaml': fixture('manifests/web.yaml'),
  });
  try {
    const before = await stats();
    await control({ rejectNextTokenReviews: 1 });
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:revoked` });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'ready');
    const now = await stats();
    assert.equal(now.tokenReview.rejected - before.tokenReview.rejected, 1, 'the cluster refused one token');
    assert.equal(now.metadata.token - before.metadata.token, 2, 'the first token, then exactly one refresh');
    assert.equal(now.containerApi.getCluster - before.containerApi.getCluster, 1, 'a 401 refreshes the token, not the lookup');
  } finally {
    await control({ rejectNextTokenReviews: 0 });
    await fn.close();
  }
});

test('gke: when the endpoint stops answering, the failed call looks the cluster up again and the deploy goes through', async () => {
  const info = await useSandboxEnv();
  const ns = await namespace('moved');
  const apiserverPort = Number(new URL(info.server).port);
  const caPem = await readFile(info.caFile, 'utf8');
  // A Container API of this test's own, so the cluster's endpoint can be moved.
  const containerApi = await startTlsContainerApi();
  const saved = process.env.CONTAINER_API_ENDPOINT;
  process.env.CONTAINER_API_ENDPOINT = containerApi.endpoint;
  const first = await proxyTo(apiserverPort);
  const second = await proxyTo(apiserverPort);
  const cluster = { project: info.project, location: info.location, name: info.cluster, caPem };
  containerApi.addCluster({ ...cluster, endpoint: `127.0.0.1:${first.port}` });
  const fn = await startFunction(configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns) } }), {
    'web.yaml': fixture('manifests/web.yaml'),
  });
  try {
    assert.equal((await fn.post('/deploy', { target: 'web', image: `${REPO}:1` })).status, 200);
    assert.equal(containerApi.getClusterCount(), 1);

    await first.close();
    containerApi.addCluster({ ...cluster, endpoint: `127.0.0.1:${second.port}` });
    // The first call fails to connect; its retry finds the cluster at its new endpoint.
    const moved = await fn.post('/deploy', { target: 'web', image: `${REPO}:2` });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.equal(containerApi.getClusterCount(), 2, 'looked up again after the failure, not before');

    const again = await fn.post('/deploy', { target: 'web', image: `${REPO}:3` });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(containerApi.getClusterCount(), 2, 'the new lookup is kept');
  } finally {
    await fn.close();
    await Promise.all([second.close(), containerApi.close()]);
    if (saved === undefined) delete process.env.CONTAINER_API_ENDPOINT;
    else process.env.CONTAINER_API_ENDPOINT = saved;
  }
});
