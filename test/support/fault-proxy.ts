// A TLS-terminating proxy in front of the sandbox's kube-apiserver that injects faults
// into a share of the requests: 429 with Retry-After, 500, 503, a connection reset
// before the request reaches the server or after it was served (the answer is lost),
// and stalls. It serves its own CA, verifies the sandbox's CA upstream, and passes the
// caller's bearer token through, so RBAC still sees the caller. Seedable; counts faults.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeCerts } from '../../sandbox/kube/certs.ts';

export const FAULT_KINDS = ['429', '500', '502', '503', '504', 'reset', 'reset-after', 'stall'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
/** The mix used unless `kinds` says otherwise. */
const DEFAULT_KINDS: Partial<Record<FaultKind, number>> = { '429': 1, '500': 1, '503': 1, reset: 1, 'reset-after': 1, stall: 1 };
type StatusFault = '429' | '500' | '502' | '503' | '504';

export interface FaultSettings {
  /** Share of requests that get a fault, 0..1. */
  rate: number;
  /** Relative weight of each kind (default: 429, 500, 503, reset, reset-after and stall, equally). */
  kinds: Partial<Record<FaultKind, number>>;
  /** Retry-After of an injected 429, in seconds. */
  retryAfterSeconds: number;
  /** How long a stall holds the request before dropping the connection; Infinity holds until the client gives up. */
  stallMs: number;
  /** Latency added to every forwarded request. */
  delayMs: number;
}

export interface FaultProxyOptions extends Partial<FaultSettings> {
  /** https://host:port of the real API server. */
  upstream: string;
  upstreamCaPem: string;
  seed?: number;
}

export type FaultCounts = Record<FaultKind | 'forwarded', number>;

/** One request the proxy saw, and what it did with it. */
export interface SeenRequest {
  method: string;
  path: string;
  userAgent?: string;
  fault?: FaultKind;
  /** When it arrived: performance.now() in this process. */
  at: number;
  /** A watch forwarded: the resourceVersion of the last event (a bookmark too) the proxy passed on. */
  lastResourceVersion?: string;
}

export interface FaultProxy {
  /** https://127.0.0.1:PORT */
  readonly server: string;
  /** The proxy's own CA (PEM file): what clients verify the proxy with. */
  readonly caFile: string;
  readonly caPem: string;
  counts(): FaultCounts;
  /** Every request so far, in arrival order. */
  requests(): SeenRequest[];
  /** TLS connections accepted so far (a client that reuses its pool opens no new ones). */
  connections(): number;
  /** Requests received and not yet answered (or dropped). */
  inFlight(match?: (req: { method: string; path: string }) => boolean): number;
  /** Total faults injected so far. */
  injected(): number;
  set(change: Partial<FaultSettings>): void;
  /** The next `count` requests (matching `match`, if given) get this fault, whatever the rate. */
  failNext(kind: FaultKind, count?: number, match?: (req: { method: string; path: string }) => boolean): void;
  /** Requests matching `match` are forwarded `ms` later (on top of `delayMs`), from now on. */
  delay(match: (req: { method: string; path: string }) => boolean, ms: number): void;
  /** Destroys every open client connection at once: a transport error for whatever is in flight. */
  dropConnections(): number;
  close(): Promise<void>;
}

/** mulberry32: a small, fast, seedable PRNG; good enough to pick faults reproducibly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const REASONS: Record<StatusFault, [string, string]> = {
  '429': ['TooManyRequests', 'Too many requests, please try again later (injected by the fault proxy)'],
  '500': ['InternalError', 'Internal error occurred: injected by the fault proxy'],
  '502': ['BadGateway', 'Bad gateway (injected by the fault proxy)'],
  '503': ['ServiceUnavailable', 'The server is currently unable to handle the request (injected by the fault proxy)'],
  '504': ['Timeout', 'Gateway timeout (injected by the fault proxy)'],
};

/** Hop-by-hop headers, which a proxy must not forward (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host']);

export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const dir = await mkdtemp(path.join(tmpdir(), 'fault-proxy-'));
  const certs = await makeCerts(dir, 'fault-proxy');
  const [caPem, cert, key] = await Promise.all([readFile(certs.caFile, 'utf8'), readFile(certs.certFile), readFile(certs.keyFile)]);
  const upstream = new URL(opts.upstream);
  const agent = new https.Agent({ keepAlive: true, ca: opts.upstreamCaPem, rejectUnauthorized: true });
  const settings: FaultSettings = {
    rate: opts.rate ?? 0,
    kinds: opts.kinds ?? DEFAULT_KINDS,
    retryAfterSeconds: opts.retryAfterSeconds ?? 1,
    stallMs: opts.stallMs ?? 1000,
    delayMs: opts.delayMs ?? 0,
  };
  const random = prng(opts.seed ?? 1);
  const counts = Object.fromEntries(['forwarded', ...FAULT_KINDS].map((k) => [k, 0])) as FaultCounts;
  const seen: SeenRequest[] = [];
  let accepted = 0;
  /** Requests received and not yet answered (or dropped). */
  const open = new Set<{ method: string; path: string }>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const slowed: { match: (req: { method: string; path: string }) => boolean; ms: number }[] = [];
  const queued: { kind: FaultKind; left: number; match?: (req: { method: string; path: string }) => boolean }[] = [];

  function pick(req: { method: string; path: string }): FaultKind | undefined {
    const next = queued.find((q) => !q.match || q.match(req));
    if (next) {
      if (--next.left === 0) queued.splice(queued.indexOf(next), 1);
      return next.kind;
    }
    if (random() >= settings.rate) return undefined;
    const weighted = FAULT_KINDS.map((k) => [k, settings.kinds[k] ?? 0] as const).filter(([, w]) => w > 0);
    const total = weighted.reduce((s, [, w]) => s + w, 0);
    let r = random() * total;
    for (const [k, w] of weighted) {
      if ((r -= w) < 0) return k;
    }
    return weighted.at(-1)?.[0];
  }

  function status(res: http.ServerResponse, code: StatusFault): void {
    const [reason, message] = REASONS[code];
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json' };
    if (code === '429') headers['retry-after'] = String(settings.retryAfterSeconds);
    res.writeHead(Number(code), headers).end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code: Number(code) }));
  }

  function forward(req: http.IncomingMessage, res: http.ServerResponse, loseAnswer: boolean, record: SeenRequest): void {
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
    const up = https.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent, servername: upstream.hostname === '127.0.0.1' ? undefined : upstream.hostname },
      (upRes) => {
        if (loseAnswer) {
          // Served by the API server, but the caller never hears back.
          upRes.resume();
          upRes.once('end', () => req.socket.destroy());
          return;
        }
        const out: http.OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(upRes.headers)) if (!HOP_BY_HOP.has(k)) out[k] = v;
        res.writeHead(upRes.statusCode ?? 502, out);
        // As the API server does: a watch's headers go out at once, not with its first event.
        res.flushHeaders();
        if (/[?&]watch=(true|1)(&|$)/.test(req.url ?? '')) tapWatch(upRes, record);
        upRes.pipe(res);
      },
    );
    up.on('error', () => req.socket.destroy());
    req.pipe(up);
  }

  /** Reads the watch's events (one JSON object a line) as they pass, to note the last resourceVersion. */
  function tapWatch(upRes: http.IncomingMessage, record: SeenRequest): void {
    let partial = '';
    const text = new StringDecoder('utf8'); // a character may straddle two chunks
    upRes.on('data', (chunk: Buffer) => {
      const lines = (partial + text.write(chunk)).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        let rv: string | undefined;
        try {
          rv = (JSON.parse(line) as { object?: { metadata?: { resourceVersion?: string } } }).object?.metadata?.resourceVersion;
        } catch {
          continue; // not an event: nothing to note
        }
        if (rv !== undefined) record.lastResourceVersion = rv;
      }
    });
  }

  const server = https.createServer({ cert, key }, (req, res) => {
    const seenReq = { method: req.method ?? '', path: req.url ?? '' };
    open.add(seenReq);
    res.once('close', () => open.delete(seenReq));
    const fault = pick({ method: req.method ?? '', path: req.url ?? '' });
    if (fault) counts[fault]++;
    else counts.forwarded++;
    const record: SeenRequest = { method: req.method ?? '', path: req.url ?? '', at: performance.now(), ...(req.headers['user-agent'] !== undefined && { userAgent: req.headers['user-agent'] }), ...(fault && { fault }) };
    seen.push(record);
    switch (fault) {
      case '429':
      case '500':
      case '502':
      case '503':
      case '504':
        req.resume();
        return status(res, fault);
      case 'reset':
        req.socket.destroy();
        return;
      case 'stall':
        if (Number.isFinite(settings.stallMs)) later(settings.stallMs, () => req.socket.destroy());
        return;
      default: {
        const go = () => forward(req, res, fault === 'reset-after', record);
        const ms = settings.delayMs + (slowed.find((s) => s.match({ method: req.method ?? '', path: req.url ?? '' }))?.ms ?? 0);
        if (ms > 0) later(ms, go);
        else go();
      }
    }
  });
  server.on('secureConnection', (s: Socket) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => {}); // a client giving up mid-handshake is not the proxy's problem
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;

  return {
    server: `https://127.0.0.1:${port}`,
    caFile: certs.caFile,
    caPem,
    counts: () => ({ ...counts }),
    requests: () => [...seen],
    connections: () => accepted,
    inFlight: (match) => (match ? [...open].filter(match).length : open.size),
    injected: () => FAULT_KINDS.reduce((s, k) => s + counts[k], 0),
    set(change) {
      Object.assign(settings, change);
    },
    failNext(kind, count = 1, match) {
      queued.push({ kind, left: count, ...(match && { match }) });
    },
    delay(match, ms) {
      slowed.push({ match, ms });
    },
    dropConnections() {
      const n = sockets.size;
      for (const s of sockets) s.destroy();
      return n;
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
