// Which pods belong to a workload's new revision, so the rollout stage looks only at those
// (an old pod crash-looping is not the new rollout failing). Pure: the caller lists the
// workload's ReplicaSets or ControllerRevisions and passes them in.
import type { KubernetesObject, V1OwnerReference } from '@kubernetes/client-node';
import { field, kindKey, list, num, str } from './fields.ts';

export interface Owned {
  replicaSets?: KubernetesObject[];
  controllerRevisions?: KubernetesObject[];
}

const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';
const POD_TEMPLATE_HASH = 'pod-template-hash';
const CONTROLLER_REVISION_HASH = 'controller-revision-hash';
// apps/v1 carries a DaemonSet's template generation in this annotation; the controller still
// copies it into each pod's pod-template-generation label in v1.34
// (pkg/controller/daemon/util.CreatePodTemplate). It counts template changes only, so it is not
// metadata.generation.
const DS_TEMPLATE_GENERATION = 'deprecated.daemonset.template.generation';
const POD_TEMPLATE_GENERATION = 'pod-template-generation';

interface Requirement {
  key: string;
  operator: string; // In, NotIn, Exists, DoesNotExist
  values: string[];
}
interface Selector {
  matchLabels: Record<string, string>;
  matchExpressions: Requirement[];
}
/** The new revision's pods: those matching `selector` whose controller (if any) has uid `owner`. */
interface Revision {
  selector: Selector;
  owner: string;
}

/** Label selector string (e.g. "app=web,pod-template-hash=abc") for the pods of the workload's NEW revision, or undefined when it cannot be known yet. */
export function newRevisionSelector(workload: KubernetesObject, owned: Owned): string | undefined {
  const revision = newRevision(workload, owned);
  return revision && selectorString(revision.selector);
}

/** Whether `pod` belongs to the workload's new revision (owner references / hash labels). */
export function isNewRevisionPod(workload: KubernetesObject, pod: KubernetesObject, owned: Owned): boolean {
  const revision = newRevision(workload, owned);
  if (!revision || pod.metadata?.namespace !== workload.metadata?.namespace) return false;
  // A pod controlled by something else is not ours even if its labels match (e.g. another
  // Deployment with the same labels); an orphaned pod is judged by its labels alone.
  const controller = controllerOf(pod);
  if (controller && controller.uid !== revision.owner) return false;
  return matches(revision.selector, pod.metadata?.labels ?? {});
}

function newRevision(workload: KubernetesObject, owned: Owned): Revision | undefined {
  const uid = workload.metadata?.uid;
  if (!uid) return undefined;
  switch (kindKey(workload)) {
    case 'apps/Deployment':
      return deploymentRevision(workload, uid, owned.replicaSets ?? []);
    case 'apps/StatefulSet': {
      // status.updateRevision is the ControllerRevision's name, which the controller puts in
      // each pod's controller-revision-hash label.
      const update = str(workload, 'status', 'updateRevision');
      if (!observed(workload) || !update) return undefined;
      return { selector: withLabel(selectorOf(workload), CONTROLLER_REVISION_HASH, update), owner: uid };
    }
    case 'apps/DaemonSet':
      return daemonSetRevision(workload, uid, owned.controllerRevisions);
    case 'batch/Job': {
      // spec.selector is what the apiserver generated (batch.kubernetes.io/controller-uid=<uid>,
      // or controller-uid=<uid> for Jobs made before v1.27) or, with manualSelector, the user's;
      // the owner check then tells this Job's pods from others'.
      const selector = selectorOf(workload);
      if (Object.keys(selector.matchLabels).length === 0 && selector.matchExpressions.length === 0) {
        return { selector: withLabel(selector, 'batch.kubernetes.io/controller-uid', uid), owner: uid };
      }
      return { selector, owner: uid };
    }
    default:
      return undefined;
  }
}

/**
 * The new ReplicaSet is the one the Deployment controls whose revision annotation equals the
 * Deployment's own. Until the controller has observed the current generation, the Deployment's
 * annotation may still name the previous ReplicaSet, so the answer waits for that.
 */
function deploymentRevision(deployment: KubernetesObject, uid: string, replicaSets: KubernetesObject[]): Revision | undefined {
  const wanted = deployment.metadata?.annotations?.[REVISION_ANNOTATION];
  if (!observed(deployment) || !wanted) return undefined;
  const rs = replicaSets.find((r) => controllerOf(r)?.uid === uid && r.metadata?.annotations?.[REVISION_ANNOTATION] === wanted);
  const rsUid = rs?.metadata?.uid;
  if (!rs || !rsUid) return undefined;
  // The ReplicaSet's selector is the Deployment's plus pod-template-hash.
  let selector = selectorOf(rs);
  const hash = rs.metadata?.labels?.[POD_TEMPLATE_HASH];
  if (hash && selector.matchLabels[POD_TEMPLATE_HASH] === undefined) selector = withLabel(selector, POD_TEMPLATE_HASH, hash);
  return { selector, owner: rsUid };
}

/**
 * The new revision is the DaemonSet's newest ControllerRevision (highest `revision`; a rollback
 * to an older template renumbers that one to the top), whose controller-revision-hash label the
 * controller puts on the pods it makes. Known once the controller has observed the current
 * generation (it writes the revision before the status). Without ControllerRevisions
 * (`owned.controllerRevisions` absent), pods are matched by pod-template-generation instead.
 */
function daemonSetRevision(ds: KubernetesObject, uid: string, revisions: KubernetesObject[] | undefined): Revision | undefined {
  if (revisions === undefined) {
    const generation = ds.metadata?.annotations?.[DS_TEMPLATE_GENERATION];
    return generation ? { selector: withLabel(selectorOf(ds), POD_TEMPLATE_GENERATION, generation), owner: uid } : undefined;
  }
  if (!observed(ds)) return undefined;
  let newest: KubernetesObject | undefined;
  for (const r of revisions) {
    if (controllerOf(r)?.uid !== uid) continue;
    if (!newest || (num(r, 'revision') ?? 0) > (num(newest, 'revision') ?? 0)) newest = r;
  }
  const hash = newest?.metadata?.labels?.[CONTROLLER_REVISION_HASH];
  return hash ? { selector: withLabel(selectorOf(ds), CONTROLLER_REVISION_HASH, hash), owner: uid } : undefined;
}

function observed(workload: KubernetesObject): boolean {
  const generation = workload.metadata?.generation;
  const seen = num(workload, 'status', 'observedGeneration');
  return generation !== undefined && seen !== undefined && seen >= generation;
}

function controllerOf(obj: KubernetesObject): V1OwnerReference | undefined {
  return obj.metadata?.ownerReferences?.find((o) => o.controller === true);
}

function selectorOf(obj: KubernetesObject): Selector {
  const matchLabels: Record<string, string> = {};
  const labels = field(obj, 'spec', 'selector', 'matchLabels');
  for (const [k, v] of Object.entries(labels && typeof labels === 'object' ? labels : {})) {
    if (typeof v === 'string') matchLabels[k] = v;
  }
  const matchExpressions = list(obj, 'spec', 'selector', 'matchExpressions').map((e) => ({
    key: str(e, 'key') ?? '',
    operator: str(e, 'operator') ?? '',
    values: list(e, 'values').filter((v): v is string => typeof v === 'string'),
  }));
  return { matchLabels, matchExpressions };
}

function withLabel(selector: Selector, key: string, value: string): Selector {
  return { matchLabels: { ...selector.matchLabels, [key]: value }, matchExpressions: selector.matchExpressions };
}

/** The selector in the string syntax the API's labelSelector parameter takes. */
function selectorString(selector: Selector): string {
  const parts = Object.keys(selector.matchLabels)
    .sort()
    .map((k) => `${k}=${selector.matchLabels[k]}`);
  for (const { key, operator, values } of selector.matchExpressions) {
    if (operator === 'In') parts.push(`${key} in (${values.join(',')})`);
    else if (operator === 'NotIn') parts.push(`${key} notin (${values.join(',')})`);
    else if (operator === 'Exists') parts.push(key);
    else if (operator === 'DoesNotExist') parts.push(`!${key}`);
  }
  return parts.join(',');
}

function matches(selector: Selector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels)) if (labels[k] !== v) return false;
  return selector.matchExpressions.every(({ key, operator, values }) => {
    const has = Object.hasOwn(labels, key);
    if (operator === 'In') return has && values.includes(labels[key] ?? '');
    if (operator === 'NotIn') return !has || !values.includes(labels[key] ?? '');
    if (operator === 'Exists') return has;
    if (operator === 'DoesNotExist') return !has;
    return false;
  });
}
