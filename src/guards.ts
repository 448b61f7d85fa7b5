// Narrowing for parsed YAML/JSON before a schema has looked at it.
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
