// `gke-deployer rbac`: the least-privilege Role (and ClusterRole) each target namespace
// needs, from the kinds its manifests hold and the target's settings, with the verbs
// deploy/kubernetes/rbac.yaml explains: apply (get, create, patch), the rollout wait
// (list, watch of the workloads and what they spawn), rollback (delete of what a failed
// deploy created, a StatefulSet's Pods evicted), the Lease, preDeploy Jobs, prune (list,
// delete) with its ApplySet parent, and hold records. A kind's resource name (its plural)
// is known offline for built-in kinds only; any other is asked of the cluster's discovery
// with --cluster, or named as a gap.
import type { KubernetesObject } from '@kubernetes/client-node';
import { Document, isMap, isSeq } from 'yaml';
import { ConfigError, type Config, type Target } from '../config/load.ts';
import { ClusterRegistry } from '../cluster/registry.ts';
import type { KubeClient } from '../cluster/client.ts';
import { leaseName } from '../apply/lock.ts';
import { applysetParent } from '../apply/applyset.ts';
import { holdName } from '../control/holds.ts';
import { asDeployError } from '../errors.ts';
import { waitsFor } from '../rollout/readiness.ts';
import { RESTORABLE } from '../rollout/rollback.ts';
import { CONFIG_FLAG, EXIT, HELP_FLAG, configFile, configWithoutSecrets, plural, type Command, type Io } from './command.ts';
import { stderrLogger } from './log.ts';

/**
 * Built-in kinds, `group/Kind` (core: `/Kind`) → resource name. A kind not here (a CRD, or
 * a built-in left out) is asked of the cluster's discovery, never guessed: a wrong plural
 * would grant nothing and fail the deploy with CLUSTER_FORBIDDEN.
 */
export const BUILT_IN: Readonly<Record<string, string>> = {
  '/ConfigMap': 'configmaps',
  '/Endpoints': 'endpoints',
  '/LimitRange': 'limitranges',
  '/Namespace': 'namespaces',
  '/PersistentVolume': 'persistentvolumes',
  '/PersistentVolumeClaim': 'persistentvolumeclaims',
  '/Pod': 'pods',
  '/ResourceQuota': 'resourcequotas',
  '/Secret': 'secrets',
  '/Service': 'services',
  '/ServiceAccount': 'serviceaccounts',
  'admissionregistration.k8s.io/MutatingWebhookConfiguration': 'mutatingwebhookconfigurations',
  'admissionregistration.k8s.io/ValidatingWebhookConfiguration': 'validatingwebhookconfigurations',
  'apiextensions.k8s.io/CustomResourceDefinition': 'customresourcedefinitions',
  'apps/DaemonSet': 'daemonsets',
  'apps/Deployment': 'deployments',
  'apps/ReplicaSet': 'replicasets',
  'apps/StatefulSet': 'statefulsets',
  'autoscaling/HorizontalPodAutoscaler': 'horizontalpodautoscalers',
  'batch/CronJob': 'cronjobs',
  'batch/Job': 'jobs',
  'discovery.k8s.io/EndpointSlice': 'endpointslices',
  'networking.k8s.io/Ingress': 'ingresses',
  'networking.k8s.io/IngressClass': 'ingressclasses',
  'networking.k8s.io/NetworkPolicy': 'networkpolicies',
  'policy/PodDisruptionBudget': 'poddisruptionbudgets',
  'rbac.authorization.k8s.io/ClusterRole': 'clusterroles',
  'rbac.authorization.k8s.io/ClusterRoleBinding': 'clusterrolebindings',
  'rbac.authorization.k8s.io/Role': 'roles',
  'rbac.authorization.k8s.io/RoleBinding': 'rolebindings',
  'scheduling.k8s.io/PriorityClass': 'priorityclasses',
  'storage.k8s.io/StorageClass': 'storageclasses',
};

const RBAC_KINDS = new Set(['Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']);
const VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] as const;
type Verb = (typeof VERBS)[number];
const APPLY: Verb[] = ['get', 'create', 'patch'];
const WATCH: Verb[] = ['list', 'watch'];
const LABELS = { 'app.kubernetes.io/name': 'gke-deployer' };
const RBAC_GROUP = 'rbac.authorization.k8s.io';
/** The subject when no --service-account or SERVICE_ACCOUNT is given: deploy/kubernetes/rbac.yaml's envsubst placeholder. */
export const PLACEHOLDER = '${SERVICE_ACCOUNT}';

/** A kind's resource and scope as discovery lists it; undefined when the cluster does not serve it. */
export type Discover = (apiVersion: string, kind: string) => Promise<{ name: string; namespaced: boolean } | undefined>;

/** The rules of one Role (or the ClusterRole): per group and resource, its verbs and, per target, why. */
class Grants {
  private readonly byResource = new Map<string, { group: string; resource: string; verbs: Set<Verb>; why: Map<string, Set<string>> }>();

  add(group: string, resource: string, verbs: readonly Verb[], target: string, why: string): void {
    const key = `${group}/${resource}`;
    const entry = this.byResource.get(key) ?? { group, resource, verbs: new Set<Verb>(), why: new Map<string, Set<string>>() };
    for (const v of verbs) entry.verbs.add(v);
    entry.why.set(target, (entry.why.get(target) ?? new Set<string>()).add(why));
    this.byResource.set(key, entry);
  }

  get empty(): boolean {
    return this.byResource.size === 0;
  }

  /** Rules sorted by group then resource, verbs in a fixed order, each with its reason as a comment. */
  rules(): { rule: { apiGroups: string[]; resources: string[]; verbs: Verb[] }; comment: string }[] {
    return [...this.byResource.values()]
      .sort((a, b) => a.group.localeCompare(b.group) || a.resource.localeCompare(b.resource))
      .map((e) => ({
        rule: { apiGroups: [e.group], resources: [e.resource], verbs: VERBS.filter((v) => e.verbs.has(v)) },
        comment: [...e.why].map(([target, why]) => `${target}: ${[...why].join(', ')}`).join('; '),
      }));
  }
}

export interface RbacOptions {
  /** Only the targets that deploy to this cluster; also the cluster `discover` asks. */
  cluster?: string;
  serviceAccount: string;
  discover?: Discover;
}

export interface RbacResult {
  /** A YAML stream `kubectl apply -f -` takes. */
  yaml: string;
  /** What could not be granted: kinds whose resource name is unknown, OCI targets' kinds. */
  gaps: string[];
  notes: string[];
}

export async function rbacFor(config: Config, opts: RbacOptions): Promise<RbacResult> {
  const clusters = opts.cluster !== undefined ? [opts.cluster] : [...config.clusters.keys()];
  const docs: Document[] = [];
  const gaps: string[] = [];
  const notes: string[] = [];
  const resolved = new Map<string, Promise<string | undefined>>();
  const resourceOf = (apiVersion: string, kind: string): Promise<string | undefined> => {
    const group = groupOf(apiVersion);
    const builtIn = BUILT_IN[`${group}/${kind}`];
    if (builtIn !== undefined || !opts.discover) return Promise.resolve(builtIn);
    const key = `${apiVersion}/${kind}`;
    const asked = resolved.get(key) ?? opts.discover(apiVersion, kind).then((r) => r?.name);
    resolved.set(key, asked);
    return asked;
  };
  let first = true;
  for (const cluster of clusters) {
    const targets = [...config.targets.values()].filter((t) => t.clusters.includes(cluster));
    if (targets.length === 0) continue;
    const namespaces = new Map<string, Grants>();
    const clusterWide = new Grants();
    const clusterGaps: string[] = [];
    for (const t of targets) {
      const ns = namespaces.get(t.namespace) ?? new Grants();
      namespaces.set(t.namespace, ns);
      await grantTarget(t, ns, clusterWide, { resourceOf, gap: (g) => clusterGaps.push(g), note: (n) => notes.push(n), discovering: opts.discover !== undefined, cluster });
    }
    const section: Document[] = [];
    for (const [namespace, grants] of [...namespaces].sort(([a], [b]) => a.localeCompare(b))) {
      section.push(roleDoc('Role', grants, namespace), bindingDoc('RoleBinding', opts.serviceAccount, namespace));
    }
    if (!clusterWide.empty) section.push(roleDoc('ClusterRole', clusterWide), bindingDoc('ClusterRoleBinding', opts.serviceAccount));
    const spec = config.clusters.get(cluster);
    const header = [
      ...(first ? [` Least-privilege RBAC for gke-deployer, from ${config.file} (gke-deployer rbac).`, ` Subject: the runtime service account's Google identity (GKE names it by its email), User ${opts.serviceAccount}.`, ''] : []),
      ` Cluster ${cluster}${spec && 'gke' in spec ? ` (projects/${spec.gke.project}/locations/${spec.gke.location}/clusters/${spec.gke.name})` : ''}: targets ${targets.map((t) => t.name).join(', ')}.`,
      ` Apply it there: gke-deployer rbac --cluster ${cluster} | kubectl apply -f -`,
      ...(clusterGaps.length > 0 ? ['', ' GAPS: not granted below; add rules for these, or the deploy answers CLUSTER_FORBIDDEN:', ...clusterGaps.map((g) => `   - ${g}`)] : []),
    ];
    section[0]!.commentBefore = header.join('\n');
    docs.push(...section);
    gaps.push(...clusterGaps.map((g) => `cluster ${cluster}: ${g}`));
    first = false;
  }
  if (docs.length === 0) throw new ConfigError(config.file, [opts.cluster !== undefined ? `no target deploys to cluster "${opts.cluster}"` : 'no targets']);
  const yaml = docs.map((d) => d.toString({ lineWidth: 0, flowCollectionPadding: false })).join('---\n');
  return { yaml, gaps, notes: [...new Set(notes)] };
}

interface TargetContext {
  resourceOf(apiVersion: string, kind: string): Promise<string | undefined>;
  gap(text: string): void;
  note(text: string): void;
  discovering: boolean;
  cluster: string;
}

async function grantTarget(t: Target, ns: Grants, clusterWide: Grants, ctx: TargetContext): Promise<void> {
  const add = (group: string, resource: string, verbs: readonly Verb[], why: string) => ns.add(group, resource, verbs, t.name, why);
  const { wait, rollback } = t.rollout;
  // Every deploy that writes holds the target's Lease (src/apply/lock.ts): a dry run takes none.
  add('coordination.k8s.io', 'leases', ['get', 'create', 'update', 'delete'], `deploy lock (Lease ${leaseName(t.name)})`);
  if (t.prune || t.oci) add('', 'configmaps', APPLY, `ApplySet parent (ConfigMap ${applysetParent(t.name, t.namespace).metadata?.name ?? ''})`);
  if (t.windows || t.approval) add('', 'configmaps', APPLY, `hold record (ConfigMap ${holdName(t.name)})`);
  if (t.oci) {
    ctx.gap(`target ${t.name}: its manifests come with each release (${t.oci.oci}:${t.oci.tag}), so their kinds are not known here; for each kind: get, create, patch, list, delete (apply, prune${wait && rollback ? ', rollback' : ''}), and the rollout verbs for workloads (deploy/kubernetes/rbac.yaml)`);
  }

  const imageOnly = t.deployment !== undefined;
  const objects: KubernetesObject[] = imageOnly ? [{ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: t.deployment } }] : t.objects;
  const kinds = new Map<string, KubernetesObject>();
  for (const o of objects) kinds.set(`${o.apiVersion ?? ''}/${o.kind ?? ''}`, o);
  for (const o of kinds.values()) {
    const apiVersion = o.apiVersion ?? '';
    const kind = o.kind ?? '';
    const group = groupOf(apiVersion);
    const resource = await ctx.resourceOf(apiVersion, kind);
    if (resource === undefined) {
      ctx.gap(
        ctx.discovering
          ? `${kind} (${apiVersion}) of target ${t.name}: cluster ${ctx.cluster} does not serve it (install its CRD first, then run this again)`
          : `${kind} (${apiVersion}) of target ${t.name}: not a built-in kind, so its resource name is known to the cluster only; run with --cluster ${ctx.cluster} to ask it`,
      );
      continue;
    }
    const scoped = t.clusterScoped.includes(kind) ? clusterWide : ns;
    const grant = (verbs: readonly Verb[], why: string) => scoped.add(group, resource, verbs, t.name, why);
    // An image-only target patches a Deployment that must exist: it never creates one.
    grant(imageOnly ? ['get', 'patch'] : APPLY, 'apply');
    if (wait && waitsFor(o)) grant(WATCH, 'rollout wait');
    if (wait && rollback && !imageOnly && RESTORABLE.has(kind)) grant(['delete'], 'rollback deletes it when the failed deploy created it');
    if (group === 'batch' && kind === 'Job') grant(['delete'], 'a finished Job whose template changed is replaced');
    if (t.prune) grant(['list', 'delete'], 'prune');
    if (RBAC_KINDS.has(kind)) {
      ctx.note(`target ${t.name} applies ${kind} objects: the API server lets the deployer write them only when it holds every permission they grant (or escalate and bind, not granted here)`);
    }
  }

  const workloads = [...kinds.values()].filter(waitsFor);
  if (wait && workloads.length > 0) {
    add('', 'pods', WATCH, 'rollout wait');
    const has = (k: string) => workloads.some((w) => w.kind === k);
    if (has('Deployment')) add('apps', 'replicasets', WATCH, "rollout wait (a Deployment's revisions)");
    if (has('DaemonSet')) add('apps', 'controllerrevisions', WATCH, "rollout wait (a DaemonSet's revisions)");
    if (has('Job')) add('', 'pods/log', ['get'], "a failed Job's log");
    if (has('StatefulSet') && rollback) {
      add('', 'pods/eviction', ['create'], "rollback evicts a StatefulSet's broken Pods");
      add('', 'pods', ['delete'], "rollback deletes a broken StatefulSet Pod a PodDisruptionBudget will not evict");
    }
  }
  if (t.preDeployJobs.length > 0) {
    add('batch', 'jobs', ['get', 'list', 'watch', 'create', 'patch', 'delete'], 'preDeploy Jobs: run, follow, replace');
    add('', 'pods', WATCH, 'preDeploy Jobs: their Pods');
    add('', 'pods/log', ['get'], "preDeploy Jobs: a failed run's log");
  }
}

function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

function roleDoc(kind: 'Role' | 'ClusterRole', grants: Grants, namespace?: string): Document {
  const rules = grants.rules();
  const doc = new Document({
    apiVersion: `${RBAC_GROUP}/v1`,
    kind,
    metadata: { name: 'gke-deployer', ...(namespace !== undefined && { namespace }), labels: LABELS },
    rules: rules.map((r) => r.rule),
  });
  const seq = doc.get('rules', true);
  if (isSeq(seq)) {
    seq.items.forEach((item, i) => {
      if (!isMap(item)) return;
      item.commentBefore = ` ${rules[i]!.comment}`;
      for (const key of ['apiGroups', 'resources', 'verbs']) {
        const list = item.get(key, true);
        if (isSeq(list)) list.flow = true;
      }
    });
  }
  return doc;
}

function bindingDoc(kind: 'RoleBinding' | 'ClusterRoleBinding', subject: string, namespace?: string): Document {
  return new Document({
    apiVersion: `${RBAC_GROUP}/v1`,
    kind,
    metadata: { name: 'gke-deployer', ...(namespace !== undefined && { namespace }), labels: LABELS },
    roleRef: { apiGroup: RBAC_GROUP, kind: kind === 'RoleBinding' ? 'Role' : 'ClusterRole', name: 'gke-deployer' },
    subjects: [{ apiGroup: RBAC_GROUP, kind: 'User', name: subject }],
  });
}

export const rbacCommand: Command = {
  name: 'rbac',
  usage: '[flags]',
  summary: 'Print the least-privilege Role and RoleBinding each target namespace needs',
  description: [
    "Prints, for each target namespace, the Role and RoleBinding its targets need, and nothing more: get, create and patch on every kind in its manifests; list and watch of the workloads and their Pods, ReplicaSets and ControllerRevisions for the rollout wait; delete for a rollback of what a failed deploy created, and pods/eviction for a StatefulSet's; the Lease of the deploy lock; preDeploy Jobs and their logs; list and delete for prune, with its ApplySet parent ConfigMap; hold records. Kinds in a target's clusterScoped get a ClusterRole and ClusterRoleBinding. Each rule's comment says which target needs it and why (deploy/kubernetes/rbac.yaml explains every verb).",
    "A kind that is not built into Kubernetes (a CRD) has a resource name only its cluster knows: with --cluster, discovery is asked (open to any authenticated user; the same cluster access as the function); without it, the kind is named as a gap in a comment and on stderr, and the exit status is 3: the output applies, but a deploy of that kind would answer CLUSTER_FORBIDDEN, and a script should notice. An OCI target's kinds come with each release and are always a gap.",
    'The subject is the runtime service account as a User (GKE names a Google identity by its email): --service-account, else $SERVICE_ACCOUNT, else the placeholder ${SERVICE_ACCOUNT} for envsubst. Target namespaces must exist.',
  ],
  flags: {
    ...CONFIG_FLAG,
    cluster: { type: 'string', value: 'NAME', description: 'Only the targets that deploy to this cluster (a name under clusters:); ask its discovery for kinds that are not built in.' },
    'service-account': { type: 'string', value: 'EMAIL', description: 'The runtime service account (default: $SERVICE_ACCOUNT).' },
    ...HELP_FLAG,
  },
  examples: [
    'gke-deployer rbac --cluster prod --service-account gke-deployer@my-proj.iam.gserviceaccount.com | kubectl apply -f -',
    'SERVICE_ACCOUNT=gke-deployer@my-proj.iam.gserviceaccount.com gke-deployer rbac -c deployer.yaml > rbac.yaml',
  ],
  async run({ values, positionals }, io) {
    if (positionals.length > 0) {
      io.stderr(`gke-deployer rbac: unexpected argument ${positionals[0]}; the configuration is --config FILE\n`);
      return EXIT.usage;
    }
    return rbac(configFile(values.config, io), io, { cluster: values.cluster as string | undefined, serviceAccount: values['service-account'] as string | undefined });
  },
};

export async function rbac(file: string, io: Io, flags: { cluster?: string | undefined; serviceAccount?: string | undefined }): Promise<number> {
  const config = configWithoutSecrets(file, io);
  if (!config) return EXIT.problem;
  if (flags.cluster !== undefined && !config.clusters.has(flags.cluster)) {
    io.stderr(`gke-deployer rbac: no cluster "${flags.cluster}" in ${config.file} (it has ${[...config.clusters.keys()].join(', ')})\n`);
    return EXIT.problem;
  }
  const serviceAccount = flags.serviceAccount ?? (io.env.SERVICE_ACCOUNT?.trim() || PLACEHOLDER);
  const registry = flags.cluster !== undefined ? new ClusterRegistry(config.clusters, {}, { log: stderrLogger(io), env: io.env }) : undefined;
  // Connected on the first kind that needs it: built-in kinds need no cluster.
  let client: Promise<KubeClient> | undefined;
  const discover: Discover | undefined = registry && ((apiVersion, kind) => (client ??= registry.client(flags.cluster!)).then((c) => c.resourceOf(apiVersion, kind)));
  let result: RbacResult;
  try {
    result = await rbacFor(config, { ...(flags.cluster !== undefined && { cluster: flags.cluster }), serviceAccount, ...(discover && { discover }) });
  } catch (err) {
    if (err instanceof ConfigError) {
      io.stderr(`gke-deployer rbac: ${err.problems.join('; ')}\n`);
      return EXIT.problem;
    }
    const e = asDeployError(err);
    io.stderr(`gke-deployer rbac: cannot ask cluster ${flags.cluster ?? ''} for resource names: ${e.code}: ${e.message}\n`);
    return EXIT.problem;
  } finally {
    await registry?.close();
  }
  io.stdout(result.yaml);
  if (serviceAccount === PLACEHOLDER) io.stderr(`note: the subject is the placeholder ${PLACEHOLDER}: pass --service-account EMAIL, set SERVICE_ACCOUNT, or pipe the output through envsubst\n`);
  for (const n of result.notes) io.stderr(`note: ${n}\n`);
  if (config.clusters.size > 1 && flags.cluster === undefined) io.stderr(`note: ${config.file} names ${plural(config.clusters.size, 'cluster')}: apply each cluster's part to that cluster (--cluster NAME prints one)\n`);
  if (result.gaps.length === 0) return EXIT.ok;
  io.stderr(`gke-deployer rbac: ${plural(result.gaps.length, 'gap')}, not granted in the output:\n${result.gaps.map((g) => `  - ${g}\n`).join('')}`);
  return EXIT.incomplete;
}
