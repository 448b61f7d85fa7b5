// `npm run bench`: the function as Cloud Run runs it (functions-framework's CLI on the
// production bundle, its own process, service.yaml's heap cap) against the sandbox — a `gke`
// cluster looked up through the Container API, an ADC token, verified TLS — and every figure
// against a real baseline program measured in the same run, interleaved:
//  - raw: one server-side apply PATCH over node:https with keep-alive (bench/baseline/raw-patch.mjs);
//  - bare: a bare functions-framework function doing one raw PATCH (bench/baseline/bare-function.mjs);
//  - kubectl: `kubectl apply --server-side`, one process per deploy.
// An OCI release (manifests pushed with oras to the sandbox registry, image pinned by digest)
// is measured next to a file release of the same three objects, in the same run: a cold start
// on each, a new release on a warm instance (fetched and pinned), and a release the instance
// has already fetched (a new event, same tags: tag → digest HEADs only, counted at the registry).
// Prints a table and writes bench/results/latest.json.
// Env: BENCH_DEPLOYS (default 10000: the RSS-after-N figure), BENCH_ROUNDS (cold starts, 10),
// BENCH_WARM (warm deploys per figure, 200), BENCH_OCI_RELEASES (new OCI releases measured
// on a warm instance, 50: each is pushed beforehand), SANDBOX_DIR (reuse a running sandbox).
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { ensureBundle } from '../test/support/bundle.ts';
import { pushImage, pushManifests } from '../test/support/oci.ts';
// @ts-expect-error plain JavaScript baseline, no types
import { rawPatcher } from './baseline/raw-patch.mjs';
import {
  NS, REPO, benchSandbox, coldStart, concurrent as concurrentOf, deployOk as deployOkOn, deploymentTargets, fileTarget, makeDeployment, manifest,
  post, root, rss, serviceSizing, startFunction, writeConfig, type Proc,
} from './support/function.ts';

const exec = promisify(execFile);
const DEPLOYS = Number(process.env.BENCH_DEPLOYS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const WARM = Number(process.env.BENCH_WARM ?? 200);
const OCI_RELEASES = Number(process.env.BENCH_OCI_RELEASES ?? 50);
const log = (line: string) => console.error(`[bench] ${line}`);

interface Patcher {
  patch(obj: unknown): Promise<number>;
  close(): void;
}
const makeRaw = rawPatcher as (o: { server: string; ca: Buffer; token: string; namespace: string; manager: string }) => Patcher;

// --- the sandbox, the config, the baselines' credentials -------------------------------------
const entry = await ensureBundle();
// test/support/oci.ts (the oras pushes) finds the sandbox by SANDBOX_DIR, which this sets for a new one.
const { info, sandbox } = await benchSandbox(log);
const { nodeOptions: NODE_OPTIONS, mallocArenaMax: MALLOC_ARENA_MAX } = await serviceSizing();

const dir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-bench-cfg-'));
const cm = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { greeting: 'hello' } });
const svc = (name: string) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { selector: { app: name }, ports: [{ port: 80 }] } });
await writeFile(path.join(dir, 'one.yaml'), manifest([makeDeployment('one', 'placeholder')]));
await writeFile(path.join(dir, 'three.yaml'), manifest([cm('three'), svc('three'), makeDeployment('three', 'placeholder')]));
// These figures are about apply speed: no digest pinning (the OCI figures below pin, in the sandbox registry).
const targets: Record<string, unknown> = await deploymentTargets(dir, 8);
targets.one = fileTarget('one.yaml');
targets.three = fileTarget('three.yaml');
// The OCI release: the same three objects as three.yaml, pushed as Flux pushes them, its image in
// the sandbox registry (pinned by default there). `oci` deploys it; `three-file` is the file release
// it is compared with, on its own objects.
const BENCH_OCI = `${info.registry.host}/bench/oci`;
const BENCH_OCI_DEPLOY = `${info.registry.host}/bench/oci-deploy`;
const ociFiles = { 'deploy/release.yaml': manifest([cm('oci'), svc('oci'), makeDeployment('oci', 'placeholder')]) };
await writeFile(path.join(dir, 'three-file.yaml'), manifest([cm('three-file'), svc('three-file'), makeDeployment('three-file', 'placeholder')]));
targets['three-file'] = fileTarget('three-file.yaml');
targets.oci = { cluster: 'gke', namespace: NS, manifests: { oci: BENCH_OCI_DEPLOY, tag: '${tag}' }, images: [BENCH_OCI], rollout: { wait: false } };
const config = await writeConfig(dir, info, targets);

// The raw baselines use the function's own identity: a metadata-server access token, the same CA.
const tokenRes = await fetch(`http://${info.env.GCE_METADATA_HOST}/computeMetadata/v1/instance/service-accounts/default/token`, { headers: { 'Metadata-Flavor': 'Google' } });
const token = ((await tokenRes.json()) as { access_token: string }).access_token;
const ca = await readFile(info.caFile);
const raw = makeRaw({ server: info.server, ca, token, namespace: NS, manager: 'bench-raw' });

// The OCI releases, pushed with oras before anything is timed: `warm` (deployed again and
// again), `cold` (each cold-start round's new instance fetches it), and OCI_RELEASES new ones
// (each a new image digest and a new artifact digest of the same objects).
log(`pushing ${OCI_RELEASES + 2} OCI releases`);
const runId = Date.now().toString(36);
async function pushRelease(tag: string): Promise<void> {
  await Promise.all([pushImage('bench/oci', tag), pushManifests('bench/oci-deploy', tag, ociFiles, 'flux')]);
}
await pushRelease(`warm-${runId}`);
await pushRelease(`cold-${runId}`);
const ociNewTags = Array.from({ length: OCI_RELEASES }, (_, i) => `new-${runId}-${i}`);
for (let i = 0; i < ociNewTags.length; i += 4) await Promise.all(ociNewTags.slice(i, i + 4).map(pushRelease));
const registryCounts = async () => ((await (await fetch(info.stats)).json()) as { registry: { manifestGets: number; blobGets: number; manifestHeads: number } }).registry;

// --- processes ------------------------------------------------------------------------------
const launch = { info, dir, config, nodeOptions: NODE_OPTIONS, mallocArenaMax: MALLOC_ARENA_MAX };
const startProcess = (source: string, env: Record<string, string>, opts: { probe?: boolean } = {}) => startFunction(launch, source, env, opts);

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
    // REGISTRY_HOST: the config names the sandbox registry (the OCI target), which loading checks.
    env: { ...process.env, NODE_OPTIONS, DEPLOYER_CONFIG: config, CONTAINER_API_ENDPOINT: '127.0.0.1:1', GCE_METADATA_HOST: '127.0.0.1:1', REGISTRY_HOST: info.env.REGISTRY_HOST ?? '' },
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
const cold = { fn: [] as number[], bare: [] as number[], recipe: [] as number[], caFiles: [] as number[], oci: [] as number[], file: [] as number[] };
const bareSource = path.join(root, 'bench/baseline/bare-function.mjs');
// The card's recipe, written plainly on the same four libraries (bench/baseline/card-recipe.mjs).
const recipeSource = path.join(root, 'bench/baseline/card-recipe.mjs');
const recipeEnv = { BASELINE_CLUSTER: `projects/${info.project}/locations/${info.location}/clusters/${info.cluster}`, BASELINE_NAMESPACE: NS };
for (let i = 0; i < ROUNDS; i++) {
  const f = await startProcess(entry, {});
  cold.fn.push(await coldStart(f, { target: 'one', image: image() }));
  const ca = (await readdir(f.tmp)).filter((d) => d.startsWith('gke-deployer-ca-'));
  cold.caFiles.push((await Promise.all(ca.map(async (d) => (await readdir(path.join(f.tmp, d))).length))).reduce((a, b) => a + b, 0));
  await f.stop();
  const b = await startProcess(bareSource, bareEnv);
  cold.bare.push(await coldStart(b, { image: image() }));
  await b.stop();
  const r = await startProcess(recipeSource, recipeEnv);
  cold.recipe.push(await coldStart(r, { image: image() }));
  await r.stop();
  // A new instance and an OCI release it has never fetched, next to a file release of the same objects.
  const o = await startProcess(entry, {});
  cold.oci.push(await coldStart(o, { target: 'oci', image: `${BENCH_OCI}:cold-${runId}` }));
  await o.stop();
  const t = await startProcess(entry, {});
  cold.file.push(await coldStart(t, { target: 'three-file', image: image() }));
  await t.stop();
}

// --- 3. warm: one instance, kept as Cloud Run keeps it ---------------------------------------
log(`warm deploys (${WARM} per figure)`);
const fn = await startProcess(entry, {}, { probe: true });
await coldStart(fn, { target: 'one', image: image() });
await deployOkOn(fn, { target: 'three', image: image() });
await raw.patch(makeDeployment('raw-one', image()));
async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}
/** A deploy that did what it was asked: 200 and `applied` (the bench's targets do not wait for rollouts). */
const deployOk = (body: Record<string, unknown>, instance: Proc = fn) => deployOkOn(instance, body);
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

// The OCI release on a warm instance of its own (so the memory figures below stay those of the
// apply path alone), interleaved with the file release of the same objects. Already fetched (a
// new event, same tags) vs the file release with the same image again; a new release (new image
// and artifact digests: fetched and pinned) vs the file release with a new image.
log(`OCI releases on a warm instance (${WARM} fetched, ${OCI_RELEASES} new)`);
const ociFn = await startProcess(entry, {});
const oci = { fetched: [] as number[], fileSame: [] as number[], fresh: [] as number[], fileNew: [] as number[] };
await coldStart(ociFn, { target: 'oci', image: `${BENCH_OCI}:warm-${runId}` });
await deployOk({ target: 'three-file', image: `${REPO}:same` }, ociFn);
const countsBefore = await registryCounts();
for (let i = 0; i < WARM; i++) {
  oci.fetched.push(await timed(() => deployOk({ target: 'oci', image: `${BENCH_OCI}:warm-${runId}` }, ociFn)));
  oci.fileSame.push(await timed(() => deployOk({ target: 'three-file', image: `${REPO}:same` }, ociFn)));
}
const countsAfter = await registryCounts();
// A fetched release fetches nothing: what the registry saw during those deploys.
const warmFetches = { manifestGets: countsAfter.manifestGets - countsBefore.manifestGets, blobGets: countsAfter.blobGets - countsBefore.blobGets, manifestHeads: countsAfter.manifestHeads - countsBefore.manifestHeads };
for (const tag of ociNewTags) {
  oci.fresh.push(await timed(() => deployOk({ target: 'oci', image: `${BENCH_OCI}:${tag}` }, ociFn)));
  oci.fileNew.push(await timed(() => deployOk({ target: 'three-file', image: image() }, ociFn)));
}
await ociFn.stop();

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
const concurrent = (n: number, run: (worker: number) => Promise<unknown>, onProgress?: (done: number) => Promise<void>) => concurrentOf(n, 8, run, onProgress);
log('throughput at concurrency 8');
const rssSamples: number[] = [];
const sampler = setInterval(() => void rss(fn.child.pid!).then((r) => rssSamples.push(r)), 100);
const tput = { fn: [] as number[], raw: [] as number[] };
for (let r = 0; r < 3; r++) {
  tput.fn.push(await concurrent(WARM, (w) => deployOk({ target: `t${w}`, image: image() })));
  tput.raw.push(await concurrent(WARM, (w) => raw.patch(makeDeployment(`raw-t${w}`, image()))));
}
clearInterval(sampler);

// The RSS figure's baseline: the bare function under the same load (concurrency 8, as long).
log('RSS of the bare function at concurrency 8');
const bareLoad = await startProcess(bareSource, bareEnv);
await coldStart(bareLoad, { image: image() });
const bareRssSamples: number[] = [];
const bareSampler = setInterval(() => void rss(bareLoad.child.pid!).then((r) => bareRssSamples.push(r)), 100);
for (let r = 0; r < 3; r++) {
  await concurrent(WARM, () => deployOkOn(bareLoad, { image: image() }));
}
clearInterval(bareSampler);
await bareLoad.stop();

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
  /** Absent: a figure reported with no goal. */
  pass?: boolean;
  /** The spread of the samples behind the medians: measured min–max (baseline min–max). */
  spread: string;
}
const rows: Row[] = [];
/** min–max of samples, in the figure's unit. */
const span = (xs: number[], unit: (x: number) => string) => (xs.length === 0 ? '—' : `${unit(Math.min(...xs))}–${unit(Math.max(...xs))}`);
const spreadOf = (measured: number[], baseline: number[] | undefined, unit: (x: number) => string) =>
  `${span(measured, unit)}${baseline ? ` (${span(baseline, unit)})` : ''}`;
const row = (figure: string, baseline: string, measured: string, ratio: number, goal: string, pass?: boolean, spread = '—') =>
  rows.push({ figure, baseline, measured, ratio, goal, ...(pass !== undefined && { pass }), spread });
const msN = (x: number) => x.toFixed(1);
const perS = (x: number) => `${x.toFixed(0)}/s`;
const c = median(cold.fn) / median(cold.bare);
row('cold start, spawn → first 200 on POST /deploy (vs bare ff + 1 raw PATCH)', ms(median(cold.bare)), ms(median(cold.fn)), c, '≤ 2×', c <= 2, spreadOf(cold.fn, cold.bare, msN));
const cr = median(cold.fn) / median(cold.recipe);
row('cold start, spawn → first 200 on POST /deploy (vs the card recipe on the same four libraries)', ms(median(cold.recipe)), ms(median(cold.fn)), cr, '≤ 0.5×', cr <= 0.5, spreadOf(cold.fn, cold.recipe, msN));
const w1 = median(warm.one) / median(warm.rawOne);
row('warm deploy, 1 Deployment (vs 1 raw SSA PATCH)', ms(median(warm.rawOne)), ms(median(warm.one)), w1, '≤ 1.15×', w1 <= 1.15, spreadOf(warm.one, warm.rawOne, msN));
const wb = median(warm.one) / median(warm.bareOne);
row('warm deploy, 1 Deployment (vs the bare function doing 1 raw SSA PATCH)', ms(median(warm.bareOne)), ms(median(warm.one)), wb, '≤ 1.05×', wb <= 1.05, spreadOf(warm.one, warm.bareOne, msN));
const w3 = median(warm.three) / median(warm.rawThree);
row('warm deploy, 3 objects (vs 3 raw PATCHes in a row)', ms(median(warm.rawThree)), ms(median(warm.three)), w3, '≤ 1.15×', w3 <= 1.15, spreadOf(warm.three, warm.rawThree, msN));
const tp = median(tput.fn) / median(tput.raw);
row('throughput, concurrency 8, distinct Deployments (vs raw PATCH loop)', `${median(tput.raw).toFixed(0)}/s`, `${median(tput.fn).toFixed(0)}/s`, tp, '≥ 0.8×', tp >= 0.8, spreadOf(tput.fn, tput.raw, perS));
const k = median(kubectlMs) / median(warmVsKubectl);
row('warm deploy vs `kubectl apply --server-side` process (speed-up)', ms(median(kubectlMs)), ms(median(warmVsKubectl)), k, '≥ 10×', k >= 10, spreadOf(warmVsKubectl, kubectlMs, msN));
// 200 MiB: with 8 hostile 31 MiB bodies on top (bench:memory) it stays under 80% of service.yaml's 512 MiB.
const steady = Math.max(...rssSamples);
const bareSteady = Math.max(...bareRssSamples);
row('RSS under load (max while at concurrency 8; baseline: the bare function under the same load)', mb(bareSteady), mb(steady), steady / bareSteady, '≤ 200 MiB', steady <= 200 * 2 ** 20);
const growth = rssEnd / rss1k;
row(`RSS after ${total} deploys vs after 1000`, mb(rss1k), mb(rssEnd), growth, '≤ 1.05×', growth <= 1.05);
const oc = median(cold.oci) / median(cold.file);
row('OCI release, cold start: spawn → first 200, release fetched and pinned (vs a file release, 3 objects each)', ms(median(cold.file)), ms(median(cold.oci)), oc, '—', undefined, spreadOf(cold.oci, cold.file, msN));
const on = median(oci.fresh) / median(oci.fileNew);
row('OCI release, warm instance, a new release: fetched and pinned (vs a file release, new image; 3 objects each)', ms(median(oci.fileNew)), ms(median(oci.fresh)), on, '—', undefined, spreadOf(oci.fresh, oci.fileNew, msN));
const of = median(oci.fetched) / median(oci.fileSame);
row('OCI release, warm instance, already fetched: tags resolved only (vs a file release, same image; 3 objects each)', ms(median(oci.fileSame)), ms(median(oci.fetched)), of, '—', undefined, spreadOf(oci.fetched, oci.fileSame, msN));
row(`OCI release already fetched: manifest + blob GETs at the registry over ${WARM} deploys`, '0', String(warmFetches.manifestGets + warmFetches.blobGets), warmFetches.manifestGets + warmFetches.blobGets, '= 0', warmFetches.manifestGets + warmFetches.blobGets === 0);
const caOk = cold.caFiles.every((n) => n === 1);
row('CA temp files per instance (1 distinct CA)', '1', cold.caFiles.join(','), Math.max(...cold.caFiles), '= 1', caOk);

const commit = (await exec('git', ['rev-parse', '--short', 'HEAD'], { cwd: root })).stdout.trim();
const dirty = (await exec('git', ['status', '--porcelain', 'src', 'scripts', 'bench', 'package.json', 'package-lock.json', 'service.yaml'], { cwd: root })).stdout.trim() !== '';
const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${mb(os.totalmem())} RAM, ${os.platform()} ${os.release()}, Node ${process.version}`;
const header = `gke-deployer benchmark, ${new Date().toISOString().slice(0, 10)}, commit ${commit}${dirty ? ' (+ uncommitted changes)' : ''}
machine: ${machine}
${ROUNDS} cold-start rounds, ${WARM} warm deploys per figure, ${total} deploys for memory; heap: ${NODE_OPTIONS}${MALLOC_ARENA_MAX ? `, MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX}` : ''}; medians`;
const table = [
  '| figure | baseline | measured | ratio | goal | | spread: measured (baseline), min–max |',
  '|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.figure} | ${r.baseline} | ${r.measured} | ${r.ratio.toFixed(2)}× | ${r.goal} | ${r.pass === undefined ? '' : r.pass ? 'pass' : 'miss'} | ${r.spread} |`),
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
      settings: { rounds: ROUNDS, warm: WARM, ociReleases: OCI_RELEASES, deploys: total, nodeOptions: NODE_OPTIONS, mallocArenaMax: MALLOC_ARENA_MAX },
      figures: rows,
      bareWarmMs: median(warm.bareOne),
      importMs: { production: median(imports.production), bundleNoCache: median(imports.bundleNoCache), src: median(imports.src) },
      allocationPerDeployBytes: Math.round(allocatedPerDeploy),
      raw: { cold, warm, oci, ociWarmRegistryRequests: warmFetches, kubectlMs, warmVsKubectl, tput, rss1k, rssEnd, rssSamplesMax: steady, bareRssSamplesMax: bareSteady },
    },
    null,
    2,
  ) + '\n',
);
await sandbox?.stop();
