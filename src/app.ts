// Wires configuration, cluster access, the deploy pipeline and the HTTP sources.
import { ConfigError, loadConfigFile, type Config } from './config/load.ts';
import { TargetLeases } from './apply/lock.ts';
import { ClusterRegistry } from './cluster/registry.ts';
import { Releases, registryAccess } from './release/release.ts';
import { deployer } from './deploy/pipeline.ts';
import { gitAncestry } from './policy/ancestry.ts';
import { jsonLogger, registerSecret, type Logger } from './core/log.ts';
import { reportersFor } from './report/reporters.ts';
import { router, type Handler } from './sources/router.ts';
import { adcIdentity } from './queue/identity.ts';
import { intentQueue } from './queue/queue.ts';
import { Controls } from './control/controls.ts';
import { controlClock } from './control/clock.ts';
import { reportIntent } from './report/report.ts';
import { installTracer, type Tracer } from './core/trace.ts';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';

export interface App {
  config: Config;
  handler: Handler;
  close(): Promise<void>;
}

export interface AppOptions {
  /** Tests: spans go to this exporter (tracing on whatever the environment says). */
  spanExporter?: SpanExporter | undefined;
}

export function createApp(config: Config, log: Logger = jsonLogger(), env = process.env, options: AppOptions = {}): App {
  // Webhook secrets are blanked out of every log line, wherever a bug might put them.
  for (const name of [config.auth.github?.secretEnv, config.auth.gitlab?.tokenEnv]) {
    if (name) registerSecret(env[name]?.replace(/[\r\n]+$/, ''));
  }
  const clusters = new ClusterRegistry(config.clusters, {}, { log, env });
  const leases = new TargetLeases();
  // Result topic and deployment statuses, around every deploy (nothing when `report` is absent).
  const reporters = reportersFor(config, log, env);
  // Git events are ordered by their commits' history where a report token can read it.
  const ancestry = gitAncestry(config.report, env, (message) => log('WARNING', message));
  // Images pinned by digest and OCI releases fetched with the same ADC token the clusters get (no stored credential).
  const adc = clusters.adcToken();
  const releases = new Releases(registryAccess(async () => (await adc.authorization()).replace(/^Bearer /, ''), env));
  // Webhooks and Scheduler jobs queued on Pub/Sub, each message signed with the function's own identity.
  const identity = config.queue && adcIdentity();
  const queue = config.queue && identity && intentQueue(config.queue, identity.idToken, env);
  if (!config.queue && env.K_SERVICE && (config.auth.github || config.auth.gitlab || config.auth.scheduler)) {
    log('WARNING', 'webhook and Scheduler routes are served without `queue`: each deploy holds its request open, a Git host gives up after about 10 s and no redelivery follows a failure; configure `queue` (docs/deploying.md)');
  }
  // Windows and approvals (src/control/): what they end without a deploy is logged and reported as that intent's own.
  const controls = new Controls({
    config, clusters, ancestry, now: controlClock(env),
    settle: async (intent, result) => {
      reportIntent(log, { ok: true, result }, { requestId: intent.requestId, source: intent.source, eventId: intent.eventId });
      await reporters.settle(intent, result);
    },
  });
  const tracing = tracingFor(env, log, options.spanExporter);
  const handled = router({
    config,
    controls,
    deploy: reporters.wrap(deployer({ config, clusters, leases, ancestry, releases, controls })),
    ...(queue && identity && { queue: { enqueue: reporters.wrapQueue((intent, traceparent) => queue.enqueue(intent, traceparent)), identity: () => identity.email() } }),
    log,
    deadlineMs: deadlineMs(env),
  });
  // The Leases go back first: handing them back needs the clusters' connections.
  // Tracing is loaded at start-up; a request that comes sooner waits for it.
  const handler: Handler = tracing ? async (req, res) => void (await tracing, await handled(req, res)) : handled;
  const closeTracing = async () => {
    const t = await tracing;
    installTracer(undefined);
    await t?.close();
  };
  return { config, handler, close: async () => void (await Promise.all([leases.close().finally(() => clusters.close()), reporters.close(), queue?.close(), closeTracing()])) };
}

/**
 * OTEL_TRACES_EXPORTER=gcp turns tracing on (spans to Cloud Trace); unset or `none` leaves it off,
 * and OTEL_SDK_DISABLED=true turns it off whatever else is set (the OpenTelemetry variables).
 */
function tracingFor(env: NodeJS.ProcessEnv, log: Logger, exporter: SpanExporter | undefined): Promise<(Tracer & { close(): Promise<void> }) | undefined> | undefined {
  const wanted = env.OTEL_TRACES_EXPORTER?.trim() ?? '';
  if (!exporter && !['', 'none', 'gcp'].includes(wanted)) {
    throw new ConfigError('OTEL_TRACES_EXPORTER', [`OTEL_TRACES_EXPORTER: "${wanted}" is not supported; use gcp (Cloud Trace) or none`]);
  }
  if (!exporter && (wanted !== 'gcp' || env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true')) return undefined;
  return import('./telemetry/otel.ts')
    .then(async ({ otelTracer }) => {
      const tracer = await otelTracer({ service: env.OTEL_SERVICE_NAME ?? env.K_SERVICE ?? 'gke-deployer', version: env.K_REVISION, log, exporter });
      installTracer(tracer, env.GOOGLE_CLOUD_PROJECT);
      return tracer;
    })
    .catch((err: unknown) => {
      // Serve untraced rather than not at all.
      log('WARNING', `tracing is off: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    });
}

/**
 * DEPLOY_DEADLINE_SECONDS: how long after a request arrives its answer must be sent.
 * Keep it below the Cloud Run request timeout (service.yaml), so a rollout wait ends
 * with an answer instead of being cut off by the platform.
 */
export function deadlineMs(env = process.env): number {
  const raw = env.DEPLOY_DEADLINE_SECONDS;
  if (raw === undefined || raw === '') return DEFAULT_DEADLINE_SECONDS * 1000;
  const seconds = Number(raw);
  if (!Number.isInteger(seconds) || seconds < 10 || seconds > 3600) {
    throw new ConfigError('DEPLOY_DEADLINE_SECONDS', [`DEPLOY_DEADLINE_SECONDS: must be a whole number of seconds from 10 to 3600, got "${raw}"`]);
  }
  return seconds * 1000;
}

export const DEFAULT_DEADLINE_SECONDS = 540;

export function configPath(env = process.env): string {
  return env.DEPLOYER_CONFIG ?? './deployer.yaml';
}

export function createAppFromEnv(log: Logger = jsonLogger()): App {
  return createApp(loadConfigFile(configPath()), log);
}
