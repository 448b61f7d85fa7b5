// Which targets an event deploys to, and with what image. Sources describe what
// happened (an image was pushed, a branch moved); rules, from the config, decide.
import picomatch from 'picomatch';
import semver from 'semver';
import type { Rule } from '../config/schema.ts';

/** A new image in a registry (Artifact Registry notification, Cloud Build result). */
export interface ImageEvent {
  source: 'artifact-registry' | 'cloud-build';
  repository: string;
  tag?: string;
  digest?: string;
}

/** A commit that should be deployed (push, tag push, successful pipeline or workflow, published package). */
export interface GitEvent {
  source: 'github' | 'gitlab';
  /** owner/name */
  repository: string;
  sha: string;
  branch?: string;
  tag?: string;
  /** A published package's digest: pinned onto the rule's image. */
  digest?: string;
}

export interface Match {
  target: string;
  image: string;
}

/** `v*` is a glob; anything with a range operator (`>=1.0.0 <2`, `^1.2`, `~1`, `1.x || 2.x`) is a semver range. */
export function tagMatches(pattern: string, tag: string): boolean {
  if (/[<>=^~|]|\s-\s|^\d+(\.(\d+|x|\*))*$/.test(pattern)) {
    const version = semver.valid(semver.clean(tag, { loose: true }) ?? '');
    return version !== null && semver.satisfies(version, pattern, { includePrerelease: false });
  }
  return picomatch.isMatch(tag, pattern, { dot: true });
}

export function matchImage(rules: readonly Rule[], event: ImageEvent): Match[] {
  const image = `${event.repository}${event.tag ? `:${event.tag}` : ''}${event.digest ? `@${event.digest}` : ''}`;
  return rules.flatMap((rule) => {
    if (rule.source !== event.source || rule.repository !== event.repository) return [];
    // A rule on tags needs a tag to judge; a digest-only event matches only rules without one.
    if (rule.tags !== undefined && (event.tag === undefined || !tagMatches(rule.tags, event.tag))) return [];
    return rule.targets.map((target) => ({ target, image }));
  });
}

/** Git refs may hold characters an image tag may not (`release/1.0`). */
function imageTagSafe(ref: string | undefined): string {
  return (ref ?? '').replace(/[^\w.-]/g, '-');
}

export function matchGit(rules: readonly Rule[], event: GitEvent): Match[] {
  return rules.flatMap((rule) => {
    if (rule.source !== event.source || !('image' in rule) || rule.repository !== event.repository) return [];
    if (event.tag !== undefined) {
      if (rule.tags === undefined || !tagMatches(rule.tags, event.tag)) return [];
    } else if (rule.tags !== undefined && rule.branch === undefined) {
      return []; // a tags-only rule ignores branch events
    } else if (rule.branch !== undefined && rule.branch !== event.branch) {
      return [];
    }
    const built = rule.image.replace(/\$\{(sha|shortSha|tag|branch)\}/g, (_m, key: string) => {
      switch (key) {
        case 'sha':
          return event.sha;
        case 'shortSha':
          return event.sha.slice(0, 7);
        case 'tag':
          return imageTagSafe(event.tag);
        default:
          return imageTagSafe(event.branch);
      }
    });
    const image = event.digest && !built.includes('@') ? `${built}@${event.digest}` : built;
    return rule.targets.map((target) => ({ target, image }));
  });
}
