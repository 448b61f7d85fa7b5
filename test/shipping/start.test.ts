// The image's start command, run as a child process on Node 24 with PORT and K_SERVICE set,
// as Cloud Run runs it: `npm start` (the production entry point), and the web process the
// functions-framework buildpack writes into the image (node_modules/.bin/functions-framework
// with FUNCTION_TARGET from GOOGLE_FUNCTION_TARGET, loading package.json's main). Both must
// serve the health route Cloud Run probes, with OIDC auth settings (no `none`). In a fresh clone
// `npm start` builds dist/ first (its prestart), and only when dist/ is missing or stale.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdir, mkdtemp, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { freePort } from '../../sandbox/process.ts';
import { distIsStale } from '../../scripts/prestart.ts';
import { ensureBundle } from '../support/bundle.ts';

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'node_modules/.bin');

// Production-shaped: OIDC callers, a gke cluster, no emulator endpoints, no certsUrl.
const CONFIG = `auth:
  direct: { audience: https://gke-deployer-123456789012.europe-west1.run.app/deploy, serviceAccounts: [ci@my-proj.iam.gserviceaccount.com] }
  github: { secretEnv: GITHUB_WEBHOOK_SECRET }
clusters:
  prod:
    gke: { project: my-proj, location: europe-west1, name: prod }
targets:
  web:
    cluster: prod
    namespace: web
    deployment: web
    images: [europe-docker.pkg.dev/my-proj/apps/web]
`;

interface ImageEnv {
  /** GOOGLE_FUNCTION_* build env → the FUNCTION_* launch env the buildpack sets. */
  launch: Record<string, string>;
  /** service.yaml's plain env values. */
  service: Record<string, string>;
}

async function imageEnv(): Promise<ImageEnv> {
  const build = parse(await readFile(path.join(root, 'cloudbuild.yaml'), 'utf8')) as { steps: { id: string; args: string[] }[] };
  const launch: Record<string, string> = {};
  for (const a of build.steps.find((s) => s.id === 'image')?.args ?? []) {
    const m = /^--env=GOOGLE_(FUNCTION_TARGET|FUNCTION_SIGNATURE_TYPE)=(.+)$/.exec(a);
    if (m) launch[m[1]!] = m[2]!;
  }
  const service = parse(await readFile(path.join(root, 'service.yaml'), 'utf8')) as {
    spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } };
  };
  const env = Object.fromEntries(service.spec.template.spec.containers[0]!.env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
  return { launch, service: env };
}

interface Started {
  url: string;
  output: () => string;
  stop: () => Promise<void>;
}

/**
 * Starts `command` in its own process group and resolves once it answers on PORT. With
 * NODE_ENV=production functions-framework prints nothing when it listens, so this probes
 * the health route as Cloud Run's startup probe does, after the function logged it is ready.
 */
async function start(command: string, args: string[], env: Record<string, string>, cwd = root): Promise<Started> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(command, args, { cwd, env: { ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  const exited = once(child, 'exit');
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('"message":"gke-deployer ready')) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${command} exited with ${code} before serving:\n${out}`)));
  });
  const stop = async () => {
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGTERM');
    await exited;
  };
  try {
    await ready;
    // The config is loaded; the listener follows within moments (probe every 100 ms, up to 30 s).
    for (let i = 0; ; i++) {
      const res = await fetch(`${url}/health`).catch((err: unknown) => err as Error);
      if (!(res instanceof Error)) break;
      if (i >= 300 || child.exitCode !== null) throw new Error(`not serving on ${url}: ${res.message}\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, output: () => out, stop };
}

async function checkServes(s: Started): Promise<void> {
  for (const route of ['/health', '/healthz']) {
    const res = await fetch(s.url + route);
    assert.equal(res.status, 200, `${route}:\n${s.output()}`);
    assert.deepEqual(await res.json(), { status: 'ok' });
  }
  // OIDC is in force: a deploy without a token is refused before anything runs.
  const deploy = await fetch(`${s.url}/deploy`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"target":"web"}' });
  assert.equal(deploy.status, 401);
  assert.match(s.output(), /"message":"gke-deployer ready: 1 targets, 1 clusters"/);
  // No route is left open: the start-up warning about `none` is absent.
  assert.doesNotMatch(s.output(), /is "none"/);
}

describe('the image start command', () => {
  let env: Record<string, string>;
  let image: ImageEnv;

  before(async () => {
    // Both commands run the bundle (package.json main), as the image does after gcp-build.
    await ensureBundle();
    const dir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-start-'));
    await writeFile(path.join(dir, 'deployer.yaml'), CONFIG);
    image = await imageEnv();
    // What Cloud Run sets, plus service.yaml's env (its config path replaced by the temp file's).
    env = {
      ...image.service,
      PATH: `${bin}:${process.env.PATH}`,
      HOME: dir,
      NODE_ENV: 'production',
      K_SERVICE: 'gke-deployer',
      K_REVISION: 'gke-deployer-00001-abc',
      K_CONFIGURATION: 'gke-deployer',
      DEPLOYER_CONFIG: path.join(dir, 'deployer.yaml'),
      GITHUB_WEBHOOK_SECRET: 'not-a-real-secret',
    };
  });

  test('runs on Node 24', async () => {
    const { stdout } = await exec('node', ['--version'], { env });
    assert.match(stdout, /^v24\./);
  });

  test("npm start's production entry point serves /health with PORT and K_SERVICE set", async () => {
    const s = await start('npm', ['start'], env);
    try {
      await checkServes(s);
    } finally {
      await s.stop();
    }
  });

  test('in a fresh clone (no dist/), npm start builds dist/ first, then serves', async () => {
    const clone = await mkdtemp(path.join(tmpdir(), 'gke-deployer-clone-'));
    for (const f of ['package.json', 'package-lock.json', 'service.yaml', 'src', 'scripts']) await cp(path.join(root, f), path.join(clone, f), { recursive: true });
    // The dependencies `npm ci` would install; nothing of dist/.
    await symlink(path.join(root, 'node_modules'), path.join(clone, 'node_modules'));
    const s = await start('npm', ['start'], env, clone);
    try {
      await checkServes(s);
      assert.match(s.output(), /dist\/ is missing or older than src\/: building it first/);
      assert.ok((await stat(path.join(clone, 'dist/index.mjs'))).isFile());
    } finally {
      await s.stop();
      await rm(clone, { recursive: true, force: true });
    }
  });

  test('the prestart build runs only when dist/ is missing or older than one of its inputs', async () => {
    const tree = await mkdtemp(path.join(tmpdir(), 'gke-deployer-stale-'));
    const at = (f: string) => path.join(tree, f);
    await mkdir(at('src/config'), { recursive: true });
    await mkdir(at('scripts'));
    const inputs = ['package-lock.json', 'service.yaml', 'scripts/build.ts', 'scripts/bundle-plugins.ts', 'src/index.ts', 'src/config/load.ts'];
    for (const f of inputs) await writeFile(at(f), '');
    const set = (f: string, seconds: number) => utimes(at(f), seconds, seconds);
    for (const f of inputs) await set(f, 1000);
    assert.equal(await distIsStale(tree), true, 'no dist/');
    await mkdir(at('dist'));
    await writeFile(at('dist/index.mjs'), '');
    await set('dist/index.mjs', 2000);
    assert.equal(await distIsStale(tree), false, 'dist/ newer than every input');
    await set('src/config/load.ts', 3000);
    assert.equal(await distIsStale(tree), true, 'a source file changed since');
    await set('dist/index.mjs', 4000);
    await set('service.yaml', 5000);
    assert.equal(await distIsStale(tree), true, 'service.yaml (NODE_OPTIONS of the compile cache) changed since');
    await set('dist/index.mjs', 6000);
    await set('scripts/bundle-plugins.ts', 7000);
    assert.equal(await distIsStale(tree), true, "the build's plugins changed since");
  });

  test("the buildpack's web process (functions-framework, FUNCTION_TARGET, package.json main) serves the same", async () => {
    assert.equal(image.launch.FUNCTION_TARGET, 'deploy');
    // GoogleCloudPlatform/buildpacks cmd/nodejs/functions_framework: AddWebProcess(["/bin/bash", "-c", "node_modules/.bin/functions-framework"]).
    const s = await start('/bin/bash', ['-c', 'node_modules/.bin/functions-framework'], { ...env, ...image.launch });
    try {
      await checkServes(s);
    } finally {
      await s.stop();
    }
  });
});
