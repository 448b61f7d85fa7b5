// Bodies over the limit against the function as Cloud Run runs it: functions-framework's own
// main (`npm start`, `--function deploy`) loading src/index.ts, in a child process whose memory
// can be read. Nothing over the limit may be buffered whole: not by functions-framework's body
// parser (1 GiB limit) and not by us.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePort, startProcess, waitFor, type Proc } from '../sandbox/process.ts';
import { LIMITS } from '../src/sources/limits.ts';
import { rawRequest, type RawAnswer } from './hostile/client.ts';
import { REPO, configYaml, fixture, gkeCluster, webTarget } from './support/config.ts';
import { exists, namespace, useSandboxEnv } from './support/sandbox.ts';
import { until } from './support/until.ts';

const MiB = 1024 * 1024;
const ROOT = path.resolve(import.meta.dirname, '..');

/** Peak and current resident memory of a process, in bytes (Linux /proc). */
function memory(pid: number): { peak: number; now: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) * 1024;
  return { peak: kib('VmHWM'), now: kib('VmRSS') };
}

function assertTooLarge(a: RawAnswer, what: string): void {
  assert.equal(a.status, 413, `${what}: ${a.text}`);
  assert.match(String(a.headers['content-type']), /^application\/json/, what);
  assert.equal(a.json?.status, 'error', what);
  assert.deepEqual(a.json?.error, { code: 'PAYLOAD_TOO_LARGE', message: `request body over the ${LIMITS.maxBodyBytes}-byte limit` }, what);
  assert.match(String(a.json?.requestId), /^[0-9a-f-]{36}$/, what);
}

describe('bodies over the limit, functions-framework serving src/index.ts', { timeout: 120_000 }, () => {
  let fn: Proc;
  let port: number;
  let ns: string;
  /** What the function read of each connection, by the client's port (test/support/socket-bytes.ts). */
  let socketBytes: string;

  before(async () => {
    const info = await useSandboxEnv();
    ns = await namespace('body');
    const dir = await mkdtemp(path.join(tmpdir(), 'gke-deployer-body-'));
    socketBytes = path.join(dir, 'socket-bytes');
    await writeFile(socketBytes, '');
    const counter = path.join(ROOT, 'test/support/socket-bytes.ts');
    await writeFile(path.join(dir, 'web.yaml'), fixture('manifests/web.yaml'));
    await writeFile(path.join(dir, 'deployer.yaml'), configYaml({ clusters: { sandbox: gkeCluster(info) }, targets: { web: webTarget(ns) } }));
    port = await freePort();
    fn = startProcess({
      name: 'function',
      command: process.execPath,
      args: [path.join(ROOT, 'node_modules/.bin/functions-framework'), '--target=deploy', '--source=src/index.ts'],
      cwd: ROOT,
      env: { ...process.env, ...info.env, DEPLOYER_CONFIG: path.join(dir, 'deployer.yaml'), PORT: String(port), SOCKET_BYTES_FILE: socketBytes, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${counter}` },
      logFile: path.join(dir, 'function.log'),
    });
    await waitFor('the function', async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, { timeoutMs: 30_000, proc: fn });
  });
  after(() => fn.stop());

  for (const mib of [2, 10]) {
    test(`${mib} MiB with Content-Length, JSON or not: 413 with our JSON error`, async () => {
      for (const type of ['application/json', 'application/octet-stream']) {
        assertTooLarge(await rawRequest(port, { path: '/deploy', headers: { 'content-type': type }, stream: { total: mib * MiB, declared: mib * MiB } }), type);
      }
    });

    test(`${mib} MiB chunked: 413 with our JSON error, answered while the client is still sending`, async () => {
      const a = await rawRequest(port, { path: '/deploy', headers: { 'content-type': 'application/json' }, stream: { total: mib * MiB } });
      assertTooLarge(a, 'chunked');
    });
  }

  test('a declared length over the limit is answered before a byte of the body is sent (no 100 Continue)', { timeout: 10_000 }, async () => {
    for (const expect of [false, true]) {
      const socket = net.connect(port, '127.0.0.1');
      socket.write(
        `POST /deploy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${10 * MiB}\r\n${expect ? 'Expect: 100-continue\r\n' : ''}\r\n`,
      );
      let text = '';
      socket.setEncoding('utf8');
      await new Promise<void>((resolve) => socket.on('data', (d: string) => ((text += d), text.includes('"requestId"') && resolve())));
      socket.destroy();
      assert.match(text, /^HTTP\/1\.1 413 /, text);
      assert.doesNotMatch(text, /100 Continue/);
      assert.match(text, /"code":"PAYLOAD_TOO_LARGE"/);
    }
  });

  test('a chunked body over the limit: the server stops reading and closes the connection before 10 MiB are sent', { timeout: 10_000 }, async () => {
    // A bare socket that keeps sending whatever it receives (an HTTP client would stop at the answer).
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (answer += d));
    const closed = new Promise<void>((resolve) => {
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
    });
    let open = true;
    void closed.then(() => (open = false));
    socket.write('POST /deploy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
    const size = 64 * 1024;
    const chunk = Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), Buffer.alloc(size, 0x61), Buffer.from('\r\n')]);
    let sent = 0;
    while (open && sent < 10 * MiB) {
      sent += size;
      if (!socket.write(chunk)) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closed]);
    }
    await closed;
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.match(answer, /\r\nconnection: close\r\n/i);
    assert.match(answer, /"code":"PAYLOAD_TOO_LARGE"/);
    // It reads at most the limit plus the drain bound; the kernel's socket buffers hold some more.
    assert.ok(sent < 10 * MiB, `the whole body was accepted (${sent} bytes)`);
  });

  test('after a 413 at most 1 MiB more is read, and the connection is closed within 2 s', { timeout: 20_000 }, async (t) => {
    // README: "after a 413 at most 1 MiB more is read and dropped, and the connection is closed
    // within 2 s". A client that never stops sending; what the server read is its socket's
    // bytesRead, counted in the function process.
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const clientPort = socket.localPort;
    let answer = '';
    let answeredAt = 0;
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      answer += d;
      answeredAt ||= performance.now();
    });
    let closedAt = 0;
    const closed = new Promise<void>((resolve) => {
      const done = () => ((closedAt ||= performance.now()), resolve());
      socket.on('error', done);
      socket.on('close', done);
    });
    socket.write('POST /deploy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
    const size = 64 * 1024;
    const chunk = Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), Buffer.alloc(size, 0x61), Buffer.from('\r\n')]);
    let sent = 0;
    while (closedAt === 0) {
      sent += size;
      if (!socket.write(chunk)) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closed]);
    }
    await closed;
    assert.match(answer, /^HTTP\/1\.1 413 /);
    const line = await until('the function to count the connection', async () => (await readFile(socketBytes, 'utf8')).split('\n').find((l) => l.startsWith(`${clientPort} `)));
    const read = Number(line.split(' ')[1]);
    // The body up to the limit, then the drain; slack for one 64 KiB read past each bound, the
    // stream's read-ahead, and the headers and chunk framing.
    const bound = LIMITS.maxBodyBytes + MiB + 256 * 1024;
    assert.ok(sent > bound, `the client offered more than the bound (${sent} bytes)`);
    assert.ok(read <= bound, `the function read ${read} bytes of the ${sent} offered`);
    // 2 s after the answer, and what the loopback and two event loops add (< 0.2 s).
    const lingered = closedAt - answeredAt;
    t.diagnostic(`read ${read} of ${sent} bytes offered; closed ${lingered.toFixed(0)} ms after the 413`);
    assert.ok(lingered <= 2_200, `closed ${lingered.toFixed(0)} ms after the 413`);
  });

  test('20 concurrent 10 MiB bodies (chunked and declared) do not grow the process by their size', { timeout: 30_000 }, async (t) => {
    const { pid } = fn.child;
    assert.ok(pid !== undefined);
    // The burst's own peak: RSS sampled while it runs, against RSS just before it (VmHWM is the
    // process's lifetime peak, which an earlier test may have set).
    const before = memory(pid).now;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, memory(pid).now)), 5);
    const burst = Array.from({ length: 20 }, (_, i) =>
      rawRequest(port, { path: i % 2 ? '/deploy' : '/webhooks/github', headers: { 'content-type': 'application/json' }, stream: { total: 10 * MiB, ...(i % 4 < 2 && { declared: 10 * MiB }) } }),
    );
    const answers = await Promise.all(burst).finally(() => clearInterval(sampler));
    peak = Math.max(peak, memory(pid).now);
    t.diagnostic(`RSS ${(before / MiB).toFixed(0)} MiB before, ${(peak / MiB).toFixed(0)} MiB at the burst's peak, for 200 MiB of bodies`);
    // Buffered whole (as functions-framework's parser does) they would add 200 MiB and more.
    assert.ok(peak - before < 64 * MiB, `RSS grew by ${((peak - before) / MiB).toFixed(0)} MiB during the burst`);
    for (const a of answers) assertTooLarge(a, 'burst');
  });

  test('bodies within the limit still work: malformed JSON is our JSON 400, compressed bodies 415, a deploy deploys', async () => {
    const bad = await rawRequest(port, { path: '/deploy', headers: { 'content-type': 'application/json' }, body: '{"target": "web", ' });
    assert.equal(bad.status, 400, bad.text);
    assert.equal((bad.json?.error as { code: string }).code, 'BAD_REQUEST');
    assert.match((bad.json?.error as { message: string }).message, /body is not valid JSON/);

    const gzip = await rawRequest(port, { path: '/deploy', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: 'x' });
    assert.equal(gzip.status, 415, gzip.text);
    assert.equal((gzip.json?.error as { code: string }).code, 'UNSUPPORTED_MEDIA_TYPE');

    // Just under the limit: read in full and parsed (an unknown key pads it).
    const pad = 'x'.repeat(LIMITS.maxBodyBytes - 200);
    const near = await rawRequest(port, { path: '/deploy', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target: 'web', image: `${REPO}:1`, pad }) });
    assert.equal(near.status, 400, near.text);
    assert.match((near.json?.error as { message: string }).message, /Unrecognized key: "pad"/);

    const ok = await rawRequest(port, { path: '/deploy', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target: 'web', image: `${REPO}:1` }) });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(await exists('deployment', 'web', ns), true);
  });
});
