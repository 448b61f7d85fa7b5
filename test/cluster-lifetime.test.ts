// A warm instance keeps serving deploys while what it knows about the cluster changes
// under it: a lookup-cache expiry or a transport error in the middle of 20 concurrent
// deploys fails none of them. The cluster is a gke cluster whose endpoint (in a
// Container API of this test's own) is the fault proxy in front of the real API server,
// so requests can be slowed down and connections dropped at will.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO, configYaml, fixture, webTarget } from './support/config.ts';
import { ClusterRegistry } from '../src/cluster/registry.ts';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.ts';
import { startFunction, type RunningFunction } from './support/function.ts';
import { kubectl, kubectlJson, sandbox, startTlsContainerApi, useSandboxEnv } from './support/sandbox.ts';
import type { ContainerApi } from '../sandbox/google/container-api.ts';
import { until } from './support/until.ts';

/** web.yaml scaled to zero: many Deployments here, and their Pods would only load the sandbox for later tests. */
function idleWeb(): string {
  const yaml = fixture('manifests/web.yaml');
  assert.match(yaml, /replicas: 2\n/);
  return yaml.replace('replicas: 2\n', 'replicas: 0\n');
}

const N = 20;

/** N fresh namespaces in one kubectl call. */
async function namespaces(prefix: string, n: number): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => `${prefix}-${Date.now().toString(36)}-${i}`);
  const list = { apiVersion: 'v1', kind: 'List', items: names.map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })) };
  await kubectl(['apply', '-f', '-'], JSON.stringify(list));
  return names;
}

/** The image of each namespace's `web` Deployment, as the API server has it (one kubectl call). */
async function liveImages(nss: string[]): Promise<(string | undefined)[]> {
  type List = { items: { metadata: { namespace: string; name: string }; spec: { template: { spec: { containers: { image: string }[] } } } }[] };
  const { items } = await kubectlJson<List>(['get', 'deployments', '--all-namespaces']);
  const images = new Map(items.filter((d) => d.metadata.name === 'web').map((d) => [d.metadata.namespace, d.spec.template.spec.containers[0]?.image]));
  return nss.map((ns) => images.get(ns));
}

describe('client lifetime: 20 concurrent deploys through a gke cluster', () => {
  let proxy: FaultProxy;
  let containerApi: ContainerApi;
  let savedEndpoint: string | undefined;

  before(async () => {
    const info = await useSandboxEnv();
    proxy = await startFaultProxy({ upstream: info.server, upstreamCaPem: await readFile(info.caFile, 'utf8') });
    containerApi = await startTlsContainerApi();
    containerApi.addCluster({ project: info.project, location: info.location, name: info.cluster, endpoint: new URL(proxy.server).host, caPem: proxy.caPem });
    savedEndpoint = process.env.CONTAINER_API_ENDPOINT;
    process.env.CONTAINER_API_ENDPOINT = containerApi.endpoint;
  });
  after(async () => {
    if (savedEndpoint === undefined) delete process.env.CONTAINER_API_ENDPOINT;
    else process.env.CONTAINER_API_ENDPOINT = savedEndpoint;
    await Promise.all([proxy.close(), containerApi.close()]);
  });

  async function start(prefix: string, cacheTtlSeconds?: number): Promise<{ fn: RunningFunction; nss: string[] }> {
    const info = await sandbox(); // not useSandboxEnv: that would point CONTAINER_API_ENDPOINT back at the sandbox's
    const nss = await namespaces(prefix, N);
    const gke = { project: info.project, location: info.location, name: info.cluster, ...(cacheTtlSeconds && { cacheTtlSeconds }) };
    const targets = Object.fromEntries(nss.map((ns, i) => [`t${i}`, webTarget(ns)]));
    const fn = await startFunction(configYaml({ clusters: { sandbox: { gke } }, targets }), { 'web.yaml': idleWeb() });
    return { fn, nss };
  }

  function deploy(fn: RunningFunction, i: number, tag: string) {
    return fn.post('/deploy', { target: `t${i}`, image: `${REPO}:${tag}-${i}` });
  }

  test('a lookup that returns the same endpoint and CA keeps the client and its connections', async (t) => {
    const info = await sandbox();
    const ns = (await namespaces('keep', 1))[0]!;
    const registry = new ClusterRegistry(new Map([['c', { gke: { project: info.project, location: info.location, name: info.cluster, cacheTtlSeconds: 1 } }]]));
    try {
      const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'keep', namespace: ns }, data: { k: 'v' } };
      await (await registry.client('c')).apply(cm, { dryRun: false, force: false, fieldManager: 'gke-deployer/test' });
      const lookups = containerApi.getClusterCount();
      const connections = proxy.connections();
      // Past the 1 s TTL by moving the clock (Date only: sockets and timers stay real), not by sleeping.
      t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
      t.mock.timers.tick(1_100);
      const client = await registry.client('c');
      t.mock.timers.reset();
      assert.equal(containerApi.getClusterCount(), lookups + 1, 'looked up again');
      assert.ok(await client.get(cm));
      assert.equal(proxy.connections(), connections, 'the same keep-alive connection served the call');
    } finally {
      await registry.close();
    }
  });

  test('a lookup-cache expiry in the middle fails none of them', async () => {
    const { fn, nss } = await start('expiry', 1);
    try {
      assert.equal((await deploy(fn, 0, 'warm')).status, 200);
      const lookups = containerApi.getClusterCount();
      // Slow calls and staggered starts: the run spans well over the 1 s TTL, so the
      // lookup expires (and is redone) while deploys are between calls.
      proxy.set({ delayMs: 150 });
      const results = await Promise.all(
        Array.from({ length: N }, async (_, i) => {
          await sleep(i * 60);
          return deploy(fn, i, 'expiry');
        }),
      );
      proxy.set({ delayMs: 0 });
      assert.ok(containerApi.getClusterCount() > lookups, 'the cache expired during the run');
      const failed = results.flatMap((r, i) => (r.status === 200 ? [] : [`t${i}: ${r.status} ${JSON.stringify(r.body)}`]));
      assert.deepEqual(failed, []);
      assert.deepEqual(await liveImages(nss), nss.map((_, i) => `${REPO}:expiry-${i}`));
    } finally {
      proxy.set({ delayMs: 0 });
      await fn.close();
    }
  });

  test('a transport error in the middle fails none of them, and the lookup it causes is kept', async () => {
    const { fn, nss } = await start('drop');
    try {
      assert.equal((await deploy(fn, 0, 'warm')).status, 200);
      const lookups = containerApi.getClusterCount();
      proxy.set({ delayMs: 200 });
      const seen = proxy.requests().length;
      const pending = Promise.all(Array.from({ length: N }, (_, i) => deploy(fn, i, 'drop')));
      // Drop every connection once deploys are under way (each request is held 200 ms).
      await until(`${N} requests through the proxy`, () => proxy.requests().length >= seen + N, { everyMs: 10, seen: () => proxy.requests().length - seen });
      assert.ok(proxy.dropConnections() > 0, 'connections were open when they were dropped');
      const results = await pending;
      proxy.set({ delayMs: 0 });
      const failed = results.flatMap((r, i) => (r.status === 200 ? [] : [`t${i}: ${r.status} ${JSON.stringify(r.body)}`]));
      assert.deepEqual(failed, []);
      assert.deepEqual(await liveImages(nss), nss.map((_, i) => `${REPO}:drop-${i}`));
      // Many requests failed at once: one new lookup serves them all.
      assert.ok(containerApi.getClusterCount() - lookups <= 2, `${containerApi.getClusterCount() - lookups} lookups after one transport error`);
    } finally {
      proxy.set({ delayMs: 0 });
      await fn.close();
    }
  });
});
