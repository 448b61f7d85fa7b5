// `gke-deployer plan`: one deploy intent with dryRun, through the function's own deploy stage
// (src/deploy/pipeline.ts) and cluster access (ClusterRegistry: ADC, kubeconfig…), wired as
// src/app.ts wires it: the image pinned as a deploy would pin it, the manifests rendered and
// sent to the API server with dryRun=All, and each object's diff against what is live.
// Nothing is written: a dry run takes no Lease and applies with dryRun=All.
import { ClusterRegistry } from '../cluster/registry.ts';
import { Releases, registryAccess } from '../release/release.ts';
import { deployer } from '../deploy/pipeline.ts';
import { asDeployError } from '../errors.ts';
import { newRequestId, errorBody } from '../sources/http.ts';
import type { DeployIntent } from '../core/intent.ts';
import type { ClusterResult, DeployResult, ObjectResult, TargetResult } from '../core/result.ts';
import { CONFIG_FLAG, EXIT, HELP_FLAG, configFile, configWithoutSecrets, plural, type Command, type Io } from './command.ts';
import { stderrLogger } from './log.ts';

export const planCommand: Command = {
  name: 'plan',
  usage: 'TARGET IMAGE [flags]',
  summary: 'Dry-run a deploy against the cluster and show the field diff',
  description: [
    "Runs what POST /deploy with dryRun: true runs, from this machine: the target's image is checked against its images and pinned as a deploy would pin it, its manifests (or OCI release) rendered and server-side applied with dryRun=All, and each object compared with what is live. Nothing is written: no Lease, no object.",
    "It reaches the cluster as the function does (clusters: in the configuration; Application Default Credentials for gke clusters, so `gcloud auth application-default login`, or a kubeconfig), so it needs the same cluster permissions as a dry-run deploy: get, create and patch on the target's kinds.",
    'Prints each object with what would happen and its unified diff; --json prints the body /deploy would answer. Exits 1 when the dry run fails (refused image, unknown target, forbidden, unreachable cluster).',
  ],
  flags: {
    ...CONFIG_FLAG,
    json: { type: 'boolean', description: 'Print the JSON body POST /deploy with dryRun would answer.' },
    ...HELP_FLAG,
  },
  examples: ['gke-deployer plan web europe-docker.pkg.dev/my-proj/apps/web:1.4.3', 'gke-deployer plan web europe-docker.pkg.dev/my-proj/apps/web:1.4.3 --json | jq .objects[].diff'],
  async run({ values, positionals }, io) {
    if (positionals.length !== 2) {
      io.stderr(`gke-deployer plan: needs TARGET and IMAGE, got ${positionals.length === 0 ? 'neither' : positionals.join(' ')}\nRun 'gke-deployer plan --help' for usage.\n`);
      return EXIT.usage;
    }
    const [target, image] = positionals as [string, string];
    return plan(configFile(values.config, io), target, image, io, values.json === true);
  },
};

export async function plan(file: string, target: string, image: string, io: Io, json: boolean): Promise<number> {
  // A dry run reports nothing and takes no webhook: their secrets play no part.
  const config = configWithoutSecrets(file, io);
  if (!config) return EXIT.problem;
  const clusters = new ClusterRegistry(config.clusters, {}, { log: stderrLogger(io), env: io.env });
  // As src/app.ts: images pinned and OCI releases fetched with the same ADC token the clusters get.
  const adc = clusters.adcToken();
  const releases = new Releases(registryAccess(async () => (await adc.authorization()).replace(/^Bearer /, ''), io.env));
  const requestId = newRequestId();
  const intent: DeployIntent = { target, image, dryRun: true, requestId, source: 'cli', eventId: requestId, eventTime: new Date().toISOString() };
  let result: TargetResult;
  try {
    result = await deployer({ config, clusters, releases })(intent);
  } catch (err) {
    const e = asDeployError(err);
    if (json) io.stdout(`${JSON.stringify(errorBody(e, requestId), null, 2)}\n`);
    io.stderr(`gke-deployer plan: ${e.code}: ${e.message}\n`);
    return EXIT.problem;
  } finally {
    await clusters.close();
  }
  if (json) io.stdout(`${JSON.stringify(result, null, 2)}\n`);
  else io.stdout(readable(result));
  if (result.status === 'dry-run') return EXIT.ok;
  if (!json) io.stderr(`gke-deployer plan: the dry run ended ${result.status}\n`);
  return EXIT.problem;
}

/** The dry run for a person: per cluster, each object's action and diff. */
export function readable(result: TargetResult): string {
  const parts = 'clusters' in result
    ? [`Target ${result.target}, namespace ${result.namespace}, ${plural(result.clusters.length, 'cluster')} (${result.strategy}): ${result.status}`, '', ...result.clusters.flatMap((c) => clusterPart(c.cluster, c))]
    : clusterPart(result.cluster, result, result.target, result.namespace);
  return `${parts.join('\n').trimEnd()}\n`;
}

function clusterPart(cluster: string, r: DeployResult | ClusterResult, target?: string, namespace?: string): string[] {
  const head = target !== undefined
    ? `Target ${target} on cluster ${cluster}, namespace ${namespace ?? ''}: ${r.status}${r.image ? `, image ${r.image}` : ''}`
    : `Cluster ${cluster}: ${r.status}${r.image ? `, image ${r.image}` : ''}`;
  const release = r.release && !r.release.pinned && r.release.notPinned ? [`  not pinned by digest: ${r.release.notPinned}`] : [];
  const manifests = r.release?.manifests ? [`  manifests ${r.release.manifests.artifact}@${r.release.manifests.digest}`] : [];
  const reason = 'error' in r && r.error ? [`  ${r.error.code}: ${r.error.message}`] : r.reason !== undefined ? [`  ${r.reason}`] : [];
  const objects = r.objects.flatMap(objectPart);
  const counts = new Map<string, number>();
  for (const o of r.objects) counts.set(o.action, (counts.get(o.action) ?? 0) + 1);
  const total = r.objects.length > 0 ? [`${plural(r.objects.length, 'object')}: ${[...counts].map(([a, n]) => `${n} ${a}`).join(', ')}${r.pruned ? `; ${r.pruned.length} to prune` : ''}`] : [];
  return [head, ...release, ...manifests, ...reason, '', ...objects, ...(r.pruned ?? []).map((p) => `${p}: would be pruned (left the manifests)`), ...(r.pruned?.length ? [''] : []), ...total, ''];
}

function objectPart(o: ObjectResult): string[] {
  const name = `${o.kind}/${o.name}${o.namespace ? ` (namespace ${o.namespace})` : ''}`;
  // A created object's diff is its whole body; unchanged has none.
  return o.diff ? [`${name}: ${o.action}`, o.diff.trimEnd(), ''] : [`${name}: ${o.action}`, ''];
}
