// List, then watch from the list's resourceVersion; resume where a dropped watch left
// off, list again when the server says that version is gone (410). Events, not polling.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { KubeClient } from '../cluster/client.ts';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchSpec {
  apiVersion: string;
  kind: string;
  namespace: string;
  labelSelector?: string;
  fieldSelector?: string;
}

/** Streams until `signal` aborts; rejects only when the server refuses the list itself. */
export async function listWatch(client: KubeClient, spec: WatchSpec, onEvent: (type: EventType, obj: KubernetesObject) => void, signal: AbortSignal): Promise<void> {
  const query: Record<string, string> = {
    ...(spec.labelSelector && { labelSelector: spec.labelSelector }),
    ...(spec.fieldSelector && { fieldSelector: spec.fieldSelector }),
  };
  let failures = 0;
  while (!signal.aborted) {
    const list = await client.list(spec.apiVersion, spec.kind, spec.namespace, query);
    for (const item of list.items) onEvent('ADDED', item);
    let resourceVersion = list.resourceVersion;
    let relist = false;
    while (!signal.aborted && !relist) {
      const ended = await new Promise<unknown>((resolve) => {
        let controller: AbortController | undefined;
        const stop = () => {
          controller?.abort();
          resolve(undefined);
        };
        signal.addEventListener('abort', stop, { once: true });
        client
          .watch(
            list.path,
            { ...query, resourceVersion, allowWatchBookmarks: 'true', timeoutSeconds: '25' },
            (type, obj) => {
              failures = 0;
              if (type === 'ERROR') {
                // A Status: 410 Gone means our resourceVersion is too old.
                relist ||= (obj as { code?: number }).code === 410;
                return;
              }
              resourceVersion = obj.metadata?.resourceVersion ?? resourceVersion;
              if (type !== 'BOOKMARK') onEvent(type as EventType, { apiVersion: spec.apiVersion, kind: spec.kind, ...obj });
            },
            (err) => {
              signal.removeEventListener('abort', stop);
              resolve(err);
            },
          )
          .then((c) => {
            controller = c;
            if (signal.aborted) c.abort();
          }, resolve);
      });
      if (signal.aborted) return;
      const status = (ended as { statusCode?: number } | null | undefined)?.statusCode;
      if (status === 401) await client.invalidateCredentials().catch(() => undefined);
      if (status === 410) relist = true;
      if (ended) {
        // A dropped connection or a refused watch: back off a little, then resume.
        failures++;
        await pause(Math.min(2000, 100 * 2 ** failures), signal);
        if (failures > 3) relist = true;
      }
    }
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}
