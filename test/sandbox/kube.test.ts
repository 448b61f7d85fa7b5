// Acceptance tests of the sandbox control plane: real etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok on loopback.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { once } from 'node:events';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startControlPlane, type ControlPlane } from '../../sandbox/kube/index.ts';
import { runOk } from '../../sandbox/kube/run.ts';
import { isRunning } from '../../sandbox/process.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const fixture = (name: string) => path.join(root, 'test/fixtures/kube', name);

// Stand-in for the Google identity fake: a TokenReview webhook that knows two tokens.
const users: Record<string, string> = {
  'good-token': 'deployer@p.iam.gserviceaccount.com',
  'limited-token': 'nobody@p.iam.gserviceaccount.com',
  'expiring-token': 'deployer@p.iam.gserviceaccount.com',
};
async function startTokenWebhook(): Promise<{ url: string; close: () => void }> {
  const srv = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      const review = JSON.parse(body) as { spec?: { token?: string } };
      const username = users[review.spec?.token ?? ''];
      const status = username
        ? { authenticated: true, user: { username, uid: username, groups: ['system:authenticated'] } }
        : { authenticated: false, error: 'unknown token' };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', status }));
    });
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const addr = srv.address() as { port: number };
  return { url: `http://127.0.0.1:${addr.port}/tokenreview`, close: () => srv.close() };
}

/** GET with a bearer token, verifying the apiserver against the sandbox CA. */
function get(cp: ControlPlane, p: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      cp.server + p,
      { ca: cp.caPem, headers: { authorization: `Bearer ${token}` }, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
  });
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await fn();
    if (v !== undefined) return v;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function kubectlOk(cp: ControlPlane, args: string[]): Promise<string> {
  const r = await cp.kubectl(args);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

interface PodList {
  items: {
    metadata: { name: string };
    spec: { nodeName?: string };
    status: {
      phase?: string;
      conditions?: { type: string; status: string }[];
      containerStatuses?: { state?: { waiting?: { reason?: string } } }[];
    };
  }[];
}

describe('sandbox kube control plane', { timeout: 300_000 }, () => {
  let binDir: string;
  let webhook: Awaited<ReturnType<typeof startTokenWebhook>>;
  let tmp: string;
  let cp: ControlPlane;
  const lines: string[] = [];

  before(async () => {
    binDir = (await runOk('bash', [path.join(root, 'sandbox/build.sh')])).trim().split('\n').pop() ?? '';
    webhook = await startTokenWebhook();
    tmp = await mkdtemp(path.join(os.tmpdir(), 'kube-test-'));
    cp = await startControlPlane({
      dir: path.join(tmp, 'a'),
      binDir,
      tokenWebhookUrl: webhook.url,
      log: (l) => lines.push(l),
    });
    console.log(lines.join('\n'));
  });

  after(async () => {
    await cp?.stop();
    webhook?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('reports progress and never logs the admin token', () => {
    assert.ok(lines.some((l) => /^kube-apiserver ready \(\d+\.\ds\)$/.test(l)), lines.join('\n'));
    assert.ok(lines.every((l) => !l.includes(cp.adminToken)));
    assert.match(cp.server, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.ok((cp.timings.total ?? 0) > 0);
  });

  test('a 2-replica Deployment rolls out to 2 Ready Pods on the kwok node', async () => {
    await kubectlOk(cp, ['apply', '-f', fixture('deployment.yaml')]);
    const out = await kubectlOk(cp, ['rollout', 'status', 'deployment/x', '--timeout=60s']);
    assert.match(out, /successfully rolled out/);
    const pods = JSON.parse(await kubectlOk(cp, ['get', 'pods', '-l', 'app=x', '-o', 'json'])) as PodList;
    const ready = pods.items.filter(
      (p) => p.status.phase === 'Running' && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    assert.equal(ready.length, 2);
    assert.ok(ready.every((p) => p.spec.nodeName === cp.nodeName));
    const rs = await kubectlOk(cp, ['get', 'replicasets', '-l', 'app=x', '-o', 'name']);
    assert.equal(rs.trim().split('\n').length, 1);
  });

  test('image tags fail-pull* and crash* give ImagePullBackOff and CrashLoopBackOff', async () => {
    await kubectlOk(cp, ['apply', '-f', fixture('failing-pods.yaml')]);
    const reason = (name: string) =>
      eventually(`waiting reason of ${name}`, async () => {
        const pod = JSON.parse(await kubectlOk(cp, ['get', 'pod', name, '-o', 'json'])) as PodList['items'][number];
        return pod.status.containerStatuses?.[0]?.state?.waiting?.reason;
      });
    assert.equal(await reason('pull-fails'), 'ImagePullBackOff');
    assert.equal(await reason('crashes'), 'CrashLoopBackOff');
    const phases = JSON.parse(await kubectlOk(cp, ['get', 'pods', 'pull-fails', 'crashes', '-o', 'json'])) as PodList;
    assert.deepEqual(
      phases.items.map((p) => [p.metadata.name, p.status.phase, p.status.conditions?.find((c) => c.type === 'Ready')?.status]),
      [
        ['pull-fails', 'Pending', 'False'],
        ['crashes', 'Running', 'False'],
      ],
    );
  });

  test('webhook identities: RBAC-bound 200, unbound 403, unknown token 401', async () => {
    await kubectlOk(cp, ['create', 'namespace', 'team']);
    await kubectlOk(cp, [
      'create', 'rolebinding', 'deployer-edit', '-n', 'team',
      '--clusterrole=edit', '--user=deployer@p.iam.gserviceaccount.com',
    ]);
    // The RBAC authorizer reads from an informer: the binding lands within moments.
    const ok = await eventually('deployer allowed', async () => {
      const r = await get(cp, '/api/v1/namespaces/team/pods', 'good-token');
      return r.status === 200 ? r : undefined;
    }, 15_000);
    assert.equal((JSON.parse(ok.body) as { kind: string }).kind, 'PodList');
    assert.equal((await get(cp, '/api/v1/namespaces/team/pods', 'limited-token')).status, 403);
    assert.equal((await get(cp, '/api/v1/namespaces/team/pods', 'bogus-token')).status, 401);
    // The admin token file identity is still honoured alongside the webhook.
    assert.equal((await get(cp, '/api/v1/namespaces/team/pods', cp.adminToken)).status, 200);
  });

  test('a token the webhook stops accepting gets 401 within the cache window', async () => {
    assert.equal((await get(cp, '/api/v1/namespaces/team/pods', 'expiring-token')).status, 200);
    delete users['expiring-token'];
    const since = Date.now();
    // webhookCacheTtl (2s) is not the whole story: the apiserver also caches successful
    // token authentications for a fixed 10s.
    await eventually('401 for the expired token', async () => {
      const r = await get(cp, '/api/v1/namespaces/team/pods', 'expiring-token');
      return r.status === 401 ? r : undefined;
    }, 20_000);
    assert.ok(Date.now() - since < 15_000);
  });

  test('stopApiserver refuses connections; startApiserver serves the same objects', async () => {
    const before = JSON.parse((await get(cp, '/apis/apps/v1/namespaces/default/deployments/x', cp.adminToken)).body) as {
      metadata: { uid: string };
    };
    await cp.stopApiserver();
    await assert.rejects(get(cp, '/readyz', cp.adminToken), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');
    await cp.startApiserver();
    const res = await get(cp, '/apis/apps/v1/namespaces/default/deployments/x', cp.adminToken);
    assert.equal(res.status, 200);
    assert.equal((JSON.parse(res.body) as { metadata: { uid: string } }).metadata.uid, before.metadata.uid);
    // Controllers, scheduler and kwok reconnect: a scale-up still rolls out.
    await kubectlOk(cp, ['scale', 'deployment/x', '--replicas=3']);
    assert.match(await kubectlOk(cp, ['rollout', 'status', 'deployment/x', '--timeout=60s']), /successfully rolled out/);
  });

  test('a second control plane runs alongside, and stop() leaves no process behind', async () => {
    const other = await startControlPlane({ dir: path.join(tmp, 'b'), binDir, tokenWebhookUrl: webhook.url });
    const procs = other.processes();
    try {
      assert.notEqual(other.server, cp.server);
      assert.deepEqual(procs.map((p) => p.name).sort(), [
        'etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok',
      ]);
      assert.match(await kubectlOk(other, ['get', 'nodes', '-o', 'name']), /node\/kwok-node-0/);
      // Separate data: the first plane's Deployment is not here.
      assert.equal((await other.kubectl(['get', 'deployment', 'x'])).code, 1);
    } finally {
      await other.stop();
    }
    assert.deepEqual(procs.filter((p) => isRunning(p.pid)), []);
    assert.deepEqual(other.processes(), []);
    // The first one is untouched.
    assert.equal((await get(cp, '/readyz', cp.adminToken)).status, 200);
  });

  test("pod logs: the apiserver verifies kwok's kubelet certificate against the sandbox CA", async () => {
    await kubectlOk(cp, ['run', 'logs-tls', '--image=registry.example/app:fail-exit', '--restart=Never']);
    await kubectlOk(cp, ['wait', 'pod/logs-tls', '--for=jsonpath={.status.phase}=Failed', '--timeout=60s']);
    const lastLine = await kubectlOk(cp, ['logs', 'logs-tls', '--tail=1']);
    assert.match(lastLine, /^sandbox: .*exits with code 1.*\n$/);
    // Give the apiserver an unrelated CA for kubelets (it reads --kubelet-certificate-authority,
    // the sandbox CA file, at start): the same request must now fail verification.
    const good = path.join(tmp, 'good-ca.crt');
    await copyFile(cp.caFile, good);
    await runOk('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=unrelated',
      '-keyout', path.join(tmp, 'unrelated.key'), '-out', cp.caFile,
    ]);
    try {
      await cp.stopApiserver();
      await cp.startApiserver();
      // kubectl itself still trusts the apiserver through the saved CA.
      const r = await cp.kubectl([`--certificate-authority=${good}`, 'logs', 'logs-tls', '--tail=1']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /containerLogs\/default\/logs-tls\/logs-tls.*x509: certificate signed by unknown authority/);
    } finally {
      // The admin kubeconfig names this file. The apiserver keeps distrusting kwok until
      // it restarts, which is why this test runs just before the plane is stopped.
      await copyFile(good, cp.caFile);
    }
  });

  test('stop() ends every process of the control plane', async () => {
    const procs = cp.processes();
    assert.equal(procs.length, 5);
    await cp.stop();
    assert.deepEqual(procs.filter((p) => isRunning(p.pid)), []);
  });
});
