// The release stage (src/release/release.ts) against a small registry fake that records
// what it is asked: images pinned by digest (or not, and why), manifests artifacts fetched by
// tag and pinned by digest, and the stamps read back. The real registry client and the
// sandbox registry are covered by test/release-registry.test.ts and test/release.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DeployError, type ErrorCode } from '../../src/errors.ts';
import { isManifestsRelease, parseManifestsRef, registryAccess, Releases, type ReleaseRegistry } from '../../src/release/release.ts';
import { pinnable } from '../../src/release/registry.ts';

const HOST = 'europe-docker.pkg.dev';
const WEB = `${HOST}/p/apps/web`;
const DEPLOY = `${HOST}/p/apps/web-deploy`;
const digest = (c: string): string => `sha256:${c.repeat(64)}`;
const D1 = digest('1');
const D2 = digest('2');
const D3 = digest('3');

const CONFIGMAP = 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: web-config }\ndata: { A: "1" }\n';
const SERVICE = 'apiVersion: v1\nkind: Service\nmetadata: { name: web }\nspec: { ports: [{ port: 80 }] }\n';
const DEPLOYMENT = 'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec: { template: { spec: { containers: [{ name: web, image: web }] } } }\n';

type Call = { op: 'resolve'; repository: string; reference: string; notFound: string } | { op: 'files'; repository: string; digest: string };

/**
 * A registry of `repository:reference → digest` and `digest → files`; reach is the real rule
 * (src/release/registry.ts `pinnable`). A resolve can be made to fail with a code.
 */
class FakeRegistry implements ReleaseRegistry {
  readonly calls: Call[] = [];
  readonly refs = new Map<string, string>();
  readonly blobs = new Map<string, { path: string; text: string }[]>();
  failResolve?: ErrorCode;

  reach(repository: string): { ok: true } | { ok: false; reason: string } {
    return pinnable(repository, {});
  }

  resolve(repository: string, reference: string, notFound: 'IMAGE_NOT_FOUND' | 'MANIFESTS_NOT_FOUND'): Promise<string> {
    this.calls.push({ op: 'resolve', repository, reference, notFound });
    if (this.failResolve) return Promise.reject(new DeployError(this.failResolve, `${repository}:${reference}: ${this.failResolve}`));
    const found = this.refs.get(`${repository}|${reference}`);
    return found ? Promise.resolve(found) : Promise.reject(new DeployError(notFound, `${repository}:${reference} is not in the registry`));
  }

  files(repository: string, digest: string): Promise<{ path: string; text: string }[]> {
    this.calls.push({ op: 'files', repository, digest });
    const files = this.blobs.get(digest);
    return files ? Promise.resolve(files) : Promise.reject(new DeployError('MANIFESTS_NOT_FOUND', `${repository}@${digest} is not in the registry`));
  }

  resolves(): Call[] {
    return this.calls.filter((c) => c.op === 'resolve');
  }
}

/** The promise rejects with a DeployError of this code; its message is checked by `message`. */
async function rejectsWith(p: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<DeployError> {
  let caught: unknown;
  await p.then(
    (v) => assert.fail(`expected ${code}, got ${JSON.stringify(v)}`),
    (e: unknown) => (caught = e),
  );
  assert.ok(caught instanceof DeployError, String(caught));
  assert.equal(caught.code, code, caught.message);
  if (message) assert.match(caught.message, message);
  return caught;
}

describe('pinImage', () => {
  test('a pinnable registry: repo:tag becomes repo:tag@digest, asked by the tag, pinned', async () => {
    const registry = new FakeRegistry();
    registry.refs.set(`${WEB}|v1`, D1);
    for (const pin of [undefined, true]) {
      registry.calls.length = 0;
      const got = await new Releases(registry).pinImage(`${WEB}:v1`, pin);
      assert.deepEqual(got, { ref: `${WEB}:v1@${D1}`, info: { image: `${WEB}:v1`, pinned: true } }, `pin: ${pin}`);
      assert.deepEqual(registry.calls, [{ op: 'resolve', repository: WEB, reference: 'v1', notFound: 'IMAGE_NOT_FOUND' }]);
    }
  });

  test('pinDigests: false: applied by tag, not pinned, the registry not asked', async () => {
    const registry = new FakeRegistry();
    registry.refs.set(`${WEB}|v1`, D1);
    const got = await new Releases(registry).pinImage(`${WEB}:v1`, false);
    assert.deepEqual(got, { ref: `${WEB}:v1`, info: { image: `${WEB}:v1`, pinned: false, notPinned: 'pinDigests: false' } });
    assert.deepEqual(registry.calls, []);
  });

  test('a registry the token does not reach, pinDigests absent: applied by tag, with the reason, nothing asked', async () => {
    const registry = new FakeRegistry();
    for (const image of ['docker.io/library/nginx:1.27', 'nginx:1.27', 'ghcr.io/o/web:v1']) {
      const got = await new Releases(registry).pinImage(image, undefined);
      const reach = pinnable(image.slice(0, image.lastIndexOf(':')), {});
      assert.ok(!reach.ok);
      assert.deepEqual(got, { ref: image, info: { image, pinned: false, notPinned: reach.reason } });
    }
    assert.deepEqual(registry.calls, []);
  });

  test('a registry the token does not reach, pinDigests: true: IMAGE_NOT_PINNED, not retryable, nothing asked', async () => {
    const registry = new FakeRegistry();
    const e = await rejectsWith(new Releases(registry).pinImage('ghcr.io/o/web:v1', true), 'IMAGE_NOT_PINNED', /ghcr\.io\/o\/web:v1 cannot be pinned \(pinDigests: true\): ghcr\.io is not Artifact Registry/);
    assert.equal(e.retryable, false);
    assert.deepEqual(registry.calls, []);
  });

  test('an image named by digest is checked by that digest, and keeps its tag', async () => {
    const registry = new FakeRegistry();
    registry.refs.set(`${WEB}|${D1}`, D1);
    registry.refs.set(`${WEB}|v1`, D2); // the tag moved since: the digest asked for is what counts
    assert.deepEqual(await new Releases(registry).pinImage(`${WEB}@${D1}`, undefined), { ref: `${WEB}@${D1}`, info: { image: `${WEB}@${D1}`, pinned: true } });
    assert.deepEqual(await new Releases(registry).pinImage(`${WEB}:v1@${D1}`, true), { ref: `${WEB}:v1@${D1}`, info: { image: `${WEB}:v1@${D1}`, pinned: true } });
    assert.deepEqual(registry.resolves().map((c) => c.op === 'resolve' && c.reference), [D1, D1]);
  });

  test('an image named by digest that the registry answers with another digest: REGISTRY_ERROR', async () => {
    const registry = new FakeRegistry();
    registry.refs.set(`${WEB}|${D1}`, D2);
    const e = await rejectsWith(new Releases(registry).pinImage(`${WEB}:v1@${D1}`, undefined), 'REGISTRY_ERROR', new RegExp(`answered digest ${D2}`));
    assert.equal(e.retryable, false);
  });

  test('an image not in the registry: IMAGE_NOT_FOUND, retryable (CI may not have pushed it yet)', async () => {
    const registry = new FakeRegistry();
    const e = await rejectsWith(new Releases(registry).pinImage(`${WEB}:v9`, undefined), 'IMAGE_NOT_FOUND');
    assert.equal(e.retryable, true);
    assert.equal(e.http, 404);
    registry.failResolve = 'REGISTRY_UNAVAILABLE';
    assert.equal((await rejectsWith(new Releases(registry).pinImage(`${WEB}:v1`, true), 'REGISTRY_UNAVAILABLE')).retryable, true);
  });
});

test('an image named by digest is applied by that digest even where it is not resolved: pinned, as a reconcile of a recorded digest says', async () => {
  // ReleaseInfo.pinned is "the image was applied by digest"; the image applied here is the digest asked for.
  const registry = new FakeRegistry();
  for (const [image, pin] of [[`ghcr.io/o/web:v1@${D1}`, undefined], [`${WEB}:v1@${D1}`, false]] as const) {
    const got = await new Releases(registry).pinImage(image, pin);
    assert.equal(got.ref, image);
    assert.deepEqual(got.info, { image, pinned: true }, `${image}, pinDigests: ${pin}`);
  }
});

test('registryAccess reaches REGISTRY_HOST from the environment it is given, and no other host', () => {
  const token = () => Promise.reject(new Error('no token in a unit test'));
  assert.deepEqual(registryAccess(token, { REGISTRY_HOST: '127.0.0.1:5443' }).reach('127.0.0.1:5443/apps/web'), { ok: true });
  assert.deepEqual(registryAccess(token, {}).reach(WEB), { ok: true });
  const other = registryAccess(token, {}).reach('127.0.0.1:5443/apps/web');
  assert.equal(other.ok, false);
});

describe('manifests', () => {
  test('fetched by tag, pinned by digest: the files are read by the digest the tag named', async () => {
    const registry = new FakeRegistry();
    registry.refs.set(`${DEPLOY}|v1`, D1);
    registry.blobs.set(D1, [{ path: 'web/a.yaml', text: `${CONFIGMAP}---\n${SERVICE}` }, { path: 'web/b.yaml', text: DEPLOYMENT }]);
    const got = await new Releases(registry).manifests(DEPLOY, 'v1');
    assert.equal(got.artifact, `${DEPLOY}:v1@${D1}`);
    assert.equal(got.ref, `${DEPLOY}@${D1}`);
    assert.equal(got.digest, D1);
    // Every document of every file, in the files' order.
    assert.deepEqual(got.objects.map((o) => `${o.kind}/${o.metadata?.name}`), ['ConfigMap/web-config', 'Service/web', 'Deployment/web']);
    assert.deepEqual((got.objects[0] as { data?: unknown }).data, { A: '1' });
    assert.deepEqual(registry.calls, [
      { op: 'resolve', repository: DEPLOY, reference: 'v1', notFound: 'MANIFESTS_NOT_FOUND' },
      { op: 'files', repository: DEPLOY, digest: D1 },
    ]);
  });

  test('fetched by digest: the artifact names no tag', async () => {
    const registry = new FakeRegistry();
    registry.refs.set(`${DEPLOY}|${D2}`, D2);
    registry.blobs.set(D2, [{ path: 'all.yaml', text: CONFIGMAP }]);
    const got = await new Releases(registry).manifests(DEPLOY, D2);
    assert.equal(got.artifact, `${DEPLOY}@${D2}`);
    assert.equal(got.ref, `${DEPLOY}@${D2}`);
    assert.deepEqual(registry.resolves(), [{ op: 'resolve', repository: DEPLOY, reference: D2, notFound: 'MANIFESTS_NOT_FOUND' }]);
  });

  test('a file with bad YAML or a document that is no object: MANIFESTS_INVALID naming the file', async () => {
    const registry = new FakeRegistry();
    registry.refs.set(`${DEPLOY}|bad-yaml`, D1);
    registry.blobs.set(D1, [{ path: 'ok.yaml', text: CONFIGMAP }, { path: 'deploy/broken.yaml', text: 'kind: ConfigMap\nmetadata: { name: [unclosed\n' }]);
    registry.refs.set(`${DEPLOY}|no-kind`, D2);
    registry.blobs.set(D2, [{ path: 'svc.yaml', text: 'apiVersion: v1\nmetadata: { name: x }\n' }]);
    const bad = await rejectsWith(new Releases(registry).manifests(DEPLOY, 'bad-yaml'), 'MANIFESTS_INVALID', new RegExp(`^manifests ${DEPLOY}@${D1}: deploy/broken\\.yaml: document 1: `));
    assert.equal(bad.retryable, false);
    await rejectsWith(new Releases(registry).manifests(DEPLOY, 'no-kind'), 'MANIFESTS_INVALID', /svc\.yaml: document 1: missing kind/);
  });

  test('an artifact that holds no Kubernetes object: MANIFESTS_INVALID', async () => {
    const registry = new FakeRegistry();
    registry.refs.set(`${DEPLOY}|none`, D1);
    registry.blobs.set(D1, []);
    registry.refs.set(`${DEPLOY}|empty`, D2);
    registry.blobs.set(D2, [{ path: 'empty.yaml', text: '# nothing yet\n---\n' }]);
    await rejectsWith(new Releases(registry).manifests(DEPLOY, 'none'), 'MANIFESTS_INVALID', /hold no Kubernetes object/);
    await rejectsWith(new Releases(registry).manifests(DEPLOY, 'empty'), 'MANIFESTS_INVALID', /hold no Kubernetes object/);
  });

  test('a tag not in the registry: MANIFESTS_NOT_FOUND, retryable, no file read', async () => {
    const registry = new FakeRegistry();
    const e = await rejectsWith(new Releases(registry).manifests(DEPLOY, 'v404'), 'MANIFESTS_NOT_FOUND');
    assert.equal(e.retryable, true);
    assert.deepEqual(registry.calls.map((c) => c.op), ['resolve']);
  });

  test('an artifact in a registry the token does not reach: refused before asking it', async () => {
    const registry = new FakeRegistry();
    await rejectsWith(new Releases(registry).manifests('ghcr.io/o/web-deploy', 'v1'), 'MANIFESTS_INVALID', /^manifests ghcr\.io\/o\/web-deploy: ghcr\.io is not Artifact Registry/);
    assert.deepEqual(registry.calls, []);
  });
});

test('isManifestsRelease: an event for the target\'s manifests repository itself', () => {
  const oci = { oci: { oci: DEPLOY } };
  assert.equal(isManifestsRelease({ image: `${DEPLOY}:v1` }, oci), true);
  assert.equal(isManifestsRelease({ image: `${DEPLOY}@${D1}` }, oci), true);
  assert.equal(isManifestsRelease({ image: `${WEB}:v1` }, oci), false);
  // Whole repositories only.
  assert.equal(isManifestsRelease({ image: `${DEPLOY}-old:v1` }, oci), false);
  assert.equal(isManifestsRelease({ image: `${DEPLOY}/sub:v1` }, oci), false);
  // A reconcile names no image; a file target has no manifests repository.
  assert.equal(isManifestsRelease({}, oci), false);
  assert.equal(isManifestsRelease({ image: `${DEPLOY}:v1` }, {}), false);
});

describe('parseManifestsRef', () => {
  test('a stamp as the deployer writes it: repository and digest', () => {
    assert.deepEqual(parseManifestsRef(`${DEPLOY}@${D3}`), { repository: DEPLOY, digest: D3 });
    assert.deepEqual(parseManifestsRef(`127.0.0.1:5443/apps/web-deploy@${D3}`), { repository: '127.0.0.1:5443/apps/web-deploy', digest: D3 });
  });

  test('none, garbage and hand edits of the digest are none', () => {
    const bad = [
      undefined, '', DEPLOY, `${DEPLOY}:v1`, `@${D3}`, `${DEPLOY}@`, `${DEPLOY}@sha256:${'3'.repeat(63)}`, `${DEPLOY}@sha256:${'3'.repeat(65)}`,
      `${DEPLOY}@sha256:${'A'.repeat(64)}`, `${DEPLOY}@sha512:${'3'.repeat(64)}`, ` ${DEPLOY}@${D3}`, `${DEPLOY}@${D3} `, `${DEPLOY}@${D3}\n`,
      `${DEPLOY}@${D3}@${D3}`, `a b@${D3}`,
    ];
    for (const value of bad) assert.equal(parseManifestsRef(value), undefined, JSON.stringify(value));
  });

  test('a stamp hand-edited to carry a tag (repo:tag@digest) is none, not a repository "repo:tag"', () => {
    assert.equal(parseManifestsRef(`${DEPLOY}:v1@${D3}`), undefined);
  });
});
