// Where a deploy's result goes besides the answer and the log line: the result topic, GitHub /
// GitLab deployment statuses and chat messages (`report` in the config). One wrapper around the
// Deployer: reporters begin alongside the deploy (a GitHub Deployment and its `in_progress`)
// and finish once it ended, whatever the outcome, before the answer is sent. Every call is
// bounded (REPORT_LIMITS.callTimeoutMs) and every failure is logged and swallowed: reporting
// never fails a deploy and never holds its answer longer than the bound.
import type { Config } from '../config/load.ts';
import type { DeployIntent, Deployer } from '../core/intent.ts';
import type { TargetResult } from '../core/result.ts';
import { asDeployError } from '../errors.ts';
import { inSpan } from '../core/trace.ts';
import { CHAT_KINDS } from '../config/schema.ts';
import { chatReporter } from './chat.ts';
import { githubReporter } from './github-status.ts';
import { gitlabReporter } from './gitlab-status.ts';
import { REPORT_LIMITS } from './limits.ts';
import { registerSecret, type Logger } from '../core/log.ts';
import type { IntentOutcome } from './outcome.ts';
import { aborted, logUrlFor, type Reporter } from './reporter.ts';
import { topicReporter } from './topic.ts';

/** Puts an intent on the queue (src/queue/queue.ts). */
export type Enqueue = (intent: DeployIntent, traceparent?: string) => Promise<void>;

export interface Reporters {
  wrap(deploy: Deployer): Deployer;
  /** Reports the end of an intent decided without its own deploy (a held one superseded, expired or rejected). */
  settle(intent: DeployIntent, result: TargetResult): Promise<void>;
  /** Reports a queued intent as waiting, and carries what its deploy needs into it. */
  wrapQueue(enqueue: Enqueue): Enqueue;
  close(): Promise<void>;
}

/** The reporters `config.report` asks for; tokens are read from the environment here (load.ts checked they are set). */
export function reportersFor(config: Config, log: Logger, env: NodeJS.ProcessEnv = process.env): Reporters {
  const report = config.report;
  const list: Reporter[] = [];
  if (report) {
    const logUrl = report.logUrl !== undefined ? logUrlFor(report.logUrl) : undefined;
    if (report.topic) list.push(topicReporter(report.topic, env));
    if (report.github) list.push(githubReporter({ apiUrl: report.github.apiUrl, token: tokenFrom(env, report.github.tokenEnv), logUrl }));
    if (report.gitlab) list.push(gitlabReporter({ apiUrl: report.gitlab.apiUrl, token: tokenFrom(env, report.gitlab.tokenEnv), logUrl }));
    for (const kind of CHAT_KINDS) {
      const hook = report[kind];
      if (hook) list.push(chatReporter({ kind, url: webhookFrom(env, hook.webhookEnv), logUrl, clustersOf: (target) => config.targets.get(target)?.clusters ?? [] }));
    }
  }
  return {
    wrap: (deploy) => (list.length === 0 ? deploy : withReporters(deploy, list, log)),
    // As if that intent's deploy had ended so: the same reports, on its own Deployment.
    settle: async (intent, result) => void (list.length > 0 && (await withReporters(() => Promise.resolve(result), list, log)(intent))),
    wrapQueue: (enqueue) => (list.length === 0 ? enqueue : queuedWithReporters(enqueue, list, log)),
    close: async () => void (await Promise.allSettled(list.map((r) => r.close?.() ?? Promise.resolve()))),
  };
}

function tokenFrom(env: NodeJS.ProcessEnv, name: string): string {
  const token = env[name]?.trim() ?? '';
  // Blanked out of every log line, wherever an error message might quote it.
  registerSecret(token);
  return token;
}

/**
 * A webhook URL is a credential whole, and so are its query values (Google Chat's `key` and
 * `token`), as sent and decoded: an error quoting the request may show them apart from the URL.
 */
function webhookFrom(env: NodeJS.ProcessEnv, name: string): string {
  const url = env[name]?.trim() ?? '';
  const parsed = URL.parse(url);
  const sent = parsed?.search.slice(1).split('&').map((pair) => pair.slice(pair.indexOf('=') + 1)) ?? [];
  for (const secret of [url, parsed?.href, ...sent, ...(parsed?.searchParams.values() ?? [])]) registerSecret(secret);
  return url;
}

function failedTo(log: Logger) {
  return (r: Reporter, intent: DeployIntent, err: unknown) =>
    log('WARNING', `report to ${r.name} failed for ${intent.target}: ${messageOf(err)}`, { requestId: intent.requestId, target: intent.target, reporter: r.name });
}

/**
 * Before publishing: each reporter says the intent waits, bounded as every call is; what it made
 * (a GitHub Deployment) rides in the message. Not queued after all: those reports say so.
 */
export function queuedWithReporters(enqueue: Enqueue, reporters: readonly Reporter[], log: Logger): Enqueue {
  const failed = failedTo(log);
  return async (intent, traceparent) => {
    const signal = AbortSignal.timeout(REPORT_LIMITS.callTimeoutMs);
    const runs = (
      await Promise.all(
        reporters.map(async (r) => {
          try {
            const q = await r.queued?.(intent, signal);
            return q ? [{ r, q }] : [];
          } catch (err) {
            failed(r, intent, err);
            return [];
          }
        }),
      )
    ).flat();
    const report = Object.assign({ queued: true }, intent.report, ...runs.map(({ q }) => q.report)) as NonNullable<DeployIntent['report']>;
    try {
      await enqueue({ ...intent, report }, traceparent);
    } catch (err) {
      const bound = AbortSignal.timeout(REPORT_LIMITS.callTimeoutMs);
      await Promise.all(runs.map(({ r, q }) => q.finish({ ok: false, target: intent.target, error: asDeployError(err) }, bound).catch((e: unknown) => failed(r, intent, e))));
      throw err;
    }
  };
}

export function withReporters(deploy: Deployer, reporters: readonly Reporter[], log: Logger): Deployer {
  const failed = failedTo(log);

  return async (intent, ctx) => {
    const begun = AbortSignal.timeout(REPORT_LIMITS.callTimeoutMs);
    const runs = reporters.flatMap((r) => {
      try {
        const run = r.begin(intent, begun);
        return run ? [{ r, run }] : [];
      } catch (err) {
        failed(r, intent, err);
        return [];
      }
    });
    const finish = (outcome: IntentOutcome) => inSpan('report', { 'gke_deployer.reporters': runs.map(({ r }) => r.name).join(',') }, () => finishAll(outcome));
    const finishAll = async (outcome: IntentOutcome) => {
      if (runs.length === 0) return;
      const signal = AbortSignal.timeout(REPORT_LIMITS.callTimeoutMs);
      const all = Promise.all(runs.map(({ r, run }) => run.finish(outcome, signal).catch((err: unknown) => failed(r, intent, err))));
      if ((await Promise.race([all.then(() => true), aborted(signal).then(() => false)])) === false) {
        log('WARNING', `reporting the result of ${intent.target} took over ${REPORT_LIMITS.callTimeoutMs} ms: answering without waiting for it`, { requestId: intent.requestId, target: intent.target });
      }
    };
    let result: TargetResult;
    try {
      result = await deploy(intent, ctx);
    } catch (err) {
      // An error is an outcome too: published, and an `error` status.
      await finish({ ok: false, target: intent.target, error: asDeployError(err) });
      throw err;
    }
    await finish({ ok: true, result });
    return result;
  };
}

function messageOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.length > REPORT_LIMITS.errorExcerptLength ? `${text.slice(0, REPORT_LIMITS.errorExcerptLength)}…` : text;
}
