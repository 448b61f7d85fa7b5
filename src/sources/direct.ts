// POST /deploy: a deploy intent sent directly by an authenticated caller.
import { z } from 'zod';
import type { Request } from '@google-cloud/functions-framework';
import type { DeployIntent } from '../deploy/intent.ts';
import { DeployError } from '../errors.ts';
import { LIMITS } from './limits.ts';
import { parseJson, rawBody, requireContentType } from './http.ts';

const body = z.strictObject({
  target: z.string().min(1).max(LIMITS.maxFieldLength),
  image: z.string().min(1).max(LIMITS.maxFieldLength),
  dryRun: z.boolean().default(false),
});

export function directIntent(req: Request, requestId: string): DeployIntent {
  requireContentType(req, 'application/json');
  const parsed = body.safeParse(parseJson(rawBody(req)));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
    throw new DeployError('BAD_REQUEST', `invalid deploy request: ${problems}`);
  }
  return { ...parsed.data, requestId, source: 'direct' };
}
