// Every way of reaching a GKE control plane, through the sandbox's fronts to its one
// apiserver: the DNS-based endpoint and the Connect gateway (certificates from the
// "public" CA, which the function trusts only through NODE_EXTRA_CA_CERTS, as it would
// the system store) and the internal IP endpoint (the cluster CA). The function runs
// as its own process, since Node reads NODE_EXTRA_CA_CERTS at start only, with a
// private TMPDIR so its CA temp files can be counted.
import assert from 'node:assert/strict';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO, configYaml, fixture, webTarget } from './support/config.ts';
import { spawnFunction, type FunctionProcess } from './support/process.ts';
import { exists, kubectlJson, leasesHandedBack, namespace, sandbox, stats, useSandboxEnv } from './support/sandbox.ts';
import type { SandboxInfo } from '../sandbox/index.ts';

interface FrontCounts {
  dns: number;
  internal: number;
  connectGateway: number;
}

async function fronts(): Promise<FrontCounts> {
  const stats = (await (await fetch((await sandbox()).stats)).json()) as { fronts?: FrontCounts };
  assert.ok(stats.fronts, 'the sandbox reports front counters');
  return stats.fronts;
}

async function frontControl(change: { frontCa?: Partial<Record<keyof FrontCounts, 'public' | 'cluster'>>; frontUnauthorized?: Partial<Record<keyof FrontCounts, number>> }): Promise<void> {
  const res = await fetch((await sandbox()).control, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(change) });
  assert.equal(res.status, 200, await res.text());
}

const frontCa = (change: Partial<Record<keyof FrontCounts, 'public' | 'cluster'>>) => frontControl({ frontCa: change });

/** CA files the process wrote: gke-deployer-ca-*\/*.crt under its TMPDIR. */
async function caFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const sub of (await readdir(dir)).filter((d) => d.startsWith('gke-deployer-ca-'))) {
    files.push(...(await readdir(path.join(dir, sub))).filter((f) => f.endsWith('.crt')));
  }
  return files;
}

const gke = (info: SandboxInfo, name: string, extra: Record<string, unknown> = {}) => ({ gke: { project: info.project, location: info.location, name, ...extra } });

function errorOf(body: Record<string, unknown>): { code?: string; message?: string } {
  return (body.error ?? {});
}

const imageOf = (d: { spec: { template: { spec: { containers: { image: string }[] } } } }) => d.spec.template.spec.containers[0]?.image;

describe('GKE endpoint kinds', () => {
  let info: SandboxInfo;
  let fn: FunctionProcess;
  let tmp: string;
  const ns: Record<string, string> = {};
  /** Front counts once the earlier targets' Leases went back (each through its own front). */
  const settledFronts = async () => {
    await leasesHandedBack(Object.values(ns));
    return fronts();
  };

  before(async () => {
    info = await useSandboxEnv();
    for (const key of ['auto', 'internal', 'public', 'gateway', 'rollback']) ns[key] = await namespace(`ep-${key}`);
    tmp = await mkdtemp(path.join(tmpdir(), 'gke-deployer-ep-'));
    const config = configYaml({
      clusters: {
        'private-auto': gke(info, info.privateCluster),
        'private-internal': gke(info, info.privateCluster, { endpoint: 'internal' }),
        'private-public': gke(info, info.privateCluster, { endpoint: 'public' }),
        // Membership from the cluster's fleet registration (getCluster's fleet.membership).
        gateway: gke(info, info.cluster, { endpoint: 'connect-gateway' }),
      },
      targets: {
        auto: webTarget(ns.auto!, { cluster: 'private-auto' }),
        internal: webTarget(ns.internal!, { cluster: 'private-internal' }),
        public: webTarget(ns.public!, { cluster: 'private-public' }),
        gateway: webTarget(ns.gateway!, { cluster: 'gateway', preDeploy: ['migrate.yaml'] }),
        rollback: webTarget(ns.rollback!, { cluster: 'gateway' }),
      },
    });
    fn = await spawnFunction(config, { 'web.yaml': fixture('manifests/web.yaml'), 'migrate.yaml': fixture('manifests/migrate.yaml') }, { ...info.env, TMPDIR: tmp });
  });
  after(() => fn?.close());

  // In order: the CA file count is checked as each kind is first used.
  test('private cluster, auto: through the DNS front, verified without the cluster CA', async () => {
    const before = await settledFronts();
    const res = await fn.post('/deploy', { target: 'auto', image: `${REPO}:1.0.0` });
    const afterCounts = await fronts();
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'ready');
    assert.ok(afterCounts.dns > before.dns, 'the DNS front served the deploy');
    // The private cluster's legacy `endpoint` field is the internal address: never dialled.
    assert.equal(afterCounts.internal, before.internal, 'the internal front was not used');
    assert.equal(afterCounts.connectGateway, before.connectGateway);
    assert.equal(imageOf(await kubectlJson(['-n', ns.auto!, 'get', 'deployment', 'web'])), `${REPO}:1.0.0`);
    const choice = fn.logs.filter((l) => l.endpointKind !== undefined);
    assert.equal(choice.length, 1, 'the choice is logged once per lookup');
    assert.equal(choice[0]!.endpointKind, 'dns');
    assert.match(String(choice[0]!.message), /DNS endpoint allows external traffic/);
    assert.deepEqual(await caFiles(tmp), [], 'no CA file for the DNS endpoint');
  });

  test('private cluster, internal: through the internal front, one CA file', async () => {
    const before = await settledFronts();
    const res = await fn.post('/deploy', { target: 'internal', image: `${REPO}:1.0.0` });
    const afterCounts = await fronts();
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'ready');
    assert.ok(afterCounts.internal > before.internal, 'the internal front served the deploy');
    assert.equal(afterCounts.dns, before.dns);
    assert.equal((await caFiles(tmp)).length, 1, 'the cluster CA, written once');
  });

  test('private cluster, public: CLUSTER_ERROR naming what it offers, nothing applied', async () => {
    const before = await settledFronts();
    const res = await fn.post('/deploy', { target: 'public', image: `${REPO}:1.0.0` });
    assert.equal(res.status, 502, JSON.stringify(res.body));
    const error = errorOf(res.body);
    assert.equal(error.code, 'CLUSTER_ERROR');
    assert.match(error.message ?? '', /public IP endpoint is disabled/);
    assert.match(error.message ?? '', /dns \(localhost:\d+\)/);
    assert.match(error.message ?? '', /internal \(127\.0\.0\.1:\d+\)/);
    assert.match(error.message ?? '', /connect-gateway \(projects\//);
    assert.deepEqual(await fronts(), before, 'no front was dialled');
    assert.equal(await exists('deployment', 'web', ns.public), false);
  });

  test('connect-gateway: discovery, apply, rollout watch and Pod logs through the gateway front', async () => {
    const before = await settledFronts();
    const res = await fn.post('/deploy', { target: 'gateway', image: `${REPO}:1.0.0` });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'ready', 'the rollout wait saw the Pods Ready through the gateway');
    const mid = await fronts();
    assert.ok(mid.connectGateway > before.connectGateway);
    const live = await kubectlJson<{ spec: { replicas: number; template: { spec: { containers: { image: string }[] } } }; status: { readyReplicas?: number } }>(['-n', ns.gateway!, 'get', 'deployment', 'web']);
    assert.equal(imageOf(live), `${REPO}:1.0.0`);
    assert.equal(live.status.readyReplicas, live.spec.replicas);

    // A failing preDeploy Job: its Pod's log is read through the gateway too.
    const failed = await fn.post('/deploy', { target: 'gateway', image: `${REPO}:fail-exit-1` });
    assert.equal(failed.status, 422, JSON.stringify(failed.body));
    const jobs = failed.body.preDeploy as { status: string; logs?: string[] }[] | undefined;
    assert.match(jobs?.find((j) => j.status === 'failed')?.logs?.at(-1) ?? '', /fail-exit/);
    const end = await fronts();
    assert.equal(end.dns, before.dns);
    assert.equal(end.internal, before.internal);
    assert.equal((await caFiles(tmp)).length, 1, 'the gateway adds no CA file');
  });

  test('connect-gateway, warm: no new lookup, and a failing rollout is rolled back through the gateway', async () => {
    const lookups = (await stats()).containerApi.getCluster;
    const before = await settledFronts();
    const good = await fn.post('/deploy', { target: 'rollback', image: `${REPO}:1.0.0` });
    assert.equal(good.status, 200, JSON.stringify(good.body));
    assert.equal(good.body.status, 'ready');
    const bad = await fn.post('/deploy', { target: 'rollback', image: `${REPO}:fail-pull-1` });
    assert.equal(bad.body.status, 'rolled-back', JSON.stringify(bad.body));
    const end = await fronts();
    assert.ok(end.connectGateway > before.connectGateway);
    assert.equal(end.dns, before.dns);
    assert.equal(end.internal, before.internal);
    assert.equal((await stats()).containerApi.getCluster, lookups, 'the lookup is reused within its TTL');
    assert.equal(imageOf(await kubectlJson(['-n', ns.rollback!, 'get', 'deployment', 'web'])), `${REPO}:1.0.0`);
  });
});

describe('401 through the gateway', () => {
  test('a 401 from the Connect gateway refreshes the ADC token and retries once', async () => {
    const info = await useSandboxEnv();
    const ns = await namespace('ep-401');
    // No rollout wait: a wait's last watch request can still be on its way to the gateway
    // after the answer, and would take the one 401 meant for the next deploy.
    const config = configYaml({ clusters: { gateway: gke(info, info.cluster, { endpoint: 'connect-gateway' }) }, targets: { web: webTarget(ns, { cluster: 'gateway', rollout: { wait: false } }) } });
    const fn = await spawnFunction(config, { 'web.yaml': fixture('manifests/web.yaml') }, info.env);
    try {
      const warm = await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` });
      assert.equal(warm.body.status, 'applied', JSON.stringify(warm.body));
      const tokens = (await stats()).metadata.token;
      await frontControl({ frontUnauthorized: { connectGateway: 1 } });
      const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.1` });
      assert.equal(res.body.status, 'applied', JSON.stringify(res.body));
      assert.equal((await stats()).metadata.token, tokens + 1, 'one fresh token after the 401');
      assert.equal(imageOf(await kubectlJson(['-n', ns, 'get', 'deployment', 'web'])), `${REPO}:1.0.1`);
    } finally {
      await frontControl({ frontUnauthorized: { connectGateway: 0 } });
      await fn.close();
    }
  });
});

describe('TLS per endpoint kind', () => {
  test('a DNS front with a cluster-CA certificate, and an IP front with a public one, are refused', async () => {
    const info = await useSandboxEnv();
    const dnsNs = await namespace('ep-dns');
    const ipNs = await namespace('ep-ip');
    const config = configYaml({
      clusters: { dns: gke(info, info.privateCluster, { endpoint: 'dns' }), internal: gke(info, info.privateCluster, { endpoint: 'internal' }) },
      targets: { dns: webTarget(dnsNs, { cluster: 'dns' }), internal: webTarget(ipNs, { cluster: 'internal' }) },
    });
    // A fresh process: no kept-alive connection from before the switch.
    await frontCa({ dns: 'cluster', internal: 'public' });
    const fn = await spawnFunction(config, { 'web.yaml': fixture('manifests/web.yaml') }, info.env);
    try {
      for (const [target, ns] of [['dns', dnsNs], ['internal', ipNs]] as const) {
        const res = await fn.post('/deploy', { target, image: `${REPO}:1.0.0` });
        assert.equal(res.status, 503, JSON.stringify(res.body));
        const error = errorOf(res.body);
        assert.equal(error.code, 'CLUSTER_UNAVAILABLE');
        assert.match(error.message ?? '', /CERT|SIGNATURE|UNABLE_TO_VERIFY|SELF_SIGNED/, `${target}: a TLS verification error`);
        assert.equal(await exists('deployment', 'web', ns), false, `${target}: nothing applied`);
      }
    } finally {
      await frontCa({ dns: 'public', internal: 'cluster' });
      await fn.close();
    }
  });
});
