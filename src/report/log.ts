// Structured logs in the Cloud Logging JSON format: one line per event on stdout.
// Callers pass fields, never credentials; `redact` is a second line of defence.
export type Severity = 'DEBUG' | 'INFO' | 'NOTICE' | 'WARNING' | 'ERROR';

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

const SECRET_KEYS = /token|secret|password|authorization|signature|credential|^ca$|cadata/i;

export function redact(fields: LogFields): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = SECRET_KEYS.test(k) ? '[redacted]' : v;
  return out;
}

export function jsonLogger(write: (line: string) => void = (l) => process.stdout.write(l)): Logger {
  return (severity, message, fields = {}) => {
    const { trace, ...rest } = fields;
    write(
      `${JSON.stringify({
        severity,
        message,
        ...(trace !== undefined && { 'logging.googleapis.com/trace': trace }),
        ...redact(rest),
        time: new Date().toISOString(),
      })}\n`,
    );
  };
}
