// The registry side of a release against the sandbox's real OCI registry (CNCF Distribution
// behind Artifact Registry's token flow): artifacts pushed with the real oras CLI in the
// Flux format, as plain YAML files and as a tar.gz, read back through RegistryClient with
// an access token from the metadata fake; the error codes a deploy answers with; a hostile
// artifact refused; and the digest cache, counted at the registry front (/stats).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { gzipSync } from 'node:zlib';
import { tarball, type TarEntry } from './support/tarball.ts';
import { DeployError } from '../src/errors.ts';
import { FLUX_CONFIG_MEDIA_TYPE, FLUX_CONTENT_MEDIA_TYPE, readArtifact } from '../src/release/artifact.ts';
import { artifactCache } from '../src/release/cache.ts';
import { RegistryClient, pinnable } from '../src/release/registry.ts';
import { rememberSecret } from './support/leaks.ts';
import { accessToken, sandbox, stats } from './support/sandbox.ts';

const SA = 'deployer@sandbox-project.iam.gserviceaccount.com';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

// The function trusts the registry's CA through NODE_EXTRA_CA_CERTS, read at process start;
// this test process adds the same CA to Node's default store, which global fetch uses.
const info = await sandbox();
tls.setDefaultCACertificates([...tls.getCACertificates('default'), await readFile(info.registry.caFile, 'utf8')]);
const HOST = info.registry.host;

const client = () => new RegistryClient({ token: () => accessToken(SA) });
const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const CM = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  key: ${name}\n`;

async function registryCounts(): Promise<{ proxied: number; tokens: number; unauthorized: number }> {
  const counts = (await stats()).registry;
  assert.ok(counts, 'the sandbox reports registry counters');
  return counts;
}

/** A repository of its own per test: no test sees another's tags. */
const repo = (what: string) => `${HOST}/release-test/${what}-${randomBytes(4).toString('hex')}`;

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'release-registry-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The real oras CLI, the token on stdin, the registry's CA, a registry config of its own. */
async function oras(args: string[], cwd: string): Promise<string> {
  const token = await accessToken('ci-pusher@sandbox-project.iam.gserviceaccount.com');
  const flags = ['--ca-file', info.registry.caFile, '--registry-config', path.join(cwd, 'oras-auth.json'), '-u', 'oauth2accesstoken', '--password-stdin'];
  return new Promise((resolve, reject) => {
    const child = execFile(info.registry.oras, [...args, ...flags], { cwd }, (err, stdout, stderr) => (err ? reject(new Error(`oras ${args.join(' ')}: ${stderr}`)) : resolve(stdout)));
    child.stdin?.end(token);
  });
}

/** `oras push`; the pushed manifest's digest, as oras prints it. */
async function orasPush(ref: string, files: string[], cwd: string, extra: string[] = []): Promise<string> {
  const out = await oras(['push', ref, ...extra, ...files], cwd);
  const digest = /Digest: (sha256:[0-9a-f]{64})/.exec(out)?.[1];
  assert.ok(digest, out);
  return digest;
}


/**
 * What `flux push artifact oci://REPO:TAG --path=DIR` pushes (fluxcd/pkg oci push.go):
 * an OCI manifest with the Flux config media type, the go-containerregistry config file,
 * one tar+gzip content layer of DIR (tar.Tar: "." first, relative names, uid/mtime zeroed)
 * and the source/revision/created annotations. Blobs and manifest pushed with oras.
 */
async function fluxPush(ref: string, entries: TarEntry[], dir: string): Promise<string> {
  const tar = await tarball(entries);
  const layer = gzipSync(tar);
  const created = '2026-12-03T00:00:00Z';
  const config = Buffer.from(JSON.stringify({ architecture: '', created, history: [{ created }], os: '', rootfs: { type: 'layers', diff_ids: [sha256(tar)] }, config: {} }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: FLUX_CONFIG_MEDIA_TYPE, size: config.length, digest: sha256(config) },
      layers: [{ mediaType: FLUX_CONTENT_MEDIA_TYPE, size: layer.length, digest: sha256(layer) }],
      annotations: {
        'org.opencontainers.image.created': created,
        'org.opencontainers.image.revision': 'main@sha1:0123456789abcdef0123456789abcdef01234567',
        'org.opencontainers.image.source': 'https://github.com/example/web',
      },
    }),
  );
  await writeFile(path.join(dir, 'config.json'), config);
  await writeFile(path.join(dir, 'artifact.tgz'), layer);
  await writeFile(path.join(dir, 'manifest.json'), manifest);
  const repository = ref.slice(0, ref.lastIndexOf(':'));
  await oras(['blob', 'push', repository, 'config.json'], dir);
  await oras(['blob', 'push', repository, 'artifact.tgz'], dir);
  await oras(['manifest', 'push', ref, 'manifest.json'], dir);
  return sha256(manifest);
}

async function assertCode(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<DeployError> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => ((caught = err), true));
  assert.ok(caught instanceof DeployError, `a DeployError, not ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, pattern);
  return caught;
}

test('the sandbox registry is one the deployer may pin in, as REGISTRY_HOST', () => {
  assert.deepEqual(pinnable(`${HOST}/apps/web`, { REGISTRY_HOST: HOST }), { ok: true });
  assert.equal(pinnable(`${HOST}/apps/web`, {}).ok, false);
});

test('a Flux artifact (flux push artifact) resolves by tag to the pushed digest and reads back as its YAML files', async (t) => {
  const dir = await tempDir(t);
  const repository = repo('flux');
  const digest = await fluxPush(
    `${repository}:v1`,
    [
      { name: '.', type: 'directory' },
      { name: 'deploy', type: 'directory' },
      { name: 'deploy/web.yaml', text: CM('web') },
      { name: 'deploy/extra', type: 'directory' },
      { name: 'deploy/extra/settings.yml', text: CM('settings') },
      { name: 'README.md', text: '# web\n' },
    ],
    dir,
  );
  const registry = client();
  const resolved = await registry.resolve(repository, 'v1', { notFound: 'MANIFESTS_NOT_FOUND' });
  assert.equal(resolved.digest, digest);
  assert.equal(resolved.mediaType, OCI_MANIFEST);
  // By digest as well, the same answer.
  assert.equal((await registry.resolve(repository, digest, { notFound: 'MANIFESTS_NOT_FOUND' })).digest, digest);
  const artifact = await readArtifact(registry, repository, digest);
  assert.equal(artifact.format, 'flux');
  assert.deepEqual(artifact.files, [
    { path: 'deploy/extra/settings.yml', text: CM('settings') },
    { path: 'deploy/web.yaml', text: CM('web') },
  ]);
});

test('oras push of plain YAML files reads back as those files (a README beside them is skipped)', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'service.yaml'), CM('svc'));
  await writeFile(path.join(dir, 'deployment.yml'), CM('dep'));
  await writeFile(path.join(dir, 'README.md'), 'notes\n');
  const repository = repo('oras-yaml');
  const pushed = await orasPush(`${repository}:1.0.0`, ['service.yaml', 'deployment.yml', 'README.md'], dir);
  const registry = client();
  const { digest } = await registry.resolve(repository, '1.0.0', { notFound: 'MANIFESTS_NOT_FOUND' });
  assert.equal(digest, pushed);
  const artifact = await readArtifact(registry, repository, digest);
  assert.equal(artifact.format, 'oras-yaml');
  assert.deepEqual(artifact.files, [
    { path: 'deployment.yml', text: CM('dep') },
    { path: 'service.yaml', text: CM('svc') },
  ]);
});

test('oras push of a directory and of a tar.gz read back as the YAML files inside', async (t) => {
  const dir = await tempDir(t);
  await mkdir(path.join(dir, 'manifests', 'nested'), { recursive: true });
  await writeFile(path.join(dir, 'manifests', 'a.yaml'), CM('a'));
  await writeFile(path.join(dir, 'manifests', 'nested', 'b.yaml'), CM('b'));
  const want = [
    { path: 'manifests/a.yaml', text: CM('a') },
    { path: 'manifests/nested/b.yaml', text: CM('b') },
  ];
  const registry = client();

  const fromDir = repo('oras-dir');
  const dirDigest = await orasPush(`${fromDir}:v1`, ['manifests'], dir);
  assert.deepEqual(await readArtifact(registry, fromDir, dirDigest), { format: 'oras-tar', files: want });

  await writeFile(path.join(dir, 'app.tar.gz'), gzipSync(await tarball([{ name: 'manifests/a.yaml', text: CM('a') }, { name: 'manifests/nested/b.yaml', text: CM('b') }])));
  const fromTgz = repo('oras-tgz');
  const tgzDigest = await orasPush(`${fromTgz}:v1`, ['app.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip'], dir);
  assert.deepEqual(await readArtifact(registry, fromTgz, tgzDigest), { format: 'oras-tar', files: want });
  // Pushed without a media type, oras labels it a plain tar: its name and its bytes still say tar.gz.
  const untyped = repo('oras-tgz-untyped');
  const untypedDigest = await orasPush(`${untyped}:v1`, ['app.tar.gz'], dir);
  assert.deepEqual(await readArtifact(registry, untyped, untypedDigest), { format: 'oras-tar', files: want });
});

test('a tag or repository that does not exist: the caller-given not-found code (retryable), naming repo:tag', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'a.yaml'), CM('a'));
  const repository = repo('missing');
  await orasPush(`${repository}:v1`, ['a.yaml'], dir);
  const registry = client();
  const err = await assertCode(registry.resolve(repository, 'v2', { notFound: 'MANIFESTS_NOT_FOUND' }), 'MANIFESTS_NOT_FOUND', new RegExp(`${repository}:v2 was not found`));
  assert.equal(err.retryable, true);
  await assertCode(registry.resolve(`${HOST}/release-test/never-pushed`, 'v1', { notFound: 'IMAGE_NOT_FOUND' }), 'IMAGE_NOT_FOUND', /never-pushed:v1 was not found/);
  await assertCode(registry.resolve(repository, `sha256:${'0'.repeat(64)}`, { notFound: 'MANIFESTS_NOT_FOUND' }), 'MANIFESTS_NOT_FOUND', /@sha256:0{64} was not found/);
});

test('an access token the registry refuses: REGISTRY_ERROR naming the role, never the token', async () => {
  const madeUp = `ya29.sandbox.${randomBytes(24).toString('base64url')}`;
  rememberSecret(madeUp);
  const registry = new RegistryClient({ token: () => Promise.resolve(madeUp) });
  const err = await assertCode(registry.resolve(`${HOST}/release-test/any`, 'v1', { notFound: 'MANIFESTS_NOT_FOUND' }), 'REGISTRY_ERROR', /roles\/artifactregistry\.reader/);
  assert.equal(err.retryable, false);
  assert.ok(!err.message.includes(madeUp) && !err.message.includes(Buffer.from(`oauth2accesstoken:${madeUp}`).toString('base64')), err.message);
});

test('a registry that does not answer: REGISTRY_UNAVAILABLE (retryable)', async () => {
  // A port nothing listens on: bound, then closed again.
  const net = await import('node:net');
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const err = await assertCode(client().resolve(`127.0.0.1:${port}/apps/web`, 'v1', { notFound: 'IMAGE_NOT_FOUND' }), 'REGISTRY_UNAVAILABLE', /ECONNREFUSED/);
  assert.equal(err.retryable, true);
});

test('without the registry CA in its trust store the client refuses the TLS connection: REGISTRY_ERROR (configuration), not a retry', async () => {
  // Its own process: this one trusts the sandbox CA. No NODE_EXTRA_CA_CERTS, so only the default store.
  const script = [
    `import { RegistryClient } from ${JSON.stringify(new URL('../src/release/registry.ts', import.meta.url).href)};`,
    "const client = new RegistryClient({ token: () => Promise.resolve('unused') });",
    `client.resolve(${JSON.stringify(`${HOST}/apps/web`)}, 'v1', { notFound: 'IMAGE_NOT_FOUND' })`,
    '  .then(() => console.log(JSON.stringify({ code: "none" })), (err) => console.log(JSON.stringify({ code: err.code, retryable: err.retryable, message: err.message })));',
  ].join('\n');
  const { NODE_EXTRA_CA_CERTS: _unused, ...env } = process.env;
  const out = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['--input-type=module', '-e', script], { env }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout))),
  );
  const answer = JSON.parse(out) as { code: string; retryable: boolean; message: string };
  assert.equal(answer.code, 'REGISTRY_ERROR', answer.message);
  assert.equal(answer.retryable, false);
  assert.match(answer.message, /TLS verification failed \(UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
});

test('a hostile artifact pushed with oras (a tar entry ../x.yaml, a symlink) is refused as MANIFESTS_INVALID', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'escape.tar.gz'), gzipSync(await tarball([{ name: 'ok.yaml', text: CM('ok') }, { name: '../x.yaml', text: CM('x') }])));
  await writeFile(path.join(dir, 'link.tar.gz'), gzipSync(await tarball([{ name: 'x.yaml', type: 'symlink', linkname: '/var/run/secrets/kubernetes.io/serviceaccount/token' }])));
  const registry = client();
  const escape = repo('hostile-escape');
  const escapeDigest = await orasPush(`${escape}:v1`, ['escape.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip'], dir);
  const err = await assertCode(readArtifact(registry, escape, escapeDigest), 'MANIFESTS_INVALID', /layer "escape\.tar\.gz": path "\.\.\/x\.yaml" leaves the artifact/);
  assert.equal(err.retryable, false);
  assert.ok(err.message.startsWith(`manifests ${escape}@${escapeDigest}: `), err.message);
  const link = repo('hostile-link');
  const linkDigest = await orasPush(`${link}:v1`, ['link.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip'], dir);
  await assertCode(readArtifact(registry, link, linkDigest), 'MANIFESTS_INVALID', /entry "x\.yaml": a symlink/);
});

test('the cache: a second read of the same digest asks the registry nothing; one token serves a repository', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'a.yaml'), CM('a'));
  const repository = repo('cache');
  await orasPush(`${repository}:v1`, ['a.yaml'], dir);
  const registry = client();
  const cache = artifactCache();
  const read = (digest: string) => cache.get(digest, () => readArtifact(registry, repository, digest));

  const start = await registryCounts();
  const { digest } = await registry.resolve(repository, 'v1', { notFound: 'MANIFESTS_NOT_FOUND' });
  const cold = await read(digest);
  const afterCold = await registryCounts();
  // The cold read went to the registry (HEAD, manifest, blob) with one bearer token.
  assert.equal(afterCold.tokens - start.tokens, 1);
  assert.ok(afterCold.proxied - start.proxied >= 3, `cold: ${afterCold.proxied - start.proxied} requests`);

  const [warm, again] = await Promise.all([read(digest), read(digest)]);
  const afterWarm = await registryCounts();
  assert.deepEqual(afterWarm, afterCold);
  assert.equal(warm, cold);
  assert.equal(again, cold);

  // The cached bearer serves the next request to the repository: one request, no new token.
  await registry.resolve(repository, 'v1', { notFound: 'MANIFESTS_NOT_FOUND' });
  const afterResolve = await registryCounts();
  assert.deepEqual([afterResolve.proxied - afterWarm.proxied, afterResolve.tokens - afterWarm.tokens, afterResolve.unauthorized - afterWarm.unauthorized], [1, 0, 0]);
});

// ---------------------------------------------------------------------------------------
// Faults the real registry cannot be made to show (a revoked bearer, 5xx/429, a wrong digest,
// redirects, oversized and stalled bodies, a foreign token realm): a small HTTPS fake, with
// a certificate from a CA of its own that this process trusts as it trusts the sandbox's.

interface Fake {
  host: string;
  /** Requests per path (token endpoint included), and the Authorization headers seen. */
  seen: { path: string; authorization?: string }[];
  close(): Promise<void>;
}

type Handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, host: string) => void;

const fakeCerts = await (async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'release-registry-certs-'));
  const { makeCerts } = await import('../sandbox/kube/certs.ts');
  const certs = await makeCerts(dir, 'fake-registry');
  const pair = { cert: await readFile(certs.certFile, 'utf8'), key: await readFile(certs.keyFile, 'utf8') };
  tls.setDefaultCACertificates([...tls.getCACertificates('default'), await readFile(certs.caFile, 'utf8')]);
  await rm(dir, { recursive: true, force: true });
  return pair;
})();

async function fake(handler: Handler, hostname = '127.0.0.1'): Promise<Fake> {
  const https = await import('node:https');
  const seen: Fake['seen'] = [];
  let host = '';
  const server = https.createServer(fakeCerts, (req, res) => {
    seen.push({ path: req.url ?? '', ...(req.headers.authorization !== undefined && { authorization: req.headers.authorization }) });
    handler(req, res, host);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `${hostname}:${(server.address() as { port: number }).port}`;
  return {
    host,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const FAKE_ACCESS = 'ya29.fake-access-token-for-release-registry-test';
rememberSecret(FAKE_ACCESS);
const MANIFEST = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}');
const MANIFEST_DIGEST = sha256(MANIFEST);

/** Artifact Registry's flow: /v2/token trades Basic oauth2accesstoken:<FAKE_ACCESS> for a bearer; `valid` decides which bearers pass. */
function tokenFlow(state: { issued: string[]; valid: (bearer: string) => boolean }, serve: Handler): Handler {
  return (req, res, host) => {
    const url = new URL(req.url ?? '/', `https://${host}`);
    if (url.pathname === '/v2/token') {
      const ok = req.headers.authorization === `Basic ${Buffer.from(`oauth2accesstoken:${FAKE_ACCESS}`).toString('base64')}`;
      if (!ok) return void res.writeHead(401).end();
      const token = `bearer-${state.issued.length}-${randomBytes(8).toString('hex')}`;
      state.issued.push(token);
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 3600 }));
    }
    const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!bearer || !state.valid(bearer)) {
      return void res.writeHead(401, { 'www-authenticate': `Bearer realm="https://${host}/v2/token",service="${host}"` }).end();
    }
    serve(req, res, host);
  };
}

const manifestHandler: Handler = (req, res) => {
  res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': MANIFEST_DIGEST, 'content-length': MANIFEST.length });
  res.end(req.method === 'HEAD' ? undefined : MANIFEST);
};
const fakeClient = (timeoutMs?: number) => new RegistryClient({ token: () => Promise.resolve(FAKE_ACCESS), ...(timeoutMs !== undefined && { timeoutMs }) });

test('a cached bearer the registry stops accepting is dropped and the token flow is run once more; a refusal after that is REGISTRY_ERROR', async (t) => {
  const state = { issued: [] as string[], valid: (b: string) => b === state.issued.at(-1) };
  const server = await fake(tokenFlow(state, manifestHandler));
  t.after(() => server.close());
  const registry = fakeClient();
  const repository = `${server.host}/apps/web`;
  // Five requests at once with no bearer yet share one token flow.
  const digests = await Promise.all(Array.from({ length: 5 }, () => registry.resolve(repository, 'v1', { notFound: 'IMAGE_NOT_FOUND' })));
  assert.deepEqual(new Set(digests.map((d) => d.digest)), new Set([MANIFEST_DIGEST]));
  assert.equal(state.issued.length, 1);
  // The registry forgets the bearer (revoked, or its expiry came early): one new flow, then success.
  state.issued.push('revoked');
  assert.equal((await registry.resolve(repository, 'v1', { notFound: 'IMAGE_NOT_FOUND' })).digest, MANIFEST_DIGEST);
  assert.equal(state.issued.length, 3);
  // A registry that refuses every bearer: one flow, one retry, then the permission error (no loop).
  state.valid = () => false;
  const before = server.seen.length;
  await assertCode(registry.resolve(repository, 'v1', { notFound: 'IMAGE_NOT_FOUND' }), 'REGISTRY_ERROR', /HTTP 401.*roles\/artifactregistry\.reader/);
  assert.deepEqual(server.seen.slice(before).map((s) => s.path.split('?')[0]), ['/v2/apps/web/manifests/v1', '/v2/token', '/v2/apps/web/manifests/v1']);
  // 403 after auth: the same message.
  state.valid = () => true;
  const forbidden = await fake(tokenFlow(state, (_req, res) => void res.writeHead(403).end()));
  t.after(() => forbidden.close());
  await assertCode(fakeClient().resolve(`${forbidden.host}/apps/web`, 'v1', { notFound: 'IMAGE_NOT_FOUND' }), 'REGISTRY_ERROR', /HTTP 403.*roles\/artifactregistry\.reader/);
});

test('5xx, 429 and a stalled answer are REGISTRY_UNAVAILABLE; another 4xx is REGISTRY_ERROR', async (t) => {
  const state = { issued: [] as string[], valid: () => true };
  let status = 503;
  const server = await fake(
    tokenFlow(state, (req, res) => {
      if (status === 0) return; // never answers
      res.writeHead(status).end();
    }),
  );
  t.after(() => server.close());
  const repository = `${server.host}/apps/web`;
  for (const s of [500, 503, 429]) {
    status = s;
    const err = await assertCode(fakeClient().resolve(repository, 'v1', { notFound: 'IMAGE_NOT_FOUND' }), 'REGISTRY_UNAVAILABLE', new RegExp(`HTTP ${s}`));
    assert.equal(err.retryable, true);
  }
  status = 0;
  await assertCode(fakeClient(300).resolve(repository, 'v1', { notFound: 'IMAGE_NOT_FOUND' }), 'REGISTRY_UNAVAILABLE', /did not answer within 300 ms/);
  status = 400;
  await assertCode(fakeClient().resolve(repository, 'v1', { notFound: 'IMAGE_NOT_FOUND' }), 'REGISTRY_ERROR', /HTTP 400/);
});

test('content whose digest is not the one asked for is refused (REGISTRY_ERROR); a HEAD without the digest is settled by hashing the GET', async (t) => {
  const state = { issued: [] as string[], valid: () => true };
  const other = Buffer.from('{"schemaVersion":2,"tampered":true}');
  const server = await fake(
    tokenFlow(state, (req, res) => {
      const body = req.url?.includes('/tampered/') ? other : MANIFEST;
      res.writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': body.length });
      res.end(req.method === 'HEAD' ? undefined : body);
    }),
  );
  t.after(() => server.close());
  const registry = fakeClient();
  assert.deepEqual(await registry.resolve(`${server.host}/apps/web`, 'v1', { notFound: 'IMAGE_NOT_FOUND' }), { digest: MANIFEST_DIGEST, mediaType: OCI_MANIFEST, size: MANIFEST.length });
  await assertCode(registry.manifest(`${server.host}/apps/tampered`, MANIFEST_DIGEST), 'REGISTRY_ERROR', new RegExp(`the content's digest is ${sha256(other)}`));
  await assertCode(registry.blob(`${server.host}/apps/tampered`, MANIFEST_DIGEST, 1000), 'REGISTRY_ERROR', /the content's digest is/);
  await assertCode(registry.resolve(`${server.host}/apps/tampered`, MANIFEST_DIGEST, { notFound: 'IMAGE_NOT_FOUND' }), 'REGISTRY_ERROR', /was answered with digest/);
});

test('a blob redirected to another host is fetched there without the bearer; a redirect to plain HTTP is refused', async (t) => {
  const blob = Buffer.from(CM('redirected'));
  const storage = await fake((_req, res) => void res.writeHead(200, { 'content-length': blob.length }).end(blob), 'localhost');
  t.after(() => storage.close());
  const state = { issued: [] as string[], valid: () => true };
  const server = await fake(
    tokenFlow(state, (req, res) => {
      const location = req.url?.includes('/plain/') ? 'http://localhost:1/blob' : `https://${storage.host}/signed/blob?sig=1`;
      res.writeHead(307, { location }).end();
    }),
  );
  t.after(() => server.close());
  const registry = fakeClient();
  assert.deepEqual(await registry.blob(`${server.host}/apps/web`, sha256(blob), 1000), blob);
  assert.deepEqual(storage.seen, [{ path: '/signed/blob?sig=1' }]);
  await assertCode(registry.blob(`${server.host}/apps/plain`, sha256(blob), 1000), 'REGISTRY_ERROR', /redirects to http:\/\/ \(HTTPS only\)/);
});

test('a blob declared or streamed past the bound is refused (MANIFESTS_INVALID) without being read whole', async (t) => {
  const state = { issued: [] as string[], valid: () => true };
  let sent = 0;
  const server = await fake(
    tokenFlow(state, (req, res) => {
      const declared = req.url?.includes('/declared/');
      res.writeHead(200, declared ? { 'content-length': 64 * 1024 * 1024 } : {});
      // Up to 64 MiB, in 64 KiB chunks, as fast as the client reads.
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const write = () => {
        while (sent < 64 * 1024 * 1024 && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', write);
        }
        res.end();
      };
      write();
    }),
  );
  t.after(() => server.close());
  const registry = fakeClient();
  const digest = `sha256:${'1'.repeat(64)}`;
  await assertCode(registry.blob(`${server.host}/apps/declared`, digest, 1024 * 1024), 'MANIFESTS_INVALID', /is 67108864 bytes, over the 1048576-byte bound/);
  sent = 0;
  await assertCode(registry.blob(`${server.host}/apps/streamed`, digest, 1024 * 1024), 'MANIFESTS_INVALID', /over the 1048576-byte bound \(stopped reading at \d+ bytes\)/);
  assert.ok(sent < 64 * 1024 * 1024, `the server was stopped before sending it all (${sent} bytes sent)`);
});

test('a token realm on another host is refused: the access token is not sent there', async (t) => {
  const elsewhere = await fake((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"x"}'), 'localhost');
  t.after(() => elsewhere.close());
  const server = await fake((_req, res) => void res.writeHead(401, { 'www-authenticate': `Bearer realm="https://${elsewhere.host}/token",service="x"` }).end());
  t.after(() => server.close());
  await assertCode(fakeClient().resolve(`${server.host}/apps/web`, 'v1', { notFound: 'IMAGE_NOT_FOUND' }), 'REGISTRY_ERROR', /token endpoint https:\/\/localhost:\d+ is not https:\/\/127\.0\.0\.1:\d+; the access token is not sent there/);
  assert.deepEqual(elsewhere.seen, []);
});
