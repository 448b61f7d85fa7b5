// List, then watch from the list's resourceVersion; resume where a dropped watch left
// off, list again when the server says that version is gone (410). Events, not polling.
// A list answers the whole set: what the stream knew and the new list lacks was deleted
// while nobody watched, and is reported deleted. A list refused for a transient reason
// (the client's own retries spent: an API server restarting, a control-plane upgrade) is
// tried again until the caller stops the stream; only a permanent refusal ends it.
//
// Not client-node's ListWatch/informer, though its relist also replaces the known set: in
// 2.0 it stops for good at the first failed list or refused watch (an `error` event, no
// retry), so the retry around it would be this loop again; it reconnects after a watch that
// ended quietly with a delay doubling up to 30 s (a wait would see readiness that late); it
// asks for no bookmarks or server-side timeout; it keys objects by name, where the wait keys
// Pods by uid (a StatefulSet Pod recreated under its name is another Pod); and it holds one
// Watch built on one KubeConfig, where each watch here takes the cluster's current channel
// (src/cluster/client.ts: a moved endpoint or rotated CA, its pool, its fresh token).
import type { KubernetesObject } from '@kubernetes/client-node';
import { apiError } from '../apply/errors.ts';
import type { KubeClient } from '../cluster/client.ts';
import { backoffMs } from '../cluster/retry.ts';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchSpec {
  apiVersion: string;
  kind: string;
  namespace: string;
  labelSelector?: string;
  fieldSelector?: string;
}

/** Between lists refused for a transient reason: each list call has already retried within its own budget. */
const RELIST = { baseMs: 500, capMs: 5_000 };

const identity = (o: KubernetesObject) => o.metadata?.uid ?? `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

/**
 * Streams until `signal` aborts; rejects (with the list's own error) only when the server
 * refuses the list for good: RBAC, a namespace that is gone. `onListed` is told after each
 * list has been reported in full, an empty one included.
 */
export async function listWatch(
  client: KubeClient,
  spec: WatchSpec,
  onEvent: (type: EventType, obj: KubernetesObject) => void,
  signal: AbortSignal,
  onListed?: () => void,
): Promise<void> {
  const query: Record<string, string> = {
    ...(spec.labelSelector && { labelSelector: spec.labelSelector }),
    ...(spec.fieldSelector && { fieldSelector: spec.fieldSelector }),
  };
  /** What the stream has reported and not yet reported deleted, by uid. */
  const known = new Map<string, KubernetesObject>();
  const report = (type: EventType, obj: KubernetesObject) => {
    if (type === 'DELETED') known.delete(identity(obj));
    else known.set(identity(obj), obj);
    onEvent(type, obj);
  };
  let failures = 0;
  let refused = 0;
  while (!signal.aborted) {
    let list: Awaited<ReturnType<KubeClient['list']>>;
    try {
      list = await client.list(spec.apiVersion, spec.kind, spec.namespace, query);
    } catch (err) {
      if (signal.aborted) return;
      // Judged as the apply path judges it (src/apply/errors.ts): 429, 5xx and transport failures may pass.
      if (!apiError(err, { apiVersion: spec.apiVersion, kind: spec.kind, metadata: { namespace: spec.namespace } }, 'list').retryable) throw err;
      await pause(backoffMs(refused++, RELIST), signal);
      continue;
    }
    if (signal.aborted) return;
    refused = 0;
    const listed = new Set(list.items.map(identity));
    for (const [id, obj] of known) if (!listed.has(id)) report('DELETED', obj);
    for (const item of list.items) report('ADDED', item);
    onListed?.();
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
              if (type !== 'BOOKMARK') report(type as EventType, { apiVersion: spec.apiVersion, kind: spec.kind, ...obj });
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
