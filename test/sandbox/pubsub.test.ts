// The real Pub/Sub emulator pushing to a local HTTP endpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startPubsubEmulator } from '../../sandbox/pubsub.ts';

interface Push {
  headers: http.IncomingHttpHeaders;
  url: string;
  body: {
    subscription?: string;
    message?: { data?: string; attributes?: Record<string, string>; messageId?: string; publishTime?: string };
  };
}

/** Command lines of live processes, to prove the JVM is gone after stop(). */
async function commandLines(): Promise<string[]> {
  const out: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      out.push((await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' '));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

test('the Pub/Sub emulator pushes published messages to a push subscription', { timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'pubsub-test-'));
  const pushes: Push[] = [];
  const receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      pushes.push({ headers: req.headers, url: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Push['body'] });
      res.writeHead(204).end(); // ack
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  const { port } = receiver.address() as { port: number };

  const emulator = await startPubsubEmulator({ dir, project: 'sandbox-project' });
  try {
    t.diagnostic(`pubsub emulator ready in ${emulator.startMs} ms`);
    assert.match(emulator.host, /^127\.0\.0\.1:\d+$/);
    assert.equal(await emulator.createTopic('deploy-requests'), 'projects/sandbox-project/topics/deploy-requests');
    const subscription = await emulator.createPushSubscription({
      topic: 'deploy-requests',
      name: 'deployer-push',
      pushEndpoint: `http://127.0.0.1:${port}/pubsub?token=abc`,
      ackDeadlineSeconds: 10,
    });
    assert.equal(subscription, 'projects/sandbox-project/subscriptions/deployer-push');

    const payload = JSON.stringify({ image: 'europe-docker.pkg.dev/p/r/app@sha256:0123' });
    const messageId = await emulator.publish('deploy-requests', { data: payload, attributes: { source: 'test', kind: 'image' } });
    assert.match(messageId, /^\S+$/);

    const deadline = Date.now() + 30_000;
    while (pushes.length === 0 && Date.now() < deadline) await sleep(25);
    assert.equal(pushes.length, 1, 'one push within 30 s');
    const push = pushes[0];
    assert.ok(push);
    assert.equal(push.url, '/pubsub?token=abc');
    assert.match(push.headers['content-type'] ?? '', /^application\/json/);
    assert.equal(push.headers.authorization, undefined, 'the emulator sends no OIDC token');
    assert.equal(push.body.subscription, subscription);
    assert.equal(Buffer.from(push.body.message?.data ?? '', 'base64').toString('utf8'), payload);
    assert.deepEqual(push.body.message?.attributes, { source: 'test', kind: 'image' });
    assert.equal(push.body.message?.messageId, messageId);
    assert.ok(!Number.isNaN(Date.parse(push.body.message?.publishTime ?? '')), 'RFC 3339 publishTime');

    await emulator.deleteSubscription('deployer-push');
    await assert.rejects(emulator.deleteSubscription('deployer-push'), /HTTP 404/);
  } finally {
    await emulator.stop();
    receiver.close();
  }

  const pid = emulator.proc.child.pid;
  assert.ok(pid);
  assert.equal(emulator.proc.exited, true);
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
  const portArg = `--port=${emulator.host.split(':')[1]}`;
  assert.deepEqual((await commandLines()).filter((c) => c.includes('java') && c.includes(portArg)), []);
  assert.match(await readFile(path.join(dir, 'pubsub-emulator.log'), 'utf8'), /Server started, listening on/);
  await rm(dir, { recursive: true, force: true });
});
