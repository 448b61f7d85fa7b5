// What a source adapter is: it proves who sent a request and turns the request into
// zero or more deploy intents. It never touches a cluster (the pipeline does).
import type { Request } from '@google-cloud/functions-framework';
import type { DeployIntent } from '../core/intent.ts';
import type { Answerer } from './answers.ts';

/** An intent as a source reads it; the router fills in the request id and, where the source has none, the event's. */
export type Incoming = Omit<DeployIntent, 'requestId' | 'eventId' | 'eventTime'> & Partial<Pick<DeployIntent, 'eventId' | 'eventTime'>>;

export interface Delivery {
  /** The sender's id for this delivery (GitHub delivery GUID, Pub/Sub messageId): becomes the request id. */
  id?: string;
  intents: Incoming[];
  /**
   * When the event happened (Pub/Sub publishTime, a time the Git host signed in the body), for
   * every intent that does not say; default: when it arrived. The router records none later than that.
   */
  eventTime?: string;
  /** Why nothing is deployed: an event type or action that is not acted on, or no rule matched. */
  ignored?: string;
  /** What the event was, for the log line (event type, repository, messageId…). */
  context?: Record<string, string>;
  /**
   * Whether its intents go on the queue (`queue` in the config) rather than deploying in the
   * request: `if-configured` (webhooks, Scheduler), `required` (`/deploy` with `"queue": true`:
   * an error without a queue). Dry runs are never queued: their answer is the diff.
   */
  queue?: 'if-configured' | 'required';
  /**
   * Checks what the body claims that needs a network call to prove (a queued intent's
   * signature); throws if it does not hold. The router awaits it before acting on anything.
   */
  proven?: () => Promise<void>;
  /** The trace context a queued message carried (W3C traceparent): the log lines continue that trace. */
  traceparent?: string;
  /** POST /approve or /reject: a decision on the target's held deploy (src/control/), made by the authenticated caller. */
  decision?: { kind: 'approve' | 'reject'; target: string; eventId: string };
  /** A request that is answered but deploys nothing and is not "ignored" (GitHub's ping): sent as is, with the request id. */
  reply?: { status: number; body: Record<string, unknown> };
}

export interface Source {
  /** How this sender is told what became of its event (statuses, or Pub/Sub's ack rules). */
  answer: Answerer;
  /** Throws UNAUTHENTICATED. Returns the caller, for logs. Runs before anything else reads the body. */
  authenticate(req: Request): Promise<string>;
  /** Validates the request and maps it to intents (`caller`: what authenticate returned). Throws BAD_REQUEST and the like. */
  receive(req: Request, caller?: string): Delivery;
}
