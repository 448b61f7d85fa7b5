// Prune as an ApplySet (KEP-3659, the format `kubectl apply --prune --applyset` uses), so
// the set is the Kubernetes standard and kubectl can read it:
//   - the parent: ConfigMap `gke-deployer-<target>` in the target namespace, labelled
//     `applyset.kubernetes.io/id: <id>` and annotated with the tooling and the group-kinds
//     its members may have (`contains-group-kinds`), so members are found by listing only
//     those kinds;
//   - each member: labelled `applyset.kubernetes.io/part-of: <id>`, so
//     `kubectl get deploy,svc,cm -l applyset.kubernetes.io/part-of=<id>` lists a release.
// The id is kubectl's: applyset-<base64url(sha256("<name>.<namespace>.<Kind>.<group>"))>-v1
// (staging/src/k8s.io/kubectl/pkg/cmd/apply/applyset.go, ApplySet.ID).
//
// These are building blocks; the deploy decides the order (parent with the union of old and
// new group-kinds before the apply; prune after Ready; then the parent with the new set).
//
// Prune deletes only what the label selector part-of=<id> returns, re-checked on each item,
// in the target namespace (and cluster-scoped kinds the target allows), never anything else.
import { createHash } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import { ApiException } from '@kubernetes/client-node/dist/gen/apis/exception.js';
import type { KubeClient } from '../cluster/client.ts';
import { DeployError } from '../errors.ts';
import { inPool } from '../pool.ts';
import { apiError, describe } from './errors.ts';

export const APPLYSET_LABELS = {
  /** On the parent: the set's id. */
  id: 'applyset.kubernetes.io/id',
  /** On each member: the id of the set it belongs to. */
  partOf: 'applyset.kubernetes.io/part-of',
} as const;

export const APPLYSET_ANNOTATIONS = {
  /** On the parent: `<tool>/<version>`; a tool must not change a set another tool manages. */
  tooling: 'applyset.kubernetes.io/tooling',
  /** On the parent: the group-kinds members may have, sorted, comma-separated (`ConfigMap,Deployment.apps`). */
  containsGroupKinds: 'applyset.kubernetes.io/contains-group-kinds',
} as const;

export const TOOLING = 'gke-deployer/v1';

// Lists and deletes in flight at once: enough to hide round trips, few enough for the API server.
const CONCURRENCY = 8;
// Deletes retried when the object changed between our look at its label and the delete.
const DELETE_ATTEMPTS = 5;

/** The parent's reference (no body): ConfigMap `gke-deployer-<target>` in the target namespace. */
export function applysetParent(target: string, namespace: string): KubernetesObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `gke-deployer-${target}`, namespace } };
}

/** kubectl's id of the set a parent stands for: applyset-<base64url-nopad(sha256("<name>.<namespace>.<Kind>.<group>"))>-v1. */
export function applysetId(parent: KubernetesObject): string {
  const { group } = splitApiVersion(parent.apiVersion);
  const gknn = [parent.metadata?.name ?? '', parent.metadata?.namespace ?? '', parent.kind ?? '', group].join('.');
  return `applyset-${createHash('sha256').update(gknn).digest('base64url')}-v1`;
}

/** `Deployment.apps`, `CronJob.batch`; a core kind is its Kind alone (`Service`), as kubectl writes it. */
export function groupKind(obj: KubernetesObject): string {
  const { group } = splitApiVersion(obj.apiVersion);
  return group ? `${obj.kind ?? ''}.${group}` : (obj.kind ?? '');
}

/** A group-kind back into its parts: the Kind is up to the first dot (Kinds have none). */
export function splitGroupKind(gk: string): { kind: string; group: string } {
  const dot = gk.indexOf('.');
  return dot < 0 ? { kind: gk, group: '' } : { kind: gk.slice(0, dot), group: gk.slice(dot + 1) };
}

// A Kind (an identifier) and an optional group (a DNS subdomain).
const GROUP_KIND = /^[A-Za-z][A-Za-z0-9]*(\.[a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$/;

/**
 * The contains-group-kinds annotation read back. An entry that is no group-kind (a hand
 * edit) is left out: that kind's members are then not pruned, which errs on keeping.
 */
export function parseGroupKinds(annotation: string | undefined): Set<string> {
  return new Set((annotation ?? '').split(',').map((s) => s.trim()).filter((s) => GROUP_KIND.test(s)));
}

/** The annotation's value: unique, sorted (byte order, as kubectl sorts), comma-separated. */
export function formatGroupKinds(groupKinds: Iterable<string>): string {
  return [...new Set(groupKinds)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).join(',');
}

/** A member's key within one set: group-kind and name, whatever version of the API it was read or applied through. */
export function memberKey(obj: KubernetesObject): string {
  return `${groupKind(obj)}/${obj.metadata?.name ?? ''}`;
}

/**
 * The object as a member of set `id`: a copy with the part-of label added, its own labels
 * kept. A manifest that claims another set itself is refused (kubectl refuses it too).
 */
export function asMember(obj: KubernetesObject, id: string): KubernetesObject {
  const claimed = obj.metadata?.labels?.[APPLYSET_LABELS.partOf];
  if (claimed !== undefined && claimed !== id) {
    throw new DeployError('INVALID_MANIFEST', `${describe(obj)} sets the label ${APPLYSET_LABELS.partOf}=${claimed}: the deployer sets it; remove it from the manifest`);
  }
  const copy = structuredClone(obj);
  copy.metadata = { ...copy.metadata, labels: { ...copy.metadata?.labels, [APPLYSET_LABELS.partOf]: id } };
  return copy;
}

/**
 * The parent to server-side apply: the id label, the tooling and contains-group-kinds
 * annotations (these win over `annotations` of the same key), the deployer's own
 * `annotations`, and no data.
 */
export function parentBody(parent: KubernetesObject, id: string, groupKinds: Iterable<string>, annotations: Record<string, string>): KubernetesObject {
  const { name, namespace } = parent.metadata ?? {};
  return {
    apiVersion: parent.apiVersion ?? 'v1',
    kind: parent.kind ?? 'ConfigMap',
    metadata: {
      ...(name !== undefined && { name }),
      ...(namespace !== undefined && { namespace }),
      labels: { [APPLYSET_LABELS.id]: id },
      annotations: { ...annotations, [APPLYSET_ANNOTATIONS.tooling]: TOOLING, [APPLYSET_ANNOTATIONS.containsGroupKinds]: formatGroupKinds(groupKinds) },
    },
  };
}

/**
 * Refuses a live parent that is not this deployer's set `id`: another tool's (its tooling
 * names another tool: the KEP says not to change it), or a ConfigMap of that name that is
 * no parent or another set's. Absent is fine (the first deploy creates it).
 */
export function checkParent(live: KubernetesObject | undefined, id: string): void {
  if (!live) return;
  const tooling = live.metadata?.annotations?.[APPLYSET_ANNOTATIONS.tooling];
  const liveId = live.metadata?.labels?.[APPLYSET_LABELS.id];
  const ours = tooling !== undefined && toolName(tooling) === toolName(TOOLING) && liveId === id;
  if (!ours) {
    throw new DeployError(
      'CONFLICT',
      `${describe(live)} exists and is not this target's ApplySet parent (${APPLYSET_ANNOTATIONS.tooling}=${tooling ?? '(none)'}, ${APPLYSET_LABELS.id}=${liveId ?? '(none)'}; expected ${TOOLING} and ${id}); rename or delete it`,
    );
  }
}

/** `kubectl/v1.34.4` → `kubectl` (the name is everything before the last slash, as kubectl reads it). */
function toolName(tooling: string): string {
  const slash = tooling.lastIndexOf('/');
  return slash < 0 ? tooling : tooling.slice(0, slash);
}

export interface MemberQuery {
  id: string;
  /** The target namespace: namespaced members are looked for here only. */
  namespace: string;
  /** The parent's contains-group-kinds: the kinds to list. */
  groupKinds: Iterable<string>;
  /** Cluster-scoped Kinds the target may apply; other cluster-scoped kinds are never listed. */
  clusterScoped: readonly string[];
}

/**
 * The live members of set `id`: for each group-kind, a list with the label selector
 * part-of=<id> through a version the cluster serves (discovery). A group-kind the cluster
 * no longer serves (its CRD deleted) has no members to find and is skipped.
 */
export async function listMembers(client: KubeClient, q: MemberQuery): Promise<KubernetesObject[]> {
  const kinds = [...new Set(q.groupKinds)].sort();
  const lists = await inPool(kinds, CONCURRENCY, (gk) => listKind(client, gk, q));
  return lists.flat().filter((obj) => isMember(obj, q));
}

async function listKind(client: KubeClient, gk: string, q: MemberQuery): Promise<KubernetesObject[]> {
  const { kind, group } = splitGroupKind(gk);
  const ref = { apiVersion: group ? `${group}/*` : '*', kind: gk, metadata: { namespace: q.namespace, name: '*' } };
  const query = { labelSelector: `${APPLYSET_LABELS.partOf}=${q.id}` };
  for (const fresh of [false, true]) {
    try {
      const served = await servedAs(client, group, kind, fresh);
      if (!served) return [];
      if (!served.namespaced && !q.clusterScoped.includes(kind)) return [];
      return (await client.list(served.apiVersion, kind, q.namespace, query)).items;
    } catch (err) {
      if (!(err instanceof ApiException && err.code === 404)) throw apiError(err, ref, 'list');
      // Discovery is kept per connection: a version that went away since (a CRD changed)
      // answers 404, so look again once. A 404 after that: the kind is no longer served
      // (its CRD deleted, and its objects with it).
    }
  }
  return [];
}

/** The first version of `group` (preferred first) that serves `kind`, and its scope. */
async function servedAs(client: KubeClient, group: string, kind: string, fresh: boolean): Promise<{ apiVersion: string; namespaced: boolean } | undefined> {
  for (const version of await client.servedVersions(group, fresh)) {
    const apiVersion = group ? `${group}/${version}` : version;
    const namespaced = await client.isNamespaced(apiVersion, kind);
    if (namespaced !== undefined) return { apiVersion, namespaced };
  }
  return undefined;
}

/** The guard behind the label selector: labelled for this set, in the namespace (or cluster-scoped), not the parent. */
function isMember(obj: KubernetesObject, q: Pick<MemberQuery, 'id' | 'namespace'>): boolean {
  const labels = obj.metadata?.labels ?? {};
  const ns = obj.metadata?.namespace;
  return labels[APPLYSET_LABELS.partOf] === q.id && labels[APPLYSET_LABELS.id] === undefined && (ns === undefined || ns === q.namespace);
}

export interface PruneOptions extends MemberQuery {
  /** memberKey() of every object of the new release: these stay. */
  keep: ReadonlySet<string>;
  /** List what would be deleted, delete nothing. */
  dryRun: boolean;
}

/**
 * Deletes the members of set `id` that are not in `keep`, and answers them (in a dry run:
 * what it would delete). Each delete is exact: the uid and the resourceVersion we saw the
 * label at, so neither a newer object of that name nor one taken out of the set since
 * (label removed) is deleted; on such a change the object is read again and judged anew.
 * Dependents go in the background (the garbage collector removes a Deployment's
 * ReplicaSets and Pods, as `kubectl delete` does by default): the owner is gone at once,
 * so the prune does not wait on Pods terminating and a later release may recreate the
 * name right away. An object already gone is not counted.
 */
export async function prune(client: KubeClient, opts: PruneOptions): Promise<KubernetesObject[]> {
  const members = await listMembers(client, opts);
  const doomed = members.filter((obj) => !opts.keep.has(memberKey(obj)));
  if (opts.dryRun) return doomed;
  const deleted = await inPool(doomed, CONCURRENCY, (obj) => deleteMember(client, obj, opts));
  return doomed.filter((_, i) => deleted[i]);
}

/** Deletes `obj` while it is still the member we listed; false when it is gone or no longer one. */
async function deleteMember(client: KubeClient, listed: KubernetesObject, q: Pick<MemberQuery, 'id' | 'namespace'>): Promise<boolean> {
  let obj: KubernetesObject | undefined = listed;
  const uid = listed.metadata?.uid ?? '';
  for (let attempt = 1; ; attempt++) {
    if (!obj || obj.metadata?.uid !== uid || !isMember(obj, q)) return false;
    try {
      await client.delete(obj, { uid, resourceVersion: obj.metadata?.resourceVersion ?? '' });
      return true;
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return false;
      // 409: a precondition failed (changed since we read it: a controller's status write, or a label edit).
      if (!(err instanceof ApiException && err.code === 409)) throw apiError(err, obj, 'prune (delete)');
      if (attempt >= DELETE_ATTEMPTS) {
        throw new DeployError('CLUSTER_UNAVAILABLE', `prune (delete) ${describe(obj)}: it changed between each read and delete, ${DELETE_ATTEMPTS} times; try again`, { cause: err });
      }
    }
    try {
      const again = await client.get(obj);
      obj = again && { apiVersion: listed.apiVersion, kind: listed.kind, ...again };
    } catch (err) {
      throw apiError(err, listed, 'read');
    }
  }
}

function splitApiVersion(apiVersion: string | undefined): { group: string; version: string } {
  const v = apiVersion ?? '';
  const slash = v.indexOf('/');
  return slash < 0 ? { group: '', version: v } : { group: v.slice(0, slash), version: v.slice(slash + 1) };
}
