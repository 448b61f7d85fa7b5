// Global setup for `npm test`: one sandbox for the whole run, in a fresh folder, shared
// with every test file through SANDBOX_DIR. A running sandbox named by SANDBOX_DIR
// (e.g. from `npm run sandbox`) is reused instead, for a fast edit-test loop.
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readSandboxInfo, startSandbox, type Sandbox } from '../sandbox/index.ts';
import { isRunning } from '../sandbox/process.ts';
import { findLeaks, leakCheckCounts, resetLeakCheck } from './support/leaks.ts';

let sandbox: Sandbox | undefined;

async function alive(dir: string): Promise<boolean> {
  if (!existsSync(path.join(dir, 'sandbox.json'))) return false;
  const info = await readSandboxInfo(dir);
  return info.pids.every(isRunning);
}

export async function globalSetup(): Promise<void> {
  const reuse = process.env.SANDBOX_DIR;
  if (reuse && (await alive(reuse))) {
    console.error(`[test] reusing the sandbox in ${reuse}`);
    resetLeakCheck(reuse);
  } else {
    const dir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-test-'));
    const started = Date.now();
    sandbox = await startSandbox({ dir, log: (l) => console.error(`[sandbox] ${l}`) });
    console.error(`[test] sandbox up in ${((Date.now() - started) / 1000).toFixed(1)}s at ${dir}`);
    process.env.SANDBOX_DIR = dir;
  }
  // Read by gRPC once, when it loads (which may be before a test asks for the sandbox's env):
  // every test process starts with it, so a function run in it trusts the Container API.
  process.env.GRPC_DEFAULT_SSL_ROOTS_FILE_PATH = (await readSandboxInfo(process.env.SANDBOX_DIR!)).env.GRPC_DEFAULT_SSL_ROOTS_FILE_PATH;
}

export async function globalTeardown(): Promise<void> {
  const dir = process.env.SANDBOX_DIR;
  await sandbox?.stop();
  if (!dir) return;
  // Every token and secret the tests used or configured and every token the sandbox minted (the
  // function's ADC tokens), against every log line, answer and stderr line the function gave.
  const leaks = findLeaks(dir);
  const { secrets, outputs } = leakCheckCounts(dir);
  console.error(`[test] leak check: ${secrets} secrets and tokens against ${outputs} log lines, answers and stderr lines: ${leaks.length} leaked`);
  if (leaks.length > 0) {
    for (const leak of leaks) console.error(`[test] LEAKED ${leak.secret} in: ${leak.line}`);
    throw new Error(`${leaks.length} secrets appeared in the function's logs or answers`);
  }
}
