// Structured logs in the Cloud Logging JSON format: one line per event on stdout.
// Callers pass fields, never credentials; `redact` is a second line of defence, over
// field names, field values and the message text alike.
import { AsyncLocalStorage } from 'node:async_hooks';

export type Severity = 'DEBUG' | 'INFO' | 'NOTICE' | 'WARNING' | 'ERROR';

/** The trace a request's lines belong to: set once per request, read by every line logged while it runs. */
export interface LogTrace {
  /** projects/P/traces/T */
  trace?: string | undefined;
  /** T of the trace (32 hex digits): what a child span continues. */
  traceId?: string | undefined;
  /** The span the line was logged in (16 hex digits): the request's own, or a stage's when tracing is on. */
  spanId?: string | undefined;
  sampled?: boolean | undefined;
}

const requestTrace = new AsyncLocalStorage<LogTrace>();

/** Runs `fn` with every line it logs (progress, cluster access, reports) carrying `trace`. */
export function withLogTrace<T>(trace: LogTrace, fn: () => T): T {
  return requestTrace.run(trace, fn);
}

/** The trace of the request being served, if any (mutable: a queued delivery continues its sender's trace). */
export function currentLogTrace(): LogTrace | undefined {
  return requestTrace.getStore();
}

/** Error Reporting groups an ERROR line that has this type, even without a stack trace. */
const REPORTED_ERROR = 'type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent';

export interface LogFields {
  requestId?: string;
  target?: string;
  cluster?: string;
  durationMs?: number;
  /** projects/P/traces/T, from X-Cloud-Trace-Context. */
  trace?: string;
  [key: string]: unknown;
}

export type Logger = (severity: Severity, message: string, fields?: LogFields) => void;

const REDACTED = '[redacted]';
const SECRET_KEYS = /token|secret|password|authorization|signature|credential|^ca$|cadata/i;
/** Cheap test first: most lines hold none of these. */
const MAYBE_CREDENTIAL = /eyJ|ya29\.|bearer/i;
const CREDENTIALS: [RegExp, string][] = [
  // A JWT, or any one base64url segment of one (`{"` encodes as `eyJ`).
  [/eyJ[\w-]{10,}(?:\.[\w-]*){0,2}/g, REDACTED],
  // Google OAuth access tokens.
  [/ya29\.[\w.-]+/g, REDACTED],
  [/\b(bearer)\s+[^\s"',;]+/gi, `$1 ${REDACTED}`],
];
/** Values only shorter than this are not registered: they would blank out ordinary words. */
const MIN_SECRET_LENGTH = 8;
/** Longest first: a secret that holds another (a webhook URL, its token) is blanked whole. */
let secrets: string[] = [];

/** Values that must never appear in a log line (webhook secrets), registered at start-up. */
export function registerSecret(value: string | undefined): void {
  if (value !== undefined && value.length >= MIN_SECRET_LENGTH && !secrets.includes(value)) secrets = [...secrets, value].sort((a, b) => b.length - a.length);
}

export function redactText(text: string): string {
  let out = text;
  if (MAYBE_CREDENTIAL.test(out)) for (const [pattern, replacement] of CREDENTIALS) out = out.replace(pattern, replacement);
  for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  return out;
}

export function redact(fields: LogFields): Record<string, unknown> {
  return redactRecord(fields, 0);
}

const MAX_DEPTH = 6;

function redactRecord(fields: Record<string, unknown>, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = SECRET_KEYS.test(k) ? REDACTED : redactValue(v, depth + 1);
  return out;
}

function redactValue(v: unknown, depth: number): unknown {
  if (typeof v === 'string') return redactText(v);
  if (depth > MAX_DEPTH || typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) return v.map((x) => redactValue(x, depth + 1));
  const proto = Object.getPrototypeOf(v) as unknown;
  // Plain objects only: a Buffer or a class instance is serialised as it is.
  return proto === Object.prototype || proto === null ? redactRecord(v as Record<string, unknown>, depth) : v;
}

export function jsonLogger(write: (line: string) => void = (l) => process.stdout.write(l), env: NodeJS.ProcessEnv = process.env): Logger {
  const serviceContext = { service: env.K_SERVICE ?? 'gke-deployer', ...(env.K_REVISION !== undefined && { version: env.K_REVISION }) };
  return (severity, message, fields = {}) => {
    const { trace: given, ...rest } = fields;
    const t = requestTrace.getStore();
    const trace = given ?? t?.trace;
    write(
      `${JSON.stringify({
        severity,
        message: redactText(message),
        ...(trace !== undefined && { 'logging.googleapis.com/trace': trace }),
        ...(trace !== undefined && t?.spanId !== undefined && { 'logging.googleapis.com/spanId': t.spanId }),
        ...(trace !== undefined && t?.sampled !== undefined && { 'logging.googleapis.com/trace_sampled': t.sampled }),
        ...(severity === 'ERROR' && { '@type': REPORTED_ERROR, serviceContext }),
        ...redact(rest),
        time: new Date().toISOString(),
      })}\n`,
    );
  };
}
