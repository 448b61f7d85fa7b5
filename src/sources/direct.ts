// POST /deploy: a deploy intent sent directly by an authenticated caller.
import { z } from 'zod';
import type { DirectAuth } from '../config/schema.ts';
import { DeployError } from '../errors.ts';
import { oidcCaller, type OidcVerifier } from './auth/oidc.ts';
import { jsonBody } from './http.ts';
import { LIMITS } from './limits.ts';
import { statusAnswer } from './answers.ts';
import type { Source } from './source.ts';

const body = z.strictObject({
  target: z.string().min(1).max(LIMITS.maxFieldLength),
  image: z.string().min(1).max(LIMITS.maxFieldLength),
  dryRun: z.boolean().default(false),
  /** The event this deploy stands for: defaults are the request's id and arrival time. */
  eventId: z.string().regex(/^[\w.:-]{1,128}$/, 'must be 1-128 letters, digits, ".", ":", "_" or "-"').optional(),
  eventTime: z.iso.datetime({ offset: true }).optional(),
  /** Deploy even if the workload records a newer event (a deliberate manual rollback). */
  force: z.boolean().optional(),
  /** Publish to the queue and answer 202 `queued` at once, rather than answering with the outcome (needs `queue` configured). */
  queue: z.boolean().optional(),
  /** Break-glass: deploy outside the target's windows, saying why (only callers in auth.direct.breakGlass). */
  override: z.string().trim().min(1).max(500).optional(),
});

export function directSource(auth: DirectAuth, verifier: OidcVerifier): Source {
  const breakGlass = auth === 'none' ? [] : (auth.breakGlass ?? []);
  return {
    answer: statusAnswer,
    authenticate: oidcCaller(auth, verifier),
    receive(req, caller) {
      const { queue, override, ...intent } = jsonBody(req, body, 'deploy request');
      if (override !== undefined && (caller === undefined || !breakGlass.includes(caller))) {
        throw new DeployError('FORBIDDEN', `${caller ?? 'this caller'} may not override deploy windows: only callers in auth.direct.breakGlass may`);
      }
      if (queue && intent.dryRun) throw new DeployError('BAD_REQUEST', 'a dry run is not queued: its answer is the diff (leave out "queue")');
      // A time ahead of the clock would make every later deploy of the target stale until then.
      if (intent.eventTime !== undefined && Date.parse(intent.eventTime) > Date.now() + LIMITS.maxEventTimeAheadMs) {
        throw new DeployError('BAD_REQUEST', `eventTime ${intent.eventTime} is in the future (more than ${LIMITS.maxEventTimeAheadMs / 1000} s ahead of ${new Date().toISOString()}): send when the event happened, or leave it out`);
      }
      return { intents: [{ ...intent, source: 'direct', ...(override !== undefined && { override: { by: caller!, reason: override } }) }], ...(queue && { queue: 'required' as const }) };
    },
  };
}
