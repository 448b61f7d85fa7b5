// Child processes of the sandbox. Each one is started under `setpriv --pdeathsig KILL`
// so the kernel kills it if the process that started it dies for any reason (a crashed
// test runner included): nothing is left running after exit.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
  /** Whether the process has exited. */
  readonly exited: boolean;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export function startProcess(opts: StartOptions): Proc {
  const log = createWriteStream(opts.logFile, { flags: 'a' });
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', opts.command, ...opts.args], {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  let exited = false;
  const gone = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
    child.once('error', () => {
      exited = true;
      resolve();
    });
  });
  // End the log on 'close', not 'exit': output can still be in the pipes at 'exit',
  // and writing it to an ended stream would throw. A log error must never crash us.
  child.once('close', () => log.end());
  log.on('error', () => {});
  return {
    name: opts.name,
    child,
    logFile: opts.logFile,
    get exited() {
      return exited;
    },
    async stop(graceMs = 5000) {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await gone;
      clearTimeout(timer);
    },
  };
}

/** A free TCP port on 127.0.0.1 (the OS picks it; the socket is closed before use). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const addr = srv.address();
  srv.close();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

/**
 * Polls `check` until it returns true. Fails early if `proc` exits, and after
 * `timeoutMs`, naming the log file to read.
 */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  opts: { timeoutMs: number; proc?: Proc; intervalMs?: number },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (opts.proc?.exited) {
      throw new Error(`${opts.proc.name} exited while waiting for ${what}; see ${opts.proc.logFile}`);
    }
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    await sleep(opts.intervalMs ?? 200);
  }
  const hint = opts.proc ? `; see ${opts.proc.logFile}` : '';
  const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
  throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${what}${cause}${hint}`);
}

/** Whether a process with this pid exists (signal 0 checks without signalling). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
