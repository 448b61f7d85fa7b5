// A dry run's answer: what would change, per object, as a unified diff of the YAML.
import { createTwoFilesPatch } from 'diff';
import { stringify } from 'yaml';
import type { KubernetesObject } from '@kubernetes/client-node';
import { describe } from './errors.ts';

/** The server's bookkeeping, which changes on every write and says nothing about the deploy. */
const NOISE = ['managedFields', 'resourceVersion', 'generation', 'uid', 'creationTimestamp'] as const;

/** "" when the object would not change; a created object diffs against nothing. */
export function objectDiff(live: KubernetesObject | undefined, wouldBe: KubernetesObject): string {
  const before = live ? stringify(comparable(live), { sortMapEntries: true, lineWidth: 0 }) : '';
  const after = stringify(comparable(wouldBe), { sortMapEntries: true, lineWidth: 0 });
  if (before === after) return '';
  const name = describe(wouldBe);
  return createTwoFilesPatch(`live: ${name}`, `deploy: ${name}`, before, after, undefined, undefined, { context: 3 });
}

function comparable(obj: KubernetesObject): unknown {
  // Status is the controllers' word, not the deploy's: a dry run echoes it unchanged.
  const { status: _status, metadata = {}, ...rest } = obj as KubernetesObject & { status?: unknown };
  const meta: Record<string, unknown> = { ...metadata };
  for (const k of NOISE) delete meta[k];
  return { ...rest, metadata: meta };
}
