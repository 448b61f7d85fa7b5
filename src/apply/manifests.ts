// Multi-document YAML manifests into plain objects, checked for the fields every
// apply needs. Schema checks beyond these are the API server's (dry-run) job.
import { parseAllDocuments } from 'yaml';
import type { KubernetesObject } from '@kubernetes/client-node';
import { isRecord } from '../guards.ts';

export function parseManifests(text: string): KubernetesObject[] {
  const objects: KubernetesObject[] = [];
  parseAllDocuments(text).forEach((doc, i) => {
    if (doc.errors.length > 0) throw new Error(`document ${i + 1}: ${doc.errors[0]?.message ?? 'invalid YAML'}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return; // empty document, e.g. a trailing `---`
    const items = isList(value) ? value.items : [value];
    items.forEach((item) => objects.push(checkObject(item, `document ${i + 1}`)));
  });
  return objects;
}

function isList(v: unknown): v is { items: unknown[] } {
  return isRecord(v) && typeof v.kind === 'string' && v.kind.endsWith('List') && Array.isArray(v.items);
}

function checkObject(v: unknown, where: string): KubernetesObject {
  if (!isRecord(v)) throw new Error(`${where}: not a Kubernetes object`);
  const meta = v.metadata;
  if (typeof v.apiVersion !== 'string' || v.apiVersion === '') throw new Error(`${where}: missing apiVersion`);
  if (typeof v.kind !== 'string' || v.kind === '') throw new Error(`${where}: missing kind`);
  if (!isRecord(meta) || typeof meta.name !== 'string' || meta.name === '') {
    throw new Error(`${where} (${v.kind}): missing metadata.name (generateName is not supported: applies must be idempotent)`);
  }
  return v;
}
