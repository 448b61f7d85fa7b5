// A held intent's record: one ConfigMap per target in the target's namespace, on its first
// cluster (`kubectl get configmaps -l gke-deployer/hold`). It carries the intent as it came,
// why it waits, and the event's stamps, so the stale rule (src/apply/order.ts) judges a newer
// intent against it as against a workload. Every change is a JSON patch conditional on the
// resourceVersion it was read at: two instances never both replace or release the same hold.
// A hold that ended is not deleted but closed (`state` says how), so the verbs stay those the
// ApplySet parent needs (get, create, patch) and the last decision stays readable.
import type { KubernetesObject } from '@kubernetes/client-node';
import { z } from 'zod';
import { ANNOTATIONS } from '../apply/render.ts';
import { eventOf } from '../apply/order.ts';
import { apiError } from '../apply/errors.ts';
import { ApiException, type KubeClient } from '../cluster/client.ts';
import type { DeployIntent } from '../core/intent.ts';
import { DeployError } from '../errors.ts';

export const HOLD_LABEL = 'gke-deployer/hold';

export interface Hold {
  intent: DeployIntent;
  /** Why it waits, as answered (`window "freeze" denies deploys now …; awaits approval …`). */
  reason: string;
  heldAt: string;
  /** An approval hold: when it expires unless approved. */
  expiresAt?: string;
  approvedBy?: string;
  approvedAt?: string;
}

/** The record as read: its hold (none once closed) and the object, whose resourceVersion the next change is conditional on. */
export interface HeldRecord {
  hold: Hold | undefined;
  live: KubernetesObject;
}

/** How a hold ended: deployed, rejected, expired (a superseded one is replaced, not closed). */
export type Closed = 'released' | 'rejected' | 'expired';

export function holdName(target: string): string {
  return `gke-deployer-hold-${target}`;
}

function ref(target: string, namespace: string): KubernetesObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: holdName(target), namespace } };
}

// Our own record, but anyone with edit rights on ConfigMaps can change it: read it as input.
const storedIntent = z.looseObject({
  target: z.string().min(1),
  image: z.string().min(1).optional(),
  dryRun: z.literal(false),
  requestId: z.string(),
  source: z.string(),
  eventId: z.string().min(1),
  eventTime: z.iso.datetime({ offset: true }),
});
const stored = z.object({
  intent: z.string(),
  reason: z.string(),
  heldAt: z.iso.datetime({ offset: true }),
  expiresAt: z.iso.datetime({ offset: true }).optional(),
  approvedBy: z.string().optional(),
  approvedAt: z.iso.datetime({ offset: true }).optional(),
});

/** The target's hold, or undefined; a record that does not parse is said, not acted on. */
export async function readHold(client: KubeClient, target: string, namespace: string): Promise<HeldRecord | undefined> {
  const r = ref(target, namespace);
  const live = await client.get(r).catch((err: unknown) => { throw apiError(err, r, 'read'); });
  if (!live) return undefined;
  const raw = (live as { data?: Record<string, unknown> }).data;
  if (typeof raw?.state === 'string') return { hold: undefined, live };
  const data = stored.safeParse(raw);
  const intent = data.success ? storedIntent.safeParse(parseJson(data.data.intent)) : undefined;
  if (!data.success || !intent?.success || intent.data.target !== target) {
    throw new DeployError('HOLD_INVALID', `the hold record ${namespace}/${holdName(target)} is not one this deployer wrote; delete it (kubectl delete configmap -n ${namespace} ${holdName(target)})`);
  }
  const { intent: _raw, ...rest } = data.data;
  return { hold: { ...rest, intent: intent.data }, live };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Writes `hold`: created, or replacing `previous` only as it was read. False when someone changed it first. */
export async function writeHold(client: KubeClient, hold: Hold, namespace: string, previous?: KubernetesObject): Promise<boolean> {
  const { intent } = hold;
  // The event's stamps, as a workload carries them: what a newer intent is judged against.
  const event = eventOf(intent);
  const annotations = {
    [ANNOTATIONS.eventId]: event.eventId,
    [ANNOTATIONS.eventTime]: event.eventTime,
    ...(event.commit !== undefined && { [ANNOTATIONS.commit]: event.commit }),
  };
  const data = {
      target: intent.target,
      ...(intent.image !== undefined && { image: intent.image }),
      eventId: intent.eventId,
      source: intent.source,
      reason: hold.reason,
      heldAt: hold.heldAt,
      ...(hold.expiresAt !== undefined && { expiresAt: hold.expiresAt }),
      ...(hold.approvedBy !== undefined && { approvedBy: hold.approvedBy }),
      ...(hold.approvedAt !== undefined && { approvedAt: hold.approvedAt }),
      intent: JSON.stringify(intent),
  };
  if (previous) return patched(client, previous, data, annotations);
  const body = {
    ...ref(intent.target, namespace),
    metadata: { name: holdName(intent.target), namespace, labels: { 'app.kubernetes.io/managed-by': 'gke-deployer', [HOLD_LABEL]: intent.target }, annotations },
    data,
  };
  try {
    await client.create(body);
    return true;
  } catch (err) {
    if (err instanceof ApiException && err.code === 409) return false;
    throw apiError(err, body, 'create');
  }
}

/** Closes the hold as it was read (it no longer holds anything); false when it changed meanwhile. */
export async function closeHold(client: KubeClient, live: KubernetesObject, state: Closed, at: string): Promise<boolean> {
  const was = (live as { data?: Record<string, string> }).data ?? {};
  const data = { state, at, ...(was.eventId !== undefined && { eventId: was.eventId }), ...(was.image !== undefined && { image: was.image }) };
  return patched(client, live, data, live.metadata?.annotations ?? {});
}

/** A JSON patch of data and annotations that applies only at the resourceVersion `live` was read at. */
async function patched(client: KubeClient, live: KubernetesObject, data: Record<string, string>, annotations: Record<string, string>): Promise<boolean> {
  try {
    await client.jsonPatch(live, [
      { op: 'test', path: '/metadata/resourceVersion', value: live.metadata?.resourceVersion },
      { op: 'replace', path: '/data', value: data },
      { op: 'replace', path: '/metadata/annotations', value: annotations },
    ]);
    return true;
  } catch (err) {
    // The test failed (changed meanwhile): kube-apiserver answers 422; gone is 404. Our own
    // body is strings in a ConfigMap, so a 422 here is never an invalid patch.
    if (err instanceof ApiException && [404, 422].includes(err.code)) return false;
    throw apiError(err, live, 'patch');
  }
}
