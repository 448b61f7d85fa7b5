// The README quickstart, as a person runs it: `npm run dev`, then the curl it prints.
// It starts a second sandbox beside the test run's own, so it also shows two can run at once.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { readSandboxInfo } from '../sandbox/index.ts';
import { freePort, isRunning } from '../sandbox/process.ts';

const exec = promisify(execFile);

test('npm run dev, then the printed curl, deploys the example app and its Pods become Ready', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-dev-'));
  const port = await freePort();
  const dev = spawn('npm', ['run', 'dev'], {
    cwd: path.resolve(import.meta.dirname, '..'),
    env: { ...process.env, SANDBOX_DIR: dir, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so the test can stop it like Ctrl-C does
  });
  let out = '';
  dev.stdout.on('data', (d: Buffer) => (out += d.toString()));
  dev.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => dev.once('exit', resolve));
  try {
    const deadline = Date.now() + 120_000;
    while (!/Press Ctrl-C to stop/.test(out)) {
      assert.ok(Date.now() < deadline, `npm run dev did not become ready:\n${out}`);
      assert.equal(dev.exitCode, null, `npm run dev exited:\n${out}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const curl = /^\s*(curl .*)$/m.exec(out)?.[1];
    assert.ok(curl, `no curl line in:\n${out}`);
    const { stdout } = await exec('sh', ['-c', curl]);
    const result = JSON.parse(stdout) as { status: string; objects: { kind: string; action: string }[] };
    assert.equal(result.status, 'ready', stdout);
    assert.deepEqual(result.objects.map((o) => `${o.kind}:${o.action}`), ['Deployment:created', 'Service:created']);

    const rollout = /^\s*(\S+kubectl --kubeconfig \S+ -n demo rollout status deployment\/hello)$/m.exec(out)?.[1];
    assert.ok(rollout, `no rollout command in:\n${out}`);
    await exec('sh', ['-c', `${rollout} --timeout=90s`]);
    const pods = JSON.parse((await exec('sh', ['-c', rollout.replace('rollout status deployment/hello', 'get pods -l app=hello -o json')])).stdout) as {
      items: { status: { conditions?: { type: string; status: string }[] } }[];
    };
    assert.equal(pods.items.length, 2);
    for (const pod of pods.items) assert.ok(pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));

    // The OCI release, as printed: the token from the metadata server, oras push of the manifests, then the curl.
    const token = /^\s*(export TOKEN=.*)$/m.exec(out)?.[1];
    const push = /^\s*(\(cd \S+ && printf %s "\$TOKEN" \| \S+ push .*\))$/m.exec(out)?.[1];
    const deploy = /^\s*(curl .*"target":"hello-oci".*)$/m.exec(out)?.[1];
    assert.ok(token && push && deploy, `no OCI release commands in:\n${out}`);
    const pushed = await exec('sh', ['-c', `${token}\n${push}`]);
    const digest = /Digest: (sha256:[0-9a-f]{64})/.exec(pushed.stdout)?.[1];
    assert.ok(digest, pushed.stdout);
    const oci = JSON.parse((await exec('sh', ['-c', deploy])).stdout) as { status: string; image: string; release?: { pinned: boolean; manifests?: { digest: string } }; objects: { kind: string; action: string }[] };
    assert.equal(oci.status, 'ready', JSON.stringify(oci));
    assert.match(oci.image, /\/apps\/hello:1\.0\.0@sha256:[0-9a-f]{64}$/);
    assert.equal(oci.release?.pinned, true);
    assert.equal(oci.release?.manifests?.digest, digest);
    assert.deepEqual(oci.objects.map((o) => `${o.kind}:${o.action}`), ['Deployment:created', 'Service:created']);
  } finally {
    const info = await readSandboxInfo(dir).catch(() => undefined);
    if (dev.pid) process.kill(-dev.pid, 'SIGINT');
    await exited;
    // Ctrl-C leaves nothing running: each process gone within 10 s.
    if (info) {
      const deadline = Date.now() + 10_000;
      while (info.pids.some(isRunning) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      for (const pid of info.pids) assert.equal(isRunning(pid), false, `pid ${pid} still running 10 s after Ctrl-C`);
    }
  }
});
