// A Pub/Sub topic to publish to, opened on first use: the result topic (src/report/topic.ts)
// and the queue (src/queue/queue.ts). @google-cloud/pubsub is imported only then; it is
// CommonJS, so the production bundle gives its lazily loaded chunk the named exports Node's
// loader gives (scripts/bundle-plugins.ts, lazyCommonJs; test/bundle.test.ts publishes through the bundle).
import type { PubSub, Topic } from '@google-cloud/pubsub';

export interface LazyTopic {
  /** The topic, imported and connected on the first call; a failure is tried again by the next. */
  open(): Promise<Topic>;
  close(): Promise<void>;
}

/**
 * `timeoutMs` bounds each publish call (the library's own retries end with it). Messages are
 * sent one at a time, at once. `ordered`: messages with an ordering key keep their order.
 */
export function lazyTopic(topicName: string, opts: { timeoutMs: number; ordered?: boolean }, env: NodeJS.ProcessEnv = process.env): LazyTopic {
  let client: PubSub | undefined;
  let opening: Promise<Topic> | undefined;
  return {
    open() {
      opening ??= (async () => {
        const { PubSub } = await import('@google-cloud/pubsub');
        const projectId = topicName.split('/')[1];
        // The emulator from the function's environment (the library would read process.env itself).
        const emulator = env.PUBSUB_EMULATOR_HOST;
        client = new PubSub({ ...(projectId && { projectId }), ...(emulator && { apiEndpoint: emulator }) });
        return client.topic(topicName, {
          batching: { maxMessages: 1, maxMilliseconds: 0 },
          gaxOpts: { timeout: opts.timeoutMs },
          ...(opts.ordered && { messageOrdering: true }),
        });
      })();
      opening.catch(() => (opening = undefined));
      return opening;
    },
    async close() {
      await client?.close();
    },
  };
}
