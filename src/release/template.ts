// The manifests artifact's tag, from the target's template and what the event says. A
// variable the event gives no value for refuses the deploy: falling back to `latest` (or
// an empty tag) would apply manifests nobody released with this image.
import type { DeployIntent } from '../core/intent.ts';
import { DeployError } from '../errors.ts';
import { parseImage } from '../core/image-ref.ts';

const VARIABLE = /\$\{(sha|shortSha|tag|branch)\}/g;

/** Git refs may hold characters a tag may not (`release/1.0`), as rule image templates have it. */
const tagSafe = (ref: string): string => ref.replace(/[^\w.-]/g, '-');

/**
 * `${tag}`: a Git tag event's tag, otherwise the deployed image's tag; `${sha}`, `${shortSha}`:
 * the Git event's commit; `${branch}`: the Git event's branch.
 */
export function manifestsTag(template: string, intent: Pick<DeployIntent, 'commit' | 'gitRef'>, image: string): string {
  const imageTag = parseImage(image).tag;
  const values: Record<string, string | undefined> = {
    sha: intent.commit?.sha,
    shortSha: intent.commit?.sha.slice(0, 7),
    tag: intent.gitRef?.tag !== undefined ? tagSafe(intent.gitRef.tag) : imageTag,
    branch: intent.gitRef?.branch !== undefined ? tagSafe(intent.gitRef.branch) : undefined,
  };
  const missing = [...template.matchAll(VARIABLE)].map((m) => m[1]!).filter((k) => values[k] === undefined);
  if (missing.length > 0) {
    throw new DeployError(
      'MANIFESTS_TAG_UNKNOWN',
      `the manifests tag "${template}" needs \${${missing[0]!}}, which this event does not give (${image} ${imageTag === undefined ? 'has no tag' : `has tag ${imageTag}`}${intent.commit ? '' : ', no Git commit'}); nothing is deployed rather than a guessed tag`,
    );
  }
  const tag = template.replace(VARIABLE, (_m, k: string) => values[k]!);
  if (!/^[\w][\w.-]{0,127}$/.test(tag)) throw new DeployError('MANIFESTS_TAG_UNKNOWN', `the manifests tag "${template}" gives "${tag.slice(0, 200)}", which is not a valid tag`);
  return tag;
}
