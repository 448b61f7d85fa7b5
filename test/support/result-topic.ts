// A result topic on the sandbox's Pub/Sub emulator, with a subscription that sees what a
// function publishes there (report.topic): for the tests of src/ and of the bundle alike.
import { randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import type { TestContext } from 'node:test';
import { PubSub, type Message } from '@google-cloud/pubsub';
import type { SandboxInfo } from '../../sandbox/index.ts';
import { useSandboxEnv } from './sandbox.ts';

export interface ResultTopic {
  info: SandboxInfo;
  /** The topic's full name, for `report.topic`. */
  topic: string;
  /** Every message so far, acknowledged, in arrival order. */
  received: Message[];
  /** Emits 'message' on each arrival. */
  arrivals: EventEmitter;
  /** Waits until `n` messages have arrived; fails after `timeoutMs` (default 30 s) saying what did. */
  count: (n: number, timeoutMs?: number) => Promise<Message[]>;
}

export async function resultTopic(t: TestContext, prefix: string): Promise<ResultTopic> {
  const info = await useSandboxEnv();
  if (!info.env.PUBSUB_EMULATOR_HOST) throw new Error('the sandbox runs no Pub/Sub emulator');
  const client = new PubSub({ projectId: info.project, apiEndpoint: info.env.PUBSUB_EMULATOR_HOST });
  const id = () => randomBytes(4).toString('hex');
  const [topic] = await client.createTopic(`${prefix}-${id()}`);
  const [sub] = await topic.createSubscription(`${prefix}-${id()}`);
  const received: Message[] = [];
  const arrivals = new EventEmitter();
  sub.on('message', (m: Message) => {
    m.ack();
    received.push(m);
    arrivals.emit('message');
  });
  t.after(async () => {
    await sub.close();
    await client.close();
  });
  const count = async (n: number, timeoutMs = 30_000) => {
    const deadline = AbortSignal.timeout(timeoutMs);
    while (received.length < n) {
      await once(arrivals, 'message', { signal: deadline }).catch((err: unknown) => {
        throw deadline.aborted ? new Error(`timed out after ${timeoutMs} ms waiting for ${n} messages on ${topic.name}; got ${received.length}: ${JSON.stringify(received.map((m) => m.attributes))}`) : err;
      });
    }
    return received;
  };
  return { info, topic: topic.name, received, arrivals, count };
}
