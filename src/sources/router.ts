// Routes requests to their source, authenticates the caller, runs each intent through
// the pipeline, and turns the outcome into one JSON answer and log lines.
import type { Request, Response } from '@google-cloud/functions-framework';
import type { Config } from '../config/load.ts';
import type { DeployResult, Deployer } from '../deploy/pipeline.ts';
import { asDeployError, DeployError } from '../errors.ts';
import type { Logger } from '../report/log.ts';
import { OidcVerifier } from './auth/oidc.ts';
import { errorBody, newRequestId, sendJson, traceOf } from './http.ts';
import { sourceRoutes } from './routes.ts';
import type { Delivery, Source } from './source.ts';

export interface RouterDeps {
  config: Config;
  deploy: Deployer;
  log: Logger;
  verifier?: OidcVerifier;
}

export type Handler = (req: Request, res: Response) => Promise<void>;

type Outcome = { ok: true; result: DeployResult } | { ok: false; target: string; error: DeployError };

/** A sender's delivery id is used as the request id only if it looks like one. */
const SAFE_ID = /^[\w.:-]{1,128}$/;

export function router({ config, deploy, log, verifier = new OidcVerifier(config.auth.certsUrl) }: RouterDeps): Handler {
  const sources = sourceRoutes(config, verifier);
  for (const [key, value] of Object.entries(config.auth)) {
    const none = value === 'none' || (typeof value === 'object' && 'token' in value && value.token === 'none'); // auth.pubsub {token: none}
    if (none) log('WARNING', `auth.${key} is "none": its route accepts unauthenticated callers; use this only locally or with an emulator`);
  }

  async function handle(source: Source, req: Request, res: Response, fallbackId: string, trace: string | undefined): Promise<void> {
    const caller = await source.authenticate(req);
    const delivery: Delivery = source.receive(req);
    const requestId = delivery.id !== undefined && SAFE_ID.test(delivery.id) ? delivery.id : fallbackId;
    const base = { requestId, trace, path: req.path, caller, ...delivery.context };
    if (delivery.reply) {
      log('INFO', `answered ${delivery.reply.status} without deploying`, base);
      sendJson(res, delivery.reply.status, { ...delivery.reply.body, requestId });
      return;
    }
    if (delivery.intents.length === 0) {
      log('INFO', `ignored: ${delivery.ignored ?? 'nothing to deploy'}`, base);
      // Pub/Sub acks 102/200/201/202/204, but its emulator redelivers a 202 every second: acknowledge with 200.
      sendJson(res, source.failures === 'ack' ? 200 : 202, { status: 'ignored', reason: delivery.ignored ?? 'nothing to deploy', requestId });
      return;
    }
    const outcomes: Outcome[] = [];
    // One at a time: deploys to one cluster from one event should not race each other.
    for (const incoming of delivery.intents) {
      const started = Date.now();
      try {
        const result = await deploy({ ...incoming, requestId });
        log('INFO', `deployed ${result.image} to ${result.target}`, {
          ...base, target: result.target, cluster: result.cluster, source: incoming.source,
          dryRun: result.dryRun, objects: result.objects, durationMs: Date.now() - started,
        });
        outcomes.push({ ok: true, result });
      } catch (err) {
        const error = asDeployError(err);
        const permanentAck = source.failures === 'ack' && !error.transient;
        log(error.status >= 500 || permanentAck ? 'ERROR' : 'WARNING', `deploy to ${incoming.target} failed: ${error.message}`, {
          ...base, target: incoming.target, source: incoming.source, code: error.code, status: error.status,
          ...(permanentAck && { acknowledged: true }), durationMs: Date.now() - started,
        });
        outcomes.push({ ok: false, target: incoming.target, error });
      }
    }
    respond(source, res, requestId, outcomes);
  }

  const routes: Record<string, Record<string, (req: Request, res: Response, id: string, trace: string | undefined) => Promise<void>>> = {
    '/healthz': { GET: (_req, res) => Promise.resolve(sendJson(res, 200, { status: 'ok' })) },
  };
  for (const [path, source] of sources) routes[path] = { POST: (req, res, id, trace) => handle(source, req, res, id, trace) };

  return async (req, res) => {
    const requestId = newRequestId();
    const trace = traceOf(req);
    const started = Date.now();
    try {
      const route = routes[req.path];
      if (!route) throw new DeployError('NOT_FOUND', `no route ${req.path}`);
      const handler = route[req.method];
      if (!handler) {
        res.set('Allow', Object.keys(route).join(', '));
        sendJson(res, 405, errorBody(new DeployError('BAD_REQUEST', `${req.method} not allowed on ${req.path}`), requestId));
        return;
      }
      await handler(req, res, requestId, trace);
    } catch (err) {
      const e = asDeployError(err);
      // Only authentication and malformed requests get here; an `ack` source still
      // acknowledges a malformed message (redelivery cannot fix it), never a bad caller.
      const source = sources.get(req.path);
      const ack = source?.failures === 'ack' && e.status !== 401 && !e.transient;
      log(e.status >= 500 || ack ? 'ERROR' : 'WARNING', e.message, {
        requestId, trace, path: req.path, code: e.code, status: e.status, ...(ack && { acknowledged: true }), durationMs: Date.now() - started,
      });
      sendJson(res, ack ? 200 : e.status, { ...errorBody(e, requestId), ...(ack && { acknowledged: true }) });
    }
  };
}

function respond(source: Source, res: Response, requestId: string, outcomes: Outcome[]): void {
  const failures = outcomes.filter((o): o is Extract<Outcome, { ok: false }> => !o.ok);
  // A direct deploy answers with its one result, as documented for POST /deploy.
  if (outcomes.length === 1 && source.failures === 'status') {
    const only = outcomes[0]!;
    if (only.ok) sendJson(res, 200, only.result);
    else sendJson(res, only.error.status, errorBody(only.error, requestId));
    return;
  }
  const results = outcomes.map((o) => (o.ok ? o.result : { target: o.target, ...errorBody(o.error, requestId) }));
  const transient = failures.find((f) => f.error.transient);
  let status = 200;
  if (transient) status = transient.error.status;
  else if (failures.length > 0 && source.failures === 'status') status = failures[0]!.error.status;
  const summary = failures.length === 0 ? 'applied' : failures.length === outcomes.length ? 'error' : 'partial';
  sendJson(res, status, { status: summary, requestId, results, ...(failures.length > 0 && source.failures === 'ack' && !transient && { acknowledged: true }) });
}
