// What the GitHub and GitLab webhooks share: reading their headers, the shape of a
// commit id, and turning a git event into intents through the config's rules.
import type { Request } from '@google-cloud/functions-framework';
import { z } from 'zod';
import type { Rule } from '../config/schema.ts';
import { DeployError } from '../errors.ts';
import { matchGit, type GitEvent } from '../policy/rules.ts';
import { LIMITS } from './limits.ts';
import type { Delivery } from './source.ts';

/** A full commit id: SHA-1, or SHA-256 for repositories in that object format. */
export const commitSha = z.string().regex(/^([0-9a-f]{40}|[0-9a-f]{64})$/, 'must be a full commit SHA (40 or 64 hex digits)');
export const field = z.string().min(1).max(LIMITS.maxFieldLength);

const ZERO_SHA = /^0+$/;

/** Before this, a time in a payload is a placeholder (GitHub sends 0001-01-01 for unset times), not a time. */
const EARLIEST = Date.parse('2000-01-01T00:00:00Z');

/**
 * A time the Git host put in the signed body, as RFC 3339: ISO 8601 with an offset, epoch
 * seconds (GitHub push `repository.pushed_at`), or GitLab's `2016-08-12 15:23:28 UTC`. Anything
 * else is no time: the event still deploys, ordered as the router's fallback says. Times in the
 * future are bounded by the router (never after the request arrived).
 */
export function signedTime(value: unknown): string | undefined {
  let ms: number;
  if (typeof value === 'number' && Number.isSafeInteger(value)) ms = value * 1000;
  else if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z| ?UTC| ?[+-]\d{2}:?\d{2})$/.test(value)) {
    const [, date, time, zone] = /^(\S+)[T ](\d{2}:\d{2}:\d{2}(?:\.\d+)?) ?(.*)$/.exec(value)!;
    const offset = zone === 'UTC' || zone === 'Z' ? 'Z' : `${zone!.slice(0, 3)}:${zone!.slice(-2)}`;
    ms = Date.parse(`${date}T${time}${offset}`);
  } else return undefined;
  return Number.isFinite(ms) && ms >= EARLIEST ? new Date(ms).toISOString() : undefined;
}

/** A deleted ref's new value is all zeros. */
export function isZeroSha(sha: string): boolean {
  return ZERO_SHA.test(sha);
}

/** A header as one string; a repeated header (joined or an array) is not one we accept. */
export function header(req: Request, name: string): string | undefined {
  const value = req.headers[name.toLowerCase()];
  return typeof value === 'string' ? value : undefined;
}

/** The event-type header: required, short, and only letters, spaces and underscores (it ends up in answers and logs). */
export function eventHeader(req: Request, name: string): string {
  const value = header(req, name)?.trim();
  if (!value) throw new DeployError('BAD_REQUEST', `missing ${name} header`);
  if (value.length > LIMITS.maxEventNameLength || !/^[A-Za-z_ ]+$/.test(value)) {
    throw new DeployError('BAD_REQUEST', `malformed ${name} header`);
  }
  return value;
}

/** refs/heads/X → branch X, refs/tags/X → tag X; other refs (notes, pull requests) are not deployable. */
export function refTarget(ref: string): { branch: string } | { tag: string } | undefined {
  if (ref.startsWith('refs/heads/') && ref.length > 'refs/heads/'.length) return { branch: ref.slice('refs/heads/'.length) };
  if (ref.startsWith('refs/tags/') && ref.length > 'refs/tags/'.length) return { tag: ref.slice('refs/tags/'.length) };
  return undefined;
}

export function describeEvent(event: GitEvent): string {
  const where = event.tag !== undefined ? `tag ${event.tag}` : `branch ${event.branch ?? '(none)'}`;
  return `${event.source} repository ${event.repository}, ${where}`;
}

/** Intents for every rule the event matches; `ignored` says why there are none. */
export function deliveryFor(rules: readonly Rule[], event: GitEvent, source: string): Pick<Delivery, 'intents' | 'ignored'> {
  const matches = matchGit(rules, event);
  if (matches.length === 0) return { intents: [], ignored: `no rule matches ${describeEvent(event)}` };
  // The commit rides along for the report stage (deployment statuses); a package without a revision label has none.
  const commit = event.sha ? { commit: { host: event.source, repository: event.repository, sha: event.sha } } : {};
  // The ref fills a release's manifests tag template (${branch}, ${tag}) as it fills the rule's image.
  const gitRef = { ...(event.branch !== undefined && { branch: event.branch }), ...(event.tag !== undefined && { tag: event.tag }) };
  return { intents: matches.map((m) => ({ target: m.target, image: m.image, dryRun: false, source, ...commit, ...(Object.keys(gitRef).length > 0 && { gitRef }) })) };
}
