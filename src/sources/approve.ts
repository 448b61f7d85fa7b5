// POST /approve and POST /reject: a person (or a service account) decides on a held deploy.
// Google-signed ID tokens with auth.approve's audience, or a person's own gcloud token; the
// verified email must be one of the target's approvers (src/control/ checks it).
import { z } from 'zod';
import type { OidcVerifier } from './auth/oidc.ts';
import { bearerToken, jsonBody } from './http.ts';
import { statusAnswer } from './answers.ts';
import type { Source } from './source.ts';

const body = z.strictObject({
  target: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a target name').max(63),
  /** The held event, as the `held` answer's `hold.eventId` says. */
  eventId: z.string().regex(/^[\w.:-]{1,128}$/, 'must be the held event id (hold.eventId of the held answer)'),
});

export function decisionSource(kind: 'approve' | 'reject', settings: { audience: string }, verifier: OidcVerifier): Source {
  return {
    answer: statusAnswer,
    authenticate: (req) => verifier.verifyPerson(bearerToken(req), settings.audience),
    receive(req) {
      return { intents: [], decision: { kind, ...jsonBody(req, body, `${kind} request`) } };
    },
  };
}
