// The composed sandbox as its users see it: sandbox.json, and a process that has only
// the `env` from it talking to the real Google client libraries and the real apiserver.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { sandbox } from '../support/sandbox.ts';

const exec = promisify(execFile);

test('sandbox.json names everything a test or the function needs', async () => {
  const info = await sandbox();
  assert.ok(existsSync(info.kubeconfig));
  assert.ok(existsSync(info.kubectl));
  assert.deepEqual([info.project, info.location, info.cluster], ['sandbox-project', 'europe-west1', 'sandbox']);
  for (const key of ['GCE_METADATA_HOST', 'GOOGLE_CLOUD_PROJECT', 'CONTAINER_API_ENDPOINT', 'PUBSUB_EMULATOR_HOST']) {
    assert.match(info.env[key] ?? '', /\S/, key);
  }
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
const client = new ClusterManagerClient({ apiEndpoint: host, port: Number(port), sslCreds: grpc.credentials.createInsecure(), universeDomain: 'googleapis.com' });
const [cluster] = await client.getCluster({ name: process.argv[1] });
const token = await new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] }).getAccessToken();
const get = (path, bearer) => new Promise((resolve, reject) => https.get({
  host: cluster.endpoint.split(':')[0], port: cluster.endpoint.split(':')[1], path,
  ca: Buffer.from(cluster.masterAuth.clusterCaCertificate, 'base64'), headers: { authorization: 'Bearer ' + bearer },
}, (res) => { res.resume(); resolve(res.statusCode); }).on('error', reject));
console.log(JSON.stringify({ status: cluster.status, endpoint: cluster.endpoint,
  withToken: await get('/api/v1/namespaces/default/configmaps', token),
  expired: await get('/api/v1/namespaces/default/configmaps', 'ya29.not-a-token') }));
await client.close();
`;

test('with only the sandbox env: getCluster finds the cluster and an ADC token is accepted by its apiserver', async () => {
  const info = await sandbox();
  const name = `projects/${info.project}/locations/${info.location}/clusters/${info.cluster}`;
  const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', CHILD, name], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: { PATH: process.env.PATH, HOME: '/nonexistent', ...info.env },
  });
  const got = JSON.parse(stdout) as { status: string; endpoint: string; withToken: number; expired: number };
  assert.equal(got.status, 'RUNNING');
  assert.equal(`https://${got.endpoint}`, info.server);
  assert.equal(got.withToken, 200);
  assert.equal(got.expired, 401);
});
