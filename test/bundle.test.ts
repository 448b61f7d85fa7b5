// The production entry point (dist/index.mjs: the esbuild bundle behind the compile cache,
// what `npm start`, service.yaml and the buildpack's image run) as its own process
// against the sandbox: a `gke` cluster looked up through the Container API, an ADC token,
// TLS verified against the cluster CA; validation still refuses before anything is written.
import assert from 'node:assert/strict';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { ensureBundle } from './support/bundle.ts';
import { spawnFunction, type FunctionProcess } from './support/process.ts';
import { kubectlJson, namespace, stats, useSandboxEnv } from './support/sandbox.ts';

interface Deployment {
  spec: { template: { spec: { containers: { name: string; image: string }[] } } };
  status: { readyReplicas?: number };
}

async function caFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const sub of (await readdir(dir)).filter((d) => d.startsWith('gke-deployer-ca-'))) {
    files.push(...(await readdir(path.join(dir, sub))).filter((f) => f.endsWith('.crt')));
  }
  return files;
}

describe('the production bundle as a process', () => {
  let fn: FunctionProcess;
  let ns: string;
  let tmp: string;
  let lookupsBefore: number;

  before(async () => {
    const entry = await ensureBundle();
    const info = await useSandboxEnv();
    lookupsBefore = (await stats()).containerApi.getCluster;
    ns = await namespace('bundle');
    const otherNs = await namespace('bundle');
    tmp = await mkdtemp(path.join(tmpdir(), 'gke-deployer-bundle-'));
    const config = configYaml({
      clusters: { sandbox: gkeCluster(info), again: gkeCluster(info) },
      targets: { web: webTarget(ns), other: webTarget(otherNs, { cluster: 'again' }) },
    });
    fn = await spawnFunction(config, { 'web.yaml': fixture('manifests/web.yaml') }, { ...info.env, TMPDIR: tmp }, entry);
  });
  after(() => fn?.close());

  test('deploys through the Container API lookup, the ADC token and verified TLS, and waits for the rollout', async () => {
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:1.0.0` });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'ready', JSON.stringify(res.body));
    const live = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
    assert.equal(live.spec.template.spec.containers[0]?.image, `${REPO}:1.0.0`);
    assert.ok((live.status.readyReplicas ?? 0) > 0);
    const other = await fn.post('/deploy', { target: 'other', image: `${REPO}:1.0.1`, dryRun: true });
    assert.equal(other.status, 200, JSON.stringify(other.body));
    assert.equal((await stats()).containerApi.getCluster - lookupsBefore, 2, 'one lookup per cluster entry');
    // Two cluster entries, one cluster CA: one CA file.
    assert.equal((await caFiles(tmp)).length, 1);
  });

  test('an image outside the target\'s repositories is refused before anything is written', async () => {
    const res = await fn.post('/deploy', { target: 'web', image: 'evil.example.com/web:1.0.0' });
    assert.equal(res.status, 403, JSON.stringify(res.body));
    const live = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', 'web']);
    assert.equal(live.spec.template.spec.containers[0]?.image, `${REPO}:1.0.0`);
  });
});
