// The result topic (`report.topic`): every finished deploy, whatever its outcome (stale,
// duplicate and errors included), is published as one JSON message: the body /deploy answers,
// with attributes `target`, `status`, `source`, `eventId`, `requestId` (and `code` for an
// error) for subscription filters. The client is loaded only when a topic is configured,
// alongside the first deploy (src/pubsub-topic.ts); it honours PUBSUB_EMULATOR_HOST.
import type { DeployIntent } from '../core/intent.ts';
import { lazyTopic } from '../pubsub-topic.ts';
import { REPORT_LIMITS } from './limits.ts';
import type { IntentOutcome } from './outcome.ts';
import { resultBody, within, type Reporter } from './reporter.ts';

export function topicReporter(topicName: string, env: NodeJS.ProcessEnv = process.env): Reporter {
  const topic = lazyTopic(topicName, { timeoutMs: REPORT_LIMITS.callTimeoutMs }, env);
  return {
    name: 'topic',
    begin(intent) {
      const opened = topic.open(); // imported and connected while the deploy runs
      opened.catch(() => undefined); // reported by finish
      return {
        async finish(outcome, signal) {
          const t = await within(opened, signal);
          await within(t.publishMessage(messageFor(intent, outcome)), signal);
        },
      };
    },
    close: () => topic.close(),
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
