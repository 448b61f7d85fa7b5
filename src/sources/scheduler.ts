// POST /scheduler: Cloud Scheduler jobs (OIDC, as for Pub/Sub). With an image it is a
// scheduled promotion; without one it reconciles the target to what it last deployed.
import { z } from 'zod';
import type { CallerAuth } from '../config/schema.ts';
import { oidcCaller, type OidcVerifier } from './auth/oidc.ts';
import { jsonBody } from './http.ts';
import { LIMITS } from './limits.ts';
import { statusAnswer } from './answers.ts';
import type { Source } from './source.ts';

const body = z.strictObject({
  target: z.string().min(1).max(LIMITS.maxFieldLength),
  image: z.string().min(1).max(LIMITS.maxFieldLength).optional(),
  dryRun: z.boolean().default(false),
});

export function schedulerSource(auth: CallerAuth, verifier: OidcVerifier): Source {
  return {
    // Scheduler retries non-2xx per the job's retry config, and shows the status in its run log.
    answer: statusAnswer,
    authenticate: oidcCaller(auth, verifier),
    receive(req) {
      const { image, ...rest } = jsonBody(req, body, 'scheduler job body');
      return {
        intents: [{ ...rest, ...(image !== undefined && { image }), source: image === undefined ? 'scheduler/reconcile' : 'scheduler/promote' }],
        context: { job: req.headers['x-cloudscheduler-jobname']?.toString().slice(0, 200) ?? 'unknown' },
        queue: 'if-configured',
      };
    },
  };
}
