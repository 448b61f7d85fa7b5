// Every request body is read here, before functions-framework sees the request. Its
// body-parser would buffer up to 1 GiB before the function runs (and answer malformed JSON
// with its own HTML page); instead the body is read once, bounded by LIMITS.maxBodyBytes:
//   Content-Length over the limit   413 at once, nothing buffered (and no 100 Continue)
//   a chunked body over the limit   413 as soon as it passes the limit; what was buffered is dropped
//   Content-Encoding (gzip…)        415: a compressed body could inflate far past the limit
// A refusal is sent whole at once, with Connection: close. The connection then closes when the
// body has ended, or after LIMITS.refusedBodyLingerMs, reading at most
// LIMITS.refusedBodyDrainBytes more meanwhile (dropped): a client still sending reads our answer
// rather than a reset, and the rest of a large body is never read.
import dc from 'node:diagnostics_channel';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { DeployError } from '../errors.ts';
import type { Logger } from '../core/log.ts';
import { errorBody, newRequestId } from './http.ts';
import { LIMITS } from './limits.ts';

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

const guarded = new WeakSet<Server>();

/** Puts the bounded read in front of every request `server` already answers (functions-framework's express app). */
export function guardServer(server: Server, log: Logger): void {
  if (guarded.has(server)) return;
  guarded.add(server);
  const listeners = server.listeners('request') as RequestListener[];
  server.removeAllListeners('request');
  const pass: RequestListener = (req, res) => {
    for (const listener of listeners) listener.call(server, req, res);
  };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => readBounded(req, res, log, pass));
  // Without this listener Node answers `Expect: 100-continue` itself, inviting the body we refuse.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (refusal(req) === undefined) res.writeContinue();
    readBounded(req, res, log, pass);
  });
}

let subscribed = false;

/**
 * For the process functions-framework serves (`npm start`, Cloud Run `--function`): its server
 * is created after our module loads, so each HTTP server is guarded on its first request. Node
 * publishes this channel synchronously before emitting `request`, so that request is guarded too.
 * Only for the entry point: in that process functions-framework's is the only server. (Node
 * still marks its built-in HTTP channels experimental: test/hostile-body.test.ts runs
 * functions-framework's own main to notice if this stops working.)
 */
export function guardEveryServer(log: Logger): void {
  if (subscribed) return;
  subscribed = true;
  dc.subscribe('http.server.request.start', (message) => {
    const server = (message as { server?: unknown }).server;
    if (server && typeof (server as Server).listeners === 'function') guardServer(server as Server, log);
  });
}

/** What is refused before reading a byte. */
function refusal(req: IncomingMessage): DeployError | undefined {
  const encoding = req.headers['content-encoding']?.trim().toLowerCase();
  if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
    return new DeployError('UNSUPPORTED_MEDIA_TYPE', `Content-Encoding "${encoding.slice(0, 64)}" is not accepted: send the body uncompressed`);
  }
  // Node has already refused a malformed or repeated Content-Length (400) before we get here.
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > LIMITS.maxBodyBytes) return tooLarge();
  return undefined;
}

function tooLarge(): DeployError {
  return new DeployError('PAYLOAD_TOO_LARGE', `request body over the ${LIMITS.maxBodyBytes}-byte limit`);
}

function readBounded(req: IncomingMessage, res: ServerResponse, log: Logger, pass: RequestListener): void {
  // A client that goes away mid-body: nothing to answer, and no unhandled 'error' event.
  req.on('error', () => undefined);
  const refused = refusal(req);
  if (refused) {
    refuse(req, res, refused, log);
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    if (size <= LIMITS.maxBodyBytes) {
      chunks.push(chunk);
      return;
    }
    req.off('data', onData);
    req.off('end', onEnd);
    chunks.length = 0;
    refuse(req, res, tooLarge(), log);
  };
  const onEnd = () => {
    (req as IncomingMessage & { rawBody?: Buffer }).rawBody = Buffer.concat(chunks, size);
    pass(req, res);
  };
  req.on('data', onData);
  req.on('end', onEnd);
}

/** Our JSON error answer, sent at once; the response (and the connection) ends after the drain. */
function refuse(req: IncomingMessage, res: ServerResponse, err: DeployError, log: Logger): void {
  const requestId = newRequestId();
  const body = JSON.stringify(errorBody(err, requestId));
  res.writeHead(err.http, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    // Never reused: the rest of the refused body may still be on the way.
    connection: 'close',
  });
  res.write(body);
  drainThenEnd(req, res);
  log('WARNING', err.message, {
    requestId, path: (req.url ?? '').split('?')[0]?.slice(0, 200), code: err.code, status: err.http,
    ...(req.headers['content-length'] !== undefined && { contentLength: req.headers['content-length'] }),
  });
}

/**
 * Reads and drops what the client still sends of the refused body, up to a bound in bytes,
 * then stops reading. Ending the response closes the connection (Connection: close): once the
 * body has ended, or at the latest after the linger time, so the client has read the answer.
 */
function drainThenEnd(req: IncomingMessage, res: ServerResponse): void {
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    res.end();
  };
  const timer = setTimeout(end, LIMITS.refusedBodyLingerMs).unref();
  if (req.complete) {
    end();
    return;
  }
  let dropped = 0;
  const onData = (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped <= LIMITS.refusedBodyDrainBytes) return;
    // Unread, the rest fills the socket's buffers and the client stops sending; it can still read our answer.
    req.off('data', onData);
    req.pause();
  };
  req.on('data', onData);
  req.on('end', end);
  req.on('close', end);
  req.resume();
}
