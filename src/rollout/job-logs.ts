// The end of a failed Job's story: the last lines its newest Pod logged.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { KubeClient } from '../cluster/client.ts';

export const LOG_TAIL_LINES = 50;

/** Undefined when the cluster cannot serve the log (no Pod left, node unreachable, no RBAC for pods/log). */
export async function jobLogTail(client: KubeClient, job: KubernetesObject, namespace: string, container?: string): Promise<string[] | undefined> {
  try {
    const { items } = await client.list('v1', 'Pod', namespace, { labelSelector: `batch.kubernetes.io/job-name=${job.metadata?.name ?? ''}` });
    const newest = items.sort((a, b) => String(b.metadata?.creationTimestamp ?? '').localeCompare(String(a.metadata?.creationTimestamp ?? '')))[0];
    if (!newest) return undefined;
    const containers = ((newest as { spec?: { containers?: { name: string }[] } }).spec?.containers ?? []).map((c) => c.name);
    const name = container !== undefined && containers.includes(container) ? container : containers[0];
    const text = await client.text(`/api/v1/namespaces/${namespace}/pods/${newest.metadata?.name ?? ''}/log`, {
      tailLines: String(LOG_TAIL_LINES),
      ...(name !== undefined && { container: name }),
    });
    return text.split('\n').filter((l, i, all) => l !== '' || i < all.length - 1).slice(-LOG_TAIL_LINES);
  } catch {
    return undefined;
  }
}
