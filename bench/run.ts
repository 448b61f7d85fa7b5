// `npm run bench`: the function as Cloud Run runs it (functions-framework's CLI on the
// production bundle, its own process, service.yaml's heap cap) against the sandbox — a `gke`
// cluster looked up through the Container API, an ADC token, verified TLS — and every figure
// against a real baseline program measured in the same run, interleaved:
//  - raw: one server-side apply PATCH over node:https with keep-alive (bench/baseline/raw-patch.mjs);
//  - bare: a bare functions-framework function doing one raw PATCH (bench/baseline/bare-function.mjs);
//  - kubectl: `kubectl apply --server-side`, one process per deploy.
// Prints a table and writes bench/results/latest.json.
// Env: BENCH_DEPLOYS (default 10000: the RSS-after-N figure), BENCH_ROUNDS (cold starts, 10),
// BENCH_WARM (warm deploys per figure, 200), SANDBOX_DIR (reuse a running sandbox).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { readSandboxInfo, startSandbox, type Sandbox, type SandboxInfo } from '../sandbox/index.ts';
import { freePort } from '../sandbox/process.ts';
import { ensureBundle } from '../test/support/bundle.ts';
// @ts-expect-error plain JavaScript baseline, no types
import { deployment, rawPatcher } from './baseline/raw-patch.mjs';

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');
const cli = path.join(root, 'node_modules/@google-cloud/functions-framework/build/src/main.js');
const DEPLOYS = Number(process.env.BENCH_DEPLOYS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const WARM = Number(process.env.BENCH_WARM ?? 200);
const REPO = 'europe-docker.pkg.dev/sandbox-project/apps/bench';
const NS = 'bench';
const log = (line: string) => console.error(`[bench] ${line}`);

interface Patcher {
  patch(obj: unknown): Promise<number>;
  close(): void;
}
const makeRaw = rawPatcher as (o: { server: string; ca: Buffer; token: string; namespace: string; manager: string }) => Patcher;
const makeDeployment = deployment as (name: string, image: string) => { metadata: { name: string } };

// --- the sandbox, the config, the baselines' credentials -------------------------------------
const entry = await ensureBundle();
let sandbox: Sandbox | undefined;
let info: SandboxInfo;
if (process.env.SANDBOX_DIR) info = await readSandboxInfo(process.env.SANDBOX_DIR);
else {
  sandbox = await startSandbox({ dir: await mkdtemp(path.join(tmpdir(), 'gke-deployer-bench-')), pubsub: false, log });
  info = sandbox.info;
}
await exec(info.kubectl, ['--kubeconfig', info.kubeconfig, 'create', 'namespace', NS]).catch(() => undefined);

const service = parse(await readFile(path.join(root, 'service.yaml'), 'utf8')) as {
  spec: { template: { spec: { containerConcurrency: number; containers: { env: { name: string; value?: string }[]; resources: { limits: { memory: string } } }[] } } };
};
const container = service.spec.template.spec.containers[0]!;
const NODE_OPTIONS = container.env.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';
// glibc's malloc tuning from service.yaml too: it is part of what an instance's RSS is.
const MALLOC_ARENA_MAX = container.env.find((e) => e.name === 'MALLOC_ARENA_MAX')?.value;

const dir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-bench-cfg-'));
const manifest = (objs: unknown[]) => objs.map((o) => stringify(o)).join('---\n');
const cm = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { greeting: 'hello' } });
const svc = (name: string) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { selector: { app: name }, ports: [{ port: 80 }] } });
await writeFile(path.join(dir, 'one.yaml'), manifest([makeDeployment('one', 'placeholder')]));
await writeFile(path.join(dir, 'three.yaml'), manifest([cm('three'), svc('three'), makeDeployment('three', 'placeholder')]));
const targets: Record<string, unknown> = {};
const target = (file: string) => ({ cluster: 'gke', namespace: NS, manifests: [file], images: [REPO], rollout: { wait: false } });
targets.one = target('one.yaml');
targets.three = target('three.yaml');
for (let i = 0; i < 8; i++) {
  await writeFile(path.join(dir, `t${i}.yaml`), manifest([makeDeployment(`t${i}`, 'placeholder')]));
  targets[`t${i}`] = target(`t${i}.yaml`);
}
await writeFile(
  path.join(dir, 'deployer.yaml'),
  stringify({ auth: { direct: 'none' }, clusters: { gke: { gke: { project: info.project, location: info.location, name: info.cluster } } }, targets }),
);

// The raw baselines use the function's own identity: a metadata-server access token, the same CA.
const tokenRes = await fetch(`http://${info.env.GCE_METADATA_HOST}/computeMetadata/v1/instance/service-accounts/default/token`, { headers: { 'Metadata-Flavor': 'Google' } });
const token = ((await tokenRes.json()) as { access_token: string }).access_token;
const ca = await readFile(info.caFile);
const raw = makeRaw({ server: info.server, ca, token, namespace: NS, manager: 'bench-raw' });

// --- processes ------------------------------------------------------------------------------
interface Proc {
  child: ChildProcess;
  url: string;
  tmp: string;
  stop(): Promise<void>;
}
async function startProcess(source: string, env: Record<string, string>, opts: { probe?: boolean } = {}): Promise<Proc & { spawnedAt: number }> {
  const port = await freePort();
  const tmp = await mkdtemp(path.join(tmpdir(), 'gke-deployer-bench-proc-'));
  const nodeOptions = [NODE_OPTIONS, opts.probe ? `--import=${path.join(root, 'bench/support/probe.mjs')}` : ''].filter(Boolean).join(' ');
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [cli, '--target=deploy', `--source=${source}`, `--port=${port}`], {
    cwd: dir,
    env: {
      ...process.env,
      ...info.env,
      ...env,
      NODE_OPTIONS: nodeOptions,
      ...(MALLOC_ARENA_MAX !== undefined && { MALLOC_ARENA_MAX }),
      NODE_ENV: 'production',
      TMPDIR: tmp,
      DEPLOYER_CONFIG: path.join(dir, 'deployer.yaml'),
    },
    stdio: ['ignore', 'ignore', 'inherit', ...(opts.probe ? ['ipc' as const] : [])],
  });
  const exited = new Promise((r) => child.once('exit', r));
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    tmp,
    spawnedAt,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
const post = async (url: string, body: unknown): Promise<number> => {
  const res = await fetch(`${url}/deploy`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await res.arrayBuffer();
  return res.status;
};
/** Spawn → first 200 on POST /deploy (retried while the port does not answer yet). */
async function coldStart(p: Proc & { spawnedAt: number }, body: unknown): Promise<number> {
  for (;;) {
    const status = await post(p.url, body).catch(() => undefined);
    if (status === 200) return performance.now() - p.spawnedAt;
    if (status !== undefined) throw new Error(`cold deploy answered ${status}`);
    if (p.child.exitCode !== null) throw new Error(`process exited ${p.child.exitCode}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
const rss = async (pid: number): Promise<number> => Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;

const bareEnv = { BASELINE_SERVER: info.server, BASELINE_CA_FILE: info.caFile, BASELINE_TOKEN: token, BASELINE_NAMESPACE: NS };
let seq = 0;
const image = () => `${REPO}:v${++seq}`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// --- 1. import time alone -------------------------------------------------------------------
log('import times');
async function importMs(file: string): Promise<number> {
  const code = `const t = performance.now(); await import(${JSON.stringify(file)}); console.log(performance.now() - t); process.exit(0);`;
  const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', code], {
    cwd: dir,
    env: { ...process.env, NODE_OPTIONS, DEPLOYER_CONFIG: path.join(dir, 'deployer.yaml'), CONTAINER_API_ENDPOINT: '127.0.0.1:1', GCE_METADATA_HOST: '127.0.0.1:1' },
  });
  return Number(stdout.trim().split('\n').at(-1));
}
const imports = { production: [] as number[], bundleNoCache: [] as number[], src: [] as number[] };
for (let i = 0; i < ROUNDS; i++) {
  imports.production.push(await importMs(entry));
  imports.bundleNoCache.push(await importMs(path.join(root, 'dist/bundle/index.mjs')));
  imports.src.push(await importMs(path.join(root, 'src/index.ts')));
}

// --- 2. cold start, interleaved with the bare baseline --------------------------------------
log(`cold starts (${ROUNDS} rounds)`);
const cold = { fn: [] as number[], bare: [] as number[], caFiles: [] as number[] };
const bareSource = path.join(root, 'bench/baseline/bare-function.mjs');
for (let i = 0; i < ROUNDS; i++) {
  const f = await startProcess(entry, {});
  cold.fn.push(await coldStart(f, { target: 'one', image: image() }));
  const ca = (await readdir(f.tmp)).filter((d) => d.startsWith('gke-deployer-ca-'));
  cold.caFiles.push((await Promise.all(ca.map(async (d) => (await readdir(path.join(f.tmp, d))).length))).reduce((a, b) => a + b, 0));
  await f.stop();
  const b = await startProcess(bareSource, bareEnv);
  cold.bare.push(await coldStart(b, { image: image() }));
  await b.stop();
}

// --- 3. warm: one instance, kept as Cloud Run keeps it ---------------------------------------
log(`warm deploys (${WARM} per figure)`);
const fn = await startProcess(entry, {}, { probe: true });
await coldStart(fn, { target: 'one', image: image() });
await post(fn.url, { target: 'three', image: image() });
await raw.patch(makeDeployment('raw-one', image()));
async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}
async function deployOk(body: Record<string, unknown>): Promise<void> {
  const status = await post(fn.url, body);
  if (status !== 200) throw new Error(`deploy ${JSON.stringify(body)} answered ${status}`);
}
// Context for the warm figures: the same raw PATCH behind a bare functions-framework function,
// i.e. what the HTTP hop into the function and the framework cost before any code of ours.
const bare = await startProcess(bareSource, bareEnv);
await coldStart(bare, { image: image() });
const warm = { one: [] as number[], rawOne: [] as number[], bareOne: [] as number[], three: [] as number[], rawThree: [] as number[] };
for (let i = 0; i < WARM; i++) {
  warm.one.push(await timed(() => deployOk({ target: 'one', image: image() })));
  warm.rawOne.push(await timed(() => raw.patch(makeDeployment('raw-one', image()))));
  warm.bareOne.push(await timed(() => post(bare.url, { image: image() })));
  warm.three.push(await timed(() => deployOk({ target: 'three', image: image() })));
  warm.rawThree.push(
    await timed(async () => {
      await raw.patch(cm('raw-three'));
      await raw.patch(svc('raw-three'));
      await raw.patch(makeDeployment('raw-three', image()));
    }),
  );
}
await bare.stop();

// --- 4. kubectl apply --server-side, a process per deploy ------------------------------------
log('kubectl apply --server-side');
const kubectlMs: number[] = [];
const warmVsKubectl: number[] = [];
// Three per cold round: a kubectl process's median is noisier than a warm deploy's.
for (let i = 0; i < ROUNDS * 3; i++) {
  const file = path.join(dir, `kubectl-${i}.yaml`);
  await writeFile(file, stringify(makeDeployment('kubectl-one', image())));
  kubectlMs.push(await timed(() => exec(info.kubectl, ['--kubeconfig', info.kubeconfig, 'apply', '--server-side', '--force-conflicts', '--field-manager=bench-kubectl', '-n', NS, '-f', file])));
  warmVsKubectl.push(await timed(() => deployOk({ target: 'one', image: image() })));
}

// --- 5. throughput at concurrency 8 over distinct Deployments, RSS under load ----------------
async function concurrent(n: number, run: (worker: number) => Promise<unknown>, onProgress?: (done: number) => Promise<void>): Promise<number> {
  let started = 0;
  let finished = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: 8 }, async (_, w) => {
      while (started < n) {
        started++;
        await run(w);
        await onProgress?.(++finished);
      }
    }),
  );
  return (n / (performance.now() - t)) * 1000;
}
log('throughput at concurrency 8');
const rssSamples: number[] = [];
const sampler = setInterval(() => void rss(fn.child.pid!).then((r) => rssSamples.push(r)), 100);
const tput = { fn: [] as number[], raw: [] as number[] };
for (let r = 0; r < 3; r++) {
  tput.fn.push(await concurrent(WARM, (w) => deployOk({ target: `t${w}`, image: image() })));
  tput.raw.push(await concurrent(WARM, (w) => raw.patch(makeDeployment(`raw-t${w}`, image()))));
}
clearInterval(sampler);

// --- 6. memory: RSS after 1k vs N deploys, allocation per deploy -----------------------------
log(`RSS after 1000 vs ${DEPLOYS} deploys (heap capped: ${NODE_OPTIONS})`);
const alloc = () =>
  new Promise<number>((resolve) => {
    fn.child.once('message', (m: { allocated: number }) => resolve(m.allocated));
    fn.child.send('alloc');
  });
await alloc();
let rss1k = 0;
const total = Math.max(DEPLOYS, 1000);
await concurrent(
  total,
  (w) => deployOk({ target: `t${w}`, image: image() }),
  async (done) => {
    if (done === 1000) rss1k = await rss(fn.child.pid!);
    if (done % 1000 === 0) log(`  ${done} deploys`);
  },
);
// RSS first: the probe's answer parses every GC's record since the last call (megabytes of
// JSON after 10 000 deploys), which would land in the RSS it reads.
const rssEnd = await rss(fn.child.pid!);
const allocatedPerDeploy = (await alloc()) / total;
await fn.stop();
raw.close();

// --- the table -------------------------------------------------------------------------------
const ms = (x: number) => `${x.toFixed(1)} ms`;
const mb = (x: number) => `${(x / 2 ** 20).toFixed(0)} MiB`;
interface Row {
  figure: string;
  baseline: string;
  measured: string;
  ratio: number;
  goal: string;
  pass: boolean;
}
const rows: Row[] = [];
const row = (figure: string, baseline: string, measured: string, ratio: number, goal: string, pass: boolean) => rows.push({ figure, baseline, measured, ratio, goal, pass });
const c = median(cold.fn) / median(cold.bare);
row('cold start, spawn → first 200 on POST /deploy (vs bare ff + 1 raw PATCH)', ms(median(cold.bare)), ms(median(cold.fn)), c, '≤ 1.5×', c <= 1.5);
const w1 = median(warm.one) / median(warm.rawOne);
row('warm deploy, 1 Deployment (vs 1 raw SSA PATCH)', ms(median(warm.rawOne)), ms(median(warm.one)), w1, '≤ 1.15×', w1 <= 1.15);
const w3 = median(warm.three) / median(warm.rawThree);
row('warm deploy, 3 objects (vs 3 raw PATCHes in a row)', ms(median(warm.rawThree)), ms(median(warm.three)), w3, '≤ 1.15×', w3 <= 1.15);
const tp = median(tput.fn) / median(tput.raw);
row('throughput, concurrency 8, distinct Deployments (vs raw PATCH loop)', `${median(tput.raw).toFixed(0)}/s`, `${median(tput.fn).toFixed(0)}/s`, tp, '≥ 0.8×', tp >= 0.8);
const k = median(kubectlMs) / median(warmVsKubectl);
row('warm deploy vs `kubectl apply --server-side` process (speed-up)', ms(median(kubectlMs)), ms(median(warmVsKubectl)), k, '≥ 10×', k >= 10);
const steady = Math.max(...rssSamples);
row('RSS under load (max while at concurrency 8)', '200 MiB (goal)', mb(steady), steady / (200 * 2 ** 20), '≤ 200 MiB', steady <= 200 * 2 ** 20);
const growth = rssEnd / rss1k;
row(`RSS after ${total} deploys vs after 1000`, mb(rss1k), mb(rssEnd), growth, '≤ 1.05×', growth <= 1.05);
const caOk = cold.caFiles.every((n) => n === 1);
row('CA temp files per instance (1 distinct CA)', '1', cold.caFiles.join(','), Math.max(...cold.caFiles), '= 1', caOk);

const commit = (await exec('git', ['rev-parse', '--short', 'HEAD'], { cwd: root })).stdout.trim();
const dirty = (await exec('git', ['status', '--porcelain', 'src', 'scripts', 'package.json'], { cwd: root })).stdout.trim() !== '';
const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${mb(os.totalmem())} RAM, ${os.platform()} ${os.release()}, Node ${process.version}`;
const header = `gke-deployer benchmark, ${new Date().toISOString().slice(0, 10)}, commit ${commit}${dirty ? ' (+ uncommitted changes)' : ''}
machine: ${machine}
${ROUNDS} cold-start rounds, ${WARM} warm deploys per figure, ${total} deploys for memory; heap: ${NODE_OPTIONS}${MALLOC_ARENA_MAX ? `, MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX}` : ''}; medians`;
const table = [
  '| figure | baseline | measured | ratio | goal | |',
  '|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.figure} | ${r.baseline} | ${r.measured} | ${r.ratio.toFixed(2)}× | ${r.goal} | ${r.pass ? 'pass' : 'miss'} |`),
].join('\n');
const importTable = [
  '| import of the entry point alone (with its config) | median |',
  '|---|---|',
  `| dist/index.mjs (bundle + compile cache, production) | ${ms(median(imports.production))} |`,
  `| dist/bundle/index.mjs (bundle, no compile cache) | ${ms(median(imports.bundleNoCache))} |`,
  `| src/index.ts (unbundled, type stripping) | ${ms(median(imports.src))} |`,
].join('\n');
const hop = `context: a bare functions-framework function doing the same raw PATCH, warm: ${ms(median(warm.bareOne))} (${(median(warm.bareOne) / median(warm.rawOne)).toFixed(2)}× the raw PATCH: the HTTP hop and the framework alone)`;
console.log(`\n${header}\n\n${table}\n\n${hop}\n\n${importTable}\n\nallocation per deploy (V8 heap, warm, concurrency 8): ${Math.round(allocatedPerDeploy)} bytes\n`);

await mkdir(path.join(root, 'bench/results'), { recursive: true });
await writeFile(
  path.join(root, 'bench/results/latest.json'),
  JSON.stringify(
    {
      date: new Date().toISOString(),
      commit,
      dirty,
      machine,
      settings: { rounds: ROUNDS, warm: WARM, deploys: total, nodeOptions: NODE_OPTIONS, mallocArenaMax: MALLOC_ARENA_MAX },
      figures: rows,
      bareWarmMs: median(warm.bareOne),
      importMs: { production: median(imports.production), bundleNoCache: median(imports.bundleNoCache), src: median(imports.src) },
      allocationPerDeployBytes: Math.round(allocatedPerDeploy),
      raw: { cold, warm, kubectlMs, warmVsKubectl, tput, rss1k, rssEnd, rssSamplesMax: steady },
    },
    null,
    2,
  ) + '\n',
);
await sandbox?.stop();
