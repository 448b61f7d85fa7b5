// The queue (`queue` in the config): an intent is published to the queue topic and deployed
// when its push subscription delivers it to /pubsub, by whichever instance Cloud Run gives.
// Each message is published alone and confirmed before the request is answered; a failure
// throws QUEUE_UNAVAILABLE, so the sender knows to try again.
import type { QueueConfig } from '../config/schema.ts';
import type { DeployIntent } from '../core/intent.ts';
import { DeployError } from '../errors.ts';
import { lazyTopic } from '../pubsub-topic.ts';
import { proofAudience, queuedMessage, queuedPayload } from './message.ts';

/** A Google-signed ID token of the function's own identity for `audience` (src/queue/identity.ts). */
export type IdTokenSource = (audience: string) => Promise<string>;

export interface IntentQueue {
  /** Resolves once Pub/Sub accepted the message. `traceparent`: the request's trace context, carried on. */
  enqueue(intent: DeployIntent, traceparent?: string): Promise<void>;
  close(): Promise<void>;
}

/** Each publish, the library's retries included: well inside the ~10 s a Git host waits for its answer. */
const PUBLISH_TIMEOUT_MS = 5_000;

export function intentQueue(queue: QueueConfig, idToken: IdTokenSource, env: NodeJS.ProcessEnv = process.env): IntentQueue {
  const topic = lazyTopic(queue.topic, { timeoutMs: PUBLISH_TIMEOUT_MS, ordered: true }, env);
  return {
    async enqueue(intent, traceparent) {
      const payload = queuedPayload(intent);
      let proof: string;
      try {
        proof = await idToken(proofAudience(payload));
      } catch (err) {
        throw new DeployError('QUEUE_UNAVAILABLE', `cannot queue the deploy of ${intent.target}: no ID token to sign it with (${messageOf(err)})`, { cause: err });
      }
      const message = queuedMessage(intent, payload, proof, traceparent);
      try {
        const t = await topic.open();
        try {
          await t.publishMessage(message);
        } catch (err) {
          // After a failed publish the library holds the ordering key until told to resume.
          t.resumePublishing(message.orderingKey);
          throw err;
        }
      } catch (err) {
        throw new DeployError('QUEUE_UNAVAILABLE', `cannot queue the deploy of ${intent.target} on ${queue.topic}: ${messageOf(err)}`, { cause: err });
      }
    },
    close: () => topic.close(),
  };
}

function messageOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).slice(0, 300);
}
