// Server-side apply treats each apply as its manager's whole intent, so two targets
// touching one object must not share a manager: each target applies as its own.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { KubeClient } from '../cluster/client.ts';

/** What every target applied as before managers were per target. */
export const LEGACY_FIELD_MANAGER = 'gke-deployer';

export function fieldManagerFor(target: string): string {
  return `gke-deployer/${target}`;
}

/**
 * Hands the fields an object's legacy apply owns to the target's manager, by renaming the
 * managedFields entry (the upgrade path kubectl uses for client- to server-side apply).
 * Conditional on the resourceVersion it read; a no-op once done or when there is nothing to move.
 */
export async function migrateManager(client: KubeClient, live: KubernetesObject | undefined, fieldManager: string): Promise<KubernetesObject | undefined> {
  const entries = live?.metadata?.managedFields ?? [];
  const legacy = entries.findIndex((m) => m.manager === LEGACY_FIELD_MANAGER && m.operation === 'Apply' && !m.subresource);
  if (!live || legacy < 0 || entries.some((m) => m.manager === fieldManager && m.operation === 'Apply')) return live;
  return client.jsonPatch(live, [
    { op: 'test', path: '/metadata/resourceVersion', value: live.metadata?.resourceVersion },
    { op: 'replace', path: `/metadata/managedFields/${legacy}/manager`, value: fieldManager },
  ]);
}
