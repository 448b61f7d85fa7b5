// Create-or-patch with server-side apply. A deploy of several objects is checked as
// a whole first (server-side dry-run of each), so one bad object applies nothing.
import { isDeepStrictEqual } from 'node:util';
import type { KubernetesObject } from '@kubernetes/client-node';
import { ApiException } from '@kubernetes/client-node/dist/gen/apis/exception.js';
import type { KubeClient } from '../cluster/client.ts';
import type { Action, AppliedObject } from '../core/result.ts';
import { DeployError } from '../errors.ts';
import { apiError, describe, statusMessage } from './errors.ts';
import { migrateManager } from './field-manager.ts';
import { isRecord } from '../guards.ts';
import type { Knowledge } from './lock.ts';
import { inPool, inPoolSettled } from '../pool.ts';
import { ANNOTATIONS, EVENT_STAMPS, STAMP_KEYS, isWorkload, stampAnnotations, type Stamp } from './render.ts';

// Enough requests in flight to hide the round trips, few enough not to flood the API server
// (its priority and fairness queues).
const APPLY_CONCURRENCY = 8;

/** One applied object: what was sent, what was there before, what the server made of it. */
export interface Change {
  applied: KubernetesObject;
  before: KubernetesObject | undefined;
  after: KubernetesObject;
  /** Only the image (and stamps) are this deployer's: an image-only target. */
  imageOnly: boolean;
}

export interface Applied {
  report: AppliedObject;
  change: Change;
}

export interface ApplyOptions {
  namespace: string;
  /** Cluster-scoped kinds the target may apply. */
  clusterScoped: readonly string[];
  force: boolean;
  dryRun: boolean;
  /** The target's own field manager (fieldManagerFor). */
  fieldManager: string;
  /** Re-applying the recorded image: the recorded event stays the one that set it. */
  reconcile?: boolean;
  /** This instance's own last applies, under an unbroken Lease tenure (src/apply/lock.ts). */
  known?: Knowledge;
}

export async function applyObjects(client: KubeClient, objects: readonly KubernetesObject[], opts: ApplyOptions): Promise<Applied[]> {
  // Discovery is cached per connection: no request once warm.
  const inScope = await Promise.all(objects.map((obj) => scope(client, obj, opts)));
  const live = await inPool(inScope, APPLY_CONCURRENCY, (obj) => liveState(client, obj, opts));
  const scoped = inScope.map((obj, i) => keepStamps(obj, live[i]!.obj, opts.reconcile));
  const replace = await inPool(scoped, APPLY_CONCURRENCY, (obj, i) => mustReplace(client, obj, live[i]!.obj, opts));
  if (scoped.length > 1 && !opts.dryRun) {
    // Every object must pass before any is applied. Single-object deploys skip this:
    // their one apply is already all-or-nothing. (Existing Jobs were dry-run by mustReplace.)
    const results = await inPoolSettled(scoped, APPLY_CONCURRENCY, (obj, i) =>
      isExistingJob(obj, live[i]!.obj) ? Promise.resolve(obj) : client.apply(obj, { dryRun: true, force: opts.force, fieldManager: opts.fieldManager }),
    );
    const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [apiError(r.reason, scoped[i]!, 'dry-run apply')] : []));
    if (failures.length > 0) throw combine(failures);
  }
  const one = async (obj: KubernetesObject, i: number): Promise<Applied> => {
    const { obj: before, known } = live[i]!;
    if (replace[i] && before) {
      const after = opts.dryRun ? before : await replaceJob(client, obj, before, opts.fieldManager);
      return { report: entry(obj, 'replaced'), change: { applied: obj, before, after, imageOnly: false } };
    }
    let after: KubernetesObject;
    try {
      after = await client.apply(obj, { dryRun: opts.dryRun, force: opts.force, fieldManager: opts.fieldManager });
    } catch (err) {
      throw apiError(err, obj, 'apply');
    }
    if (known && before) return knownChange(obj, before, after);
    return { report: report(obj, before, after), change: { applied: obj, before, after, imageOnly: false } };
  };
  // Cluster-scoped objects (Namespaces, CRDs, ClusterRoles) first: the others may need them.
  // Within each group, independent applies run at once; results keep the manifests' order.
  const applied = new Array<Applied>(scoped.length);
  for (const clusterScoped of [true, false]) {
    const group = scoped.flatMap((obj, i) => (!obj.metadata?.namespace === clusterScoped ? [i] : []));
    const done = await inPool(group, APPLY_CONCURRENCY, (i) => one(scoped[i]!, i));
    group.forEach((i, j) => (applied[i] = done[j]!));
  }
  return applied;
}

/** The key of an object within one target (namespaced objects all live in the target's namespace). */
export function objectKey(obj: KubernetesObject): string {
  return `${obj.apiVersion ?? ''}|${obj.kind ?? ''}|${obj.metadata?.name ?? ''}`;
}

/**
 * The object as it is before this deploy: what this instance's own last apply answered,
 * where its unbroken Lease tenure makes that the live state as far as this deployer's
 * fields go (src/apply/lock.ts); otherwise read. Never for a Job (its status decides a
 * replace), and never for a forced apply: that may take back a change someone made to
 * this target's fields since, which only a read can report as `configured`. Without
 * force such a change makes the apply fail with a conflict instead.
 */
async function liveState(client: KubeClient, obj: KubernetesObject, opts: ApplyOptions): Promise<{ obj: KubernetesObject | undefined; known: boolean }> {
  const known = opts.force || opts.dryRun || obj.kind === 'Job' ? undefined : opts.known?.get(objectKey(obj));
  if (known) return { obj: known, known: true };
  return { obj: await migrate(client, await get(client, obj), opts), known: false };
}

/**
 * Created / configured / unchanged without a read: another uid means the object was
 * (re)created by this apply; otherwise the fields this deploy applies are compared, as
 * the server answered them last time and now, stamps aside. Only this deployer's fields:
 * what controllers or people change elsewhere in the object (a Deployment's revision
 * annotation, an HPA's replicas) is not this deploy's doing.
 */
function knownChange(obj: KubernetesObject, known: KubernetesObject, after: KubernetesObject): Applied {
  if (known.metadata?.uid !== after.metadata?.uid) return { report: entry(obj, 'created'), change: { applied: obj, before: undefined, after, imageOnly: false } };
  const shape = intentShape(obj);
  const action = isDeepStrictEqual(project(known, shape), project(after, shape)) ? 'unchanged' : 'configured';
  return { report: entry(obj, action), change: { applied: obj, before: known, after, imageOnly: false } };
}

/** The applied object without its stamps: the fields whose values the report is about. */
function intentShape(obj: KubernetesObject): unknown {
  const annotations = Object.fromEntries(Object.entries(obj.metadata?.annotations ?? {}).filter(([k]) => !STAMP_KEYS.has(k)));
  return { ...obj, metadata: { ...obj.metadata, annotations } };
}

/** `value` cut down to the keys of `shape`, recursively through objects; lists are taken whole. */
function project(value: unknown, shape: unknown): unknown {
  if (!isRecord(shape) || !isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(shape)) out[k] = project(value[k], shape[k]);
  return out;
}

/**
 * A Job's pod template cannot change. A finished Job whose template the deploy changes
 * (a new image for a migration, say) is deleted and created anew; a running one is
 * left to finish, and the deploy answers 409.
 */
async function mustReplace(client: KubeClient, obj: KubernetesObject, live: KubernetesObject | undefined, opts: ApplyOptions): Promise<boolean> {
  if (!isExistingJob(obj, live)) return false;
  try {
    await client.apply(obj, { dryRun: true, force: opts.force, fieldManager: opts.fieldManager });
    return false;
  } catch (err) {
    if (!(err instanceof ApiException && err.code === 422 && statusMessage(err).includes('field is immutable'))) throw apiError(err, obj, 'dry-run apply');
  }
  if (!jobFinished(live)) {
    throw new DeployError('JOB_RUNNING', `${describe(obj)} is still running and its pod template cannot change; deploy again once it has finished`);
  }
  return true;
}

/** Whether a Job has ended, either way (its Complete or Failed condition is True). */
export function jobFinished(job: KubernetesObject): boolean {
  const conditions = (job as { status?: { conditions?: { type: string; status: string }[] } }).status?.conditions ?? [];
  return conditions.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
}

function isExistingJob(obj: KubernetesObject, live: KubernetesObject | undefined): live is KubernetesObject {
  return obj.kind === 'Job' && live !== undefined;
}

async function replaceJob(client: KubeClient, obj: KubernetesObject, live: KubernetesObject, fieldManager: string): Promise<KubernetesObject> {
  try {
    await client.delete(obj, { uid: live.metadata?.uid ?? '' });
    // Background deletion removes the Job itself at once; wait until it is gone.
    for (let i = 0; (await client.get(obj)) !== undefined; i++) {
      if (i >= 50) throw new DeployError('CLUSTER_UNAVAILABLE', `${describe(obj)} was deleted but is still there after 10 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
    return await client.apply(obj, { dryRun: false, force: false, fieldManager });
  } catch (err) {
    throw apiError(err, obj, 'replace');
  }
}

/** Sets only the image of one container of an existing Deployment. */
export async function applyImage(
  client: KubeClient,
  opts: ApplyOptions & { deployment: string; container?: string; image: string; stamp: Stamp },
): Promise<Applied[]> {
  const ref: KubernetesObject = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: opts.deployment, namespace: opts.namespace } };
  const live = await migrate(client, await get(client, ref), opts);
  if (!live) {
    throw new DeployError('DEPLOYMENT_NOT_FOUND', `Deployment ${opts.namespace}/${opts.deployment} does not exist; an image-only target updates an existing Deployment`);
  }
  const containers = ((live as { spec?: { template?: { spec?: { containers?: { name: string }[] } } } }).spec?.template?.spec?.containers ?? []).map((c) => c.name);
  const container = opts.container ?? (containers.length === 1 ? containers[0] : undefined);
  if (container === undefined || !containers.includes(container)) {
    throw new DeployError(
      'CONTAINER_NOT_FOUND',
      `Deployment ${opts.namespace}/${opts.deployment} has containers [${containers.join(', ')}]; ${opts.container === undefined ? 'set the target\'s "container"' : `none is named "${opts.container}"`}`,
    );
  }
  // Only the fields this deployer owns: the image and its stamps.
  const patch: KubernetesObject & { spec: unknown } = {
    ...ref,
    metadata: { ...ref.metadata, annotations: stampAnnotations(opts.stamp) },
    spec: { template: { spec: { containers: [{ name: container, image: opts.image }] } } },
  };
  const body = keepStamps(patch, live, opts.reconcile);
  let after: KubernetesObject;
  try {
    after = await client.apply(body, { dryRun: opts.dryRun, force: opts.force, fieldManager: opts.fieldManager });
  } catch (err) {
    throw apiError(err, patch, 'apply');
  }
  return [{ report: report(patch, live, after), change: { applied: body, before: live, after, imageOnly: true } }];
}

/**
 * The image this deployer last applied to the target, as its objects record it, and the
 * live object that records it (its stamps name the event that set it); a reconcile
 * re-applies it. Workloads are asked first; any surviving object will do, so a deleted
 * Deployment can be recreated from its Service's stamp.
 */
export async function recordedImage(client: KubeClient, objects: readonly KubernetesObject[], namespace: string): Promise<{ image: string; live: KubernetesObject } | undefined> {
  const ordered = [...objects].sort((a, b) => Number(!isWorkload(a)) - Number(!isWorkload(b)));
  for (const obj of ordered) {
    const live = await get(client, { ...obj, metadata: { ...obj.metadata, namespace } });
    const image = live?.metadata?.annotations?.[ANNOTATIONS.image];
    if (live && image) return { image, live };
  }
  return undefined;
}

async function scope(client: KubeClient, obj: KubernetesObject, opts: ApplyOptions): Promise<KubernetesObject> {
  let namespaced: boolean | undefined;
  try {
    namespaced = await client.isNamespaced(obj.apiVersion ?? '', obj.kind ?? '');
  } catch (err) {
    throw apiError(err, obj, 'discover');
  }
  if (namespaced === undefined) {
    throw new DeployError('INVALID_MANIFEST', `${describe(obj)}: the cluster serves no kind ${obj.kind} in ${obj.apiVersion}`);
  }
  if (namespaced) return { ...obj, metadata: { ...obj.metadata, namespace: opts.namespace } };
  if (!opts.clusterScoped.includes(obj.kind ?? '')) {
    throw new DeployError(
      'KIND_NOT_ALLOWED',
      `${describe(obj)} is cluster-scoped; list "${obj.kind}" in the target's clusterScoped to allow it`,
    );
  }
  const { namespace: _ignored, ...metadata } = obj.metadata ?? {};
  return { ...obj, metadata };
}

/**
 * The request-id stamp names the deploy that set the current image: re-deploying the
 * same image keeps it, so an identical deploy of the same event is a true no-op (no
 * write, no new generation, no events). A reconcile also keeps the recorded event: it
 * is not a new one, so it neither moves the stale check nor writes when nothing drifted.
 */
function keepStamps(obj: KubernetesObject, live: KubernetesObject | undefined, reconcile = false): KubernetesObject {
  const was = live?.metadata?.annotations;
  const now = obj.metadata?.annotations;
  if (!now || !was || was[ANNOTATIONS.image] !== now[ANNOTATIONS.image]) return obj;
  const keep = reconcile ? [ANNOTATIONS.requestId, ...EVENT_STAMPS] : [ANNOTATIONS.requestId];
  const kept = Object.fromEntries(keep.filter((k) => was[k] !== undefined).map((k) => [k, was[k]!]));
  return { ...obj, metadata: { ...obj.metadata, annotations: { ...now, ...kept } } };
}

/** Objects applied before managers were per target move to the target's manager first (not in a dry run). */
async function migrate(client: KubeClient, live: KubernetesObject | undefined, opts: ApplyOptions): Promise<KubernetesObject | undefined> {
  if (opts.dryRun || !live) return live;
  try {
    return await migrateManager(client, live, opts.fieldManager);
  } catch (err) {
    throw apiError(err, live, 'migrate field manager of');
  }
}

async function get(client: KubeClient, obj: KubernetesObject): Promise<KubernetesObject | undefined> {
  try {
    return await client.get(obj);
  } catch (err) {
    throw apiError(err, obj, 'read');
  }
}

function report(obj: KubernetesObject, before: KubernetesObject | undefined, after: KubernetesObject): AppliedObject {
  if (before === undefined) return entry(obj, 'created');
  return entry(obj, isDeepStrictEqual(content(before), content(after)) ? 'unchanged' : 'configured');
}

function entry(obj: KubernetesObject, action: Action): AppliedObject {
  return { kind: obj.kind ?? '', name: obj.metadata?.name ?? '', ...(obj.metadata?.namespace && { namespace: obj.metadata.namespace }), action };
}

/**
 * What a deploy is reported on: everything but status, the server's bookkeeping, and
 * this deployer's own stamps (a Service whose only change is its stamp is "unchanged").
 */
function content(obj: KubernetesObject): unknown {
  const { status: _status, metadata, ...rest } = obj as KubernetesObject & { status?: unknown };
  const { resourceVersion: _rv, managedFields: _mf, generation: _g, annotations = {}, ...meta } = metadata ?? {};
  const kept = Object.fromEntries(Object.entries(annotations).filter(([k]) => !STAMP_KEYS.has(k)));
  return { ...rest, metadata: { ...meta, annotations: kept } };
}


function combine(errors: DeployError[]): DeployError {
  if (errors.length === 1) return errors[0]!;
  const first = errors[0]!;
  return new DeployError(first.code, `${errors.length} objects failed validation, nothing was applied:\n${errors.map((e) => `- ${e.message}`).join('\n')}`);
}
