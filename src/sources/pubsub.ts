// POST /pubsub: a Pub/Sub push subscription, directly or through Eventarc.
//   push                     body {message: {data, attributes, messageId, publishTime}, subscription}
//   CloudEvent, binary       ce-* headers, body as for push
//   CloudEvent, structured   Content-Type application/cloudevents+json, body {specversion, type, source, id, data: <push body>}
// Pub/Sub redelivers anything not answered 2xx, so permanent failures are acknowledged
// (200 and an ERROR log naming the message) and only transient ones answer 503.
// The OIDC token proves the push subscription, not the publisher: `auth.pubsub.subscriptions`
// narrows which subscriptions may push, and a deploy intent (which names its own target and
// image, no rule involved) deploys only a target that lists `accept: [intent]`.
import type { Request } from '@google-cloud/functions-framework';
import { z } from 'zod';
import type { CallerAuth, PubsubAuth, Rule } from '../config/schema.ts';
import { DeployError } from '../errors.ts';
import { oidcCaller, type OidcVerifier } from './auth/oidc.ts';
import { invalid, parseJson, rawBody, requireContentType } from './http.ts';
import { LIMITS } from './limits.ts';
import { decodeJson, interpretMessage } from './pubsub-messages.ts';
import { ackAnswer } from './answers.ts';
import { QUEUED_ATTRIBUTE, QUEUED_KIND, proofAudience, readPayload, splitQueued } from '../queue/message.ts';
import type { Delivery, Source } from './source.ts';

/** Eventarc's event type for a message published to a topic. */
export const MESSAGE_PUBLISHED = 'google.cloud.pubsub.topic.v1.messagePublished';

const JSON_TYPE = 'application/json';
const CLOUDEVENTS_TYPE = 'application/cloudevents+json';

const attributes = z
  .record(z.string().min(1).max(LIMITS.pubsubMaxAttributeKeyLength), z.string().max(LIMITS.pubsubMaxAttributeValueLength))
  .refine((a) => Object.keys(a).length <= LIMITS.pubsubMaxAttributes, `at most ${LIMITS.pubsubMaxAttributes} attributes`);

// Loose objects: the service adds fields (message_id and publish_time duplicates, deliveryAttempt…).
const message = z.object({
  /** Base64; decoded, with its own error message, once the message id is known. */
  data: z.string().max(LIMITS.maxBodyBytes).optional(),
  attributes: attributes.optional(),
  messageId: z.string().regex(/^[\w.:-]{1,128}$/, 'must be a Pub/Sub message id'),
  publishTime: z.iso.datetime({ offset: true }).optional(),
});

const envelope = z.object({
  message,
  subscription: z.string().min(1).max(LIMITS.maxFieldLength),
  /** Present when the subscription has a dead-letter policy. */
  deliveryAttempt: z.number().int().positive().optional(),
});
type Envelope = z.infer<typeof envelope>;

const structuredEvent = z.object({
  specversion: z.literal('1.0'),
  type: z.string().min(1).max(LIMITS.maxFieldLength),
  source: z.string().min(1).max(LIMITS.maxFieldLength),
  id: z.string().min(1).max(LIMITS.maxFieldLength),
  data: z.unknown(),
});

const binaryEventHeaders = z.object({
  'ce-specversion': z.literal('1.0'),
  'ce-type': z.string().min(1).max(LIMITS.maxFieldLength),
  'ce-source': z.string().min(1).max(LIMITS.maxFieldLength),
  'ce-id': z.string().min(1).max(LIMITS.maxFieldLength),
});

type Mode = 'push' | 'cloudevent-binary' | 'cloudevent-structured';

/** What the source needs of the config besides auth. */
export interface PubsubRouting {
  rules: readonly Rule[];
  /** The configured targets; only `accept` is read here (an unknown target is the pipeline's to refuse). */
  targets: ReadonlyMap<string, { accept: readonly string[] }>;
  /** The queue's push subscription, and who signs what is queued (the function's own service account). */
  queue?: { subscription: string; identity: () => Promise<string> };
}

export function pubsubSource(auth: PubsubAuth, { rules, targets, queue }: PubsubRouting, verifier: OidcVerifier): Source {
  const caller: CallerAuth = auth === 'none' || 'token' in auth ? 'none' : { audience: auth.audience, serviceAccounts: auth.serviceAccounts };
  const subscriptions = auth !== 'none' && auth.subscriptions ? new Set(auth.subscriptions) : undefined;
  return {
    answer: ackAnswer,
    authenticate: oidcCaller(caller, verifier),
    receive(req) {
      // Pub/Sub and Eventarc always send JSON: any other type is a misrouted or misconfigured
      // sender, and is acknowledged with UNSUPPORTED_MEDIA_TYPE like any malformed message.
      requireContentType(req, JSON_TYPE, CLOUDEVENTS_TYPE);
      const { mode, push } = unwrap(req, parseJson(rawBody(req)));
      const { messageId, publishTime } = push.message;
      // The router logs only the message of a refused request: it must name the message.
      const named = (err: unknown): unknown => (err instanceof DeployError ? new DeployError(err.code, `Pub/Sub message ${messageId} from ${push.subscription.slice(0, 300)}: ${err.message}`, { cause: err }) : err);
      const context: Record<string, string> = {
        messageId,
        subscription: push.subscription,
        delivery: mode,
        ...(publishTime !== undefined && { publishTime }),
        ...(push.deliveryAttempt !== undefined && { deliveryAttempt: String(push.deliveryAttempt) }),
      };
      try {
        const attrs = push.message.attributes ?? {};
        const fromQueue = queue !== undefined && push.subscription === queue.subscription;
        if (fromQueue || attrs[QUEUED_ATTRIBUTE] === QUEUED_KIND) {
          const queued = queuedDelivery(push, fromQueue ? queue : undefined, verifier);
          return { ...queued, context: { ...context, kind: QUEUED_KIND }, proven: () => queued.proven!().catch((err: unknown) => {
            throw named(err);
          }) };
        }
        if (subscriptions && !subscriptions.has(push.subscription)) {
          throw new DeployError('BAD_REQUEST', 'the subscription is not one of auth.pubsub.subscriptions');
        }
        const data = push.message.data === undefined ? undefined : decodeBase64(push.message.data);
        const what = interpretMessage(data, attrs, rules);
        if (what.kind === 'intent') for (const intent of what.intents) checkAcceptsIntents(targets, intent.target);
        // A time in the data (Cloud Build's finishTime) is the publisher's word; Pub/Sub's
        // publishTime bounds it: nothing finished after it was announced.
        const intents = publishTime === undefined ? what.intents : what.intents.map((i) => (i.eventTime !== undefined && Date.parse(i.eventTime) > Date.parse(publishTime) ? { ...i, eventTime: publishTime } : i));
        return { id: messageId, ...(publishTime !== undefined && { eventTime: publishTime }), intents, ...(what.ignored !== undefined && { ignored: what.ignored }), context: { ...context, ...what.context } } satisfies Delivery;
      } catch (err) {
        throw named(err);
      }
    },
  };
}

/**
 * A queued intent (src/queue/message.ts): only from the queue's own subscription, and only with
 * a proof that the function itself queued these exact bytes, valid when Pub/Sub says the message
 * was published. Anything else on that subscription is refused: it is not a way in.
 */
function queuedDelivery(push: Envelope, queue: PubsubRouting['queue'], verifier: OidcVerifier): Delivery {
  const { attributes = {}, publishTime, data } = push.message;
  if (!queue) throw new DeployError('BAD_REQUEST', 'a queued intent is accepted only from the subscription named in queue.subscription');
  if (attributes[QUEUED_ATTRIBUTE] !== QUEUED_KIND) {
    throw new DeployError('BAD_REQUEST', `only queued intents (attribute ${QUEUED_ATTRIBUTE}: ${QUEUED_KIND}) are accepted from the queue's subscription`);
  }
  if (publishTime === undefined) throw new DeployError('BAD_REQUEST', 'a queued intent needs the publishTime Pub/Sub gives every message');
  let parts: { payload: string; proof: string };
  let intent: ReturnType<typeof readPayload>;
  try {
    parts = splitQueued(decodeJson(data === undefined ? undefined : decodeBase64(data)));
    intent = readPayload(parts.payload);
  } catch (err) {
    throw err instanceof DeployError ? err : new DeployError('BAD_REQUEST', (err as Error).message);
  }
  return {
    id: intent.requestId,
    intents: [intent],
    ...(attributes.traceparent !== undefined && { traceparent: attributes.traceparent }),
    async proven() {
      let email: string;
      try {
        email = await queue.identity();
      } catch (err) {
        throw new DeployError('QUEUE_UNAVAILABLE', `cannot check who queued it: ${(err as Error).message.slice(0, 200)}`, { cause: err });
      }
      try {
        await verifier.verifyAt(parts.proof, { audience: proofAudience(parts.payload), email }, new Date(publishTime));
      } catch (err) {
        // Acknowledged, not redelivered: no redelivery makes a forged or altered message true.
        if (err instanceof DeployError && err.code === 'UNAUTHENTICATED') throw new DeployError('BAD_REQUEST', `queued intent not proven to come from this deployer: ${err.message}`);
        throw err;
      }
    },
  };
}

/** A deploy intent names its target itself: only a target that opted in may be deployed that way. */
function checkAcceptsIntents(targets: PubsubRouting['targets'], name: string): void {
  const target = targets.get(name);
  if (target && !target.accept.includes('intent')) {
    throw new DeployError('BAD_REQUEST', `target "${name}" does not accept deploy intents over Pub/Sub (give it accept: [intent])`);
  }
}

/** The push body, wherever the delivery put it. */
function unwrap(req: Request, body: unknown): { mode: Mode; push: Envelope } {
  const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (contentType === CLOUDEVENTS_TYPE) {
    const event = structuredEvent.safeParse(body);
    if (!event.success) throw invalid('CloudEvent', event.error);
    checkEventType(event.data.type);
    return { mode: 'cloudevent-structured', push: parseEnvelope(event.data.data, 'CloudEvent data') };
  }
  if (req.headers['ce-specversion'] !== undefined || req.headers['ce-type'] !== undefined) {
    const headers = binaryEventHeaders.safeParse(req.headers);
    if (!headers.success) throw invalid('CloudEvent headers', headers.error);
    checkEventType(headers.data['ce-type']);
    return { mode: 'cloudevent-binary', push: parseEnvelope(body, 'CloudEvent data') };
  }
  return { mode: 'push', push: parseEnvelope(body, 'Pub/Sub push body') };
}

function checkEventType(type: string): void {
  if (type !== MESSAGE_PUBLISHED) {
    throw new DeployError('BAD_REQUEST', `CloudEvent type "${type.slice(0, 200)}" is not handled here (only ${MESSAGE_PUBLISHED})`);
  }
}

function parseEnvelope(body: unknown, what: string): Envelope {
  const parsed = envelope.safeParse(body);
  if (parsed.success) return parsed.data;
  const error = invalid(what, parsed.error);
  // An unwrapped push (--push-no-wrapper) sends the bare data: say so rather than only "message: required".
  const bare = typeof body === 'object' && body !== null && !('message' in body) && ('action' in body || 'target' in body || 'id' in body);
  if (bare) throw new DeployError('BAD_REQUEST', `${error.message} (the body looks like bare message data: payload unwrapping is not supported, send the push envelope)`);
  throw error;
}

/** RFC 4648 base64, standard or URL-safe alphabet, padded or not; anything else is refused. */
export function decodeBase64(text: string): Buffer {
  const body = text.replace(/={1,2}$/, '');
  const alphabet = /^[A-Za-z0-9+/]*$/.test(body) || /^[A-Za-z0-9_-]*$/.test(body);
  const padded = body.length === text.length || text.length % 4 === 0;
  if (!alphabet || !padded || body.length % 4 === 1) {
    throw new DeployError('BAD_REQUEST', 'message data is not valid base64');
  }
  return Buffer.from(body, 'base64');
}
