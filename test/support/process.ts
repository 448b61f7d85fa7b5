// Runs the function as its own process, the way Cloud Run does (functions-framework's
// CLI on src/index.ts, or on the production bundle), so tests can use several instances at once.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { postJson } from './function.ts';
import { recordOutput, rememberConfiguredSecrets } from './leaks.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = path.join(root, 'node_modules/@google-cloud/functions-framework/build/src/main.js');

export interface FunctionProcess {
  url: string;
  /** Parsed JSON log lines (stdout). */
  logs: Record<string, unknown>[];
  post(route: string, body: unknown, headers?: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }>;
  /** SIGKILL: the instance dies mid-request, as Cloud Run may stop one. Resolves once it exited. */
  kill(): Promise<void>;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      server.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** `source`: the module functions-framework loads (the production bundle is dist/index.mjs, test/support/bundle.ts). */
export async function spawnFunction(
  configYaml: string,
  files: Record<string, string> = {},
  env: Record<string, string> = {},
  source = path.join(root, 'src/index.ts'),
  /** A port to listen on (a restarted instance at the same address); default: a free one. */
  fixedPort?: number,
): Promise<FunctionProcess> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-proc-'));
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  await writeFile(path.join(dir, 'deployer.yaml'), configYaml);
  rememberConfiguredSecrets(configYaml, { ...process.env, ...env });
  const port = fixedPort ?? (await freePort());
  const child: ChildProcess = spawn(process.execPath, [cli, '--target=deploy', `--source=${source}`, `--port=${port}`], {
    cwd: dir,
    env: { ...process.env, ...env, DEPLOYER_CONFIG: path.join(dir, 'deployer.yaml') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  let buffered = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      recordOutput(line);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ raw: line });
      }
    }
  });
  // stderr too goes to the leak check: Node's warnings, a library's console.error, a crash's stack.
  let bufferedErr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    stderr += text;
    bufferedErr += text;
    const lines = bufferedErr.split('\n');
    bufferedErr = lines.pop() ?? '';
    for (const line of lines) recordOutput(line);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  // A last line without a newline is output too.
  child.on('close', () => {
    if (buffered) recordOutput(buffered);
    if (bufferedErr) recordOutput(bufferedErr);
  });
  const url = `http://127.0.0.1:${port}`;
  const ready = Date.now() + 20_000;
  for (;;) {
    const res = await fetch(`${url}/health`).catch(() => undefined);
    if (res?.ok) break;
    if (child.exitCode !== null || Date.now() > ready) {
      child.kill('SIGKILL');
      throw new Error(`the function process did not start (exit ${String(child.exitCode)}): ${stderr.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    logs,
    post: (route, body, headers) => postJson(url, route, body, headers),
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    async close() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}
