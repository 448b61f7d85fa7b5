// Benchmarks against the sandbox. Each figure is a ratio against a baseline measured
// in the same run, so machine speed cancels out:
//  - warm vs cold: deploys on one warm instance (cached lookup, token, client, sockets)
//    against deploys each on a fresh instance (what the original recipes did per event);
//  - memory: heap after many warm deploys against the heap after the first ones.
// Usage: npm run bench [-- --deploys 40]   (reuses $SANDBOX_DIR if a sandbox runs there)
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { loadConfigFile } from '../src/config/load.ts';
import { deployer } from '../src/deploy/pipeline.ts';
import { ClusterRegistry } from '../src/cluster/registry.ts';
import { readSandboxInfo, startSandbox, type Sandbox, type SandboxInfo } from '../sandbox/index.ts';

const { values } = parseArgs({ options: { deploys: { type: 'string', default: '30' } } });
const N = Number(values.deploys);
const REPO = 'europe-docker.pkg.dev/sandbox-project/apps/hello';

let sandbox: Sandbox | undefined;
let info: SandboxInfo;
if (process.env.SANDBOX_DIR) {
  info = await readSandboxInfo(process.env.SANDBOX_DIR);
} else {
  sandbox = await startSandbox({ dir: await mkdtemp(path.join(tmpdir(), 'gke-deployer-bench-')), pubsub: false });
  info = sandbox.info;
}
Object.assign(process.env, info.env);

const dir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-bench-cfg-'));
await writeFile(
  path.join(dir, 'deployer.yaml'),
  stringify({
    auth: { direct: 'none' },
    clusters: { sandbox: { gke: { project: info.project, location: info.location, name: info.cluster } } },
    targets: { hello: { cluster: 'sandbox', namespace: 'bench', manifests: [fileURLToPath(new URL('../examples/manifests/hello.yaml', import.meta.url))], images: [REPO], rollout: { wait: false } } },
  }),
);
const kubectl = async (...args: string[]) => {
  const { execFile } = await import('node:child_process');
  await new Promise<void>((resolve) => execFile(info.kubectl, ['--kubeconfig', info.kubeconfig, ...args], () => resolve()));
};
await kubectl('create', 'namespace', 'bench');
const config = loadConfigFile(path.join(dir, 'deployer.yaml'));
const stats = async () => (await (await fetch(info.stats)).json()) as { containerApi: { getCluster: number }; metadata: { token: number } };

async function timeDeploys(deploy: (i: number) => Promise<void>, n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await deploy(i);
    times.push(performance.now() - t);
  }
  return times;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const intent = (i: number) => ({ target: 'hello', image: `${REPO}:${i % 2 === 0 ? 'a' : 'b'}`, dryRun: false, requestId: `bench-${i}`, source: 'bench', eventId: `bench-${i}`, eventTime: new Date().toISOString() });

// Baseline: a fresh instance per deploy (lookup, token, TLS handshake, discovery every time).
const s0 = await stats();
const cold = await timeDeploys(async (i) => {
  const clusters = new ClusterRegistry(config.clusters);
  await deployer({ config, clusters })(intent(i));
  await clusters.close();
}, N);
const s1 = await stats();

// Warm: one instance, as Cloud Run keeps it between requests.
const clusters = new ClusterRegistry(config.clusters);
const deploy = deployer({ config, clusters });
await deploy(intent(0));
const s2 = await stats();
const warm = await timeDeploys((i) => deploy(intent(i)).then(() => undefined), N);
const s3 = await stats();

// Memory: heap after 10 warm deploys vs after 10 + 5N more (a leak shows as growth).
const heap = () => {
  global.gc?.();
  return process.memoryUsage().heapUsed;
};
await timeDeploys((i) => deploy(intent(i)).then(() => undefined), 10);
const heapBefore = heap();
await timeDeploys((i) => deploy(intent(i)).then(() => undefined), 5 * N);
const heapAfter = heap();

const ms = (x: number) => `${x.toFixed(1)} ms`;
console.log(`
gke-deployer benchmarks (${N} deploys each, 2-object target, sandbox apiserver on loopback)

| measure | baseline | measured | ratio |
|---|---|---|---|
| deploy latency, median: fresh instance (baseline) vs warm instance | ${ms(median(cold))} | ${ms(median(warm))} | ${(median(warm) / median(cold)).toFixed(2)} |
| Container API calls per deploy | ${((s1.containerApi.getCluster - s0.containerApi.getCluster) / N).toFixed(2)} | ${((s3.containerApi.getCluster - s2.containerApi.getCluster) / N).toFixed(2)} | |
| token fetches per deploy | ${((s1.metadata.token - s0.metadata.token) / N).toFixed(2)} | ${((s3.metadata.token - s2.metadata.token) / N).toFixed(2)} | |
| heap after ${5 * N} more warm deploys vs after 10 | ${(heapBefore / 2 ** 20).toFixed(1)} MiB | ${(heapAfter / 2 ** 20).toFixed(1)} MiB | ${(heapAfter / heapBefore).toFixed(2)} |
${global.gc ? '' : '(run with --expose-gc for steadier heap figures)\n'}`);

await clusters.close();
await sandbox?.stop();
