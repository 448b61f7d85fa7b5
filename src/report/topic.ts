// The result topic (`report.topic`): every finished deploy, whatever its outcome (stale,
// duplicate and errors included), is published as one JSON message: the body /deploy answers,
// with attributes `target`, `status`, `source`, `eventId`, `requestId` (and `code` for an
// error) for subscription filters. @google-cloud/pubsub is imported only when a topic is
// configured, alongside the first deploy; it honours PUBSUB_EMULATOR_HOST. It is CommonJS:
// the production bundle gives its lazily loaded chunk the named exports Node's loader gives
// (scripts/build.ts, lazyCommonJs; test/bundle.test.ts publishes through the bundle).
import type { PubSub, Topic } from '@google-cloud/pubsub';
import type { DeployIntent } from '../core/intent.ts';
import { REPORT_LIMITS } from './limits.ts';
import type { IntentOutcome } from './outcome.ts';
import { resultBody, within, type Reporter } from './reporter.ts';

export function topicReporter(topicName: string, env: NodeJS.ProcessEnv = process.env): Reporter {
  let client: PubSub | undefined;
  let opening: Promise<Topic> | undefined;
  const open = (): Promise<Topic> => {
    opening ??= (async () => {
      const { PubSub } = await import('@google-cloud/pubsub');
      const projectId = topicName.split('/')[1];
      // The emulator from the function's environment (the library would read process.env itself).
      const emulator = env.PUBSUB_EMULATOR_HOST;
      client = new PubSub({ ...(projectId && { projectId }), ...(emulator && { apiEndpoint: emulator }) });
      // One message per deploy, sent at once; the library's own retries end with our bound.
      return client.topic(topicName, { batching: { maxMessages: 1, maxMilliseconds: 0 }, gaxOpts: { timeout: REPORT_LIMITS.callTimeoutMs } });
    })();
    // A failed import is tried again by the next deploy.
    opening.catch(() => (opening = undefined));
    return opening;
  };
  return {
    name: 'topic',
    begin(intent) {
      const topic = open(); // imported and connected while the deploy runs
      topic.catch(() => undefined); // reported by finish
      return {
        async finish(outcome, signal) {
          const t = await within(topic, signal);
          await within(t.publishMessage(messageFor(intent, outcome)), signal);
        },
      };
    },
    async close() {
      await client?.close();
    },
  };
}

export function messageFor(intent: DeployIntent, outcome: IntentOutcome): { data: Buffer; attributes: Record<string, string> } {
  const body = resultBody(outcome, intent.requestId);
  const attributes: Record<string, string> = {
    target: intent.target,
    status: typeof body.status === 'string' ? body.status : 'error',
    source: intent.source,
    eventId: intent.eventId,
    requestId: intent.requestId,
    ...(!outcome.ok && { code: outcome.error.code }),
  };
  for (const [k, v] of Object.entries(attributes)) attributes[k] = truncateBytes(v, REPORT_LIMITS.attributeValueBytes);
  return { data: Buffer.from(JSON.stringify(body)), attributes };
}

function truncateBytes(text: string, max: number): string {
  const bytes = Buffer.from(text);
  return bytes.length <= max ? text : bytes.subarray(0, max).toString('utf8').replace(/\uFFFD$/, '');
}
