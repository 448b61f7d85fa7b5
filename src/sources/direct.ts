// POST /deploy: a deploy intent sent directly by an authenticated caller.
import { z } from 'zod';
import type { CallerAuth } from '../config/schema.ts';
import { oidcCaller, type OidcVerifier } from './auth/oidc.ts';
import { jsonBody } from './http.ts';
import { LIMITS } from './limits.ts';
import { statusAnswer } from './answers.ts';
import type { Source } from './source.ts';

const body = z.strictObject({
  target: z.string().min(1).max(LIMITS.maxFieldLength),
  image: z.string().min(1).max(LIMITS.maxFieldLength),
  dryRun: z.boolean().default(false),
});

export function directSource(auth: CallerAuth, verifier: OidcVerifier): Source {
  return {
    answer: statusAnswer,
    authenticate: oidcCaller(auth, verifier),
    receive: (req) => ({ intents: [{ ...jsonBody(req, body, 'deploy request'), source: 'direct' }] }),
  };
}
