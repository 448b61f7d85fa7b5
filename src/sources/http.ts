// The HTTP edge: body limits, content types, JSON answers and request ids. Only
// sources/ imports this; the stages behind them never see a request.
import { randomUUID } from 'node:crypto';
import type { Request, Response } from '@google-cloud/functions-framework';
import type { z } from 'zod';
import { DeployError } from '../errors.ts';
import { LIMITS } from './limits.ts';
import type { LogTrace } from '../core/log.ts';

export interface ErrorBody {
  status: 'error';
  error: { code: string; message: string };
  requestId: string;
}

/**
 * The raw body, refused above the limit. body-limit.ts has already refused a larger body while
 * reading it, before functions-framework saw the request; this second check covers callers that
 * skip it (tests handing a request to a source directly).
 */
export function rawBody(req: Request): Buffer {
  const declared = Number(req.headers['content-length'] ?? 0);
  const body = req.rawBody ?? Buffer.alloc(0);
  if (declared > LIMITS.maxBodyBytes || body.length > LIMITS.maxBodyBytes) {
    throw new DeployError('PAYLOAD_TOO_LARGE', `request body over the ${LIMITS.maxBodyBytes}-byte limit`);
  }
  return body;
}

export function requireContentType(req: Request, ...types: string[]): void {
  const got = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (!types.includes(got)) {
    throw new DeployError('UNSUPPORTED_MEDIA_TYPE', `Content-Type must be ${types.join(' or ')}, got "${got || '(none)'}"`);
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** JSON text must be UTF-8 (RFC 8259): invalid bytes are refused, not replaced with U+FFFD. */
export function parseJson(body: Buffer): unknown {
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    throw new DeployError('BAD_REQUEST', 'body is not valid UTF-8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new DeployError('BAD_REQUEST', `body is not valid JSON: ${(err as Error).message.slice(0, 200)}`);
  }
}

export function bearerToken(req: Request): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  return m?.[1];
}

export function newRequestId(): string {
  return randomUUID();
}

type Headers = Readonly<Record<string, string | string[] | undefined>>;

/** W3C trace context: version 00, a trace id and a parent span id that are not all zeros, flags. */
const TRACEPARENT = /^00-(?!0{32})([0-9a-f]{32})-(?!0{16})([0-9a-f]{16})-([0-9a-f]{2})$/;
/** Google's own header: "TRACE_ID/SPAN_ID;o=1", the span id in decimal. */
const CLOUD_TRACE = /^([0-9a-f]{32})(?:\/(\d{1,20}))?(?:;o=([01]))?/i;

/** The request's trace context as W3C traceparent: its own, or made from X-Cloud-Trace-Context. */
export function traceparentOf(headers: Headers): string | undefined {
  const own = headers.traceparent;
  if (typeof own === 'string' && TRACEPARENT.test(own)) return own;
  const cloud = headers['x-cloud-trace-context'];
  const m = typeof cloud === 'string' ? CLOUD_TRACE.exec(cloud) : null;
  if (!m) return undefined;
  const span = BigInt(m[2] ?? '0') & 0xffffffffffffffffn;
  // A trace context with no usable span id still continues the trace, as its root.
  const spanHex = span === 0n ? '0000000000000001' : span.toString(16).padStart(16, '0');
  return `00-${m[1]!.toLowerCase()}-${spanHex}-0${m[3] === '1' ? 1 : 0}`;
}

/** Cloud Logging's trace fields for a W3C traceparent: the trace, its span, whether it is sampled. */
export function logTraceOf(traceparent: string | undefined, project = process.env.GOOGLE_CLOUD_PROJECT): LogTrace {
  const [, id, spanId, flags] = traceparent?.split('-') ?? [];
  if (!id) return {};
  return { ...(project && { trace: `projects/${project}/traces/${id}` }), traceId: id, spanId, sampled: (parseInt(flags ?? '0', 16) & 1) === 1 };
}

export function sendJson(res: Response, status: number, body: unknown): void {
  res.status(status).set('Cache-Control', 'no-store').json(body);
}

export function errorBody(err: DeployError, requestId: string): ErrorBody {
  return { status: 'error', error: { code: err.code, message: err.message }, requestId };
}

/** A schema failure as a 400 that lists every problem with its path. */
export function invalid(what: string, error: z.ZodError): DeployError {
  const problems = error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
  return new DeployError('BAD_REQUEST', `invalid ${what}: ${problems}`);
}

/** A JSON body checked against `schema`: 415, 413 and 400 as appropriate. */
export function jsonBody<T extends z.ZodType>(req: Request, schema: T, what: string): z.output<T> {
  requireContentType(req, 'application/json');
  const parsed = schema.safeParse(parseJson(rawBody(req)));
  if (!parsed.success) throw invalid(what, parsed.error);
  return parsed.data;
}
