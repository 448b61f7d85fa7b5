// POST /deploy: a deploy intent sent directly by an authenticated caller.
import { z } from 'zod';
import type { CallerAuth } from '../config/schema.ts';
import { DeployError } from '../errors.ts';
import type { OidcVerifier } from './auth/oidc.ts';
import { bearerToken, parseJson, rawBody, requireContentType } from './http.ts';
import { LIMITS } from './limits.ts';
import type { Source } from './source.ts';

const body = z.strictObject({
  target: z.string().min(1).max(LIMITS.maxFieldLength),
  image: z.string().min(1).max(LIMITS.maxFieldLength),
  dryRun: z.boolean().default(false),
});

export function directSource(auth: CallerAuth, verifier: OidcVerifier): Source {
  return {
    failures: 'status',
    authenticate: (req) => (auth === 'none' ? Promise.resolve('unauthenticated') : verifier.verify(bearerToken(req), auth)),
    receive(req) {
      requireContentType(req, 'application/json');
      const parsed = body.safeParse(parseJson(rawBody(req)));
      if (!parsed.success) throw invalid('deploy request', parsed.error);
      return { intents: [{ ...parsed.data, source: 'direct' }] };
    },
  };
}

export function invalid(what: string, error: z.ZodError): DeployError {
  const problems = error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
  return new DeployError('BAD_REQUEST', `invalid ${what}: ${problems}`);
}
