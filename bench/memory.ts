// `npm run bench:memory`: what sizes service.yaml's instance. The function as Cloud Run runs it
// (functions-framework's CLI on the production bundle, service.yaml's NODE_OPTIONS and
// MALLOC_ARENA_MAX, the heap cap replaced per configuration) against the sandbox, one fresh
// process per configuration, RSS read from /proc:
//  1. idle: after /health first answers, then 2 s;
//  2. plateau: BENCH_MEMORY_DEPLOYS deploys at concurrency 8 over distinct Deployments
//     (rollout.wait false), RSS after 1000 and at the end;
//  3. load: deploys over distinct Deployments at 8, then 16 at once, BENCH_LOAD_DEPLOYS each,
//     while 8 hostile clients send 31 MiB bodies (Cloud Run's cap is 32 MiB) in a loop, with
//     Content-Length and chunked, to /deploy and /webhooks/github; each must get 413. The peak
//     is RSS sampled every 10 ms; the lifetime peak also takes the process's VmHWM (what the
//     samples miss; the kernel updates it lazily, so it can trail a sample).
// A configuration fits when its lifetime peak stays under 80% of its memory: Cloud Run's
// in-memory filesystem counts against the same limit, and spikes need room.
// Env: BENCH_MEMORY_CONFIGS (memory MiB/heap MiB/concurrency, comma-separated, e.g.
// "1024/512/4,512/256/8"; default service.yaml's own), BENCH_MEMORY_DEPLOYS (5000),
// BENCH_LOAD_DEPLOYS (2000 per load phase), SANDBOX_DIR (reuse a running sandbox).
// The compile cache in dist/ is made with service.yaml's heap cap; V8 accepts it under another
// (checked with NODE_DEBUG_NATIVE=COMPILE_CACHE: same cache key, "accepted").
import { mkdtemp } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureBundle } from '../test/support/bundle.ts';
import { rawRequest } from '../test/hostile/client.ts';
import { MiB, REPO, benchSandbox, concurrent, deployOk, deploymentTargets, memory, serviceSizing, startFunction, writeConfig, type Proc } from './support/function.ts';

const log = (line: string) => console.error(`[bench:memory] ${line}`);
const PLATEAU_DEPLOYS = Number(process.env.BENCH_MEMORY_DEPLOYS ?? 5000);
const LOAD_DEPLOYS = Number(process.env.BENCH_LOAD_DEPLOYS ?? 2000);
const PLATEAU_WIDTH = 8;
const LOAD_WIDTHS = [8, 16];
const HOSTILE = { clients: 8, bytes: 31 * MiB };
const FITS = 0.8;

const sizing = await serviceSizing();
interface Config {
  memoryMiB: number;
  heapMiB: number;
  concurrency: number;
}
const serviceHeap = Number(/--max-old-space-size=(\d+)/.exec(sizing.nodeOptions)?.[1]);
const configs: Config[] = (process.env.BENCH_MEMORY_CONFIGS ?? `${sizing.memoryMiB}/${serviceHeap}/${sizing.containerConcurrency}`).split(',').map((c) => {
  const [memoryMiB, heapMiB, concurrency] = c.split('/').map(Number);
  if (!memoryMiB || !heapMiB || !concurrency) throw new Error(`BENCH_MEMORY_CONFIGS: "${c}" is not memory/heap/concurrency`);
  return { memoryMiB, heapMiB, concurrency };
});

const entry = await ensureBundle();
const { info, sandbox } = await benchSandbox(log);
const dir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-bench-mem-'));
const config = await writeConfig(dir, info, await deploymentTargets(dir, Math.max(PLATEAU_WIDTH, ...LOAD_WIDTHS)));
let seq = 0;
const image = () => `${REPO}:m${++seq}`;
const mb = (bytes: number) => Math.round(bytes / MiB);

async function started(fn: Proc): Promise<void> {
  for (;;) {
    if (fn.child.exitCode !== null) throw new Error(`the function exited ${fn.child.exitCode}`);
    const ok = await fetch(`${fn.url}/health`).then((r) => r.ok, () => false);
    if (ok) return;
    await sleep(20);
  }
}

/** Runs `work` while sampling the process's RSS every 10 ms; answers the highest sample. */
async function sampled(fn: Proc, work: () => Promise<unknown>): Promise<number> {
  let peak = 0;
  let reading = false;
  const timer = setInterval(() => {
    if (reading) return;
    reading = true;
    void memory(fn.child.pid!)
      .then((m) => (peak = Math.max(peak, m.rss)))
      .catch(() => undefined)
      .finally(() => (reading = false));
  }, 10);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, (await memory(fn.child.pid!)).rss);
}

/** 8 clients sending 31 MiB bodies in a loop until `done`; answers how many were refused (all must be). */
async function hostile(fn: Proc, done: Promise<unknown>): Promise<number> {
  let stop = false;
  void done.finally(() => (stop = true));
  let refused = 0;
  await Promise.all(
    Array.from({ length: HOSTILE.clients }, async (_, c) => {
      for (let i = 0; !stop; i++) {
        const declared = (c + i) % 2 === 0;
        const a = await rawRequest(fn.port, {
          path: c % 2 ? '/deploy' : '/webhooks/github',
          headers: { 'content-type': 'application/json' },
          stream: { total: HOSTILE.bytes, ...(declared && { declared: HOSTILE.bytes }) },
        });
        if (a.status !== 413) throw new Error(`a ${HOSTILE.bytes}-byte body answered ${a.status} ${a.text.slice(0, 200)}`);
        refused++;
      }
    }),
  );
  return refused;
}

interface Result extends Config {
  idle: number;
  plateau1k: number;
  plateauEnd: number;
  /** RSS every 1000 deploys of the plateau. */
  series: number[];
  load: { width: number; peak: number; refused: number; deploysPerS: number }[];
  lifetimePeak: number;
}
const results: Result[] = [];
for (const c of configs) {
  const nodeOptions = /--max-old-space-size=\d+/.test(sizing.nodeOptions)
    ? sizing.nodeOptions.replace(/--max-old-space-size=\d+/, `--max-old-space-size=${c.heapMiB}`)
    : `${sizing.nodeOptions} --max-old-space-size=${c.heapMiB}`.trim();
  log(`${c.memoryMiB} MiB, concurrency ${c.concurrency}: NODE_OPTIONS=${nodeOptions}${sizing.mallocArenaMax ? ` MALLOC_ARENA_MAX=${sizing.mallocArenaMax}` : ''}`);
  const fn = await startFunction({ info, dir, config, nodeOptions, mallocArenaMax: sizing.mallocArenaMax }, entry);
  try {
    await started(fn);
    await sleep(2000);
    const idle = (await memory(fn.child.pid!)).rss;
    log(`  idle ${mb(idle)} MiB; plateau: ${PLATEAU_DEPLOYS} deploys at concurrency ${PLATEAU_WIDTH}`);
    let plateau1k = 0;
    const series: number[] = [];
    await concurrent(
      PLATEAU_DEPLOYS,
      PLATEAU_WIDTH,
      (w) => deployOk(fn, { target: `t${w}`, image: image() }),
      async (done) => {
        if (done === Math.min(1000, PLATEAU_DEPLOYS)) plateau1k = (await memory(fn.child.pid!)).rss;
        if (done % 1000 === 0) {
          series.push((await memory(fn.child.pid!)).rss);
          log(`  ${done} deploys, RSS ${mb(series.at(-1)!)} MiB`);
        }
      },
    );
    const plateauEnd = (await memory(fn.child.pid!)).rss;
    const load: Result['load'] = [];
    for (const width of LOAD_WIDTHS) {
      log(`  load: ${LOAD_DEPLOYS} deploys at ${width} at once + ${HOSTILE.clients} hostile ${HOSTILE.bytes / MiB} MiB bodies`);
      let deploysPerS = 0;
      let refused = 0;
      const peak = await sampled(fn, async () => {
        const deploys = concurrent(LOAD_DEPLOYS, width, (w) => deployOk(fn, { target: `t${w}`, image: image() }));
        const bodies = hostile(fn, deploys.catch(() => undefined));
        [deploysPerS, refused] = await Promise.all([deploys, bodies]);
      });
      load.push({ width, peak, refused, deploysPerS });
      log(`  peak ${mb(peak)} MiB, ${refused} bodies refused, ${deploysPerS.toFixed(0)} deploys/s`);
    }
    const lifetimePeak = Math.max((await memory(fn.child.pid!)).peak, ...load.map((l) => l.peak));
    results.push({ ...c, idle, plateau1k, plateauEnd, series, load, lifetimePeak });
  } finally {
    await fn.stop();
  }
}

const header = `gke-deployer memory, ${new Date().toISOString().slice(0, 10)}; ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}
NODE_OPTIONS as service.yaml (${sizing.nodeOptions}) with the heap cap below${sizing.mallocArenaMax ? `, MALLOC_ARENA_MAX=${sizing.mallocArenaMax}` : ''}; plateau: ${PLATEAU_DEPLOYS} deploys at concurrency ${PLATEAU_WIDTH}; load: ${LOAD_DEPLOYS} deploys per phase + ${HOSTILE.clients} clients sending ${HOSTILE.bytes / MiB} MiB bodies; MiB`;
const table = [
  `| memory / heap cap / concurrency | idle | after ${Math.min(1000, PLATEAU_DEPLOYS)} deploys | after ${PLATEAU_DEPLOYS} | ${LOAD_WIDTHS.map((w) => `peak, ${w} deploys + ${HOSTILE.clients} hostile`).join(' | ')} | lifetime peak (samples, VmHWM) | of memory | fits (< ${FITS * 100}%) |`,
  `|---|---|---|---|${LOAD_WIDTHS.map(() => '---|').join('')}---|---|---|`,
  ...results.map(
    (r) =>
      `| ${r.memoryMiB} / ${r.heapMiB} / ${r.concurrency} | ${mb(r.idle)} | ${mb(r.plateau1k)} | ${mb(r.plateauEnd)} | ${r.load.map((l) => mb(l.peak)).join(' | ')} | ${mb(r.lifetimePeak)} | ${((r.lifetimePeak / (r.memoryMiB * MiB)) * 100).toFixed(0)}% | ${r.lifetimePeak <= FITS * r.memoryMiB * MiB ? 'yes' : 'no'} |`,
  ),
].join('\n');
const detail = results.map((r) => `${r.memoryMiB}/${r.heapMiB}/${r.concurrency}: RSS every 1000 deploys ${r.series.map(mb).join(', ')}; ${r.load.map((l) => `at ${l.width}: ${l.deploysPerS.toFixed(0)} deploys/s, ${l.refused} bodies refused (413)`).join('; ')}`).join('\n');
console.log(`\n${header}\n\n${table}\n\n${detail}\n`);
await sandbox?.stop();
