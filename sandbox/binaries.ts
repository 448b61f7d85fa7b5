// The sandbox's binaries: built once by build.sh (control plane) and build-registry.sh
// (registry, oras) into a cache outside the repo.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Builds (or finds cached) binaries; build progress goes to stderr. Returns the bin folder. */
export async function ensureBinaries(): Promise<string> {
  return process.env.SANDBOX_BIN_DIR || build('build.sh');
}

/** The registry and oras binaries (build-registry.sh: a cache key of their own). */
export async function ensureRegistryBinaries(): Promise<string> {
  return process.env.SANDBOX_REGISTRY_BIN_DIR || build('build-registry.sh');
}

async function build(name: string): Promise<string> {
  const script = fileURLToPath(new URL(`./${name}`, import.meta.url));
  const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const dir = out.trim().split('\n').pop();
  if (code !== 0 || !dir) throw new Error(`sandbox/${name} failed (exit ${code})`);
  return dir;
}
