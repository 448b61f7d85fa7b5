// The release stage: what a deploy applies, made exact before anything is written. The
// image's tag is resolved to its digest, and an OCI target's manifests artifact is fetched
// by tag and pinned by digest, so a tag pushed again later changes nothing a deploy already
// chose. Artifacts are kept by digest: a warm deploy of a fetched release reads no blob.
import type { KubernetesObject } from '@kubernetes/client-node';
import { parseManifests } from '../apply/manifests.ts';
import { parseImage } from '../core/image-ref.ts';
import type { ReleaseInfo } from '../core/result.ts';
import { DeployError } from '../errors.ts';
import { readArtifact } from './artifact.ts';
import { artifactCache } from './cache.ts';
import { pinnable, RegistryClient } from './registry.ts';

/** The registry as the release stage needs it (src/release/registry.ts and artifact.ts behind it). */
export interface ReleaseRegistry {
  /** Whether the deployer may ask this repository's registry (it sends its ADC token there); why not. */
  reach(repository: string): { ok: true } | { ok: false; reason: string };
  /** The digest a tag (or digest) names now; `notFound` is the code when it names nothing. */
  resolve(repository: string, reference: string, notFound: 'IMAGE_NOT_FOUND' | 'MANIFESTS_NOT_FOUND'): Promise<string>;
  /** The YAML files of the artifact with this digest, sorted by path (kept by digest). */
  files(repository: string, digest: string): Promise<{ path: string; text: string }[]>;
}

/** The registries as Artifact Registry serves them, with the deployer's ADC access token; artifacts kept by digest. */
export function registryAccess(token: () => Promise<string>, env: NodeJS.ProcessEnv = process.env): ReleaseRegistry {
  const client = new RegistryClient({ token });
  const cache = artifactCache();
  return {
    reach: (repository) => pinnable(repository, env),
    resolve: async (repository, reference, notFound) => (await client.resolve(repository, reference, { notFound })).digest,
    files: async (repository, digest) => (await cache.get(digest, () => readArtifact(client, repository, digest))).files,
  };
}

export interface PinnedImage {
  /** What is applied: `repo:tag@sha256:…` when pinned, else the image as asked. */
  ref: string;
  info: ReleaseInfo;
}

/** A manifests artifact, pinned. */
export interface ReleasedManifests {
  /** `repo@sha256:…`: what the objects' stamp and the ApplySet parent record. */
  ref: string;
  /** `repo:tag@sha256:…` as the answer names it (no tag when fetched by digest). */
  artifact: string;
  digest: string;
  objects: KubernetesObject[];
}

export class Releases {
  private readonly registry: ReleaseRegistry;

  constructor(registry: ReleaseRegistry) {
    this.registry = registry;
  }

  /**
   * The image with its digest. `pin`: the target's `pinDigests` (absent: wherever the
   * registry is reachable). An image named by digest is checked to exist all the same.
   */
  async pinImage(image: string, pin: boolean | undefined): Promise<PinnedImage> {
    const ref = parseImage(image);
    // Named by digest, it is applied by digest whether or not the registry is asked.
    const notPinned = (reason: string): PinnedImage => ({ ref: image, info: ref.digest !== undefined ? { image, pinned: true } : { image, pinned: false, notPinned: reason } });
    if (pin === false) return notPinned('pinDigests: false');
    const reach = this.registry.reach(ref.repository);
    if (!reach.ok) {
      if (pin === true) throw new DeployError('IMAGE_NOT_PINNED', `${image} cannot be pinned (pinDigests: true): ${reach.reason}`);
      return notPinned(reach.reason);
    }
    const digest = await this.registry.resolve(ref.repository, ref.digest ?? ref.tag!, 'IMAGE_NOT_FOUND');
    if (ref.digest !== undefined && digest !== ref.digest) {
      throw new DeployError('REGISTRY_ERROR', `${image}: the registry answered digest ${digest} for it`);
    }
    const pinned = `${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ''}@${digest}`;
    return { ref: pinned, info: { image, pinned: true } };
  }

  /** An image as the target records it, re-applied as it is: pinned when it carries the digest it was pinned to. */
  asRecorded(image: string): PinnedImage {
    return { ref: image, info: parseImage(image).digest !== undefined ? { image, pinned: true } : { image, pinned: false, notPinned: 'the recorded image has no digest' } };
  }

  /** The artifact `repository:reference` (a tag or a digest), pinned, its YAML parsed into objects. */
  async manifests(repository: string, reference: string): Promise<ReleasedManifests> {
    const reach = this.registry.reach(repository);
    if (!reach.ok) throw new DeployError('MANIFESTS_INVALID', `manifests ${repository}: ${reach.reason}`);
    const byDigest = reference.startsWith('sha256:');
    const digest = await this.registry.resolve(repository, reference, 'MANIFESTS_NOT_FOUND');
    const files = await this.registry.files(repository, digest);
    const objects = files.flatMap((f) => {
      try {
        return parseManifests(f.text);
      } catch (err) {
        throw new DeployError('MANIFESTS_INVALID', `manifests ${repository}@${digest}: ${f.path}: ${(err as Error).message}`);
      }
    });
    if (objects.length === 0) throw new DeployError('MANIFESTS_INVALID', `manifests ${repository}@${digest} hold no Kubernetes object`);
    return { ref: `${repository}@${digest}`, artifact: `${repository}${byDigest ? '' : `:${reference}`}@${digest}`, digest, objects };
  }
}

/**
 * An event for an OCI target's manifests artifact itself (a rule on its repository): it
 * releases those manifests with the image the target runs, not an image of its own.
 */
export function isManifestsRelease(intent: { image?: string | undefined }, target: { oci?: { oci: string } | undefined }): boolean {
  return target.oci !== undefined && intent.image !== undefined && parseImage(intent.image).repository === target.oci.oci;
}

/** A manifests stamp (`repo@sha256:…`) read back; anything else is none. */
export function parseManifestsRef(value: string | undefined): { repository: string; digest: string } | undefined {
  // A repository has no tag: a colon only for a port, in the first component.
  const m = value === undefined ? null : /^([^/@\s]+\/[^:@\s]+)@(sha256:[0-9a-f]{64})$/.exec(value);
  return m ? { repository: m[1]!, digest: m[2]! } : undefined;
}
