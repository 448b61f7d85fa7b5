// What a queued intent looks like on the queue topic, and what proves who queued it.
//   data        {"intent": "<payload: JSON text>", "proof": "<ID token>"}
//   attributes  gke-deployer: queued-intent, target, eventId, traceparent (when the request had one)
//   orderingKey the target: one target's events arrive in the order they were queued
// The proof is a Google-signed ID token of the function's own service account whose audience
// names the payload's SHA-256 (proofAudience). Anyone else who can publish to the topic cannot
// make one, so their message is refused (src/sources/pubsub.ts); a copy of a real message
// published again later is refused too, since its token must have been valid at publishTime.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { DeployIntent } from '../core/intent.ts';

/** The attribute that marks a queued intent, and its value. */
export const QUEUED_ATTRIBUTE = 'gke-deployer';
export const QUEUED_KIND = 'queued-intent';

const text = z.string().min(1).max(2048);
const id = z.string().regex(/^[\w.:-]{1,128}$/);

const payloadSchema = z.strictObject({
  v: z.literal(1),
  /** The request that queued it: the deploy's logs carry it too. */
  requestId: id,
  intent: z.strictObject({
    target: text,
    image: text.optional(),
    source: text,
    eventId: id,
    eventTime: z.iso.datetime({ offset: true }),
    force: z.boolean().optional(),
    /** Break-glass, checked against auth.direct.breakGlass when it was queued. */
    override: z.strictObject({ by: text, reason: text }).optional(),
    commit: z.strictObject({ host: z.enum(['github', 'gitlab']), repository: text, sha: z.string().regex(/^[0-9a-f]{7,64}$/) }).optional(),
    gitRef: z.strictObject({ branch: text.optional(), tag: text.optional() }).optional(),
    report: z.strictObject({ queued: z.literal(true).optional(), githubDeployment: z.number().int().positive().optional() }).optional(),
  }),
});

const dataSchema = z.strictObject({ intent: z.string().min(1).max(16_384), proof: z.string().min(1).max(4096) });

export interface QueuedMessage {
  data: Buffer;
  attributes: Record<string, string>;
  orderingKey: string;
}

/** The audience of the proof for a payload: binds the token to these exact bytes. */
export function proofAudience(payload: string): string {
  return `gke-deployer:queue:sha256:${createHash('sha256').update(payload).digest('hex')}`;
}

export function queuedPayload(intent: DeployIntent): string {
  const { target, image, source, eventId, eventTime, force, override, commit, gitRef, report, requestId } = intent;
  return JSON.stringify({
    v: 1,
    requestId,
    intent: { target, ...(image !== undefined && { image }), source, eventId, eventTime, ...(force && { force }), ...(override && { override }), ...(commit && { commit }), ...(gitRef && { gitRef }), ...(report && { report }) },
  });
}

export function queuedMessage(intent: DeployIntent, payload: string, proof: string, traceparent?: string): QueuedMessage {
  return {
    data: Buffer.from(JSON.stringify({ intent: payload, proof })),
    attributes: { [QUEUED_ATTRIBUTE]: QUEUED_KIND, target: intent.target, eventId: intent.eventId, ...(traceparent && { traceparent }) },
    orderingKey: intent.target,
  };
}

/** The payload text and its proof, before either is trusted. Throws with what is wrong. */
export function splitQueued(json: unknown): { payload: string; proof: string } {
  const parsed = dataSchema.safeParse(json);
  if (!parsed.success) throw new Error(`not a queued intent: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(data)'}: ${i.message}`).join('; ')}`);
  return { payload: parsed.data.intent, proof: parsed.data.proof };
}

export type QueuedIntent = Omit<DeployIntent, 'dryRun'> & { dryRun: false };

/** The intent in a payload whose proof was verified. Throws with what is wrong. */
export function readPayload(payload: string): QueuedIntent {
  let json: unknown;
  try {
    json = JSON.parse(payload);
  } catch {
    throw new Error('the queued intent is not JSON');
  }
  const parsed = payloadSchema.safeParse(json);
  if (!parsed.success) throw new Error(`invalid queued intent: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(intent)'}: ${i.message}`).join('; ')}`);
  return { ...parsed.data.intent, requestId: parsed.data.requestId, dryRun: false };
}
