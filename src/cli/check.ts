// `gke-deployer check`: the start-up validation (src/config/load.ts), offline and without
// secrets, for CI. Every problem start-up would refuse is a problem here, with its path; a
// secret the environment does not hold (CI has none) is a warning.
import path from 'node:path';
import { ConfigError, loadConfigFile, type Config, type Target } from '../config/load.ts';
import type { ClusterSpec, Rule } from '../config/schema.ts';
import { CONFIG_FLAG, EXIT, HELP_FLAG, configFile, plural, table, type Command, type Io } from './command.ts';

export const checkCommand: Command = {
  name: 'check',
  usage: '[flags] [deployer.yaml]',
  summary: 'Validate deployer.yaml offline: every problem, with its path',
  description: [
    'Validates the configuration as the function does at start-up, offline: the schema, the cross-references (clusters, targets, windows), every manifest and preDeploy file (read and parsed), kubeconfig and CA files. It lists every problem with its path and exits 1 on any.',
    'It needs no build, no cluster and no secrets: a secret the config names but this environment does not hold (a secretEnv, tokenEnv or webhookEnv variable, an endpoint tokenFile) is a warning, since CI has none; start-up refuses to run without it. For an OCI target it says which artifact a deploy fetches; nothing is fetched.',
    'On success it prints a summary of the clusters, targets and rules.',
  ],
  flags: {
    ...CONFIG_FLAG,
    production: { type: 'boolean', description: "Also refuse what Cloud Run's start-up refuses (as with K_SERVICE set): auth none, a certsUrl other than Google's, emulator endpoints…" },
    ...HELP_FLAG,
  },
  examples: ['gke-deployer check', 'gke-deployer check deploy/deployer.yaml --production', 'DEPLOYER_CONFIG=prod.yaml gke-deployer check'],
  run({ values, positionals }, io) {
    if (positionals.length > 1 || (positionals.length === 1 && values.config !== undefined)) {
      io.stderr('gke-deployer check: give the configuration once, as an argument or --config\n');
      return EXIT.usage;
    }
    return check(configFile(positionals[0] ?? values.config, io), io, values.production === true);
  },
};

export function check(file: string, io: Io, production: boolean): number {
  const warnings: string[] = [];
  // K_SERVICE is what tells start-up it runs on Cloud Run (src/config/production.ts).
  const env = production ? { ...io.env, K_SERVICE: io.env.K_SERVICE ?? 'gke-deployer' } : io.env;
  let config: Config;
  try {
    config = loadConfigFile(file, env, { missingSecret: (p) => warnings.push(p) });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    printWarnings(warnings, io);
    io.stderr(`${shown(file)}: ${plural(err.problems.length, 'problem')}\n${err.problems.map((p) => `  - ${p}\n`).join('')}`);
    return EXIT.problem;
  }
  printWarnings(warnings, io);
  io.stdout(summary(config, warnings.length));
  return EXIT.ok;
}

function printWarnings(warnings: readonly string[], io: Io): void {
  for (const w of warnings) io.stderr(`warning: ${w} (start-up refuses to run without it)\n`);
}

function summary(config: Config, warnings: number): string {
  const head = `${shown(config.file)}: valid: ${plural(config.targets.size, 'target')}, ${plural(config.clusters.size, 'cluster')}, ${plural(config.rules.length, 'rule')}${warnings > 0 ? ` (${plural(warnings, 'warning')})` : ''}`;
  const section = (title: string, rows: (readonly [string, string])[]) => (rows.length > 0 ? ['', `${title}:`, ...table(rows)] : []);
  return [
    head,
    ...section('Clusters', [...config.clusters].map(([name, spec]) => [name, clusterText(spec)] as const)),
    ...section('Targets', [...config.targets.values()].map((t) => [t.name, targetText(t)] as const)),
    ...section('Rules', config.rules.map((r, i) => [`${i}`, ruleText(r)] as const)),
    '',
  ].join('\n');
}

function clusterText(spec: ClusterSpec): string {
  if ('gke' in spec) return `gke projects/${spec.gke.project}/locations/${spec.gke.location}/clusters/${spec.gke.name} (endpoint ${spec.gke.endpoint ?? 'auto'})`;
  if ('endpoint' in spec) return `endpoint ${spec.endpoint.server}`;
  if ('inCluster' in spec) return 'in-cluster (the Pod service account)';
  return `kubeconfig ${shown(spec.kubeconfig.path)}${spec.kubeconfig.context ? ` (context ${spec.kubeconfig.context})` : ''}`;
}

function targetText(t: Target): string {
  const where = `${t.multiCluster ? `clusters ${t.clusters.join(', ')} (${t.strategy})` : `cluster ${t.cluster}`}, namespace ${t.namespace}`;
  const what = t.oci
    ? `fetches ${t.oci.oci}:${t.oci.tag} per deploy (OCI artifact, pinned by digest; nothing fetched now)`
    : t.deployment
      ? `image only: Deployment ${t.deployment}`
      : `${plural(t.objects.length, 'object')} from ${plural(t.manifests?.length ?? 0, 'file')} (${t.objects.map((o) => `${o.kind ?? '?'}/${o.metadata?.name ?? '?'}`).join(', ')})`;
  const extras = [
    t.preDeployJobs.length > 0 && `${plural(t.preDeployJobs.length, 'preDeploy Job')}`,
    t.prune && 'prune',
    t.windows && `windows ${t.windows.join(', ')}`,
    t.approval && 'approval',
  ].filter((x): x is string => typeof x === 'string');
  return `${where}: ${what}${extras.length > 0 ? `; ${extras.join(', ')}` : ''}`;
}

function ruleText(r: Rule): string {
  const filters = ['branch' in r && r.branch !== undefined ? `branch ${r.branch}` : '', r.tags !== undefined ? `tags ${r.tags}` : ''].filter(Boolean);
  const image = 'image' in r ? ` deploys ${r.image}` : '';
  return `${r.source} ${r.repository}${filters.length > 0 ? ` (${filters.join(', ')})` : ''}${image} → ${r.targets.join(', ')}`;
}

/** Paths as the user would type them: relative to where they are, when inside it. */
function shown(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}
