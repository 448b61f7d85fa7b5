// Reading a manifests artifact (src/release/artifact.ts) from layers built in memory: the
// formats users push (Flux, oras YAML files, oras tar.gz), and a hostile artifact for each
// bound and path rule, each refused as MANIFESTS_INVALID with the rule and the file named.
// Also the digest cache (src/release/cache.ts) and the registry-name rules (registry.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { tarball, type TarEntry } from '../support/tarball.ts';
import { DeployError } from '../../src/errors.ts';
import {
  DEFAULT_ARTIFACT_LIMITS,
  FLUX_CONFIG_MEDIA_TYPE,
  FLUX_CONTENT_MEDIA_TYPE,
  extractFiles,
  planArtifact,
  readArtifact,
  type ArtifactSource,
  type PlannedLayer,
} from '../../src/release/artifact.ts';
import { DigestCache, artifactCache } from '../../src/release/cache.ts';
import { pinnable, splitRepository } from '../../src/release/registry.ts';

const MiB = 1024 * 1024;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const TAR = 'application/vnd.oci.image.layer.v1.tar';
const TAR_GZ = 'application/vnd.oci.image.layer.v1.tar+gzip';

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const archive = (bytes: Buffer, title?: string, mediaType = TAR_GZ): { layer: PlannedLayer; bytes: Buffer } => ({
  layer: { kind: 'archive', mediaType, digest: digestOf(bytes), size: bytes.length, ...(title !== undefined && { title }) },
  bytes,
});
const yamlLayer = (title: string, text: string): { layer: PlannedLayer; bytes: Buffer } => {
  const bytes = Buffer.from(text);
  return { layer: { kind: 'yaml', mediaType: TAR, digest: digestOf(bytes), size: bytes.length, title }, bytes };
};

const descriptor = (mediaType: string, size: number, annotations?: Record<string, string>, seed = mediaType) => ({
  mediaType,
  digest: digestOf(Buffer.from(`${seed}${size}${JSON.stringify(annotations)}`)),
  size,
  ...(annotations && { annotations }),
});
const ociManifest = (config: string, layers: object[], extra: Record<string, unknown> = {}) => ({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: descriptor(config, 2), layers, ...extra });

async function refused(promise: Promise<unknown> | (() => unknown), pattern: RegExp): Promise<void> {
  await assert.rejects(
    () => Promise.resolve().then(() => (typeof promise === 'function' ? promise() : promise)),
    (err: unknown) => {
      assert.ok(err instanceof DeployError, `a DeployError, not ${String(err)}`);
      assert.equal(err.code, 'MANIFESTS_INVALID', err.message);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

const CM = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n`;

describe('the formats users push', () => {
  test('a Flux artifact: the tarball of a directory (entries ".", dirs, nested files), YAML kept, other files skipped, sorted by path', async () => {
    // fluxcd/pkg tar.Tar: names relative to the pushed directory, "." first, directories without a slash.
    const tgz = gzipSync(
      await tarball([
        { name: '.', type: 'directory' },
        { name: 'deploy', type: 'directory' },
        { name: 'deploy/web.yaml', text: CM('web') },
        { name: 'deploy/nested', type: 'directory' },
        { name: 'deploy/nested/svc.yml', text: CM('svc') },
        { name: 'README.md', text: '# not a manifest\n' },
        { name: 'app.yaml', text: CM('app') },
      ]),
    );
    const files = await extractFiles([archive(tgz, undefined, FLUX_CONTENT_MEDIA_TYPE)]);
    assert.deepEqual(files, [
      { path: 'app.yaml', text: CM('app') },
      { path: 'deploy/nested/svc.yml', text: CM('svc') },
      { path: 'deploy/web.yaml', text: CM('web') },
    ]);
  });

  test('oras push of YAML files: one raw layer per file, its path the title', async () => {
    const files = await extractFiles([yamlLayer('service.yaml', CM('s')), yamlLayer('deployment.yml', CM('d'))]);
    assert.deepEqual(files.map((f) => f.path), ['deployment.yml', 'service.yaml']);
    assert.equal(files[1]?.text, CM('s'));
  });

  test('oras push of a directory (tar+gzip, "dir/" entries) or of a plain .tar: read by content, gzip or not', async () => {
    const entries: TarEntry[] = [
      { name: 'manifests/', type: 'directory' },
      { name: 'manifests/a.yaml', text: CM('a') },
      { name: './manifests//b.yaml', text: CM('b') },
    ];
    const want = [
      { path: 'manifests/a.yaml', text: CM('a') },
      { path: 'manifests/b.yaml', text: CM('b') },
    ];
    assert.deepEqual(await extractFiles([archive(gzipSync(await tarball(entries)), 'manifests')]), want);
    // oras gives a pushed app.tar.gz the plain-tar media type: the gzip magic decides.
    assert.deepEqual(await extractFiles([archive(gzipSync(await tarball(entries)), 'app.tar.gz', TAR)]), want);
    assert.deepEqual(await extractFiles([archive(await tarball(entries), 'app.tar', TAR)]), want);
  });

  test('a byte-order mark is dropped; a file that is not UTF-8 is refused by name', async () => {
    const [file] = await extractFiles([yamlLayer('bom.yaml', `\uFEFF${CM('bom')}`)]);
    assert.equal(file?.text, CM('bom'));
    await refused(extractFiles([archive(gzipSync(await tarball([{ name: 'bad.yaml', bytes: Buffer.from([0x6b, 0x3a, 0xff, 0xfe]) }])))]), /"bad\.yaml" is not UTF-8/);
  });
});

describe('planning from the manifest: format, and refusals before any download', () => {
  test('flux config + content layer → flux; oras files → oras-yaml; a tar(.gz) layer → oras-tar (manifests as oras 1.3.6 writes them)', () => {
    const flux = planArtifact(ociManifest(FLUX_CONFIG_MEDIA_TYPE, [descriptor(FLUX_CONTENT_MEDIA_TYPE, 300)]), OCI_MANIFEST);
    assert.equal(flux.format, 'flux');
    assert.deepEqual(flux.layers.map((l) => l.kind), ['archive']);

    const empty = 'application/vnd.oci.empty.v1+json';
    const artifactType = { artifactType: 'application/vnd.unknown.artifact.v1' };
    const files = planArtifact(
      ociManifest(empty, [descriptor(TAR, 8, { 'org.opencontainers.image.title': 'a.yaml' }), descriptor(TAR, 3, { 'org.opencontainers.image.title': 'README.md' })], artifactType),
      OCI_MANIFEST,
    );
    assert.equal(files.format, 'oras-yaml');
    assert.deepEqual(files.layers.map((l) => [l.kind, l.title]), [['yaml', 'a.yaml']]);

    const dir = planArtifact(
      ociManifest(empty, [descriptor(TAR_GZ, 229, { 'io.deis.oras.content.unpack': 'true', 'org.opencontainers.image.title': 'manifests' })], artifactType),
      OCI_MANIFEST,
    );
    assert.equal(dir.format, 'oras-tar');
    const tgz = planArtifact(ociManifest(empty, [descriptor(TAR, 240, { 'org.opencontainers.image.title': 'app.tar.gz' })], artifactType), OCI_MANIFEST);
    assert.deepEqual([tgz.format, tgz.layers[0]?.kind], ['oras-tar', 'archive']);
  });

  test('an image index, a container image, a Flux artifact without exactly one content layer, an artifact with no YAML layer: refused', async () => {
    await refused(() => planArtifact({ schemaVersion: 2, manifests: [] }, 'application/vnd.oci.image.index.v1+json'), /image index/);
    await refused(() => planArtifact({ schemaVersion: 2 }, 'application/vnd.docker.distribution.manifest.v2+json'), /Docker container image/);
    await refused(() => planArtifact(ociManifest('application/vnd.oci.image.config.v1+json', [descriptor(TAR_GZ, 100)]), OCI_MANIFEST), /container image, not a manifests artifact/);
    await refused(
      () => planArtifact(ociManifest(FLUX_CONFIG_MEDIA_TYPE, [descriptor(FLUX_CONTENT_MEDIA_TYPE, 1, undefined, 'a'), descriptor(FLUX_CONTENT_MEDIA_TYPE, 1, undefined, 'b')]), OCI_MANIFEST),
      /one application\/vnd\.cncf\.flux\.content\.v1\.tar\+gzip layer; this one has 2/,
    );
    await refused(
      () => planArtifact(ociManifest('application/vnd.oci.empty.v1+json', [descriptor('text/markdown', 10, { 'org.opencontainers.image.title': 'README.md' })], { artifactType: 'x' }), OCI_MANIFEST),
      /no YAML layer.*text\/markdown "README\.md"/,
    );
  });

  test('a layer declared bigger than the artifact bound is refused before its blob is asked for', async () => {
    const big = descriptor(TAR_GZ, DEFAULT_ARTIFACT_LIMITS.maxCompressedBytes + 1, { 'org.opencontainers.image.title': 'big.tar.gz' });
    const manifest = ociManifest('application/vnd.oci.empty.v1+json', [big], { artifactType: 'x' });
    await refused(() => planArtifact(manifest, OCI_MANIFEST), /layer "big\.tar\.gz" declares 10485761 bytes, which takes the artifact over its 10 MiB bound/);
    // Two layers each under the bound but together over it.
    const half = (n: string) => descriptor(TAR_GZ, 6 * MiB, { 'org.opencontainers.image.title': `${n}.tar.gz` });
    await refused(() => planArtifact(ociManifest('application/vnd.oci.empty.v1+json', [half('a'), half('b')], { artifactType: 'x' }), OCI_MANIFEST), /"b\.tar\.gz".*over its 10 MiB bound/);

    const blobsAsked: string[] = [];
    const source: ArtifactSource = {
      manifest: () => Promise.resolve({ mediaType: OCI_MANIFEST, json: manifest, size: 1 }),
      blob: (_repo, digest) => {
        blobsAsked.push(digest);
        return Promise.reject(new Error('must not be asked'));
      },
    };
    const digest = `sha256:${'a'.repeat(64)}`;
    await refused(readArtifact(source, 'reg.example/apps/web-deploy', digest), new RegExp(`^manifests reg\\.example/apps/web-deploy@${digest}: layer "big\\.tar\\.gz" declares`));
    assert.deepEqual(blobsAsked, []);
  });

  test('a raw YAML layer titled with a path that leaves the artifact is refused from the manifest', async () => {
    const layer = descriptor(TAR, 10, { 'org.opencontainers.image.title': '../../etc/x.yaml' });
    await refused(() => planArtifact(ociManifest('application/vnd.oci.empty.v1+json', [layer], { artifactType: 'x' }), OCI_MANIFEST), /path "\.\.\/\.\.\/etc\/x\.yaml" leaves the artifact/);
  });
});

describe('a hostile artifact is refused whole', () => {
  const tgzOf = async (entries: TarEntry[]) => archive(gzipSync(await tarball(entries)), 'evil.tar.gz');

  test('a path with a .. segment', async () => {
    await refused(extractFiles([await tgzOf([{ name: 'ok.yaml', text: CM('ok') }, { name: '../x.yaml', text: CM('x') }])]), /layer "evil\.tar\.gz": path "\.\.\/x\.yaml" leaves the artifact \(\.\.\)/);
    await refused(extractFiles([await tgzOf([{ name: 'a/../../x.yaml', text: CM('x') }])]), /path "a\/\.\.\/\.\.\/x\.yaml" leaves the artifact/);
    // Even a .. that would stay inside is refused: no path arithmetic on hostile names.
    await refused(extractFiles([await tgzOf([{ name: 'a/../x.yaml', text: CM('x') }])]), /leaves the artifact/);
  });

  test('an absolute path', async () => {
    await refused(extractFiles([await tgzOf([{ name: '/etc/x.yaml', text: CM('x') }])]), /path "\/etc\/x\.yaml" is absolute/);
  });

  test('a symlink, a hardlink, a device: only files and directories', async () => {
    await refused(extractFiles([await tgzOf([{ name: 'x.yaml', type: 'symlink', linkname: '/etc/passwd' }])]), /entry "x\.yaml": a symlink → "\/etc\/passwd"; only files and directories/);
    await refused(
      extractFiles([await tgzOf([{ name: 'a.yaml', text: CM('a') }, { name: 'b.yaml', type: 'link', linkname: 'a.yaml' }])]),
      /entry "b\.yaml": a link → "a\.yaml"; only files and directories/,
    );
    await refused(extractFiles([await tgzOf([{ name: 'dev.yaml', type: 'character-device' }])]), /a character-device/);
  });

  test('a gzip bomb: a small layer that decompresses past the bound stops at the bound', async () => {
    const bomb = gzipSync(await tarball([{ name: 'zeros.yaml', bytes: Buffer.alloc(DEFAULT_ARTIFACT_LIMITS.maxDecompressedBytes + MiB) }]));
    assert.ok(bomb.length < 100 * 1024, `the bomb is small: ${bomb.length} bytes`);
    await refused(extractFiles([archive(bomb, 'bomb.tar.gz')]), /layer "bomb\.tar\.gz" decompresses past the artifact's 20 MiB bound/);
    // The bound is the artifact's, across layers: two halves that fit alone do not fit together.
    const half = gzipSync(await tarball([{ name: 'h1.yaml', bytes: Buffer.alloc(5.5 * MiB, 0x20) }, { name: 'h2.yaml', bytes: Buffer.alloc(5.5 * MiB, 0x20) }]));
    await refused(extractFiles([archive(half, 'one.tar.gz'), archive(half, 'two.tar.gz')]), /layer "two\.tar\.gz" decompresses past/);
  });

  test('too many files', async () => {
    const many = Array.from({ length: DEFAULT_ARTIFACT_LIMITS.maxFiles + 1 }, (_, i) => ({ name: `f${i}.yaml`, text: CM(`f${i}`) }));
    await refused(extractFiles([await tgzOf(many)]), /more than 1000 files/);
    // Exactly at the bound is fine.
    assert.equal((await extractFiles([await tgzOf(many.slice(0, 1000))])).length, 1000);
  });

  test('a single oversized file (in a tar, and as a raw layer)', async () => {
    const big = Buffer.alloc(DEFAULT_ARTIFACT_LIMITS.maxFileBytes + 1, 0x20);
    await refused(extractFiles([await tgzOf([{ name: 'big.yaml', bytes: big }])]), /entry "big\.yaml" is 8388609 bytes, over the 8 MiB bound for one file/);
    await refused(extractFiles([{ ...yamlLayer('big.yaml', ''), bytes: big }]), /layer "big\.yaml" is 8388609 bytes, over the 8 MiB bound for one file/);
  });

  test('a path longer than the bound, and the same path twice', async () => {
    const long = `${'d/'.repeat(128)}x.yaml`;
    await refused(extractFiles([await tgzOf([{ name: long, text: CM('l') }])]), /is 262 characters, over the bound of 256/);
    await refused(extractFiles([await tgzOf([{ name: 'a.yaml', text: CM('a') }, { name: './a.yaml', text: CM('b') }])]), /"a\.yaml" appears twice/);
    // Across layers too: a raw file and a tar entry of the same path.
    await refused(extractFiles([yamlLayer('a.yaml', CM('a')), await tgzOf([{ name: 'a.yaml', text: CM('b') }])]), /"a\.yaml" appears twice/);
  });

  test('no YAML at all, and a layer that is not a tar', async () => {
    await refused(extractFiles([await tgzOf([{ name: 'README.md', text: 'hi' }])]), /holds no \.yaml or \.yml file/);
    await refused(extractFiles([archive(gzipSync(Buffer.from('not a tar archive, just text'.repeat(40))), 'x.tar.gz')]), /layer "x\.tar\.gz" is not a readable tar archive/);
    await refused(extractFiles([archive(Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x01]), 'x.tar.gz')]), /layer "x\.tar\.gz" is not valid gzip/);
  });
});

describe('DigestCache', () => {
  const digest = (n: number) => `sha256:${String(n).padStart(64, '0')}`;

  test('two callers of one digest share one load; a kept entry is not loaded again', async () => {
    const cache = artifactCache();
    let loads = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const load = async () => {
      loads++;
      await gate;
      return { format: 'oras-yaml' as const, files: [{ path: 'a.yaml', text: CM('a') }] };
    };
    const a = cache.get(digest(1), load);
    const b = cache.get(digest(1), load);
    release();
    assert.equal(await a, await b);
    assert.equal(loads, 1);
    await cache.get(digest(1), load);
    assert.equal(loads, 1);
  });

  test('a failed load is not kept: the next caller loads again', async () => {
    const cache = new DigestCache<string>({ sizeOf: (v) => v.length });
    await assert.rejects(cache.get(digest(1), () => Promise.reject(new Error('registry down'))), /registry down/);
    assert.equal(await cache.get(digest(1), () => Promise.resolve('ok')), 'ok');
  });

  test('bounded by bytes and by entries, least recently used out first; a value over the byte bound is returned, not kept', async () => {
    const cache = new DigestCache<string>({ sizeOf: (v) => v.length, maxBytes: 10, maxEntries: 3 });
    const put = (n: number, v: string) => cache.get(digest(n), () => Promise.resolve(v));
    await put(1, 'aaaa');
    await put(2, 'bbbb');
    await put(1, 'unused'); // a hit: 1 becomes the most recent
    await put(3, 'cc'); // 10 bytes: all fit
    assert.deepEqual([cache.has(digest(1)), cache.has(digest(2)), cache.has(digest(3)), cache.bytes], [true, true, true, 10]);
    await put(4, 'd'); // over 10 bytes: 2 (least recent) goes
    assert.deepEqual([1, 2, 3, 4].map((n) => cache.has(digest(n))), [true, false, true, true]);
    await put(5, 'e'); // four entries: 1 goes
    assert.deepEqual([1, 3, 4, 5].map((n) => cache.has(digest(n))), [false, true, true, true]);
    assert.equal(await put(6, 'x'.repeat(11)), 'x'.repeat(11));
    assert.equal(cache.has(digest(6)), false);
    assert.equal(cache.size, 3);
  });
});

describe('registry names', () => {
  test('pinnable: Artifact Registry, gcr.io and REGISTRY_HOST; anything else says why not', () => {
    const env = { REGISTRY_HOST: '127.0.0.1:5000' };
    for (const repo of ['europe-docker.pkg.dev/p/r/web', 'us-central1-docker.pkg.dev/p/r/web', 'gcr.io/p/web', 'eu.gcr.io/p/web', '127.0.0.1:5000/apps/web']) {
      assert.deepEqual(pinnable(repo, env), { ok: true }, repo);
    }
    for (const [repo, why] of [
      ['ghcr.io/o/web', /ghcr\.io is not Artifact Registry/],
      ['127.0.0.1:5000/apps/web', /not Artifact Registry/], // no REGISTRY_HOST in this env
      ['nginx', /Docker Hub/],
      ['library/nginx', /Docker Hub/],
      ['docker.pkg.dev.evil.example/p/web', /not Artifact Registry/],
      ['evil-docker.pkg.dev.example/p/web', /not Artifact Registry/],
      ['gcr.io.evil.example/p/web', /not Artifact Registry/],
    ] as const) {
      const r = pinnable(repo, repo.startsWith('127.') ? {} : env);
      assert.equal(r.ok, false, repo);
      assert.match(r.ok ? '' : r.reason, why, repo);
    }
  });

  test('splitRepository: the host is the first component; a name that could bend the URL is refused', () => {
    assert.deepEqual(splitRepository('europe-docker.pkg.dev/p/r/web'), { host: 'europe-docker.pkg.dev', name: 'p/r/web' });
    assert.deepEqual(splitRepository('127.0.0.1:5000/apps/web'), { host: '127.0.0.1:5000', name: 'apps/web' });
    for (const bad of ['web', 'h.example/../x', 'h.example/a?b', 'h.example/A/b', 'h.example/a#b', 'user@h.example/a', 'h.example/']) {
      assert.throws(() => splitRepository(bad), (err: unknown) => err instanceof DeployError && err.code === 'BAD_REQUEST', bad);
    }
  });
});
