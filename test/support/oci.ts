// Pushes to the sandbox's OCI registry with its real oras CLI, as CI would: manifests releases
// (Flux's format, plain YAML files, a tar.gz) and tiny images, plus delete and re-tag. The
// access token comes from the metadata fake and goes to oras on stdin, never on the command
// line; each call uses a registry config of its own, so nothing from ~/.docker is read or written.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { accessToken, sandbox, trustPublicCa } from './sandbox.ts';

const exec = promisify(execFile);

/** The service account CI pushes as (every sandbox user may push anywhere: no IAM here). */
export const PUSHER = 'ci-pusher@sandbox-project.iam.gserviceaccount.com';

export const FLUX_CONFIG = 'application/vnd.cncf.flux.config.v1+json';
export const FLUX_CONTENT = 'application/vnd.cncf.flux.content.v1.tar+gzip';
const IMAGE_CONFIG = 'application/vnd.oci.image.config.v1+json';
const IMAGE_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** How a manifests release is pushed: `flux push artifact`'s layout, `oras push a.yaml b.yaml`, or `oras push m.tar.gz`. */
export type ManifestsFormat = 'flux' | 'oras-yaml' | 'oras-tar';

/**
 * The function trusts the registry's CA through NODE_EXTRA_CA_CERTS, which Node reads at
 * process start: a function run in this test process trusts it once the CA is added to
 * Node's default store here (what global fetch and https use), as it would be there.
 */
export async function trustRegistryCa(): Promise<void> {
  await trustPublicCa(await sandbox());
}

/** `HOST/PATH`: a repository in the sandbox registry. */
export async function registryRepo(repoPath: string): Promise<string> {
  return `${(await sandbox()).registry.host}/${repoPath}`;
}

/** Runs the sandbox's oras with the registry's CA and a fresh access token; throws with oras's stderr on failure. */
export async function oras(args: string[], cwd?: string): Promise<string> {
  const { registry } = await sandbox();
  const dir = cwd ?? (await mkdtemp(path.join(tmpdir(), 'oras-')));
  try {
    const token = await accessToken(PUSHER);
    const child = exec(registry.oras, [...args, '--ca-file', registry.caFile, '--registry-config', path.join(dir, '.oras-auth.json'), '-u', 'oauth2accesstoken', '--password-stdin'], { cwd: dir, maxBuffer: 16 << 20 });
    child.child.stdin?.end(token);
    const { stdout } = await child.catch((err: unknown) => {
      const e = err as { stderr?: string; message?: string };
      throw new Error(`oras ${args.join(' ')}: ${(e.stderr ?? e.message ?? String(err)).trim()}`);
    });
    return stdout;
  } finally {
    if (cwd === undefined) await rm(dir, { recursive: true, force: true });
  }
}

function pushedDigest(stdout: string): string {
  const m = /Digest: (sha256:[0-9a-f]{64})/.exec(stdout);
  if (!m) throw new Error(`oras push printed no digest: ${stdout}`);
  return m[1]!;
}

/**
 * Pushes `files` (path → YAML text; paths may hold a folder) as a manifests release
 * `HOST/repoPath:tag` and returns its digest. `flux` is what `flux push artifact` pushes:
 * the Flux config and one tar+gzip layer of the folder, with Flux's source/revision annotations.
 */
export async function pushManifests(repoPath: string, tag: string, files: Record<string, string>, format: ManifestsFormat = 'flux'): Promise<string> {
  const ref = `${await registryRepo(repoPath)}:${tag}`;
  const dir = await mkdtemp(path.join(tmpdir(), 'oci-release-'));
  try {
    const src = path.join(dir, 'src');
    for (const [name, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(src, name)), { recursive: true });
      await writeFile(path.join(src, name), text);
    }
    if (format === 'oras-yaml') {
      if (Object.keys(files).some((f) => f.includes('/'))) throw new Error('oras-yaml: one layer per file, so no folders');
      // As people type it: no media type (oras gives each file its default layer type; the title names it).
      return pushedDigest(await oras(['push', ref, ...Object.keys(files)], src));
    }
    // Entries named relative to the folder, as fluxcd/pkg's tar does (no leading "./").
    await exec('tar', ['-czf', path.join(dir, 'manifests.tar.gz'), '-C', src, ...Object.keys(files)]);
    if (format === 'oras-tar') return pushedDigest(await oras(['push', ref, 'manifests.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip'], dir));
    await writeFile(path.join(dir, 'config.json'), '{}');
    return pushedDigest(
      await oras(
        [
          'push', ref,
          '--config', `config.json:${FLUX_CONFIG}`,
          '--annotation', 'org.opencontainers.image.source=https://github.com/example/web',
          '--annotation', `org.opencontainers.image.revision=${tag}@sha1:${randomBytes(20).toString('hex')}`,
          `manifests.tar.gz:${FLUX_CONTENT}`,
        ],
        dir,
      ),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Pushes a tiny image `HOST/repoPath:tag` (an OCI image manifest: an image config and one
 * small layer) and returns its digest. Each push is a new digest (a random layer), so a tag
 * pushed again moves.
 */
export async function pushImage(repoPath: string, tag: string): Promise<string> {
  const ref = `${await registryRepo(repoPath)}:${tag}`;
  const dir = await mkdtemp(path.join(tmpdir(), 'oci-image-'));
  try {
    await writeFile(path.join(dir, 'app.txt'), randomBytes(16).toString('hex'));
    await exec('tar', ['-czf', path.join(dir, 'layer.tar.gz'), '-C', dir, 'app.txt']);
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] } }));
    return pushedDigest(await oras(['push', ref, '--config', `config.json:${IMAGE_CONFIG}`, `layer.tar.gz:${IMAGE_LAYER}`], dir));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Deletes `HOST/repoPath@digest` (and so every tag naming it). */
export async function deleteManifest(repoPath: string, digest: string): Promise<void> {
  await oras(['manifest', 'delete', '--force', `${await registryRepo(repoPath)}@${digest}`]);
}

/** Points `tag` at what `from` (a tag or digest) names. */
export async function retag(repoPath: string, from: string, tag: string): Promise<void> {
  const repo = await registryRepo(repoPath);
  await oras(['tag', from.startsWith('sha256:') ? `${repo}@${from}` : `${repo}:${from}`, tag]);
}

/** The digest `HOST/repoPath:reference` names now. */
export async function resolve(repoPath: string, reference: string): Promise<string> {
  const repo = await registryRepo(repoPath);
  return (await oras(['resolve', reference.startsWith('sha256:') ? `${repo}@${reference}` : `${repo}:${reference}`])).trim();
}
