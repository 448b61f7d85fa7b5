// On Cloud Run (K_SERVICE is set) settings that weaken trust are refused at start-up,
// naming the setting; the same file still loads for a local run.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from '../sandbox/process.ts';
import { ConfigError, parseConfig } from '../src/config/load.ts';
import { ensureBundle } from './support/bundle.ts';

const CLOUD_RUN = { K_SERVICE: 'gke-deployer', K_REVISION: 'gke-deployer-00001-abc' };
const OIDC = '{ audience: "https://deployer.example.run.app/deploy", serviceAccounts: [ci@p.iam.gserviceaccount.com] }';

function yaml(auth: string): string {
  return `
auth: ${auth}
clusters:
  prod: { gke: { project: p, location: l, name: c } }
targets:
  api: { cluster: prod, namespace: api, deployment: api, images: [europe-docker.pkg.dev/p/apps/api] }
`;
}

function problems(text: string, env: NodeJS.ProcessEnv): string[] {
  try {
    parseConfig(text, '/nowhere/deployer.yaml', env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  return [];
}

test('in production, "none" caller auth, an http certsUrl and a plaintext Container API are refused, each named', () => {
  const weak = yaml(`{ direct: none, pubsub: none, scheduler: ${OIDC}, certsUrl: "http://127.0.0.1:9/oauth2/v1/certs" }`);
  const got = problems(weak, { ...CLOUD_RUN, CONTAINER_API_ENDPOINT: '127.0.0.1:8089' });
  assert.equal(got.length, 4, got.join('\n'));
  assert.match(got[0]!, /^auth\.direct: "none" is refused in production/);
  assert.match(got[1]!, /^auth\.pubsub: "none" is refused in production/);
  assert.match(got[2]!, /^auth\.certsUrl: must be https:\/\/ in production/);
  assert.match(got[3]!, /^CONTAINER_API_ENDPOINT: /);
  // A local run of the same file and environment is fine.
  assert.deepEqual(problems(weak, { CONTAINER_API_ENDPOINT: '127.0.0.1:8089' }), []);
});

test('in production, another Connect gateway (it would receive the ADC token) is refused', () => {
  const got = problems(yaml(`{ direct: ${OIDC} }`), { ...CLOUD_RUN, CONNECT_GATEWAY_ENDPOINT: 'https://127.0.0.1:8443' });
  assert.equal(got.length, 1, got.join('\n'));
  assert.match(got[0]!, /^CONNECT_GATEWAY_ENDPOINT: /);
  assert.deepEqual(problems(yaml(`{ direct: ${OIDC} }`), { CONNECT_GATEWAY_ENDPOINT: 'https://127.0.0.1:8443' }), []);
});

test('in production, a config without weakening settings loads', () => {
  assert.deepEqual(problems(yaml(`{ direct: ${OIDC}, certsUrl: "https://www.googleapis.com/oauth2/v1/certs" }`), CLOUD_RUN), []);
});

/** Starts the function as Cloud Run does; resolves with its exit code, or 'serving'. */
async function startAsProcess(auth: string, env: NodeJS.ProcessEnv): Promise<{ outcome: number | 'serving'; output: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-prod-'));
  await writeFile(path.join(dir, 'deployer.yaml'), yaml(auth));
  const port = await freePort();
  const main = path.resolve('node_modules/@google-cloud/functions-framework/build/src/main.js');
  // The production entry point: the bundle (built first if missing or stale).
  const child = spawn(process.execPath, [main, '--target=deploy', `--source=${await ensureBundle()}`], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DEPLOYER_CONFIG: path.join(dir, 'deployer.yaml'), PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  for (const s of [child.stdout, child.stderr]) s.on('data', (d: Buffer) => (output += d.toString()));
  const outcome = await new Promise<number | 'serving'>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 0)));
    // The process is serving once it answers; poll its health route.
    const poll = setInterval(() => {
      fetch(`http://127.0.0.1:${port}/healthz`).then(
        (res) => res.ok && (clearInterval(poll), resolve('serving')),
        () => {}, // not listening yet
      );
    }, 100);
    child.once('exit', () => clearInterval(poll));
  });
  if (outcome === 'serving') {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  return { outcome, output };
}

test('started as a process with K_SERVICE set, the function exits non-zero naming the setting', { timeout: 60_000 }, async () => {
  const refused = await startAsProcess('{ direct: none }', CLOUD_RUN);
  assert.notEqual(refused.outcome, 'serving', refused.output);
  assert.notEqual(refused.outcome, 0, refused.output);
  assert.match(refused.output, /auth\.direct: "none" is refused in production/);

  const local = await startAsProcess('{ direct: none }', {});
  assert.equal(local.outcome, 'serving', local.output);
});
