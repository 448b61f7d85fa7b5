// `npm run dev`: the sandbox plus the function serving examples/deployer.yaml against it,
// and the commands to try it. Ctrl-C stops everything.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { defaultSandboxDir, startSandbox } from '../sandbox/index.ts';
import { freePort, waitFor } from '../sandbox/process.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const log = (line: string) => console.log(`[dev] ${line}`);

const sandbox = await startSandbox({ dir: defaultSandboxDir(), log: (l) => log(`sandbox: ${l}`) });
const { info } = sandbox;
const namespace = await sandbox.controlPlane.kubectl(['create', 'namespace', 'demo']);
if (namespace.code !== 0) throw new Error(`creating namespace demo failed: ${namespace.stderr}`);

const port = process.env.PORT ? Number(process.env.PORT) : await freePort();
const fn = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'functions-framework', '--target=deploy', '--source=src/index.ts'], {
  cwd: root,
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, ...info.env, DEPLOYER_CONFIG: 'examples/deployer.yaml', PORT: String(port) },
});
const url = `http://127.0.0.1:${port}`;
await waitFor('the function', async () => (await fetch(`${url}/healthz`)).ok, { timeoutMs: 30_000 });

const kubectl = `${info.kubectl} --kubeconfig ${info.kubeconfig}`;
console.log(`
The function is serving ${url} against the sandbox.

Deploy the example app:
  curl -sS -X POST ${url}/deploy -H 'Content-Type: application/json' -d '{"target":"hello","image":"europe-docker.pkg.dev/sandbox-project/apps/hello:1.0.0"}'

Watch it:
  ${kubectl} -n demo get deploy,pods -w
  ${kubectl} -n demo rollout status deployment/hello

Press Ctrl-C to stop.`);

let stopping = false;
const stop = async (code: number) => {
  if (stopping) return;
  stopping = true;
  fn.kill('SIGTERM');
  await sandbox.stop();
  process.exit(code);
};
fn.once('exit', (code) => {
  if (!stopping) log(`the function exited (${code}); stopping`);
  void stop(code ?? 1);
});
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
