// The sandbox's OCI registry (sandbox/registry.ts) as clients see it: Artifact Registry's
// token flow through the TLS front, verified against sandbox.json's caFile, and a real
// oras CLI pushing and pulling through it with an access token from the metadata fake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { accessToken, idToken, sandbox, stats } from '../support/sandbox.ts';
import { rememberSecret } from '../support/leaks.ts';

const SA = 'ci-pusher@sandbox-project.iam.gserviceaccount.com';
const USER = 'oauth2accesstoken';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request to the registry front, trusting only sandbox.json's registry CA. */
async function call(urlPath: string, headers: Record<string, string> = {}): Promise<Answer> {
  const { registry } = await sandbox();
  const ca = await readFile(registry.caFile, 'utf8');
  const [hostname, port] = registry.host.split(':');
  return new Promise((resolve, reject) => {
    const req = https.request({ hostname, port, path: urlPath, headers, ca, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** Runs oras with the token on stdin (never on the command line). */
async function oras(args: string[], opts: { cwd: string; token?: string; ca?: false }): Promise<{ code: number; stdout: string; stderr: string }> {
  const { registry } = await sandbox();
  const auth = opts.token === undefined ? [] : ['-u', USER, '--password-stdin'];
  // A registry config of its own: nothing from ~/.docker is used or written.
  const config = ['--registry-config', path.join(opts.cwd, 'oras-auth.json')];
  return new Promise((resolve) => {
    const child = execFile(registry.oras, [...args, ...(opts.ca === false ? [] : ['--ca-file', registry.caFile]), ...config, ...auth], { cwd: opts.cwd }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    child.stdin?.end(opts.token ?? '');
  });
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'registry-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('GET /v2/ without credentials gets the Bearer challenge that names the token endpoint', async () => {
  const { registry } = await sandbox();
  const res = await call('/v2/');
  assert.equal(res.status, 401);
  assert.equal(res.headers['www-authenticate'], `Bearer realm="https://${registry.host}/v2/token",service="${registry.host}"`);
  const repo = await call('/v2/team/app/manifests/v1');
  assert.equal(repo.status, 401);
  assert.equal(repo.headers['www-authenticate'], `Bearer realm="https://${registry.host}/v2/token",service="${registry.host}",scope="repository:team/app:pull"`);
});

test('the token endpoint trades a metadata-fake access token for a bearer token the registry accepts', async () => {
  const { registry } = await sandbox();
  const token = await accessToken(SA);
  const res = await call(`/v2/token?service=${registry.host}&scope=repository:team/app:pull`, { authorization: basic(USER, token) });
  assert.equal(res.status, 200, res.body);
  const body = JSON.parse(res.body) as { token: string; access_token: string; expires_in: number };
  rememberSecret(body.token);
  assert.equal(body.access_token, body.token);
  assert.equal(body.expires_in, 3600);
  assert.notEqual(body.token, token);
  assert.equal((await call('/v2/', { authorization: `Bearer ${body.token}` })).status, 200);
});

test('as on Artifact Registry, /v2/ also takes the access token directly (Basic oauth2accesstoken, or Bearer)', async () => {
  const token = await accessToken(SA);
  assert.equal((await call('/v2/', { authorization: basic(USER, token) })).status, 200);
  assert.equal((await call('/v2/', { authorization: `Bearer ${token}` })).status, 200);
});

test('made-up, expired, foreign-kind and wrong-user credentials get 401, at the token endpoint and at /v2/', async () => {
  const { registry } = await sandbox();
  const madeUp = `ya29.sandbox.${randomBytes(24).toString('base64url')}`;
  const expired = await accessToken(SA, -60);
  // Minted by the fake, but an ID token, not an access token.
  const id = await idToken({ audience: `https://${registry.host}`, email: SA });
  const good = await accessToken(SA);
  const bad: [string, string][] = [
    ['made-up token', basic(USER, madeUp)],
    ['expired token', basic(USER, expired)],
    ['ID token', basic(USER, id)],
    ['wrong user', basic('_json_key', good)],
    ['empty password', basic(USER, '')],
  ];
  for (const [what, authorization] of bad) {
    const token = await call('/v2/token', { authorization });
    assert.equal(token.status, 401, `token endpoint, ${what}`);
    assert.equal((JSON.parse(token.body) as { token?: string }).token, undefined, what);
    assert.equal((await call('/v2/', { authorization })).status, 401, `/v2/, ${what}`);
  }
  for (const [what, value] of [['made-up', madeUp], ['expired', expired], ['ID token', id]]) {
    assert.equal((await call('/v2/_catalog', { authorization: `Bearer ${value}` })).status, 401, `Bearer ${what}`);
  }
});

test('oras pushes plain YAML files and a tar.gz through the TLS front and pulls them back unchanged', async (t) => {
  const { registry } = await sandbox();
  const dir = await tempDir(t);
  const src = path.join(dir, 'src');
  await mkdir(path.join(src, 'manifests'), { recursive: true });
  const files: Record<string, string> = {
    'deployment.yaml': 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n',
    'service.yaml': 'apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n',
  };
  for (const [name, text] of Object.entries(files)) {
    await writeFile(path.join(src, name), text);
    await writeFile(path.join(src, 'manifests', name), text);
  }
  await promisify(execFile)('tar', ['-czf', 'manifests.tar.gz', 'manifests'], { cwd: src });
  const token = await accessToken(SA);
  const ref = `${registry.host}/team/web-manifests:v1`;
  const before = (await stats()).registry;
  const pushed = await oras(
    ['push', ref, '--artifact-type', 'application/vnd.gke-deployer.release.v1', 'deployment.yaml:application/yaml', 'service.yaml:application/yaml', 'manifests.tar.gz:application/vnd.cncf.flux.content.v1.tar+gzip'],
    { cwd: src, token },
  );
  assert.equal(pushed.code, 0, pushed.stderr);
  assert.match(pushed.stdout, /Digest: sha256:[0-9a-f]{64}/);
  // oras went through the token flow (a bearer token from /v2/token), as with Artifact Registry.
  const after = (await stats()).registry;
  assert.ok(before && after && after.tokens > before.tokens, `tokens issued: ${before?.tokens} → ${after?.tokens}`);

  const out = path.join(dir, 'out');
  await mkdir(out);
  const pulled = await oras(['pull', ref, '-o', out], { cwd: dir, token: await accessToken(SA) });
  assert.equal(pulled.code, 0, pulled.stderr);
  for (const name of [...Object.keys(files), 'manifests.tar.gz']) {
    assert.deepEqual(await readFile(path.join(out, name)), await readFile(path.join(src, name)), name);
  }
});

test('oras with a token the metadata fake never minted is refused', async (t) => {
  const { registry } = await sandbox();
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'a.yaml'), 'kind: ConfigMap\n');
  const madeUp = `ya29.sandbox.${randomBytes(24).toString('base64url')}`;
  rememberSecret(madeUp);
  const push = await oras(['push', `${registry.host}/team/refused:v1`, 'a.yaml'], { cwd: dir, token: madeUp });
  assert.notEqual(push.code, 0);
  assert.match(push.stderr, /401|unauthorized/i);
  // Nothing was stored: a good token finds no such tag.
  const fetched = await call('/v2/team/refused/manifests/v1', { authorization: basic(USER, await accessToken(SA)) });
  assert.equal(fetched.status, 404);
});

test('oras that is not given the registry CA refuses the TLS connection (verification is on)', async (t) => {
  const { registry } = await sandbox();
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'a.yaml'), 'kind: ConfigMap\n');
  const push = await oras(['push', `${registry.host}/team/untrusted:v1`, 'a.yaml'], { cwd: dir, token: await accessToken(SA), ca: false });
  assert.notEqual(push.code, 0);
  assert.match(push.stderr, /x509: certificate signed by unknown authority/);
});
