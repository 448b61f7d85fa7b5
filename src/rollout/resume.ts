// A redelivered event whose deploy was cut short (its instance stopped, or its request's
// deadline came before the rollout ended) finds the event recorded and its objects applied,
// but their rollout never judged. This rebuilds what the rollout stage needs from the cluster
// alone: each workload as it is now, and for a Deployment what it ran before that deploy (its
// previous ReplicaSet's pod template, as `kubectl rollout undo` finds it), so the rollout
// stage can wait and, on failure, roll back as it does for a deploy it wrote itself.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { KubeClient } from '../cluster/client.ts';
import type { Applied } from '../apply/apply.ts';
import { apiError } from '../apply/errors.ts';
import { ANNOTATIONS, EVENT_STAMPS, STAMP_KEYS, isWorkload } from '../apply/render.ts';
import { field, isRecord } from '../guards.ts';
import { judgeChanges } from './ownership.ts';

const REVISION = 'deployment.kubernetes.io/revision';

/**
 * The deploy of the recorded event, as far as the cluster tells it. `sent`: the target's
 * workloads as this delivery renders them; none for an image-only target, whose Deployment
 * is `imageOnly`. Undefined when someone else changed a workload's spec after that deploy:
 * whatever its rollout does now is their change, not this event's, and stays theirs.
 */
export async function appliedEarlier(client: KubeClient, sent: readonly KubernetesObject[], namespace: string, fieldManager: string, imageOnly?: string): Promise<Applied[] | undefined> {
  const workloads = imageOnly !== undefined
    ? [{ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: imageOnly } }]
    : sent.filter(isWorkload);
  const applied: Applied[] = [];
  for (const obj of workloads) {
    const ref = { ...obj, metadata: { ...obj.metadata, namespace } };
    const live = await client.get(ref).catch((err: unknown) => { throw apiError(err, ref, 'read'); });
    if (!live) continue; // deleted since: nothing to wait for or restore
    // The apply's answer is gone: managedFields tell whether someone else wrote our fields since (src/rollout/ownership.ts).
    if (judgeChanges(live, fieldManager).changed) return undefined;
    const before = live.kind === 'Deployment' ? await previousRevision(client, live) : undefined;
    const body = imageOnly !== undefined ? imagePatch(ref, live) : ref;
    if (!body) continue;
    applied.push({
      // Only a workload with a known earlier state counts as changed: the rollout stage rolls back nothing else.
      report: { kind: live.kind ?? '', name: live.metadata?.name ?? '', namespace, action: before ? 'configured' : 'unchanged' },
      change: { applied: body, before, after: live, imageOnly: imageOnly !== undefined },
    });
  }
  return applied;
}

/** The Deployment with the pod template and stamps of its previous revision; undefined when it has none. */
async function previousRevision(client: KubeClient, live: KubernetesObject): Promise<KubernetesObject | undefined> {
  const current = Number(live.metadata?.annotations?.[REVISION]);
  if (!Number.isInteger(current) || current < 2) return undefined;
  const matchLabels = field(live, 'spec', 'selector', 'matchLabels');
  const labelSelector = isRecord(matchLabels) ? Object.entries(matchLabels).map(([k, v]) => `${k}=${String(v)}`).join(',') : '';
  const namespace = live.metadata?.namespace ?? '';
  const { items } = await client.list('apps/v1', 'ReplicaSet', namespace, labelSelector ? { labelSelector } : {}).catch((err: unknown) => {
    throw apiError(err, { apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { namespace } }, 'list');
  });
  let previous: { revision: number; rs: KubernetesObject } | undefined;
  for (const rs of items) {
    if (!rs.metadata?.ownerReferences?.some((o) => o.uid === live.metadata?.uid)) continue;
    const revision = Number(rs.metadata.annotations?.[REVISION]);
    if (Number.isInteger(revision) && revision < current && revision > (previous?.revision ?? 0)) previous = { revision, rs };
  }
  const template = field(previous?.rs, 'spec', 'template');
  if (!previous || !isRecord(template)) return undefined;
  // The controller's label, not part of what was deployed.
  const restored = structuredClone(template) as { metadata?: { labels?: Record<string, string> } };
  delete restored.metadata?.labels?.['pod-template-hash'];
  const stamps = Object.fromEntries(Object.entries(previous.rs.metadata?.annotations ?? {}).filter(([k]) => STAMP_KEYS.has(k)));
  return { ...live, metadata: { ...live.metadata, annotations: { ...live.metadata?.annotations, ...stamps } }, spec: { ...(live as { spec?: object }).spec, template: restored } } as KubernetesObject;
}

/** An image-only target's write: the container running the recorded image, and the event stamps. */
function imagePatch(ref: KubernetesObject, live: KubernetesObject): KubernetesObject | undefined {
  const image = live.metadata?.annotations?.[ANNOTATIONS.image];
  const containers = field(live, 'spec', 'template', 'spec', 'containers');
  const container: unknown = Array.isArray(containers) ? containers.find((c) => isRecord(c) && c.image === image) : undefined;
  if (!isRecord(container) || typeof container.name !== 'string') return undefined;
  const annotations: Record<string, string> = {};
  for (const k of EVENT_STAMPS) {
    const v = live.metadata?.annotations?.[k];
    if (v !== undefined) annotations[k] = v;
  }
  return { ...ref, metadata: { ...ref.metadata, annotations }, spec: { template: { spec: { containers: [{ name: container.name, image }] } } } } as KubernetesObject;
}
