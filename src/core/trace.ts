// Spans for a deploy and its stages (lookup, token, apply, wait, rollback, report). Off unless
// src/telemetry/ installs a tracer (OTEL_TRACES_EXPORTER=gcp): then every stage pays one check
// and nothing of OpenTelemetry is loaded. A span's id rides in the request's log trace, so the
// lines a stage logs name their span and a child continues its parent.
import { currentLogTrace, withLogTrace, type LogTrace } from './log.ts';

export type Attributes = Record<string, string | number | boolean | undefined>;

export interface Span {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
  set(attributes: Attributes): void;
  end(error?: unknown): void;
}

export interface Tracer {
  /** A span under `parent` (the request's incoming context, or the enclosing stage), or a new trace's root. */
  start(name: string, attributes: Attributes, parent: { traceId: string; spanId: string; sampled: boolean } | undefined): Span;
  /** Exports what ended; resolves by the bound whatever happens. */
  flush(): Promise<void>;
}

let tracer: Tracer | undefined;
let project: string | undefined;

/** Installs the tracer (undefined: off). `gcpProject` names the traces of the log lines a new root starts. */
export function installTracer(t: Tracer | undefined, gcpProject?: string): void {
  tracer = t;
  project = gcpProject;
}

export async function inSpan<T>(name: string, attributes: Attributes, fn: (set: (a: Attributes) => void) => Promise<T>): Promise<T> {
  if (!tracer) return fn(() => undefined);
  const outer = currentLogTrace();
  const parent = outer?.traceId !== undefined && outer.spanId !== undefined ? { traceId: outer.traceId, spanId: outer.spanId, sampled: outer.sampled ?? false } : undefined;
  const span = tracer.start(name, attributes, parent);
  const inner: LogTrace = { ...outer, traceId: span.traceId, spanId: span.spanId, sampled: span.sampled, trace: outer?.trace ?? (project ? `projects/${project}/traces/${span.traceId}` : undefined) };
  try {
    const result = await withLogTrace(inner, () => fn((a) => span.set(a)));
    span.end();
    return result;
  } catch (err) {
    span.end(err);
    throw err;
  }
}

/** Before an answer: the request's spans exported (Cloud Run may throttle the CPU once it answered). */
export function flushTraces(): Promise<void> {
  return tracer?.flush() ?? Promise.resolve();
}
