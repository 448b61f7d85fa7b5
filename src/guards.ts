// Narrowing for parsed YAML/JSON before a schema has looked at it.
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The value at `path` inside nested records, or undefined where the path breaks off. */
export function field(obj: unknown, ...path: string[]): unknown {
  let cur = obj;
  for (const key of path) cur = isRecord(cur) ? cur[key] : undefined;
  return cur;
}
