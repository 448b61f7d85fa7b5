// POST /scheduler: Cloud Scheduler jobs (OIDC, as for Pub/Sub). With an image it is a
// scheduled promotion; without one it reconciles the target to what it last deployed.
import { z } from 'zod';
import type { CallerAuth } from '../config/schema.ts';
import type { OidcVerifier } from './auth/oidc.ts';
import { invalid } from './direct.ts';
import { bearerToken, parseJson, rawBody, requireContentType } from './http.ts';
import { LIMITS } from './limits.ts';
import type { Source } from './source.ts';

const body = z.strictObject({
  target: z.string().min(1).max(LIMITS.maxFieldLength),
  image: z.string().min(1).max(LIMITS.maxFieldLength).optional(),
  dryRun: z.boolean().default(false),
});

export function schedulerSource(auth: CallerAuth, verifier: OidcVerifier): Source {
  return {
    // Scheduler retries non-2xx per the job's retry config, and shows the status in its run log.
    failures: 'status',
    authenticate: (req) => (auth === 'none' ? Promise.resolve('unauthenticated') : verifier.verify(bearerToken(req), auth)),
    receive(req) {
      requireContentType(req, 'application/json');
      const parsed = body.safeParse(parseJson(rawBody(req)));
      if (!parsed.success) throw invalid('scheduler job body', parsed.error);
      const { image, ...rest } = parsed.data;
      return {
        intents: [{ ...rest, ...(image !== undefined && { image }), source: image === undefined ? 'scheduler/reconcile' : 'scheduler/promote' }],
        context: { job: req.headers['x-cloudscheduler-jobname']?.toString().slice(0, 200) ?? 'unknown' },
      };
    },
  };
}
