// The tracer src/core/trace.ts uses when tracing is on: OpenTelemetry's SDK, exporting to Cloud
// Trace (or, in tests, to the exporter given). Loaded with import() only then, so a deploy
// function that does not trace never loads it.
import { SpanStatusCode, TraceFlags, ROOT_CONTEXT, trace as otelTrace } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { Attributes, Tracer } from '../core/trace.ts';
import type { Logger } from '../core/log.ts';

/** How long an answer waits for its spans to be exported. */
const FLUSH_BOUND_MS = 2_000;

export interface TracerSettings {
  service: string;
  version?: string | undefined;
  log: Logger;
  /** Tests: an in-memory exporter, each span exported as it ends. Default: Cloud Trace, in batches. */
  exporter?: SpanExporter | undefined;
}

export async function otelTracer(settings: TracerSettings): Promise<Tracer & { close(): Promise<void> }> {
  const exporter = reporting(settings.exporter ?? new (await import('@google-cloud/opentelemetry-cloud-trace-exporter')).TraceExporter(), settings.log);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': settings.service, ...(settings.version !== undefined && { 'service.version': settings.version }) }),
    // A sampled incoming request is traced; an unsampled one is not (Cloud Run samples its own).
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    spanProcessors: [settings.exporter ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('gke-deployer');
  return {
    start(name, attributes, parent) {
      const context = parent ? otelTrace.setSpanContext(ROOT_CONTEXT, { traceId: parent.traceId, spanId: parent.spanId, traceFlags: parent.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE, isRemote: true }) : ROOT_CONTEXT;
      const span = tracer.startSpan(name, { attributes: defined(attributes) }, context);
      const { traceId, spanId, traceFlags } = span.spanContext();
      return {
        traceId,
        spanId,
        sampled: (traceFlags & 1) === 1,
        set: (a) => span.setAttributes(defined(a)),
        end(error) {
          if (error !== undefined) {
            const e = error instanceof Error ? error : new Error(JSON.stringify(error));
            span.recordException(e);
            span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
          }
          span.end();
        },
      };
    },
    flush: () => Promise.race([provider.forceFlush(), new Promise<void>((resolve) => setTimeout(resolve, FLUSH_BOUND_MS).unref())]).catch(() => undefined),
    close: () => provider.shutdown(),
  };
}

function defined(a: Attributes): Record<string, string | number | boolean> {
  return Object.fromEntries(Object.entries(a).filter((e): e is [string, string | number | boolean] => e[1] !== undefined));
}

/** The exporter, with a failed export said as a WARNING (tracing never fails a deploy). */
function reporting(inner: SpanExporter, log: Logger): SpanExporter {
  return {
    export(spans: ReadableSpan[], done: (result: ExportResult) => void) {
      inner.export(spans, (result) => {
        if (result.code !== ExportResultCode.SUCCESS) log('WARNING', `trace export failed: ${result.error?.message ?? 'unknown error'}`, { spans: spans.length });
        done(result);
      });
    },
    shutdown: () => inner.shutdown(),
    ...(inner.forceFlush && { forceFlush: () => inner.forceFlush!() }),
  };
}
