// Short-lived commands (openssl, kubectl), still launched through startProcess so
// they die with us. Output is captured in memory; the log file only gets what the
// caller chooses to write (kubectl output may hold tokens).
import { startProcess } from '../process.ts';

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export async function run(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const proc = startProcess({ name: command, command, args, logFile: '/dev/null', env: opts.env, cwd: opts.cwd });
  let stdout = '';
  let stderr = '';
  proc.child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  proc.child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<number>((resolve) => {
    proc.child.once('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    proc.child.once('error', (err) => {
      stderr += String(err);
      resolve(127);
    });
  });
  const timer = opts.timeoutMs ? setTimeout(() => void proc.stop(1000), opts.timeoutMs) : undefined;
  const code = await done;
  clearTimeout(timer);
  return { stdout, stderr, code };
}

/** Like run, but throws with stderr when the command fails. */
export async function runOk(command: string, args: string[], opts?: Parameters<typeof run>[2]): Promise<string> {
  const r = await run(command, args, opts);
  if (r.code !== 0) throw new Error(`${command} ${args[0] ?? ''} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}
