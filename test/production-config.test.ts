// On Cloud Run (K_SERVICE is set) settings that weaken trust are refused at start-up,
// naming the setting; the same file still loads for a local run.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from '../sandbox/process.ts';
import { parseConfig } from '../src/config/load.ts';
import { configSchema } from '../src/config/schema.ts';
import { ensureBundle } from './support/bundle.ts';
import { recordOutput } from './support/leaks.ts';
import { configProblems } from './support/config.ts';

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

const problems = (text: string, env: NodeJS.ProcessEnv) => configProblems(text, env);

test('in production, "none" caller auth, an http certsUrl and a plaintext Container API are refused, each named', () => {
  const weak = yaml(`{ direct: none, pubsub: none, scheduler: ${OIDC}, certsUrl: "http://127.0.0.1:9/oauth2/v1/certs" }`);
  const got = problems(weak, { ...CLOUD_RUN, CONTAINER_API_ENDPOINT: '127.0.0.1:8089' });
  assert.equal(got.length, 4, got.join('\n'));
  assert.match(got[0]!, /^auth\.direct: "none" is refused in production/);
  assert.match(got[1]!, /^auth\.pubsub: "none" is refused in production/);
  assert.match(got[2]!, /^auth\.certsUrl: must be Google's https:\/\/www\.googleapis\.com\/oauth2\/v1\/certs \(or left out\) in production/);
  assert.match(got[3]!, /^CONTAINER_API_ENDPOINT: /);
  // A local run of the same file and environment is fine.
  assert.deepEqual(problems(weak, { CONTAINER_API_ENDPOINT: '127.0.0.1:8089' }), []);
});

// Every form the schema accepts for each caller route (service.yaml turns Cloud Run's invoker
// IAM check off, so the route's own check is the only one): the unauthenticated ones are
// refused on Cloud Run, the OIDC ones load. The last test keeps this table whole.
const SUBSCRIPTIONS = '[projects/p/subscriptions/deploys]';
const CALLER_FORMS: Record<'direct' | 'pubsub' | 'scheduler', { form: string; verifies: boolean }[]> = {
  direct: [
    { form: 'none', verifies: false },
    { form: OIDC, verifies: true },
  ],
  pubsub: [
    { form: 'none', verifies: false },
    { form: '{ token: none }', verifies: false },
    { form: `{ token: none, subscriptions: ${SUBSCRIPTIONS} }`, verifies: false },
    { form: OIDC, verifies: true },
    { form: `{ audience: "https://deployer.example.run.app/pubsub", serviceAccounts: [push@p.iam.gserviceaccount.com], subscriptions: ${SUBSCRIPTIONS} }`, verifies: true },
  ],
  scheduler: [
    { form: 'none', verifies: false },
    { form: OIDC, verifies: true },
  ],
};

for (const [route, forms] of Object.entries(CALLER_FORMS)) {
  for (const { form, verifies } of forms) {
    test(`in production, auth.${route}: ${form} is ${verifies ? 'accepted' : 'refused, naming the setting'}`, () => {
      const text = yaml(route === 'direct' ? `{ direct: ${form} }` : `{ direct: ${OIDC}, ${route}: ${form} }`);
      // The schema accepts the form: only the production check can refuse it.
      assert.deepEqual(problems(text, {}), []);
      const got = problems(text, CLOUD_RUN);
      if (verifies) assert.deepEqual(got, []);
      else {
        assert.equal(got.length, 1, got.join('\n'));
        assert.match(got[0]!, new RegExp(`^auth\\.${route}: .* is refused in production \\(K_SERVICE is set\\): it lets anyone call /`));
      }
    });
  }
}

test('the table above has one form per option the schema offers each caller route', () => {
  const auth = configSchema.shape.auth.shape;
  const options = (s: unknown): number => {
    const inner = (s as { unwrap?: () => unknown }).unwrap?.() ?? s;
    return (inner as { options: unknown[] }).options.length;
  };
  // Forms with and without the optional `subscriptions` are both listed for pubsub's two object options.
  assert.equal(options(auth.direct), CALLER_FORMS.direct.length);
  assert.equal(options(auth.scheduler), CALLER_FORMS.scheduler.length);
  assert.equal(options(auth.pubsub) + 2, CALLER_FORMS.pubsub.length);
});

test('in production, an OIDC route with an empty audience or no service account is refused (by the schema, and by the production check)', () => {
  for (const form of ['{ audience: "", serviceAccounts: [ci@p.iam.gserviceaccount.com] }', '{ audience: "https://d.example/deploy", serviceAccounts: [] }', '{ serviceAccounts: [ci@p.iam.gserviceaccount.com] }']) {
    const got = problems(yaml(`{ direct: ${form} }`), CLOUD_RUN);
    assert.ok(got.some((p) => /^auth\.direct: .* is refused in production/.test(p)), got.join('\n'));
  }
});

test('in production, a certsUrl other than Google\'s is refused: its signer could mint the ID tokens', () => {
  const got = problems(yaml(`{ direct: ${OIDC}, certsUrl: "https://certs.example.com/oauth2/v1/certs" }`), CLOUD_RUN);
  assert.equal(got.length, 1, got.join('\n'));
  assert.match(got[0]!, /^auth\.certsUrl: must be Google's/);
});

test('in production, another Connect gateway (it would receive the ADC token) is refused', () => {
  const got = problems(yaml(`{ direct: ${OIDC} }`), { ...CLOUD_RUN, CONNECT_GATEWAY_ENDPOINT: 'https://127.0.0.1:8443' });
  assert.equal(got.length, 1, got.join('\n'));
  assert.match(got[0]!, /^CONNECT_GATEWAY_ENDPOINT: /);
  assert.deepEqual(problems(yaml(`{ direct: ${OIDC} }`), { CONNECT_GATEWAY_ENDPOINT: 'https://127.0.0.1:8443' }), []);
});

test('in production, REGISTRY_HOST (another registry that would receive the ADC token) is refused', () => {
  const got = problems(yaml(`{ direct: ${OIDC} }`), { ...CLOUD_RUN, REGISTRY_HOST: '127.0.0.1:5443' });
  assert.equal(got.length, 1, got.join('\n'));
  assert.match(got[0]!, /^REGISTRY_HOST: .* is refused in production \(K_SERVICE is set\)/);
  assert.deepEqual(problems(yaml(`{ direct: ${OIDC} }`), { REGISTRY_HOST: '127.0.0.1:5443' }), []);
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
  child.once('close', () => output.split('\n').filter(Boolean).forEach(recordOutput)); // the suite's leak check
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

test('started as a process with K_SERVICE set, a Pub/Sub route without a token check (token: none) is refused', { timeout: 60_000 }, async () => {
  const refused = await startAsProcess(`{ direct: ${OIDC}, pubsub: { token: none, subscriptions: ${SUBSCRIPTIONS} } }`, CLOUD_RUN);
  assert.notEqual(refused.outcome, 'serving', refused.output);
  assert.notEqual(refused.outcome, 0, refused.output);
  assert.match(refused.output, /auth\.pubsub: \{"token":"none","subscriptions":\["projects\/p\/subscriptions\/deploys"\]\} is refused in production/);
});

test('on Cloud Run, webhook and Scheduler routes served without a queue are a WARNING at start-up; with one, or run locally, none', async () => {
  const SCHEDULED = yaml(`{ direct: ${OIDC}, pubsub: ${OIDC}, scheduler: ${OIDC} }`);
  const QUEUED = `${SCHEDULED}queue: { topic: projects/p/topics/deploy-queue, subscription: projects/p/subscriptions/deploy-queue }\n`;
  const { createApp } = await import('../src/app.ts');
  const warnings = async (text: string, env: NodeJS.ProcessEnv) => {
    const lines: string[] = [];
    const app = createApp(parseConfig(text, '/nowhere/deployer.yaml', env), (severity, message) => void (severity === 'WARNING' && lines.push(message)), env);
    await app.close();
    return lines;
  };
  const [warning, ...more] = await warnings(SCHEDULED, CLOUD_RUN);
  assert.equal(more.length, 0);
  assert.match(String(warning), /served without `queue`: each deploy holds its request open/);
  assert.deepEqual(await warnings(QUEUED, CLOUD_RUN), []);
  assert.deepEqual(await warnings(SCHEDULED, {}), []);
});
