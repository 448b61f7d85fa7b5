// Routes requests to their source adapter, authenticates the caller, and turns the
// outcome into one JSON answer and one log line.
import type { Request, Response } from '@google-cloud/functions-framework';
import type { Config } from '../config/load.ts';
import type { Deployer } from '../deploy/pipeline.ts';
import { asDeployError, DeployError } from '../errors.ts';
import type { Logger } from '../report/log.ts';
import { OidcVerifier } from './auth/oidc.ts';
import { directIntent } from './direct.ts';
import { bearerToken, errorBody, newRequestId, sendJson, traceOf } from './http.ts';

export interface RouterDeps {
  config: Config;
  deploy: Deployer;
  log: Logger;
  verifier?: OidcVerifier;
}

export type Handler = (req: Request, res: Response) => Promise<void>;

export function router({ config, deploy, log, verifier = new OidcVerifier(config.auth.certsUrl) }: RouterDeps): Handler {
  if (config.auth.direct === 'none') {
    log('WARNING', 'auth.direct is "none": POST /deploy accepts unauthenticated callers; use this only locally');
  }

  async function direct(req: Request, res: Response, requestId: string, trace: string | undefined): Promise<void> {
    const auth = config.auth.direct;
    const caller = auth === 'none' ? 'unauthenticated' : await verifier.verify(bearerToken(req), auth);
    const intent = directIntent(req, requestId);
    const started = Date.now();
    const result = await deploy(intent);
    log('INFO', `deployed ${result.image} to ${result.target}`, {
      requestId, trace, target: result.target, cluster: result.cluster, caller, source: intent.source,
      dryRun: result.dryRun, objects: result.objects, durationMs: Date.now() - started,
    });
    sendJson(res, 200, result);
  }

  const routes: Record<string, Record<string, typeof direct>> = {
    '/deploy': { POST: direct },
    '/healthz': { GET: (_req, res) => Promise.resolve(sendJson(res, 200, { status: 'ok' })) },
  };

  return async (req, res) => {
    const requestId = newRequestId();
    const trace = traceOf(req);
    const started = Date.now();
    try {
      const route = routes[req.path];
      if (!route) throw new DeployError('NOT_FOUND', `no route ${req.path}`);
      const handle = route[req.method];
      if (!handle) {
        res.set('Allow', Object.keys(route).join(', '));
        sendJson(res, 405, errorBody(new DeployError('BAD_REQUEST', `${req.method} not allowed on ${req.path}`), requestId));
        return;
      }
      await handle(req, res, requestId, trace);
    } catch (err) {
      const e = asDeployError(err);
      log(e.status >= 500 ? 'ERROR' : 'WARNING', e.message, {
        requestId, trace, path: req.path, code: e.code, status: e.status, durationMs: Date.now() - started,
      });
      sendJson(res, e.status, errorBody(e, requestId));
    }
  };
}
