// The other ways to reach a cluster (static endpoint, kubeconfig, in-cluster) deploy
// into the sandbox's real API server, and a rejected token is refreshed once.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, configYaml, fixture, webTarget } from './support/config.ts';
import { startFunction } from './support/function.ts';
import { accessToken, kubectl, kubectlJson, namespace, sandbox } from './support/sandbox.ts';

async function deployAndCheck(clusters: Record<string, unknown>, ns: string, files: Record<string, string> = {}): Promise<void> {
  const fn = await startFunction(configYaml({ clusters, targets: { web: webTarget(ns) } }), { 'web.yaml': fixture('manifests/web.yaml'), ...files });
  try {
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:mode` });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const d = await kubectlJson<{ spec: { template: { spec: { containers: { image: string }[] } } } }>(['-n', ns, 'get', 'deployment', 'web']);
    assert.equal(d.spec.template.spec.containers[0]?.image, `${REPO}:mode`);
  } finally {
    await fn.close();
  }
}

test('endpoint mode: static server, CA file and token file', async () => {
  const info = await sandbox();
  const ns = await namespace('endpoint');
  await deployAndCheck({ sandbox: { endpoint: { server: info.server, caFile: info.caFile, tokenFile: 'token' } } }, ns, {
    token: await accessToken(info.serviceAccount),
  });
});

test('endpoint mode: a 401 drops the cached token, so a rotated token file is read again', async () => {
  const info = await sandbox();
  const ns = await namespace('rotate');
  const expired = await accessToken(info.serviceAccount, -1); // minted already expired: nothing to wait for
  const fn = await startFunction(
    configYaml({
      clusters: { sandbox: { endpoint: { server: info.server, caFile: info.caFile, tokenFile: 'token' } } },
      targets: { web: webTarget(ns) },
    }),
    { 'web.yaml': fixture('manifests/web.yaml'), token: expired },
  );
  try {
    // Refused twice (first try and the one retry): the file still holds the expired token.
    const refused = await fn.post('/deploy', { target: 'web', image: `${REPO}:a` });
    assert.equal(refused.status, 502, JSON.stringify(refused.body));
    const error = refused.body.error as { code: string; message: string };
    assert.equal(error.code, 'CLUSTER_FORBIDDEN');
    // A 401 is the credential, not RBAC: the advice says which to fix.
    assert.match(error.message, /did not accept the deployer's credential \(401\b.*\); check the identity it authenticates with/);
    assert.doesNotMatch(error.message, /RBAC/);
    await writeFile(path.join(fn.dir, 'token'), await accessToken(info.serviceAccount));
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:b` });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  } finally {
    await fn.close();
  }
});

test('a wrong CA fails TLS verification: 503, never an unverified connection', async () => {
  const info = await sandbox();
  const ns = await namespace('badca');
  // The system trust store does not contain the sandbox's CA.
  const fn = await startFunction(
    configYaml({
      clusters: { sandbox: { endpoint: { server: info.server, caFile: '/etc/ssl/certs/ca-certificates.crt', tokenFile: 'token' } } },
      targets: { web: webTarget(ns) },
    }),
    { 'web.yaml': fixture('manifests/web.yaml'), token: await accessToken(info.serviceAccount) },
  );
  try {
    const res = await fn.post('/deploy', { target: 'web', image: `${REPO}:x` });
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.match((res.body.error as { message: string }).message, /CERT|certificate|verify/i);
  } finally {
    await fn.close();
  }
});

test('kubeconfig mode: a kubeconfig file and context', async () => {
  const info = await sandbox();
  const ns = await namespace('kubeconfig');
  await deployAndCheck({ sandbox: { kubeconfig: { path: info.kubeconfig } } }, ns);
});

test('inCluster mode: the token, CA and env a pod would have, with a real service-account token', async () => {
  const info = await sandbox();
  const ns = await namespace('incluster');
  await kubectl(['-n', ns, 'create', 'serviceaccount', 'deployer']);
  await kubectl(['-n', ns, 'create', 'rolebinding', 'deployer-edit', '--clusterrole=edit', `--serviceaccount=${ns}:deployer`]);
  const token = (await kubectl(['-n', ns, 'create', 'token', 'deployer', '--duration=1h'])).trim();
  const saDir = await mkdtemp(path.join(tmpdir(), 'sa-'));
  await writeFile(path.join(saDir, 'token'), token);
  await writeFile(path.join(saDir, 'ca.crt'), await readFile(info.caFile));
  await writeFile(path.join(saDir, 'namespace'), ns);
  const url = new URL(info.server);
  const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  process.env.KUBERNETES_SERVICE_HOST = url.hostname;
  process.env.KUBERNETES_SERVICE_PORT = url.port;
  try {
    await deployAndCheck({ sandbox: { inCluster: { serviceAccountDir: saDir } } }, ns);
  } finally {
    if (saved.host === undefined) delete process.env.KUBERNETES_SERVICE_HOST;
    else process.env.KUBERNETES_SERVICE_HOST = saved.host;
    if (saved.port === undefined) delete process.env.KUBERNETES_SERVICE_PORT;
    else process.env.KUBERNETES_SERVICE_PORT = saved.port;
  }
});

test('two clusters never share credentials, even on one API server', async () => {
  const info = await sandbox();
  const ns = await namespace('creds');
  const fn = await startFunction(
    configYaml({
      clusters: {
        allowed: { endpoint: { server: info.server, caFile: info.caFile, tokenFile: 'deployer-token' } },
        denied: { endpoint: { server: info.server, caFile: info.caFile, tokenFile: 'nobody-token' } },
      },
      targets: { a: { ...webTarget(ns), cluster: 'allowed' }, b: { ...webTarget(ns), cluster: 'denied' } },
    }),
    {
      'web.yaml': fixture('manifests/web.yaml'),
      'deployer-token': await accessToken(info.serviceAccount),
      'nobody-token': await accessToken('nobody@sandbox-project.iam.gserviceaccount.com'),
    },
  );
  try {
    // Interleaved and concurrent: each request must use its own cluster's token.
    const [a, b] = await Promise.all([fn.post('/deploy', { target: 'a', image: `${REPO}:a` }), fn.post('/deploy', { target: 'b', image: `${REPO}:b` })]);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(b.status, 502, JSON.stringify(b.body));
    assert.equal((b.body.error as { code: string }).code, 'CLUSTER_FORBIDDEN');
    assert.equal((await fn.post('/deploy', { target: 'a', image: `${REPO}:a2` })).status, 200);
  } finally {
    await fn.close();
  }
});
