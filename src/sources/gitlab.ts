// POST /webhooks/gitlab: a GitLab project or group webhook. X-Gitlab-Token (the webhook's
// secret token, sent as is) proves GitLab sent it; the event and the config's gitlab rules
// decide what deploys:
//   Push Hook                       the pushed branch's head (checkout_sha)
//   Tag Push Hook                   the tag's commit
//   Pipeline Hook, status success   the pipeline's commit on its branch or tag
// Anything else answers 202 ignored. GitLab shows each answer in the webhook's request log.
// An event's time is one in the body (the pushed commit's, the pipeline's creation), never when
// it arrived: a resent or replayed hook arrives later with the old body.
import { z } from 'zod';
import type { Rule } from '../config/schema.ts';
import { isRecord } from '../guards.ts';
import { secretFromEnv, verifyToken } from './auth/webhook-secret.ts';
import { commitSha, deliveryFor, eventHeader, field, header, refTarget, signedTime } from './git-event.ts';
import { invalid, parseJson, rawBody, requireContentType } from './http.ts';
import { webhookAnswer } from './answers.ts';
import type { Delivery, Source } from './source.ts';

// Loose objects: GitLab adds fields release after release.
const project = z.object({ path_with_namespace: field });

const push = z.object({
  ref: field,
  /** The commit the ref now points to (for an annotated tag, not the tag object); null when the ref was deleted. */
  checkout_sha: commitSha.nullable(),
  project,
  /** The pushed commits (GitLab lists at most 20): only the pushed head's time is read (pushTime), never refusing the push. */
  commits: z.unknown().optional(),
});

const pipelineStatus = z.object({ object_attributes: z.object({ status: z.string().max(64) }) });
const pipeline = z.object({
  object_attributes: z.object({
    /** A branch or tag name (not refs/…); for a merge request pipeline, the source branch. */
    ref: field,
    tag: z.boolean(),
    sha: commitSha,
    source: z.string().max(64).optional(),
    id: z.number().int().optional(),
    /** When the pipeline was created, by GitLab: kept when its jobs are retried. */
    created_at: z.unknown().optional(),
  }),
  project,
});

/** Pipelines whose ref is not a branch or tag of this project: a merge request's source branch may be a fork's. */
const FOREIGN_SOURCES = new Set(['merge_request_event', 'external_pull_request_event']);

type Mapped = Pick<Delivery, 'intents' | 'ignored' | 'eventTime'> & { context?: Record<string, string> };

export function gitlabSource(settings: { tokenEnv: string }, rules: readonly Rule[]): Source {
  const token = secretFromEnv(settings.tokenEnv);
  return {
    answer: webhookAnswer,
    authenticate(req) {
      rawBody(req); // the size limit before anything else
      verifyToken(token, req.headers['x-gitlab-token'], 'X-Gitlab-Token');
      return Promise.resolve('gitlab');
    },
    receive(req) {
      requireContentType(req, 'application/json');
      const event = eventHeader(req, 'X-Gitlab-Event');
      // The event's id: Idempotency-Key stays the same when GitLab retries a delivery, so a
      // retry is a duplicate; X-Gitlab-Webhook-UUID (per event) on GitLab versions before it.
      const id = header(req, 'idempotency-key') ?? header(req, 'x-gitlab-webhook-uuid') ?? header(req, 'x-gitlab-event-uuid');
      const mapped = mapGitlabEvent(event, parseJson(rawBody(req)), rules);
      return {
        ...(id !== undefined && { id }),
        intents: mapped.intents,
        ...(mapped.ignored !== undefined && { ignored: mapped.ignored }),
        ...(mapped.eventTime !== undefined && { eventTime: mapped.eventTime }),
        context: { event, ...mapped.context },
        queue: 'if-configured',
      };
    },
  };
}

/** A GitLab event and its parsed body to intents: pure, for tests. */
export function mapGitlabEvent(event: string, payload: unknown, rules: readonly Rule[]): Mapped {
  switch (event) {
    case 'Push Hook':
    case 'Tag Push Hook':
      return onPush(event, parse(push, payload, event), rules);
    case 'Pipeline Hook':
      return onPipeline(payload, rules);
    default:
      return { intents: [], ignored: `GitLab event "${event}" is not acted on` };
  }
}

function onPush(event: string, p: z.infer<typeof push>, rules: readonly Rule[]): Mapped {
  const repository = p.project.path_with_namespace;
  const context = { repository, ref: p.ref };
  if (p.checkout_sha === null) return { intents: [], ignored: `push deleted ${p.ref}`, context };
  const ref = refTarget(p.ref);
  const expected = event === 'Tag Push Hook' ? 'tag' : 'branch';
  if (!ref || !(expected in ref)) return { intents: [], ignored: `${event} for ${p.ref}, not a ${expected}`, context };
  const source = event === 'Tag Push Hook' ? 'gitlab/tag_push' : 'gitlab/push';
  const sha = p.checkout_sha;
  // A push hook carries no time of the push itself: the pushed commit's (its author's clock,
  // bounded by the arrival). A tag push lists no commits, and has none.
  const eventTime = pushTime(p.commits, sha);
  return { ...deliveryFor(rules, { source: 'gitlab', repository, sha, ...ref }, source), ...(eventTime && { eventTime }), context: { ...context, sha } };
}

function onPipeline(payload: unknown, rules: readonly Rule[]): Mapped {
  const { status } = parse(pipelineStatus, payload, 'Pipeline Hook').object_attributes;
  if (status !== 'success') return { intents: [], ignored: `pipeline status "${status}", not success` };
  const p = parse(pipeline, payload, 'Pipeline Hook');
  const attrs = p.object_attributes;
  const repository = p.project.path_with_namespace;
  const context = {
    repository,
    ref: attrs.ref,
    sha: attrs.sha,
    ...(attrs.id !== undefined && { pipeline: String(attrs.id) }),
    ...(attrs.source !== undefined && { pipelineSource: attrs.source }),
  };
  if (attrs.source !== undefined && FOREIGN_SOURCES.has(attrs.source)) {
    return { intents: [], ignored: `pipeline for a ${attrs.source.replaceAll('_', ' ')} (its ref may be a fork's branch)`, context };
  }
  const ref = attrs.tag ? { tag: attrs.ref } : { branch: attrs.ref };
  // As for a GitHub workflow run: when it was created (triggered), which its retries keep.
  const eventTime = signedTime(attrs.created_at);
  return { ...deliveryFor(rules, { source: 'gitlab', repository, sha: attrs.sha, ...ref }, 'gitlab/pipeline'), ...(eventTime && { eventTime }), context };
}

/** The timestamp of commit `sha` among a push's `commits`, if it is there and is a time. */
function pushTime(commits: unknown, sha: string): string | undefined {
  if (!Array.isArray(commits)) return undefined;
  const head: unknown = commits.find((c) => isRecord(c) && c.id === sha);
  return isRecord(head) ? signedTime(head.timestamp) : undefined;
}

function parse<T>(schema: z.ZodType<T>, payload: unknown, what: string): T {
  const parsed = schema.safeParse(payload);
  if (!parsed.success) throw invalid(`GitLab ${what} payload`, parsed.error);
  return parsed.data;
}
