// What a Pub/Sub message asks for, once the push envelope is unwrapped: three kinds of
// message, told apart by their attributes and content.
//   intent            data {target, image, dryRun?}: deploy, as POST /deploy does
//   artifact-registry data {action, digest?, tag?} (topic `gcr`): a pushed image, judged by the rules
//   cloud-build       attributes {buildId, status}, data = the Build resource (topic `cloud-builds`)
// Google's payloads are parsed loosely (unknown fields are ignored: they grow new ones);
// every field read is validated. Our own intent is strict, as for POST /deploy.
import { z } from 'zod';
import type { Rule } from '../config/schema.ts';
import { DeployError } from '../errors.ts';
import { isRecord } from '../guards.ts';
import { parseImage, type ImageRef } from '../core/image-ref.ts';
import { matchImage, type Match } from '../policy/rules.ts';
import { LIMITS } from './limits.ts';
import { invalid } from './http.ts';
import type { Incoming } from './source.ts';

export type MessageKind = 'intent' | 'artifact-registry' | 'cloud-build';

export interface Interpretation {
  kind: MessageKind;
  intents: Incoming[];
  /** Set when there is nothing to deploy, saying why. */
  ignored?: string;
  /** For the log line; keys never clash with the router's own (target, source, status…). */
  context: Record<string, string>;
}

const field = z.string().min(1).max(LIMITS.maxFieldLength);

const intentData = z.strictObject({
  target: field,
  image: field,
  dryRun: z.boolean().default(false),
});

/** https://cloud.google.com/artifact-registry/docs/configure-notifications: full references, not bare tags. */
const registryData = z.object({
  action: z.string().min(1).max(64),
  /** e.g. europe-docker.pkg.dev/p/r/img@sha256:… */
  digest: field.optional(),
  /** e.g. europe-docker.pkg.dev/p/r/img:v1 */
  tag: field.optional(),
});

/** https://cloud.google.com/build/docs/subscribe-build-notifications */
const buildAttributes = z.object({
  buildId: z.string().min(1).max(128),
  status: z.string().min(1).max(64),
});

/** The parts of the Build resource (REST v1 projects.builds) that decide a deploy. */
const buildData = z.object({
  id: z.string().min(1).max(128),
  status: z.string().min(1).max(64),
  /** When the build finished: the deploy's event time (a later build's image is newer). */
  finishTime: z.iso.datetime({ offset: true }).optional(),
  results: z
    .object({
      /** The images listed in the build's `images` field, as pushed: name as given to docker push, and digest. */
      images: z.array(z.object({ name: field, digest: z.string().regex(/^sha256:[a-f0-9]{64}$/, 'must be sha256:<64 hex>') })).optional(),
    })
    .optional(),
  substitutions: z.record(z.string(), z.string()).optional(),
});

/** Decides what a message asks for. `data` is the decoded message data (absent: the message had none). */
export function interpretMessage(data: Buffer | undefined, attributes: Readonly<Record<string, string>>, rules: readonly Rule[]): Interpretation {
  if (attributes.buildId !== undefined) return cloudBuild(data, attributes, rules);
  const json = decodeJson(data);
  if (isRecord(json) && 'action' in json) return artifactRegistry(json, rules);
  if (isRecord(json) && 'target' in json) return intent(json);
  throw new DeployError(
    'BAD_REQUEST',
    'message data is none of: a deploy intent {"target","image"}, an Artifact Registry notification {"action","digest","tag"}, ' +
      'or a Cloud Build notification (attributes buildId and status)',
  );
}

function intent(json: unknown): Interpretation {
  const parsed = intentData.safeParse(json);
  if (!parsed.success) throw invalid('deploy intent in the message data', parsed.error);
  return { kind: 'intent', intents: [{ ...parsed.data, source: 'pubsub/intent' }], context: { kind: 'intent' } };
}

function artifactRegistry(json: unknown, rules: readonly Rule[]): Interpretation {
  const parsed = registryData.safeParse(json);
  if (!parsed.success) throw invalid('Artifact Registry notification', parsed.error);
  const { action, digest, tag } = parsed.data;
  const named = tag ?? digest;
  const context = { kind: 'artifact-registry', action, ...(named !== undefined && { image: named.slice(0, 300) }) };
  const none = (ignored: string): Interpretation => ({ kind: 'artifact-registry', intents: [], ignored, context });
  if (action === 'DELETE') return none(`Artifact Registry DELETE of ${tag ?? digest ?? 'an image'}: deletions are not deployed`);
  if (action !== 'INSERT') return none(`Artifact Registry action ${action} is not acted on (only INSERT)`);

  const byDigest = digest === undefined ? undefined : reference('digest', digest, 'digest');
  const byTag = tag === undefined ? undefined : reference('tag', tag, 'tag');
  if (!byDigest && !byTag) throw new DeployError('BAD_REQUEST', 'Artifact Registry INSERT without digest or tag');
  if (byDigest && byTag && byDigest.repository !== byTag.repository) {
    throw new DeployError('BAD_REQUEST', `Artifact Registry INSERT names two repositories: digest ${byDigest.repository}, tag ${byTag.repository}`);
  }
  const repository = (byDigest ?? byTag)!.repository;
  const event = { source: 'artifact-registry' as const, repository, ...(byTag?.tag !== undefined && { tag: byTag.tag }), ...(byDigest?.digest !== undefined && { digest: byDigest.digest }) };
  const intents = toIntents(matchImage(rules, event), 'pubsub/artifact-registry');
  if (intents.length > 0) return { kind: 'artifact-registry', intents, context };
  const what = `${repository}${event.tag !== undefined ? `:${event.tag}` : ''}${event.digest !== undefined ? `@${event.digest}` : ''}`;
  return none(
    event.tag === undefined
      ? `no artifact-registry rule without tags matches ${what} (a digest-only INSERT is judged only by rules without tags)`
      : `no artifact-registry rule matches ${what}`,
  );
}

function cloudBuild(data: Buffer | undefined, attributes: Readonly<Record<string, string>>, rules: readonly Rule[]): Interpretation {
  const attrs = buildAttributes.safeParse(attributes);
  if (!attrs.success) throw invalid('Cloud Build notification attributes', attrs.error);
  const { buildId, status } = attrs.data;
  const context: Record<string, string> = { kind: 'cloud-build', buildId, buildStatus: status };
  // Published on every state change (QUEUED, WORKING, FAILURE…): only a finished, successful build deploys.
  if (status !== 'SUCCESS') {
    return { kind: 'cloud-build', intents: [], ignored: `Cloud Build ${buildId} is ${status}: only SUCCESS deploys`, context };
  }
  const parsed = buildData.safeParse(decodeJson(data));
  if (!parsed.success) throw invalid('Cloud Build resource in the message data', parsed.error);
  const build = parsed.data;
  if (build.id !== buildId || build.status !== status) {
    throw new DeployError('BAD_REQUEST', `Cloud Build notification disagrees with itself: attributes say ${buildId} ${status}, data says ${build.id} ${build.status}`);
  }
  const commit = build.substitutions?.COMMIT_SHA ?? build.substitutions?.SHORT_SHA;
  if (commit) context.commit = commit.slice(0, 64);

  const built = build.results?.images ?? [];
  if (built.length === 0) {
    return {
      kind: 'cloud-build', intents: [], context,
      ignored: `Cloud Build ${buildId} reports no pushed images (only images listed in the build's "images" field are reported, with their digests)`,
    };
  }
  const matches = built.flatMap((image, i) => {
    // The name is as given to docker push: a repository, with or without a tag; the digest is reported apart.
    const ref = reference(`results.images.${i}.name`, `${image.name.split('@')[0]}@${image.digest}`, 'digest');
    return matchImage(rules, { source: 'cloud-build', repository: ref.repository, ...(ref.tag !== undefined && { tag: ref.tag }), digest: image.digest });
  });
  const intents = toIntents(matches, 'pubsub/cloud-build').map((i) => ({ ...i, ...(build.finishTime !== undefined && { eventTime: build.finishTime }) }));
  if (intents.length > 0) return { kind: 'cloud-build', intents, context };
  return { kind: 'cloud-build', intents: [], context, ignored: `no cloud-build rule matches the images of build ${buildId}: ${built.map((b) => b.name).join(', ')}` };
}

/** One deploy per target: the first match wins (two rules, or two tags of one build, may name the same target). */
function toIntents(matches: readonly Match[], source: string): Incoming[] {
  const seen = new Set<string>();
  return matches.flatMap(({ target, image }) => {
    if (seen.has(target)) return [];
    seen.add(target);
    return [{ target, image, dryRun: false, source }];
  });
}

function reference(what: string, value: string, needs: 'digest' | 'tag'): ImageRef {
  let ref: ImageRef;
  try {
    ref = parseImage(value);
  } catch (err) {
    throw new DeployError('BAD_REQUEST', `${what}: ${(err as Error).message}`);
  }
  if (ref[needs] === undefined) throw new DeployError('BAD_REQUEST', `${what}: "${value.slice(0, 200)}" has no ${needs}`);
  return ref;
}

/** The message data as JSON: it must be there, be UTF-8 and parse. */
export function decodeJson(data: Buffer | undefined): unknown {
  if (data === undefined || data.length === 0) throw new DeployError('BAD_REQUEST', 'message has no data');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    throw new DeployError('BAD_REQUEST', 'message data is not UTF-8 text (expected JSON)');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new DeployError('BAD_REQUEST', `message data is not JSON: ${(err as Error).message.slice(0, 200)}`);
  }
}
