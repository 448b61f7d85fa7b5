// The composed sandbox as its users see it: sandbox.json, and a process that has only
// the `env` from it talking to the real Google client libraries and the real apiserver.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { readSandboxInfo, startSandbox } from '../../sandbox/index.ts';
import { isRunning } from '../../sandbox/process.ts';
import { accessToken, sandbox } from '../support/sandbox.ts';

const exec = promisify(execFile);

test('sandbox.json names everything a test or the function needs', async () => {
  const info = await sandbox();
  assert.ok(existsSync(info.kubeconfig));
  assert.ok(existsSync(info.kubectl));
  assert.deepEqual([info.project, info.location, info.cluster], ['sandbox-project', 'europe-west1', 'sandbox']);
  for (const key of ['GCE_METADATA_HOST', 'GOOGLE_CLOUD_PROJECT', 'CONTAINER_API_ENDPOINT', 'PUBSUB_EMULATOR_HOST']) {
    assert.match(info.env[key] ?? '', /\S/, key);
  }
  assert.match(info.registry.host, /^127\.0\.0\.1:\d+$/);
  assert.equal(info.registry.caFile, info.publicCaFile);
  assert.ok(existsSync(info.registry.oras));
  const stats = (await (await fetch(info.stats)).json()) as { containerApi: { getCluster: number }; metadata: { token: number } };
  assert.equal(typeof stats.containerApi.getCluster, 'number');
  assert.equal(typeof stats.metadata.token, 'number');
});

// Runs in a child with nothing but PATH and the sandbox env: no test-process state helps.
const CHILD = `
import { ClusterManagerClient } from '@google-cloud/container';
import { GoogleAuth } from 'google-auth-library';
import * as grpc from '@grpc/grpc-js';
import https from 'node:https';
const [host, port] = process.env.CONTAINER_API_ENDPOINT.split(':');
// As Google is reached: TLS (the sandbox's roots through GRPC_DEFAULT_SSL_ROOTS_FILE_PATH) and the ADC token.
const client = new ClusterManagerClient({ apiEndpoint: host, port: Number(port), universeDomain: 'googleapis.com' });
const [cluster] = await client.getCluster({ name: process.argv[1] });
// A token the sandbox never minted, over the same TLS: refused, as Google refuses it.
const forged = new ClusterManagerClient({ apiEndpoint: host, port: Number(port), universeDomain: 'googleapis.com',
  sslCreds: grpc.credentials.combineChannelCredentials(grpc.credentials.createSsl(), grpc.credentials.createFromMetadataGenerator((_p, cb) => {
    const md = new grpc.Metadata(); md.set('authorization', 'Bearer ya29.forged'); cb(null, md);
  })) });
const refused = await forged.getCluster({ name: process.argv[1] }, { retry: null }).then(() => 0, (e) => e.code);
await forged.close();
// Without TLS: no answer at all.
const plain = new ClusterManagerClient({ apiEndpoint: host, port: Number(port), universeDomain: 'googleapis.com', sslCreds: grpc.credentials.createInsecure() });
const plaintext = await plain.getCluster({ name: process.argv[1] }, { retry: null, timeout: 3000 }).then(() => 0, (e) => e.code);
await plain.close();
const token = await new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] }).getAccessToken();
const get = (path, bearer) => new Promise((resolve, reject) => https.get({
  host: cluster.endpoint.split(':')[0], port: cluster.endpoint.split(':')[1], path,
  ca: Buffer.from(cluster.masterAuth.clusterCaCertificate, 'base64'), headers: { authorization: 'Bearer ' + bearer },
}, (res) => { res.resume(); resolve(res.statusCode); }).on('error', reject));
console.log(JSON.stringify({ status: cluster.status, endpoint: cluster.endpoint,
  withToken: await get('/api/v1/namespaces/default/configmaps', token),
  expired: await get('/api/v1/namespaces/default/configmaps', 'ya29.not-a-token'), refused, plaintext }));
await client.close();
`;

test('with only the sandbox env: getCluster over TLS with the ADC token finds the cluster (a forged token is UNAUTHENTICATED, plaintext unanswered), and the token is accepted by its apiserver', async () => {
  const info = await sandbox();
  const name = `projects/${info.project}/locations/${info.location}/clusters/${info.cluster}`;
  const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', CHILD, name], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: { PATH: process.env.PATH, HOME: '/nonexistent', ...info.env },
  });
  const got = JSON.parse(stdout) as { status: string; endpoint: string; withToken: number; expired: number; refused: number; plaintext: number };
  assert.equal(got.status, 'RUNNING');
  assert.equal(got.refused, 16, 'UNAUTHENTICATED');
  assert.equal(got.plaintext, 14, 'UNAVAILABLE: a TLS port does not speak plaintext');
  assert.equal(`https://${got.endpoint}`, info.server);
  assert.equal(got.withToken, 200);
  assert.equal(got.expired, 401);
});

test('the apiserver refuses an expired Google token (401) and an identity RBAC does not bind (403)', async () => {
  const info = await sandbox();
  const ca = await readFile(info.caFile);
  const status = (bearer: string) =>
    new Promise<number | undefined>((resolve, reject) => {
      const url = new URL('/api/v1/namespaces/default/configmaps', info.server);
      https.get(url, { ca, headers: { authorization: `Bearer ${bearer}` } }, (res) => {
        res.resume();
        resolve(res.statusCode);
      }).on('error', reject);
    });
  const expiring = await accessToken(info.serviceAccount, 1);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await status(expiring), 401);
  assert.equal(await status(await accessToken('nobody@sandbox-project.iam.gserviceaccount.com')), 403);
  assert.equal(await status(await accessToken(info.serviceAccount)), 200);
});

test('a crashed parent leaves nothing running: every sandbox process dies with it', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-crash-'));
  const cli = spawn(process.execPath, ['sandbox/cli.ts'], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: { ...process.env, SANDBOX_DIR: dir },
    stdio: 'ignore',
  });
  const deadline = Date.now() + 60_000;
  while (!existsSync(path.join(dir, 'sandbox.json'))) {
    assert.ok(Date.now() < deadline, 'the sandbox did not start');
    assert.equal(cli.exitCode, null, 'the sandbox CLI exited');
    await new Promise((r) => setTimeout(r, 200));
  }
  const { pids } = await readSandboxInfo(dir);
  assert.ok(pids.length >= 6, `expected the CLI and its children, got ${pids.join(', ')}`);
  cli.kill('SIGKILL'); // no handler runs: only the kernel's parent-death signal can clean up
  const gone = Date.now() + 10_000;
  while (pids.some(isRunning) && Date.now() < gone) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(pids.filter(isRunning), []);
});

test('a folder that is not a sandbox folder is refused, and nothing in it is deleted', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'not-a-sandbox-'));
  await writeFile(path.join(dir, 'precious.txt'), 'keep me');
  await assert.rejects(startSandbox({ dir }), /holds no sandbox\.json: refusing/);
  assert.equal(await readFile(path.join(dir, 'precious.txt'), 'utf8'), 'keep me');
  // Nor is the folder of a sandbox that is still running.
  await assert.rejects(startSandbox({ dir: (await sandbox()).dir }), /still running/);
});
