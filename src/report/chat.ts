// Chat notifications: `report.chat` posts to a Google Chat incoming webhook, `report.slack` to a
// Slack one. One text message per finished deploy a person may need to know of: deployed,
// rolled back, failed, held (and why, so someone can act), refused, or an error. Duplicate,
// stale and dry-run deploys send none: nothing changed. Plain fetch, one POST per message.
//
// Endpoints, both `{"text": "…"}` as JSON:
//   Google Chat (https://developers.google.com/workspace/chat/quickstart/webhooks):
//     POST https://chat.googleapis.com/v1/spaces/SPACE/messages?key=KEY&token=TOKEN → 200 the Message
//     text formatting: *bold*, `monospace`
//   Slack (https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks):
//     POST https://hooks.slack.com/services/T…/B…/… → 200 "ok"
//     mrkdwn: *bold*, `code`; &, < and > are control characters, sent as &amp; &lt; &gt;
// The URL is the credential: reporters.ts registers it (and its query values) for redaction,
// and no error here quotes it.
import type { ChatKind } from '../config/schema.ts';
import type { DeployIntent } from '../core/intent.ts';
import { redactText } from '../core/log.ts';
import type { DeployStatus, TargetResult } from '../core/result.ts';
import { REPORT_LIMITS } from './limits.ts';
import { endedAs, type IntentOutcome } from './outcome.ts';
import { reasonOf, type Reporter } from './reporter.ts';

/**
 * What each outcome's message says after the target and status; undefined: no message. Typed
 * over every status, so a new one does not compile until it is placed here too.
 */
const HEADLINES: Record<DeployStatus | 'error', string | undefined> = {
  ready: 'deployed',
  applied: 'deployed (its rollout not waited for)',
  'rolled-back': 'failed and rolled back',
  failed: 'failed, not rolled back',
  'timed-out': 'the rollout did not finish in time',
  paused: 'written, not rolled out: the Deployment is paused until someone resumes it',
  held: 'held: deploys when its window opens or it is approved',
  superseded: 'not deployed: a newer release for the target replaced it',
  quarantined: 'refused: this release was rolled back on the target',
  expired: 'not deployed: its approval expired',
  rejected: 'not deployed: an approver rejected it',
  error: 'could not deploy',
  // Nothing was written: no one needs telling.
  'dry-run': undefined,
  stale: undefined,
  duplicate: undefined,
};

export interface ChatSettings {
  kind: ChatKind;
  /** The incoming webhook's URL (a secret). */
  url: string;
  logUrl?: ((intent: DeployIntent) => string) | undefined;
  /** The clusters a target deploys to, named in an error's message (its result names them otherwise). */
  clustersOf?: (target: string) => readonly string[];
}

export function chatReporter(settings: ChatSettings): Reporter {
  const service = settings.kind === 'chat' ? 'Google Chat' : 'Slack';
  return {
    name: settings.kind,
    begin(intent) {
      // Dry runs report nowhere.
      if (intent.dryRun) return undefined;
      return {
        async finish(outcome, signal) {
          const text = chatText(settings.kind, intent, outcome, settings);
          if (text === undefined) return;
          const res = await fetch(settings.url, {
            method: 'POST',
            headers: { 'content-type': 'application/json; charset=UTF-8', 'user-agent': 'gke-deployer' },
            body: JSON.stringify({ text }),
            signal,
          });
          // Never the URL in the error, only the answer: redacted before it is cut, so that a cut
          // cannot leave part of the URL (or its token) for the logger not to recognise.
          if (!res.ok) throw new Error(`${service} answered ${res.status}: ${redactText(await res.text()).slice(0, REPORT_LIMITS.errorExcerptLength)}`);
          await res.body?.cancel();
        },
      };
    },
  };
}

/** The message for one outcome, in `kind`'s formatting; undefined when the outcome sends none. */
export function chatText(kind: ChatKind, intent: DeployIntent, outcome: IntentOutcome, settings: Pick<ChatSettings, 'logUrl' | 'clustersOf'> = {}): string | undefined {
  const status = endedAs(outcome);
  const headline = HEADLINES[status];
  if (headline === undefined) return undefined;
  const esc = kind === 'slack' ? (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;') : (s: string) => s;
  const reason = outcome.ok ? reasonOf(outcome.result) : undefined;
  const image = (outcome.ok ? outcome.result.image : undefined) ?? intent.image;
  const logUrl = settings.logUrl?.(intent);
  const lines = [
    `*${esc(intent.target)}: ${status}* (${headline})`,
    ...(!outcome.ok ? [`error: ${outcome.error.code}: ${esc(outcome.error.message)}`] : reason ? [`reason: ${esc(reason)}`] : []),
    `image: ${image ? `\`${esc(image)}\`` : 'the recorded one (a reconcile)'}`,
    esc(outcome.ok ? clustersLine(outcome.result) : namedClusters(settings.clustersOf?.(intent.target) ?? [])),
    `request: ${esc(intent.requestId)}${logUrl ? ` · logs: ${esc(logUrl)}` : ''}`,
  ];
  return clip(lines.join('\n'));
}

/** An error has no result: the clusters the target deploys to. */
function namedClusters(clusters: readonly string[]): string {
  return `${clusters.length === 1 ? 'cluster' : 'clusters'}: ${clusters.join(', ') || 'unknown'}`;
}

/** A single cluster and its namespace, or each cluster of a fan-out with its own status. */
function clustersLine(r: TargetResult): string {
  if (!('clusters' in r)) return `cluster: ${r.cluster} (namespace ${r.namespace})`;
  return `clusters: ${r.clusters.map((c) => `${c.cluster} ${c.status}${c.error ? ` ${c.error.code}` : ''}`).join(', ')} (namespace ${r.namespace})`;
}

function clip(text: string): string {
  const max = REPORT_LIMITS.chatTextLength;
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
