// Reads deployer.yaml once at start-up. Every problem is collected, with its path,
// so one failed start lists all of them instead of one per attempt.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { KubernetesObject } from '@kubernetes/client-node';
import { CHAT_KINDS, configSchema, httpsOrLoopback, type AuthConfig, type ClusterSpec, type OciManifests, type QueueConfig, type ReportConfig, type Rule, type TargetSpec, type WindowSpec } from './schema.ts';
import { parseManifests } from '../apply/manifests.ts';
import { isRecord } from '../guards.ts';
import { kubeconfigProblems } from '../cluster/kubeconfig.ts';
import { productionProblems } from './production.ts';
import { pinnable } from '../release/registry.ts';

export interface Target extends Omit<TargetSpec, 'cluster' | 'clusters' | 'manifests' | 'prune'> {
  name: string;
  /** The cluster a single-cluster target deploys to; for a list, its first. */
  cluster: string;
  /** Every cluster deployed to, in the configured order (`[cluster]` for a single one). */
  clusters: string[];
  /** Configured with `clusters:` (any length): answers with one result per cluster. */
  multiCluster: boolean;
  /** Manifest files (resolved paths); absent for OCI manifests and image-only targets. */
  manifests?: string[];
  /** Manifests released as an OCI artifact (src/release/): fetched per deploy, so `objects` is empty. */
  oci?: OciManifests;
  /** Delete what left the manifests once a release is Ready (src/apply/applyset.ts). */
  prune: boolean;
  /** Parsed manifests; empty for an image-only (`deployment:`) target and an OCI one. */
  objects: KubernetesObject[];
  /** Parsed `preDeploy` Jobs. */
  preDeployJobs: KubernetesObject[];
}

export interface Config {
  file: string;
  auth: AuthConfig;
  clusters: Map<string, ClusterSpec>;
  targets: Map<string, Target>;
  rules: Rule[];
  /** Named deploy windows (src/control/windows.ts). */
  windows: Record<string, WindowSpec>;
  /** Result topic and deployment statuses; absent: results are only answered and logged. */
  report?: ReportConfig;
  /** Where webhooks, Scheduler jobs and queued /deploy calls put their intents; absent: they deploy in the request. */
  queue?: QueueConfig;
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(file: string, problems: string[]) {
    super(`invalid configuration ${file}:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface LoadOptions {
  /**
   * Given: a secret the config names but this environment does not hold (an unset
   * secretEnv, tokenEnv or webhookEnv variable, an endpoint's tokenFile) goes here instead of
   * failing the load. Only `gke-deployer check` passes it: CI has no secrets, and start-up
   * must still refuse to run without them.
   */
  missingSecret?: (problem: string) => void;
}

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env, opts: LoadOptions = {}): Config {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    throw new ConfigError(abs, [`cannot read the file: ${(err as Error).message}`]);
  }
  return parseConfig(text, abs, env, opts);
}

/**
 * `file` names where `text` came from; relative paths in it resolve against its folder.
 * `env` is where webhook secrets are looked up and tells a Cloud Run start (K_SERVICE).
 */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env, opts: LoadOptions = {}): Config {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) throw new ConfigError(file, doc.errors.map((e) => `YAML: ${e.message}`));
  const raw: unknown = doc.toJS();
  const parsed = configSchema.safeParse(raw);
  const problems = parsed.success
    ? []
    : parsed.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(top level)'}: ${i.message}`);
  const missingSecret = opts.missingSecret ?? ((problem: string) => void problems.push(problem));

  // Cross-references and files are checked even when the schema failed elsewhere,
  // so one start lists every problem.
  const dir = path.dirname(file);
  const resolve = (p: string) => path.resolve(dir, p.startsWith('~/') ? path.join(homedir(), p.slice(2)) : p);
  const rawClusters = isRecord(raw) && isRecord(raw.clusters) ? raw.clusters : {};
  const rawTargets = isRecord(raw) && isRecord(raw.targets) ? raw.targets : {};

  const clusters = new Map<string, ClusterSpec>();
  for (const [name, spec] of Object.entries(rawClusters)) {
    const at = `clusters.${name}`;
    if (!isRecord(spec)) continue;
    if (isRecord(spec.endpoint)) {
      for (const key of ['caFile', 'tokenFile'] as const) {
        const f = spec.endpoint[key];
        // The token is a credential (a mounted secret); the CA is not.
        const report = key === 'tokenFile' ? missingSecret : (p: string) => void problems.push(p);
        if (typeof f === 'string' && !existsSync(resolve(f))) report(`${at}.endpoint.${key}: file not found: ${resolve(f)}`);
      }
    }
    if (isRecord(spec.kubeconfig) && typeof spec.kubeconfig.path === 'string') {
      const context = typeof spec.kubeconfig.context === 'string' ? spec.kubeconfig.context : undefined;
      problems.push(...kubeconfigProblems(resolve(spec.kubeconfig.path), context).map((p) => `${at}.kubeconfig: ${p}`));
    }
  }

  const objects = new Map<string, KubernetesObject[]>();
  const preDeploy = new Map<string, KubernetesObject[]>();
  for (const [name, spec] of Object.entries(rawTargets)) {
    const at = `targets.${name}`;
    if (!isRecord(spec)) continue;
    if (typeof spec.cluster === 'string' && !(spec.cluster in rawClusters)) {
      problems.push(`${at}.cluster: unknown cluster "${spec.cluster}"`);
    }
    (Array.isArray(spec.clusters) ? spec.clusters : []).forEach((c: unknown, i) => {
      if (typeof c === 'string' && !(c in rawClusters)) problems.push(`${at}.clusters.${i}: unknown cluster "${c}"`);
    });
    const files = (key: 'manifests' | 'preDeploy'): KubernetesObject[] =>
      (Array.isArray(spec[key]) ? spec[key] : []).flatMap((m: unknown, i) => {
        if (typeof m !== 'string') return [];
        try {
          return parseManifests(readFileSync(resolve(m), 'utf8'));
        } catch (err) {
          problems.push(`${at}.${key}.${i}: ${resolve(m)}: ${(err as Error).message}`);
          return [];
        }
      });
    objects.set(name, files('manifests'));
    const oci = isRecord(spec.manifests) ? spec.manifests.oci : undefined;
    const reach = typeof oci === 'string' ? pinnable(oci, env) : undefined;
    if (reach?.ok === false) problems.push(`${at}.manifests.oci: ${reach.reason}`);
    // A notification for the manifests artifact would otherwise match the image rules and be deployed as an image.
    if (typeof oci === 'string' && Array.isArray(spec.images) && spec.images.includes(oci)) problems.push(`${at}.manifests.oci: ${oci} is also in images; keep the manifests in a repository of their own`);
    const rawWindows = isRecord(raw) && isRecord(raw.windows) ? raw.windows : {};
    (Array.isArray(spec.windows) ? spec.windows : []).forEach((w: unknown, i) => {
      if (typeof w === 'string' && !(w in rawWindows)) problems.push(`${at}.windows.${i}: unknown window "${w}" (define it under windows:)`);
    });
    const auth = isRecord(raw) && isRecord(raw.auth) ? raw.auth : {};
    if (spec.approval !== undefined && auth.approve === undefined) problems.push(`${at}.approval: needs auth.approve {audience} (who verifies the approvers' ID tokens)`);
    if (spec.prune === true && spec.deployment !== undefined) problems.push(`${at}.prune: an image-only target (deployment) applies no manifests, so there is nothing to prune`);
    const jobs = files('preDeploy');
    for (const job of jobs) {
      if (job.apiVersion !== 'batch/v1' || job.kind !== 'Job') problems.push(`${at}.preDeploy: ${job.kind ?? '?'} ${job.metadata?.name ?? '?'} is not a batch/v1 Job`);
    }
    preDeploy.set(name, jobs);
  }

  const rawRules = isRecord(raw) && Array.isArray(raw.rules) ? raw.rules : [];
  rawRules.forEach((rule: unknown, i) => {
    const targets = isRecord(rule) && Array.isArray(rule.targets) ? rule.targets : [];
    for (const t of targets) {
      if (typeof t === 'string' && !(t in rawTargets)) problems.push(`rules.${i}.targets: unknown target "${t}"`);
    }
  });
  const rawAuth = isRecord(raw) && isRecord(raw.auth) ? raw.auth : {};
  for (const [name, spec] of Object.entries(rawTargets)) {
    // Without auth.pubsub there is no /pubsub route: the opt-in would silently do nothing.
    const accept = isRecord(spec) && Array.isArray(spec.accept) ? spec.accept : [];
    if (accept.includes('intent') && rawAuth.pubsub === undefined) problems.push(`targets.${name}.accept: intent needs auth.pubsub (without it /pubsub is not served)`);
  }
  for (const [source, key] of [['github', 'secretEnv'], ['gitlab', 'tokenEnv']] as const) {
    const settings = rawAuth[source];
    const name = isRecord(settings) ? settings[key] : undefined;
    if (typeof name === 'string' && !env[name]?.trim()) missingSecret(`auth.${source}.${key}: environment variable ${name} is not set`);
  }
  const rawReport = isRecord(raw) && isRecord(raw.report) ? raw.report : {};
  for (const host of ['github', 'gitlab'] as const) {
    const settings = rawReport[host];
    const name = isRecord(settings) ? settings.tokenEnv : undefined;
    if (typeof name === 'string' && !env[name]?.trim()) missingSecret(`report.${host}.tokenEnv: environment variable ${name} is not set`);
  }
  for (const kind of CHAT_KINDS) {
    const settings = rawReport[kind];
    const name = isRecord(settings) ? settings.webhookEnv : undefined;
    if (typeof name !== 'string') continue;
    const url = env[name]?.trim();
    // The URL is the secret: a problem names its variable, never quotes it.
    const checked = url ? httpsOrLoopback.safeParse(url) : undefined;
    if (!checked) missingSecret(`report.${kind}.webhookEnv: environment variable ${name} is not set`);
    else if (!checked.success) problems.push(`report.${kind}.webhookEnv: the URL in ${name} ${checked.error.issues[0]?.message ?? 'is refused'}`);
  }
  for (const source of ['github', 'gitlab', 'artifact-registry', 'cloud-build'] as const) {
    const needs = source === 'github' || source === 'gitlab' ? source : 'pubsub';
    if (rawRules.some((r: unknown) => isRecord(r) && r.source === source) && rawAuth[needs] === undefined) {
      problems.push(
        needs === 'pubsub'
          ? `auth.pubsub: required by the ${source} rules (an OIDC audience and service accounts, or {token: none} for an emulator)`
          : `auth.${needs}: required by the ${source} rules (${needs === 'github' ? 'secretEnv' : 'tokenEnv'})`,
      );
    }
  }

  // The queue's subscription pushes to /pubsub: without that route nothing queued would deploy.
  if (isRecord(raw) && raw.queue !== undefined && rawAuth.pubsub === undefined) {
    problems.push('queue: needs auth.pubsub (its subscription pushes to /pubsub; an OIDC audience and service accounts, or {token: none} for an emulator)');
  }

  problems.push(...productionProblems(raw, env));

  if (!parsed.success || problems.length > 0) throw new ConfigError(file, problems);

  for (const [name, spec] of Object.entries(parsed.data.clusters)) {
    if ('endpoint' in spec) {
      clusters.set(name, { endpoint: { ...spec.endpoint, caFile: resolve(spec.endpoint.caFile), tokenFile: resolve(spec.endpoint.tokenFile) } });
    } else if ('kubeconfig' in spec) {
      clusters.set(name, { kubeconfig: { ...spec.kubeconfig, path: resolve(spec.kubeconfig.path) } });
    } else {
      clusters.set(name, spec);
    }
  }
  const targets = new Map<string, Target>();
  for (const [name, { cluster, clusters: list, manifests, prune, ...spec }] of Object.entries(parsed.data.targets)) {
    // The schema guarantees exactly one of the two.
    const all = list ?? [cluster ?? ''];
    const oci = manifests !== undefined && !Array.isArray(manifests) ? manifests : undefined;
    targets.set(name, {
      ...spec,
      cluster: all[0] ?? '',
      clusters: all,
      multiCluster: list !== undefined,
      ...(Array.isArray(manifests) && { manifests: manifests.map(resolve) }),
      ...(oci && { oci }),
      prune: prune ?? oci !== undefined,
      ...(spec.preDeploy && { preDeploy: spec.preDeploy.map(resolve) }),
      name,
      objects: objects.get(name) ?? [],
      preDeployJobs: preDeploy.get(name) ?? [],
    });
  }
  return { file, auth: parsed.data.auth, clusters, targets, rules: parsed.data.rules, windows: parsed.data.windows, ...(parsed.data.report && { report: parsed.data.report }), ...(parsed.data.queue && { queue: parsed.data.queue }) };
}
