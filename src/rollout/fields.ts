// Readers for the status and spec fields of live objects, which KubernetesObject does not type.
// They accept both raw JSON and client-node's models (which use the same field names).
import type { KubernetesObject } from '@kubernetes/client-node';
import { field } from '../guards.ts';

export { field };

/** "apps/v1" + Deployment → "apps/Deployment"; "v1" + Pod → "Pod". */
export function kindKey(obj: KubernetesObject): string {
  const apiVersion = obj.apiVersion ?? '';
  const slash = apiVersion.indexOf('/');
  const kind = obj.kind ?? '';
  return slash < 0 ? kind : `${apiVersion.slice(0, slash)}/${kind}`;
}

export function num(obj: unknown, ...path: string[]): number | undefined {
  const v = field(obj, ...path);
  return typeof v === 'number' ? v : undefined;
}

export function str(obj: unknown, ...path: string[]): string | undefined {
  const v = field(obj, ...path);
  return typeof v === 'string' ? v : undefined;
}

export function list(obj: unknown, ...path: string[]): unknown[] {
  const v = field(obj, ...path);
  return Array.isArray(v) ? v : [];
}
