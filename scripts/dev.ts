// `npm run dev`: the sandbox plus the function serving examples/deployer.yaml against it,
// and the commands to try it. Ctrl-C stops everything.
// The registry's host is known only once the sandbox runs, so the function serves a copy of
// examples/deployer.yaml (in the sandbox folder) with one more target, `hello-oci`, whose
// manifests are an OCI artifact in the sandbox registry; a tiny image is pushed there for it.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { defaultSandboxDir, startSandbox } from '../sandbox/index.ts';
import { freePort, waitFor } from '../sandbox/process.ts';

const exec = promisify(execFile);

const root = fileURLToPath(new URL('..', import.meta.url));
const log = (line: string) => console.log(`[dev] ${line}`);

const sandboxDir = defaultSandboxDir();
const sandbox = await startSandbox({ dir: sandboxDir, log: (l) => log(`sandbox: ${l}`) });
const { info } = sandbox;
for (const ns of ['demo', 'demo-oci']) {
  const created = await sandbox.controlPlane.kubectl(['create', 'namespace', ns]);
  if (created.code !== 0) throw new Error(`creating namespace ${ns} failed: ${created.stderr}`);
}

// The OCI target, in the sandbox registry: its image and its manifests artifact.
const HOST = info.registry.host;
const ociImage = `${HOST}/apps/hello`;
const ociManifests = `${HOST}/apps/hello-deploy`;
const examples = path.join(root, 'examples');
const example = parse(await readFile(path.join(examples, 'deployer.yaml'), 'utf8')) as { targets: Record<string, Record<string, unknown>> };
// The copy lives elsewhere: its file manifests keep pointing at examples/.
for (const t of Object.values(example.targets)) {
  if (Array.isArray(t.manifests)) t.manifests = t.manifests.map((m) => path.resolve(examples, String(m)));
}
example.targets['hello-oci'] = { cluster: 'sandbox', namespace: 'demo-oci', images: [ociImage], manifests: { oci: ociManifests, tag: '${tag}' }, container: 'hello' };
const config = path.join(sandboxDir, 'dev-deployer.yaml');
await writeFile(config, `# examples/deployer.yaml plus the OCI target on this sandbox's registry (written by scripts/dev.ts)\n${stringify(example)}`);

// What a person would get from the metadata server on Google Cloud: the ADC access token.
const TOKEN_COMMAND = `curl -sS -H 'Metadata-Flavor: Google' http://${info.env.GCE_METADATA_HOST}/computeMetadata/v1/instance/service-accounts/default/token | sed -E 's/.*"access_token":"([^"]+)".*/\\1/'`;
// oras trusts the registry's CA, keeps its login in the sandbox folder (not ~/.docker), and reads the token on stdin.
const orasArgs = ['--ca-file', info.registry.caFile, '--registry-config', path.join(sandboxDir, 'oras-auth.json'), '-u', 'oauth2accesstoken', '--password-stdin'];

/** CI's image push, done here so the quickstart's OCI release has an image to pin: a tiny one (an image config, one small layer). */
async function pushTinyImage(ref: string): Promise<void> {
  const dir = await mkdtemp(path.join(sandboxDir, 'image-'));
  try {
    await writeFile(path.join(dir, 'hello.txt'), `hello ${randomBytes(8).toString('hex')}\n`);
    await exec('tar', ['-czf', path.join(dir, 'layer.tar.gz'), '-C', dir, 'hello.txt']);
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] } }));
    const res = await fetch(`http://${info.env.GCE_METADATA_HOST}/computeMetadata/v1/instance/service-accounts/default/token`, { headers: { 'Metadata-Flavor': 'Google' } });
    const { access_token: token } = (await res.json()) as { access_token: string };
    const push = exec(info.registry.oras, ['push', ref, '--config', 'config.json:application/vnd.oci.image.config.v1+json', 'layer.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip', ...orasArgs], { cwd: dir });
    push.child.stdin?.end(token);
    await push;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
await pushTinyImage(`${ociImage}:1.0.0`);

const port = process.env.PORT ? Number(process.env.PORT) : await freePort();
const fn = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'functions-framework', '--target=deploy', '--source=src/index.ts'], {
  cwd: root,
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, ...info.env, DEPLOYER_CONFIG: config, PORT: String(port) },
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

Release it from an OCI artifact (target hello-oci, namespace demo-oci): push the manifests as CI
would, with an access token from the metadata server (the image ${ociImage}:1.0.0 is already
pushed), then deploy the image; its tag names the manifests' tag (manifests.tag: "\${tag}"):
  export TOKEN=$(${TOKEN_COMMAND})
  (cd ${examples}/manifests && printf %s "$TOKEN" | ${info.registry.oras} push ${ociManifests}:1.0.0 hello.yaml ${orasArgs.join(' ')})
  curl -sS -X POST ${url}/deploy -H 'Content-Type: application/json' -d '{"target":"hello-oci","image":"${ociImage}:1.0.0"}'
  ${kubectl} -n demo-oci get deploy,svc,configmap -l applyset.kubernetes.io/part-of

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
