// The control-plane binaries: built once by build.sh into a cache outside the repo.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('./build.sh', import.meta.url));

/** Builds (or finds cached) binaries; build progress goes to stderr. Returns the bin folder. */
export async function ensureBinaries(): Promise<string> {
  if (process.env.SANDBOX_BIN_DIR) return process.env.SANDBOX_BIN_DIR;
  const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const dir = out.trim().split('\n').pop();
  if (code !== 0 || !dir) throw new Error(`sandbox/build.sh failed (exit ${code})`);
  return dir;
}
