// A raw HTTP client for hostile requests: the path is sent as written (fetch would normalize
// `/deploy/../pubsub`), a body can be streamed chunk by chunk, and the answer is read even when
// the server answers before the body is sent and then closes the connection.
import http from 'node:http';

export interface Streamed {
  /** Bytes to send in total, as a chunked body (no Content-Length) unless `declared` says otherwise. */
  total: number;
  /** Content-Length to declare; the body is still streamed. */
  declared?: number;
  /** Bytes per write; the writer waits for the socket to drain between writes. */
  chunkBytes?: number;
}

export interface RawRequest {
  method?: string;
  path: string;
  headers?: Record<string, string | string[]>;
  body?: string | Buffer;
  stream?: Streamed;
}

export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The parsed body, or undefined when it is not JSON. */
  json: Record<string, unknown> | undefined;
  /** Body bytes handed to the socket before the answer ended or the connection closed. */
  sent: number;
  /** The connection closed before the whole streamed body was sent. */
  cutShort: boolean;
}

export async function rawRequest(port: number, r: RawRequest): Promise<RawAnswer> {
  const headers: Record<string, string | string[] | number> = { ...r.headers };
  if (r.body !== undefined && !hasHeader(headers, 'content-length')) headers['content-length'] = Buffer.byteLength(r.body);
  if (r.stream?.declared !== undefined) headers['content-length'] = r.stream.declared;
  // One connection per request, kept alive as Pub/Sub's and GitHub's senders keep theirs.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const req = http.request({ host: '127.0.0.1', port, method: r.method ?? 'POST', path: r.path, headers, agent });
  let sent = 0;
  let closed = false;
  let answeredYet = false;
  req.on('close', () => (closed = true));
  req.on('response', () => (answeredYet = true));
  const answered = new Promise<{ res: http.IncomingMessage; text: string }>((resolve, reject) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ res, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    // A reset after the answer arrived is the server closing on a body it refused.
    req.on('error', (err) => setImmediate(() => reject(err)));
  });
  answered.catch(() => undefined); // awaited below, once the body is written
  if (r.stream) {
    const chunk = Buffer.alloc(r.stream.chunkBytes ?? 64 * 1024, 0x61);
    req.flushHeaders();
    // Like curl, a client stops sending once answered.
    while (sent < r.stream.total && !closed && !answeredYet) {
      const part = chunk.subarray(0, Math.min(chunk.length, r.stream.total - sent));
      sent += part.length;
      if (!req.write(part)) await drainedOrClosed(req);
    }
    if (!closed && sent >= r.stream.total) req.end();
  } else {
    req.end(r.body);
  }
  const { res, text } = await answered.finally(() => agent.destroy());
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { status: res.statusCode ?? 0, headers: res.headers, text, json, sent, cutShort: r.stream !== undefined && sent < r.stream.total };
}

/** Errors are the 'error' listener's; this only waits (events.once would reject on them). */
function drainedOrClosed(req: http.ClientRequest): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      req.off('drain', done);
      req.off('close', done);
      req.off('response', done);
      resolve();
    };
    req.on('drain', done);
    req.on('close', done);
    req.on('response', done);
  });
}

function hasHeader(headers: Record<string, unknown>, name: string): boolean {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}
