// Server-side apply treats each apply as its manager's whole intent, so two targets
// touching one object must not share a manager: each target applies as its own.
import type { KubernetesObject } from '@kubernetes/client-node';
import { ApiException } from '@kubernetes/client-node/dist/gen/apis/exception.js';
import type { KubeClient } from '../cluster/client.ts';

/** What every target applied as before managers were per target. */
export const LEGACY_FIELD_MANAGER = 'gke-deployer';

export function fieldManagerFor(target: string): string {
  return `gke-deployer/${target}`;
}

/** Reads again after a lost race this many times before giving up. */
const MIGRATE_ATTEMPTS = 5;

/**
 * Hands the fields an object's legacy apply owns to the target's manager, by renaming the
 * managedFields entry (the upgrade path kubectl uses for client- to server-side apply).
 * Conditional on the resourceVersion it read: when the object changed since (a controller
 * wrote status), the entry's index may have moved, so it reads again and retries.
 * A no-op once done or when there is nothing to move.
 */
export async function migrateManager(client: KubeClient, live: KubernetesObject | undefined, fieldManager: string): Promise<KubernetesObject | undefined> {
  for (let attempt = 1; ; attempt++) {
    const entries = live?.metadata?.managedFields ?? [];
    const legacy = entries.findIndex((m) => m.manager === LEGACY_FIELD_MANAGER && m.operation === 'Apply' && !m.subresource);
    if (!live || legacy < 0 || entries.some((m) => m.manager === fieldManager && m.operation === 'Apply')) return live;
    try {
      return await client.jsonPatch(live, [
        { op: 'test', path: '/metadata/resourceVersion', value: live.metadata?.resourceVersion },
        { op: 'replace', path: `/metadata/managedFields/${legacy}/manager`, value: fieldManager },
      ]);
    } catch (err) {
      // A failed `test` op answers 422 Invalid; a write in between may also answer 409.
      const lostRace = err instanceof ApiException && (err.code === 422 || err.code === 409);
      if (!lostRace || attempt >= MIGRATE_ATTEMPTS) throw err;
      live = await client.get(live);
    }
  }
}
