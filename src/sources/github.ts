// POST /webhooks/github: a GitHub repository or organization webhook. The signature proves
// GitHub sent the body; the event and the config's github rules decide what deploys:
//   push                              refs/heads/X → branch X, refs/tags/X → tag X
//   registry_package published        a container tag and its digest
//   workflow_run completed + success  the run's head commit on its branch
//   ping                              200, so the webhook's settings page shows it works
// Anything else answers 202 ignored. GitHub shows each answer in its delivery log.
// An event's time is one GitHub signed in the body, never when it arrived (a Redeliver, a
// re-run or a replayed capture arrives later, with the old body): see eventTime below.
import type { Request } from '@google-cloud/functions-framework';
import { z } from 'zod';
import type { Rule } from '../config/schema.ts';
import { DeployError } from '../errors.ts';
import { secretFromEnv, verifyHubSignature } from './auth/webhook-secret.ts';
import { commitSha, deliveryFor, eventHeader, field, header, isZeroSha, refTarget, signedTime } from './git-event.ts';
import { invalid, parseJson, rawBody, requireContentType } from './http.ts';
import { LIMITS } from './limits.ts';
import { webhookAnswer } from './answers.ts';
import type { Delivery, Source } from './source.ts';

// Loose objects throughout: real payloads carry hundreds of fields we do not read.
const repository = z.object({ full_name: field });
const withAction = z.object({ action: z.string().max(LIMITS.maxFieldLength) });

// Times are read as they come (signedTime): a time GitHub changes the shape of never refuses an event.
const push = z.object({
  ref: field,
  after: commitSha,
  deleted: z.boolean().optional(),
  /** For an annotated tag, `after` is the tag object; head_commit is the commit it points to. */
  head_commit: z.object({ id: commitSha, timestamp: z.unknown().optional() }).nullable().optional(),
  /** pushed_at: epoch seconds in a push event, set by GitHub when the push happened. */
  repository: repository.extend({ pushed_at: z.unknown().optional() }),
});

const packageType = z.object({ registry_package: z.object({ package_type: z.string().max(64) }) });
/** A registry tag (distribution/reference grammar); empty for an untagged version. */
const registryTag = z.string().regex(/^([\w][\w.-]{0,127})?$/, 'must be an image tag');
const registryPackage = z.object({
  registry_package: z.object({
    name: field,
    package_version: z.object({
      container_metadata: z.object({
        tag: z.object({ name: registryTag, digest: z.string().regex(/^sha256:[a-f0-9]{64}$/, 'must be sha256:<64 hex digits>') }),
        /** org.opencontainers.image.revision, when the image was built with it (docker/metadata-action sets it). */
        labels: z.object({ revision: z.string().max(LIMITS.maxFieldLength).nullable().optional() }).nullable().optional(),
      }),
      created_at: z.unknown().optional(),
      updated_at: z.unknown().optional(),
    }),
  }),
  /** Absent for a package not linked to a repository. */
  repository: repository.optional(),
});

const workflowRun = z.object({
  workflow_run: z.object({
    conclusion: z.string().max(64).nullable(),
    head_sha: commitSha,
    head_branch: z.string().max(LIMITS.maxFieldLength).nullable(),
    /** The repository the commit is from: a fork's for a pull request from a fork. */
    head_repository: z.object({ full_name: field }).nullable().optional(),
    name: z.string().max(LIMITS.maxFieldLength).nullable().optional(),
    created_at: z.unknown().optional(),
  }),
  repository,
});

type Mapped = Pick<Delivery, 'intents' | 'ignored' | 'reply' | 'eventTime'> & { context?: Record<string, string> };

export function githubSource(settings: { secretEnv: string }, rules: readonly Rule[]): Source {
  const secret = secretFromEnv(settings.secretEnv);
  return {
    answer: webhookAnswer,
    authenticate(req) {
      // The size limit first: nothing over it is even hashed.
      verifyHubSignature(secret, rawBody(req), req.headers['x-hub-signature-256']);
      return Promise.resolve('github');
    },
    receive(req) {
      jsonOnly(req);
      const event = eventHeader(req, 'X-GitHub-Event');
      const id = header(req, 'x-github-delivery');
      const payload = parseJson(rawBody(req));
      const mapped = mapGithubEvent(event, payload, rules);
      return {
        ...(id !== undefined && { id }),
        intents: mapped.intents,
        ...(mapped.ignored !== undefined && { ignored: mapped.ignored }),
        ...(mapped.reply !== undefined && { reply: mapped.reply }),
        ...(mapped.eventTime !== undefined && { eventTime: mapped.eventTime }),
        context: { event, ...mapped.context },
        queue: 'if-configured',
      };
    },
  };
}

/** A GitHub event and its parsed body to intents: pure, for tests. */
export function mapGithubEvent(event: string, payload: unknown, rules: readonly Rule[]): Mapped {
  switch (event) {
    case 'ping':
      return { intents: [], reply: { status: 200, body: { status: 'pong' } } };
    case 'push':
      return onPush(parse(push, payload, 'push'), rules);
    case 'registry_package':
      return onRegistryPackage(payload, rules);
    case 'workflow_run':
      return onWorkflowRun(payload, rules);
    default:
      return { intents: [], ignored: `GitHub event "${event}" is not acted on` };
  }
}

function onPush(p: z.infer<typeof push>, rules: readonly Rule[]): Mapped {
  const context = { repository: p.repository.full_name, ref: p.ref };
  if (p.deleted === true || isZeroSha(p.after)) return { intents: [], ignored: `push deleted ${p.ref}`, context };
  const ref = refTarget(p.ref);
  if (!ref) return { intents: [], ignored: `push to ${p.ref}, neither a branch nor a tag`, context };
  const sha = p.head_commit?.id ?? p.after;
  // When GitHub took the push; the commit's own time (its author's clock) only without it.
  const eventTime = signedTime(p.repository.pushed_at) ?? signedTime(p.head_commit?.timestamp);
  return { ...deliveryFor(rules, { source: 'github', repository: p.repository.full_name, sha, ...ref }, 'github/push'), ...(eventTime && { eventTime }), context: { ...context, sha } };
}

function onRegistryPackage(payload: unknown, rules: readonly Rule[]): Mapped {
  const { action } = parse(withAction, payload, 'registry_package');
  if (action !== 'published') return { intents: [], ignored: `registry_package action "${action}" is not acted on` };
  const type = parse(packageType, payload, 'registry_package').registry_package.package_type.toLowerCase();
  // `docker` is GitHub's former Docker registry, whose images moved to the container registry.
  if (type !== 'container' && type !== 'docker') return { intents: [], ignored: `registry_package of type "${type}" is not a container image` };
  const p = parse(registryPackage, payload, 'registry_package');
  const pkg = p.registry_package;
  const { tag, labels } = pkg.package_version.container_metadata;
  if (!p.repository) return { intents: [], ignored: `package ${pkg.name} is not linked to a repository`, context: { package: pkg.name } };
  const repository = p.repository.full_name;
  // The revision label is the commit the image was built from; without it only rules that do not use ${sha} can apply.
  const revision = labels?.revision ?? '';
  const sha = commitSha.safeParse(revision).success ? revision : '';
  const context = { repository, package: pkg.name, tag: tag.name, digest: tag.digest, ...(sha && { sha }) };
  if (tag.name === '') return { intents: [], ignored: `published version of ${pkg.name} has no tag`, context };
  const usable = sha ? rules : rules.filter((r) => !('image' in r && /\$\{(sha|shortSha)\}/.test(r.image)));
  const delivery = deliveryFor(usable, { source: 'github', repository, sha, tag: tag.name, digest: tag.digest }, 'github/registry_package');
  if (delivery.ignored !== undefined) {
    const hint = sha ? '' : ' (rules whose image uses ${sha} need the image label org.opencontainers.image.revision)';
    return { intents: [], ignored: delivery.ignored + hint, context };
  }
  // A repository can publish several packages, and every rule for it would pin *this* one's
  // digest: only images that are this package may (any other would never pull).
  const intents = delivery.intents.filter((i) => i.image !== undefined && imageRepository(i.image).endsWith(`/${pkg.name.toLowerCase()}`));
  if (intents.length === 0) return { intents: [], ignored: `the rules for ${repository} tag ${tag.name} deploy other images than package "${pkg.name}"`, context };
  // When the version was published; GitHub has sent 0001-01-01 here, which is no time.
  const eventTime = signedTime(pkg.package_version.created_at) ?? signedTime(pkg.package_version.updated_at);
  return { intents, ...(eventTime && { eventTime }), context };
}

function onWorkflowRun(payload: unknown, rules: readonly Rule[]): Mapped {
  const { action } = parse(withAction, payload, 'workflow_run');
  if (action !== 'completed') return { intents: [], ignored: `workflow_run action "${action}" is not acted on` };
  const p = parse(workflowRun, payload, 'workflow_run');
  const run = p.workflow_run;
  const repo = p.repository.full_name;
  const context = { repository: repo, ...(run.name && { workflow: run.name }), sha: run.head_sha };
  if (run.conclusion !== 'success') return { intents: [], ignored: `workflow run concluded "${run.conclusion ?? 'null'}", not success`, context };
  // A pull request from a fork runs on the fork's commit, under a branch name the fork chose.
  if (run.head_repository && run.head_repository.full_name !== repo) {
    return { intents: [], ignored: `workflow run on a commit from ${run.head_repository.full_name}, not ${repo}`, context };
  }
  if (!run.head_branch) return { intents: [], ignored: 'workflow run has no head branch', context };
  const event = { source: 'github', repository: repo, sha: run.head_sha, branch: run.head_branch } as const;
  // When the run was created, i.e. triggered (by the push of its commit, mostly): set by GitHub,
  // and kept by a re-run (run_started_at and updated_at move), so runs finishing out of order and
  // re-runs of older ones are ordered by their trigger. The head commit's timestamp is its
  // author's clock, and predates the push by any amount.
  const eventTime = signedTime(run.created_at);
  return { ...deliveryFor(rules, event, 'github/workflow_run'), ...(eventTime && { eventTime }), context: { ...context, branch: run.head_branch } };
}

function jsonOnly(req: Request): void {
  try {
    requireContentType(req, 'application/json');
  } catch (err) {
    // GitHub's default for a new webhook is form-encoded.
    const message = `${(err as Error).message}: set the GitHub webhook's "Content type" to application/json`;
    throw new DeployError('UNSUPPORTED_MEDIA_TYPE', message);
  }
}

function parse<T>(schema: z.ZodType<T>, payload: unknown, what: string): T {
  const parsed = schema.safeParse(payload);
  if (!parsed.success) throw invalid(`GitHub ${what} payload`, parsed.error);
  return parsed.data;
}

/** The repository part of an image reference (no tag, no digest). */
function imageRepository(image: string): string {
  const name = image.split('@')[0] ?? '';
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  return colon > slash ? name.slice(0, colon) : name;
}
