// A manifests artifact read into YAML files, in the formats users push today:
//   - `flux push artifact`: config application/vnd.cncf.flux.config.v1+json and one
//     application/vnd.cncf.flux.content.v1.tar+gzip layer, a tarball of a directory
//     (entries `.`, `dir`, `dir/x.yaml`, …; fluxcd/pkg tar.Tar skips symlinks);
//   - `oras push HOST/repo:tag a.yaml b.yaml`: one layer per file, named by its
//     org.opencontainers.image.title annotation, holding the raw file;
//   - `oras push … dir/` (tar+gzip, `io.deis.oras.content.unpack`) or a pushed .tar(.gz).
// Everything is bounded before it is read (declared sizes, then streamed, decompressed and
// per-file sizes, file count, path length), and a path that could leave the archive
// (`..`, absolute, a link, a device) refuses the whole artifact: it is data from a
// registry, and whatever applies these files must never see a crafted path.
import { promisify } from 'node:util';
import { gunzip as gunzipCallback } from 'node:zlib';
import { extract } from 'tar-stream';
import { DeployError } from '../errors.ts';
import { isRecord } from '../guards.ts';
import { MEDIA_TYPES, type FetchedManifest } from './registry.ts';

const gunzip = promisify(gunzipCallback);

export const FLUX_CONFIG_MEDIA_TYPE = 'application/vnd.cncf.flux.config.v1+json';
export const FLUX_CONTENT_MEDIA_TYPE = 'application/vnd.cncf.flux.content.v1.tar+gzip';
const TITLE = 'org.opencontainers.image.title';
const UNPACK = 'io.deis.oras.content.unpack';
/** Configs of runnable images: a repository of images is not a manifests artifact. */
const IMAGE_CONFIGS = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

const MiB = 1024 * 1024;
/** Sum of the layers read, as stored (compressed). */
export const MAX_ARTIFACT_BYTES = 10 * MiB;
/** Sum of the layers read, after gunzip. */
export const MAX_DECOMPRESSED_BYTES = 20 * MiB;
/** Entries of every kind (directories and skipped files count too) and layers. */
export const MAX_FILES = 1000;
export const MAX_PATH_LENGTH = 256;
/** One file: more than a few objects' worth is not a manifest somebody wrote. */
export const MAX_FILE_BYTES = 8 * MiB;

export interface ArtifactLimits {
  maxCompressedBytes: number;
  maxDecompressedBytes: number;
  maxFiles: number;
  maxPathLength: number;
  maxFileBytes: number;
}

export const DEFAULT_ARTIFACT_LIMITS: ArtifactLimits = {
  maxCompressedBytes: MAX_ARTIFACT_BYTES,
  maxDecompressedBytes: MAX_DECOMPRESSED_BYTES,
  maxFiles: MAX_FILES,
  maxPathLength: MAX_PATH_LENGTH,
  maxFileBytes: MAX_FILE_BYTES,
};

export type ArtifactFormat = 'flux' | 'oras-yaml' | 'oras-tar';

export interface ManifestFile {
  path: string;
  text: string;
}

export interface Artifact {
  /** Sorted by path. */
  files: ManifestFile[];
  format: ArtifactFormat;
}

/** A layer to read: raw YAML (its title is its path) or a tar(.gz) whose YAML files are read. */
export interface PlannedLayer {
  kind: 'yaml' | 'archive';
  mediaType: string;
  digest: string;
  size: number;
  /** The title annotation, if any (a raw YAML layer always has one). */
  title?: string;
}

export interface ArtifactPlan {
  format: ArtifactFormat;
  layers: PlannedLayer[];
}

/** What readArtifact needs of RegistryClient. */
export interface ArtifactSource {
  manifest(repository: string, digest: string): Promise<FetchedManifest>;
  blob(repository: string, digest: string, maxBytes: number): Promise<Buffer>;
}

const invalid = (message: string): DeployError => new DeployError('MANIFESTS_INVALID', message);
const isYaml = (path: string): boolean => /\.ya?ml$/i.test(path);
const mib = (bytes: number): string => (bytes % MiB === 0 ? `${bytes / MiB} MiB` : `${bytes} bytes`);

/** The artifact with this digest, its YAML files read and checked. */
export async function readArtifact(client: ArtifactSource, repository: string, digest: string, limits: Partial<ArtifactLimits> = {}): Promise<Artifact> {
  const bounds = { ...DEFAULT_ARTIFACT_LIMITS, ...limits };
  try {
    const manifest = await client.manifest(repository, digest);
    const plan = planArtifact(manifest.json, manifest.mediaType, bounds);
    const layers: { layer: PlannedLayer; bytes: Buffer }[] = [];
    // One at a time: an artifact has a layer or a few, and a refusal stops further reads.
    for (const layer of plan.layers) layers.push({ layer, bytes: await client.blob(repository, layer.digest, layer.size) });
    return { format: plan.format, files: await extractFiles(layers, bounds) };
  } catch (err) {
    if (err instanceof DeployError && err.code === 'MANIFESTS_INVALID') {
      throw new DeployError('MANIFESTS_INVALID', `manifests ${repository}@${digest}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations: Record<string, string>;
}

function descriptor(value: unknown, where: string): Descriptor {
  if (!isRecord(value)) throw invalid(`${where} is not a descriptor`);
  const { mediaType, digest, size, annotations } = value;
  if (typeof mediaType !== 'string') throw invalid(`${where} has no mediaType`);
  if (typeof digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(digest)) throw invalid(`${where} has no sha256 digest`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(`${where} has no valid size`);
  const notes: Record<string, string> = {};
  if (isRecord(annotations)) for (const [k, v] of Object.entries(annotations)) if (typeof v === 'string') notes[k] = v;
  return { mediaType, digest, size, annotations: notes };
}

/** How a layer is read, from its title first (oras gives raw files the `.tar` media type) and its media type second. */
function layerKind(layer: Descriptor): 'yaml' | 'archive' | undefined {
  const title = layer.annotations[TITLE]?.toLowerCase() ?? '';
  if (isYaml(title)) return 'yaml';
  if (/\.(tar|tar\.gz|tgz)$/.test(title) || layer.annotations[UNPACK] === 'true') return 'archive';
  if (/tar\+gzip$/.test(layer.mediaType)) return 'archive';
  // Untitled: a plain OCI tar layer is a tarball; a titled file of another kind is not YAML.
  if (title === '' && layer.mediaType.endsWith('.tar')) return 'archive';
  return undefined;
}

/**
 * Which layers to read, from the manifest alone: its format, and refusals that need no
 * download (not an artifact, no YAML, declared sizes past the bounds).
 */
export function planArtifact(manifest: unknown, mediaType: string, limits: Partial<ArtifactLimits> = {}): ArtifactPlan {
  const bounds = { ...DEFAULT_ARTIFACT_LIMITS, ...limits };
  if (mediaType === MEDIA_TYPES.ociIndex || mediaType === MEDIA_TYPES.dockerList) {
    throw invalid(`it is an image index (${mediaType}), not a manifests artifact`);
  }
  if (mediaType === MEDIA_TYPES.dockerManifest) throw invalid('it is a Docker container image, not a manifests artifact');
  if (mediaType !== MEDIA_TYPES.ociManifest) throw invalid(`unknown manifest media type "${mediaType.slice(0, 100)}" (want ${MEDIA_TYPES.ociManifest})`);
  if (!isRecord(manifest) || manifest.schemaVersion !== 2) throw invalid('the manifest is not an OCI image manifest (schemaVersion 2)');
  const config = descriptor(manifest.config, 'the config');
  if (!Array.isArray(manifest.layers)) throw invalid('the manifest has no layers');
  if (manifest.layers.length > bounds.maxFiles) throw invalid(`${manifest.layers.length} layers, over the bound of ${bounds.maxFiles} files`);
  const layers = manifest.layers.map((l, i) => descriptor(l, `layer ${i}`));
  const artifactType = typeof manifest.artifactType === 'string' ? manifest.artifactType : undefined;
  if (IMAGE_CONFIGS.has(config.mediaType) && artifactType === undefined) throw invalid('it is a container image, not a manifests artifact');

  let format: ArtifactFormat;
  let planned: PlannedLayer[];
  const plan = (l: Descriptor, kind: 'yaml' | 'archive'): PlannedLayer => ({
    kind,
    mediaType: l.mediaType,
    digest: l.digest,
    size: l.size,
    ...(l.annotations[TITLE] !== undefined && { title: l.annotations[TITLE] }),
  });
  if (config.mediaType === FLUX_CONFIG_MEDIA_TYPE) {
    // Flux's source-controller reads the content layer; so do we.
    const content = layers.filter((l) => l.mediaType === FLUX_CONTENT_MEDIA_TYPE);
    if (content.length !== 1) throw invalid(`a Flux artifact has one ${FLUX_CONTENT_MEDIA_TYPE} layer; this one has ${content.length}`);
    format = 'flux';
    planned = [plan(content[0]!, 'archive')];
  } else {
    planned = layers.flatMap((l) => {
      const kind = layerKind(l);
      return kind ? [plan(l, kind)] : [];
    });
    if (planned.length === 0) {
      const seen = layers.map((l) => `${l.mediaType}${l.annotations[TITLE] ? ` "${l.annotations[TITLE]}"` : ''}`).join(', ') || 'none';
      throw invalid(`no YAML layer: want .yaml/.yml files or a tar(.gz) of them (oras push) or a Flux artifact; layers: ${seen.slice(0, 500)}`);
    }
    format = planned.some((l) => l.kind === 'archive') ? 'oras-tar' : 'oras-yaml';
  }

  let total = 0;
  for (const layer of planned) {
    const name = layerName(layer);
    if (layer.kind === 'yaml') {
      checkPath(layer.title ?? '', bounds, name);
      if (layer.size > bounds.maxFileBytes) throw invalid(`${name} is ${layer.size} bytes, over the ${mib(bounds.maxFileBytes)} bound for one file`);
    }
    total += layer.size;
    if (layer.size > bounds.maxCompressedBytes || total > bounds.maxCompressedBytes) {
      throw invalid(`${name} declares ${layer.size} bytes, which takes the artifact over its ${mib(bounds.maxCompressedBytes)} bound`);
    }
  }
  return { format, layers: planned };
}

const layerName = (layer: PlannedLayer): string => `layer ${layer.title !== undefined ? `"${layer.title.slice(0, 100)}"` : layer.digest}`;

/**
 * A path inside the artifact, normalized (`./a//b.yaml` → `a/b.yaml`; `` for the root),
 * or a refusal: absolute, `..`, a backslash, a NUL, too long.
 */
function checkPath(raw: string, bounds: ArtifactLimits, where: string): string {
  const shown = JSON.stringify(raw.slice(0, 300));
  if (raw.includes('\0')) throw invalid(`${where}: path ${shown} holds a NUL byte`);
  if (raw.startsWith('/')) throw invalid(`${where}: path ${shown} is absolute`);
  // A backslash is a separator somewhere (`..\x`, `C:\x`): refused rather than guessed at.
  if (raw.includes('\\')) throw invalid(`${where}: path ${shown} holds a backslash`);
  const segments = raw.split('/');
  if (segments.includes('..')) throw invalid(`${where}: path ${shown} leaves the artifact (..)`);
  const path = segments.filter((s) => s !== '' && s !== '.').join('/');
  if (path.length > bounds.maxPathLength) throw invalid(`${where}: path ${JSON.stringify(path.slice(0, 100))}… is ${path.length} characters, over the bound of ${bounds.maxPathLength}`);
  return path;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** The YAML files of layers already fetched, checked against every bound; sorted by path. */
export async function extractFiles(layers: { layer: PlannedLayer; bytes: Buffer }[], limits: Partial<ArtifactLimits> = {}): Promise<ManifestFile[]> {
  const bounds = { ...DEFAULT_ARTIFACT_LIMITS, ...limits };
  const files = new Map<string, string>();
  const seen = new Set<string>();
  let entries = 0;
  let decompressed = 0;

  const count = (where: string) => {
    if (++entries > bounds.maxFiles) throw invalid(`${where}: more than ${bounds.maxFiles} files`);
  };
  const add = (path: string, bytes: Buffer, where: string) => {
    if (seen.has(path)) throw invalid(`${where}: ${JSON.stringify(path)} appears twice`);
    seen.add(path);
    if (!isYaml(path)) return;
    try {
      files.set(path, decoder.decode(bytes));
    } catch {
      throw invalid(`${where}: ${JSON.stringify(path)} is not UTF-8 text`);
    }
  };

  for (const { layer, bytes } of layers) {
    const name = layerName(layer);
    if (bytes.length > bounds.maxCompressedBytes) throw invalid(`${name} is ${bytes.length} bytes, over the ${mib(bounds.maxCompressedBytes)} bound`);
    if (layer.kind === 'yaml') {
      count(name);
      if (bytes.length > bounds.maxFileBytes) throw invalid(`${name} is ${bytes.length} bytes, over the ${mib(bounds.maxFileBytes)} bound for one file`);
      decompressed += bytes.length;
      if (decompressed > bounds.maxDecompressedBytes) throw invalid(`${name}: the artifact is over its ${mib(bounds.maxDecompressedBytes)} bound`);
      add(checkPath(layer.title ?? '', bounds, name), bytes, name);
      continue;
    }
    const tar = await untar(bytes, bounds.maxDecompressedBytes - decompressed, bounds, name);
    decompressed += tar.length;
    await readTar(tar, bounds, name, count, add);
  }
  if (files.size === 0) throw invalid('it holds no .yaml or .yml file');
  return [...files.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([path, text]) => ({ path, text }));
}

/** The tar inside a layer: gunzipped when it is gzip (by its magic bytes: media types lie), at most `budget` bytes. */
async function untar(bytes: Buffer, budget: number, bounds: ArtifactLimits, name: string): Promise<Buffer> {
  const tooBig = () => invalid(`${name} decompresses past the artifact's ${mib(bounds.maxDecompressedBytes)} bound`);
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) {
    if (bytes.length > budget) throw tooBig();
    return bytes;
  }
  if (budget <= 0) throw tooBig();
  try {
    // maxOutputLength stops zlib at the bound: a gzip bomb never inflates past it.
    return await gunzip(bytes, { maxOutputLength: budget });
  } catch (err) {
    if (isRecord(err) && err.code === 'ERR_BUFFER_TOO_LARGE') throw tooBig();
    throw invalid(`${name} is not valid gzip: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function readTar(
  tar: Buffer,
  bounds: ArtifactLimits,
  name: string,
  count: (where: string) => void,
  add: (path: string, bytes: Buffer, where: string) => void,
): Promise<void> {
  const ex = extract();
  ex.end(tar);
  try {
    for await (const entry of ex) {
      const { header } = entry;
      const where = `${name}, entry ${JSON.stringify(header.name.slice(0, 300))}`;
      count(name);
      const path = checkPath(header.name, bounds, name);
      const type = header.type ?? 'file';
      if (type === 'directory') {
        entry.resume();
        continue;
      }
      if (type !== 'file' && type !== 'contiguous-file') {
        const link = header.linkname ? ` → ${JSON.stringify(header.linkname.slice(0, 300))}` : '';
        throw invalid(`${where}: a ${type}${link}; only files and directories may be in the artifact`);
      }
      if (path === '') throw invalid(`${where}: a file with an empty path`);
      const size = header.size ?? 0;
      if (size > bounds.maxFileBytes) throw invalid(`${where} is ${size} bytes, over the ${mib(bounds.maxFileBytes)} bound for one file`);
      const chunks: Buffer[] = [];
      // Only YAML is kept; other files are read past (the tar is already bounded in memory).
      for await (const chunk of entry) if (isYaml(path)) chunks.push(chunk as Buffer);
      add(path, Buffer.concat(chunks), name);
    }
  } catch (err) {
    if (err instanceof DeployError) throw err;
    throw invalid(`${name} is not a readable tar archive: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    ex.destroy();
  }
}
