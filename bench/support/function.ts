// What bench/run.ts and bench/memory.ts share: the sandbox, service.yaml's sizing, the bench
// targets' config, and the function as Cloud Run runs it (functions-framework's CLI on the
// production bundle, its own process, service.yaml's NODE_OPTIONS and MALLOC_ARENA_MAX).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { readSandboxInfo, startSandbox, type Sandbox, type SandboxInfo } from '../../sandbox/index.ts';
import { freePort } from '../../sandbox/process.ts';
// @ts-expect-error plain JavaScript baseline, no types
import { deployment } from '../baseline/raw-patch.mjs';

const exec = promisify(execFile);
export const root = path.resolve(import.meta.dirname, '../..');
const cli = path.join(root, 'node_modules/@google-cloud/functions-framework/build/src/main.js');
export const REPO = 'europe-docker.pkg.dev/sandbox-project/apps/bench';
export const NS = 'bench';
export const MiB = 2 ** 20;

export const makeDeployment = deployment as (name: string, image: string) => { metadata: { name: string } };
export const manifest = (objs: unknown[]) => objs.map((o) => stringify(o)).join('---\n');

/** The sandbox named by SANDBOX_DIR, or a new one (then SANDBOX_DIR is set, for test/support/oci.ts); the bench namespace exists. */
export async function benchSandbox(log: (line: string) => void): Promise<{ info: SandboxInfo; sandbox: Sandbox | undefined }> {
  let sandbox: Sandbox | undefined;
  let info: SandboxInfo;
  if (process.env.SANDBOX_DIR) info = await readSandboxInfo(process.env.SANDBOX_DIR);
  else {
    const sandboxDir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-bench-'));
    sandbox = await startSandbox({ dir: sandboxDir, pubsub: false, log });
    info = sandbox.info;
    process.env.SANDBOX_DIR = sandboxDir;
  }
  await exec(info.kubectl, ['--kubeconfig', info.kubeconfig, 'create', 'namespace', NS]).catch(() => undefined);
  return { info, sandbox };
}

export interface Sizing {
  /** The memory limit, MiB. */
  memoryMiB: number;
  containerConcurrency: number;
  nodeOptions: string;
  mallocArenaMax: string | undefined;
}

/** service.yaml's instance sizing: what an instance's RSS is measured under. */
export async function serviceSizing(): Promise<Sizing> {
  const service = parse(await readFile(path.join(root, 'service.yaml'), 'utf8')) as {
    spec: { template: { spec: { containerConcurrency: number; containers: { env: { name: string; value?: string }[]; resources: { limits: { memory: string } } }[] } } };
  };
  const container = service.spec.template.spec.containers[0]!;
  const [, amount, unit] = /^(\d+)(Mi|Gi)$/.exec(container.resources.limits.memory) ?? [];
  return {
    memoryMiB: Number(amount) * (unit === 'Gi' ? 1024 : 1),
    containerConcurrency: service.spec.template.spec.containerConcurrency,
    nodeOptions: container.env.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '',
    mallocArenaMax: container.env.find((e) => e.name === 'MALLOC_ARENA_MAX')?.value,
  };
}

/** A file target on the sandbox's `gke` cluster that does not wait for rollouts. pinDigests: false: REPO is a real-looking Artifact Registry name the sandbox cannot reach. */
export const fileTarget = (file: string) => ({ cluster: 'gke', namespace: NS, manifests: [file], images: [REPO], rollout: { wait: false }, pinDigests: false });

/** Writes `t0.yaml`… (one Deployment each, distinct names) into `dir` and returns their targets `t0`… */
export async function deploymentTargets(dir: string, count: number): Promise<Record<string, unknown>> {
  const targets: Record<string, unknown> = {};
  for (let i = 0; i < count; i++) {
    await writeFile(path.join(dir, `t${i}.yaml`), manifest([makeDeployment(`t${i}`, 'placeholder')]));
    targets[`t${i}`] = fileTarget(`t${i}.yaml`);
  }
  return targets;
}

/** Writes `dir`/deployer.yaml: no caller auth, the sandbox's `gke` cluster, `targets`. */
export async function writeConfig(dir: string, info: SandboxInfo, targets: Record<string, unknown>): Promise<string> {
  const file = path.join(dir, 'deployer.yaml');
  await writeFile(file, stringify({ auth: { direct: 'none' }, clusters: { gke: { gke: { project: info.project, location: info.location, name: info.cluster } } }, targets }));
  return file;
}

export interface Proc {
  child: ChildProcess;
  url: string;
  port: number;
  tmp: string;
  spawnedAt: number;
  stop(): Promise<void>;
}

export interface Launch {
  info: SandboxInfo;
  /** The config's folder (the process's cwd) and file. */
  dir: string;
  config: string;
  nodeOptions: string;
  mallocArenaMax: string | undefined;
}

/** functions-framework's CLI serving `source` (the bundle, or a baseline) as Cloud Run starts it. */
export async function startFunction(launch: Launch, source: string, env: Record<string, string> = {}, opts: { probe?: boolean } = {}): Promise<Proc> {
  const port = await freePort();
  const tmp = await mkdtemp(path.join(tmpdir(), 'gke-deployer-bench-proc-'));
  const nodeOptions = [launch.nodeOptions, opts.probe ? `--import=${path.join(root, 'bench/support/probe.mjs')}` : ''].filter(Boolean).join(' ');
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [cli, '--target=deploy', `--source=${source}`, `--port=${port}`], {
    cwd: launch.dir,
    env: {
      ...process.env,
      ...launch.info.env,
      ...env,
      NODE_OPTIONS: nodeOptions,
      // glibc's malloc tuning too: it is part of what an instance's RSS is.
      ...(launch.mallocArenaMax !== undefined && { MALLOC_ARENA_MAX: launch.mallocArenaMax }),
      NODE_ENV: 'production',
      TMPDIR: tmp,
      DEPLOYER_CONFIG: launch.config,
    },
    stdio: ['ignore', 'ignore', 'inherit', ...(opts.probe ? ['ipc' as const] : [])],
  });
  const exited = new Promise((r) => child.once('exit', r));
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    port,
    tmp,
    spawnedAt,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The HTTP status and the answer's `status` (every program here answers `applied` for a deploy done without a wait). */
export const post = async (url: string, body: unknown): Promise<{ code: number; status: unknown; text: string }> => {
  const res = await fetch(`${url}/deploy`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  let status: unknown;
  try {
    status = (JSON.parse(text) as { status?: unknown }).status;
  } catch {
    status = undefined;
  }
  return { code: res.status, status, text };
};

/** Spawn → first 200 `applied` on POST /deploy (retried while the port does not answer yet). */
export async function coldStart(p: Proc, body: unknown): Promise<number> {
  for (;;) {
    const res = await post(p.url, body).catch(() => undefined);
    if (res?.code === 200 && res.status === 'applied') return performance.now() - p.spawnedAt;
    if (res !== undefined) throw new Error(`cold deploy ${JSON.stringify(body)} answered ${res.code} ${res.text.slice(0, 300)}`);
    if (p.child.exitCode !== null) throw new Error(`process exited ${p.child.exitCode}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A deploy that did what it was asked: 200 and `applied` (the bench's targets do not wait for rollouts). */
export async function deployOk(instance: Proc, body: Record<string, unknown>): Promise<void> {
  const res = await post(instance.url, body);
  if (res.code !== 200 || res.status !== 'applied') throw new Error(`deploy ${JSON.stringify(body)} answered ${res.code} ${res.text.slice(0, 300)}`);
}

/** Resident memory now (VmRSS) and the process's peak so far (VmHWM), bytes. */
export async function memory(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}
export const rss = async (pid: number): Promise<number> => (await memory(pid)).rss;

/** `n` runs of `run`, `width` at a time (each worker its own index); answers runs per second. */
export async function concurrent(n: number, width: number, run: (worker: number) => Promise<unknown>, onProgress?: (done: number) => Promise<void>): Promise<number> {
  let started = 0;
  let finished = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: width }, async (_, w) => {
      while (started < n) {
        started++;
        await run(w);
        await onProgress?.(++finished);
      }
    }),
  );
  return (n / (performance.now() - t)) * 1000;
}
