// deployer.yaml's release keys (issue #18): `manifests: {oci, tag}`, `pinDigests`, `prune`,
// each checked at start-up with its path, and kept as given (or defaulted) when valid.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { parseConfig, type Target } from '../../src/config/load.ts';
import { configProblems } from '../support/config.ts';

const DEPLOY = 'europe-docker.pkg.dev/p/apps/web-deploy';

const DIR = mkdtempSync(path.join(tmpdir(), 'cfg-release-'));
writeFileSync(path.join(DIR, 'm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a }\n');
after(() => rmSync(DIR, { recursive: true, force: true }));

/** A file with one target `web` of these extra keys, next to a manifest file m.yaml. */
function file(web: string): { text: string; file: string } {
  return {
    file: path.join(DIR, 'deployer.yaml'),
    text: `auth: { direct: none }
clusters: { c: { inCluster: true } }
targets:
  web: { cluster: c, namespace: web, images: [europe-docker.pkg.dev/p/apps/web], ${web} }
`,
  };
}

function target(web: string, env: NodeJS.ProcessEnv = {}): Target {
  const { text, file: f } = file(web);
  const t = parseConfig(text, f, env).targets.get('web');
  assert.ok(t);
  return t;
}

function problems(web: string, env: NodeJS.ProcessEnv = {}): string[] {
  const { text, file: f } = file(web);
  return configProblems(text, env, f);
}

test('manifests: {oci, tag}: kept as given, no files, no parsed objects', () => {
  const t = target(`manifests: { oci: ${DEPLOY}, tag: "\${tag}" }`);
  assert.deepEqual(t.oci, { oci: DEPLOY, tag: '${tag}' });
  assert.equal(t.manifests, undefined);
  assert.deepEqual(t.objects, []);
  // The files form has no oci.
  assert.equal(target('manifests: [m.yaml]').oci, undefined);
});

test('the tag template: each variable, a tag around one, a fixed tag accepted', () => {
  for (const tag of ['${tag}', '${sha}', '${shortSha}', '${branch}', '${tag}-x', 'sha-${shortSha}', '${branch}.${shortSha}', 'stable']) {
    assert.equal(target(`manifests: { oci: ${DEPLOY}, tag: "${tag}" }`).oci?.tag, tag);
  }
});

test('the tag template: an unknown variable or no tag refused, at targets.web.manifests', () => {
  const unknown = problems(`manifests: { oci: ${DEPLOY}, tag: "\${version}" }`);
  assert.ok(unknown.includes('targets.web.manifests.tag: knows only ${tag}, ${sha}, ${shortSha} and ${branch}'), unknown.join('\n'));
  for (const tag of ['bad tag!', '-${tag}', '', `${'x'.repeat(129)}`]) {
    const got = problems(`manifests: { oci: ${DEPLOY}, tag: "${tag}" }`);
    assert.ok(got.length > 0 && got.every((p) => p.startsWith('targets.web.manifests')), `${tag}: ${got.join('\n')}`);
  }
  assert.deepEqual(problems(`manifests: { oci: ${DEPLOY}, tag: "bad tag!" }`), [
    'targets.web.manifests.tag: must be an OCI tag (letters, digits, _ . -; at most 128) or a template of one, e.g. "${tag}"',
  ]);
});

test('manifests.oci: a repository without tag, in a registry the ADC token may go to', () => {
  assert.deepEqual(problems('manifests: { oci: docker.io/acme/web-deploy, tag: "${tag}" }'), [
    'targets.web.manifests.oci: docker.io is not Artifact Registry (*-docker.pkg.dev), gcr.io: the deployer sends its Google access token only there',
  ]);
  assert.deepEqual(problems('manifests: { oci: acme/web-deploy, tag: "${tag}" }'), [
    "targets.web.manifests.oci: acme/web-deploy is on Docker Hub, where the deployer's Google access token does not reach",
  ]);
  assert.ok(problems(`manifests: { oci: "${DEPLOY}:v1", tag: "\${tag}" }`).some((p) => p.startsWith('targets.web.manifests')));
  assert.equal(target('manifests: { oci: gcr.io/p/web-deploy, tag: "${tag}" }').oci?.oci, 'gcr.io/p/web-deploy');
});

test('manifests.oci that is also in images is refused: its notifications would deploy it as an image', () => {
  const got = problems(`manifests: { oci: europe-docker.pkg.dev/p/apps/web, tag: "\${tag}" }`);
  assert.deepEqual(got, ['targets.web.manifests.oci: europe-docker.pkg.dev/p/apps/web is also in images; keep the manifests in a repository of their own']);
});

test('manifests.oci on REGISTRY_HOST: accepted only when the environment names that host', () => {
  const sandbox = 'manifests: { oci: 127.0.0.1:5443/apps/web-deploy, tag: "${tag}" }';
  assert.deepEqual(target(sandbox, { REGISTRY_HOST: '127.0.0.1:5443' }).oci, { oci: '127.0.0.1:5443/apps/web-deploy', tag: '${tag}' });
  const without = problems(sandbox);
  assert.equal(without.length, 1, without.join('\n'));
  assert.match(without[0]!, /^targets\.web\.manifests\.oci: 127\.0\.0\.1:5443 is not Artifact Registry/);
  assert.match(problems(sandbox, { REGISTRY_HOST: '127.0.0.1:6443' }).join('\n'), /^targets\.web\.manifests\.oci: 127\.0\.0\.1:5443 is not .* or REGISTRY_HOST \(127\.0\.0\.1:6443\)/);
});

test('prune: true by default for OCI manifests, false for files; as given when set', () => {
  const oci = `manifests: { oci: ${DEPLOY}, tag: "\${tag}" }`;
  assert.equal(target(oci).prune, true);
  assert.equal(target(`${oci}, prune: false`).prune, false);
  assert.equal(target('manifests: [m.yaml]').prune, false);
  assert.equal(target('manifests: [m.yaml], prune: true').prune, true);
  assert.equal(target('deployment: web').prune, false);
});

test('prune: true on an image-only target (deployment) is refused: it applies nothing to prune', () => {
  assert.deepEqual(problems('deployment: web, prune: true'), [
    'targets.web.prune: an image-only target (deployment) applies no manifests, so there is nothing to prune',
  ]);
});

test('pinDigests: true, false or absent, kept as given', () => {
  assert.equal(target('deployment: web, pinDigests: true').pinDigests, true);
  assert.equal(target('deployment: web, pinDigests: false').pinDigests, false);
  assert.equal(target('deployment: web').pinDigests, undefined);
  assert.equal(target(`manifests: { oci: ${DEPLOY}, tag: "\${tag}" }, pinDigests: false`).pinDigests, false);
  assert.match(problems('deployment: web, pinDigests: maybe').join('\n'), /^targets\.web\.pinDigests: /);
});
