// Routes requests to their source, authenticates the caller, runs each intent through
// the pipeline, and hands the outcome to the report stage and to the source's answerer.
import type { Request, Response } from '@google-cloud/functions-framework';
import type { Config } from '../config/load.ts';
import type { DeployIntent, Deployer } from '../core/intent.ts';
import { asDeployError, DeployError } from '../errors.ts';
import { currentLogTrace, withLogTrace, type Logger } from '../core/log.ts';
import { flushTraces, inSpan } from '../core/trace.ts';
import { retryable, type IntentOutcome, type Outcome } from '../report/outcome.ts';
import { reportIntent, reportOutcome } from '../report/report.ts';
import { OidcVerifier } from './auth/oidc.ts';
import { errorBody, logTraceOf, newRequestId, sendJson, traceparentOf } from './http.ts';
import { sourceRoutes } from './routes.ts';
import type { Source } from './source.ts';
import type { Controls, Release } from '../control/controls.ts';

/** The queue as the sources see it (src/queue/): where intents go, and who may have put them there. */
export interface RouterQueue {
  /** Resolves once the queue accepted it; throws QUEUE_UNAVAILABLE. */
  enqueue(intent: DeployIntent, traceparent?: string): Promise<void>;
  /** The service account the function runs as: a queued intent's proof must name it. */
  identity(): Promise<string>;
}

export interface RouterDeps {
  config: Config;
  deploy: Deployer;
  /** Present when `queue` is configured. */
  queue?: RouterQueue;
  log: Logger;
  verifier?: OidcVerifier;
  /** How long a request may run before its deploy must have answered (the wait gives up first). */
  deadlineMs?: number;
  /** Held deploys (src/control/): released by /scheduler calls and /approve. */
  controls?: Controls | undefined;
}

export type Handler = (req: Request, res: Response) => Promise<void>;

interface Ctx {
  requestId: string;
  started: number;
  fields: Record<string, unknown>;
  /** The request's trace context, carried on to what it queues. */
  traceparent?: string | undefined;
}

/** `time`, or `bound` when `time` is later (both RFC 3339). */
function notAfter(time: string, bound: string): string {
  return Date.parse(time) > Date.parse(bound) ? bound : time;
}

/** A sender's delivery id is used as the request id only if it looks like one. */
const SAFE_ID = /^[\w.:-]{1,128}$/;

export function router({ config, deploy, queue, log, verifier = new OidcVerifier(config.auth.certsUrl), deadlineMs = 600_000, controls }: RouterDeps): Handler {
  const sources = sourceRoutes(config, verifier, queue);
  for (const [key, value] of Object.entries(config.auth)) {
    const none = value === 'none' || (typeof value === 'object' && 'token' in value && value.token === 'none'); // auth.pubsub {token: none}
    if (none) log('WARNING', `auth.${key} is "none": its route accepts unauthenticated callers; use this only locally or with an emulator`);
  }

  /** Authenticates, reads and deploys (or queues); never throws. */
  async function run(source: Source, req: Request, ctx: Ctx): Promise<Outcome> {
    try {
      const caller = await source.authenticate(req);
      ctx.fields.caller = caller;
      const delivery = source.receive(req, caller);
      Object.assign(ctx.fields, delivery.context);
      await delivery.proven?.();
      if (delivery.id !== undefined && SAFE_ID.test(delivery.id)) ctx.requestId = delivery.id;
      if (delivery.traceparent !== undefined) {
        // A queued intent continues its sender's trace: every line from here on is in it.
        ctx.traceparent = delivery.traceparent;
        Object.assign(currentLogTrace() ?? {}, logTraceOf(delivery.traceparent));
      }
      const arrived = new Date(ctx.started).toISOString();
      if (delivery.reply) return { kind: 'replied', ...delivery.reply };
      if (delivery.decision) {
        if (!controls) throw new DeployError('INTERNAL', 'no controls are configured');
        const decided = await controls.decide({ ...delivery.decision, by: caller });
        if ('result' in decided) return { kind: 'done', results: [{ ok: true, result: decided.result }] };
        return { kind: 'done', results: [await deployOne(decided.release.intent, ctx, decided.release)] };
      }
      if (delivery.intents.length === 0) return { kind: 'ignored', reason: delivery.ignored ?? 'nothing to deploy' };
      const intents = delivery.intents.map((incoming): DeployIntent => ({
        ...incoming,
        requestId: ctx.requestId,
        eventId: incoming.eventId ?? ctx.requestId,
        // No event is later than its arrival: a time ahead of the clock (a caller's, a build's,
        // a commit's) would make every later event for the target stale until then.
        eventTime: notAfter(incoming.eventTime ?? delivery.eventTime ?? arrived, arrived),
      }));
      if (delivery.queue === 'required' && !queue) throw new DeployError('BAD_REQUEST', '"queue": true needs a queue: set `queue` in the configuration');
      if (delivery.queue && queue && !intents.some((i) => i.dryRun)) return await enqueue(queue, intents, ctx);
      const results: IntentOutcome[] = [];
      // One at a time: deploys to one cluster from one event should not race each other.
      for (const intent of intents) results.push(await deployOne(intent, ctx));
      return { kind: 'done', results };
    } catch (err) {
      return { kind: 'refused', error: asDeployError(err) };
    }
  }

  /**
   * One intent deployed and logged. A reconcile (a Scheduler job) of a target whose held deploy's
   * hold has ended deploys that instead (src/control/). A released hold is dropped once its deploy
   * ended, and kept when a redelivery may still deploy it.
   */
  async function deployOne(asked: DeployIntent, ctx: Ctx, given?: Release): Promise<IntentOutcome> {
    const started = Date.now();
    let intent = asked;
    let release = given;
    let outcome: IntentOutcome;
    try {
      release ??= asked.image === undefined && !asked.dryRun ? await controls?.released(asked.target) : undefined;
      if (release) intent = { ...release.intent, requestId: ctx.requestId };
      const progress = (message: string) => log('INFO', `${intent.target}: ${message}`, { requestId: ctx.requestId, target: intent.target });
      if (intent.override) log('WARNING', `${intent.target}: deploy windows overridden by ${intent.override.by}: ${intent.override.reason}`, { requestId: ctx.requestId, target: intent.target, override: intent.override });
      const span = { 'gke_deployer.target': intent.target, 'gke_deployer.source': intent.source, 'gke_deployer.event_id': intent.eventId, 'gke_deployer.image': intent.image, 'gke_deployer.request_id': ctx.requestId };
      const result = await inSpan('deploy', span, async (set) => {
        const r = await deploy(intent, { deadline: ctx.started + deadlineMs, progress });
        set({ 'gke_deployer.status': r.status });
        return r;
      });
      outcome = { ok: true, result };
    } catch (err) {
      outcome = { ok: false, target: intent.target, error: asDeployError(err) };
    }
    reportIntent(log, outcome, { requestId: ctx.requestId, ...ctx.fields, source: intent.source, durationMs: Date.now() - started });
    // Held again (a window closed meanwhile): the record stays, as it was.
    const keep = retryable({ kind: 'done', results: [outcome] }) || (outcome.ok && outcome.result.status === 'held');
    await release?.finished(keep).catch((err: unknown) => {
      log('WARNING', `${intent.target}: the released hold could not be dropped: ${asDeployError(err).message}`, { requestId: ctx.requestId, target: intent.target });
    });
    return outcome;
  }

  /**
   * Every intent published, each on its own (one per target, ordered by its key), before the
   * answer: when one fails the answer is 503 and the sender sends it all again; what was queued
   * already then deploys once, as the same event is `duplicate` the second time.
   */
  async function enqueue(q: RouterQueue, intents: DeployIntent[], ctx: Ctx): Promise<Outcome> {
    const sent = await Promise.allSettled(intents.map((i) => q.enqueue(i, ctx.traceparent)));
    const failed = sent.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    return { kind: 'queued', intents: intents.map((i) => ({ target: i.target, ...(i.image !== undefined && { image: i.image }), eventId: i.eventId })) };
  }

  const routes = new Map<string, Source>(sources);
  // Cloud Run reserves some paths ending in "z" (its known issues): the health route is
  // /health; /healthz stays as an alias for local use.
  const HEALTH = new Set(['/health', '/healthz']);

  return (req, res) => {
    const traceparent = traceparentOf(req.headers);
    // Every line logged while the request runs carries its trace, wherever it is logged from.
    return withLogTrace(logTraceOf(traceparent), () => serve(req, res, traceparent));
  };

  async function serve(req: Request, res: Response, traceparent: string | undefined): Promise<void> {
    const ctx: Ctx = { requestId: newRequestId(), started: Date.now(), fields: { path: req.path }, traceparent };
    if (HEALTH.has(req.path)) {
      if (req.method === 'GET') return sendJson(res, 200, { status: 'ok' });
      res.set('Allow', 'GET');
      return sendJson(res, 405, errorBody(new DeployError('BAD_REQUEST', `${req.method} not allowed on ${req.path}`), ctx.requestId));
    }
    const source = routes.get(req.path);
    if (!source || req.method !== 'POST') {
      const error = source ? new DeployError('BAD_REQUEST', `${req.method} not allowed on ${req.path}`) : new DeployError('NOT_FOUND', `no route ${req.path}`);
      const status = source ? 405 : 404;
      if (source) res.set('Allow', 'POST');
      reportOutcome(log, { kind: 'refused', error }, status, { requestId: ctx.requestId, ...ctx.fields });
      return sendJson(res, status, errorBody(error, ctx.requestId));
    }
    const outcome = await run(source, req, ctx);
    await flushTraces();
    const answer = source.answer(outcome, ctx.requestId);
    reportOutcome(log, outcome, answer.status, { requestId: ctx.requestId, ...ctx.fields, durationMs: Date.now() - ctx.started });
    sendJson(res, answer.status, answer.body);
  }
}
