// Three TLS fronts to the sandbox's one kube-apiserver, standing in for the ways GKE
// exposes a control plane besides its public IP: the DNS-based endpoint and the Connect
// gateway (certificates from the "public" CA) and the internal IP endpoint (a
// certificate from the cluster CA). Each forwards every request as it came, the
// caller's bearer token included, and streams the answer (watches, logs). Loopback only.
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FrontCerts } from './front-certs.ts';
import { forward } from './forward.ts';

export type FrontName = 'dns' | 'internal' | 'connectGateway';
export type FrontCa = 'public' | 'cluster';

export interface Fronts {
  /** host:port of each front (the DNS one as localhost:PORT, like a *.gke.goog name). */
  readonly dns: string;
  readonly internal: string;
  /** https://127.0.0.1:PORT: the CONNECT_GATEWAY_ENDPOINT. */
  readonly connectGateway: string;
  /** Requests each front received. */
  counts(): Record<FrontName, number>;
  /** Serve the certificate of the other CA (tests of refusal) or the right one again. */
  setCa(change: Record<string, string>): Record<FrontName, FrontCa>;
  /** Answer the next n requests of a front 401, as an API server does to an expired token. */
  unauthorized(change: Record<string, number>): Record<FrontName, number>;
  close(): Promise<void>;
}

export interface FrontsOptions {
  /** https://127.0.0.1:PORT of kube-apiserver. */
  upstream: string;
  /** The cluster CA, to verify kube-apiserver. */
  upstreamCa: string;
  certs: FrontCerts;
  /** Accepted gateway path prefixes: /v1/projects/P/locations/L/gkeMemberships/M. */
  memberships: () => string[];
}

const RIGHT_CA: Record<FrontName, FrontCa> = { dns: 'public', internal: 'cluster', connectGateway: 'public' };

export async function startFronts(opts: FrontsOptions): Promise<Fronts> {
  const upstream = new URL(opts.upstream);
  const agent = new https.Agent({ keepAlive: true, ca: opts.upstreamCa });
  const counts: Record<FrontName, number> = { dns: 0, internal: 0, connectGateway: 0 };
  const ca: Record<FrontName, FrontCa> = { ...RIGHT_CA };
  const refuse: Record<FrontName, number> = { dns: 0, internal: 0, connectGateway: 0 };

  const toUpstream = (req: IncomingMessage, res: ServerResponse, path: string): void => {
    const headers = { ...req.headers, host: upstream.host };
    forward(req, res, (onAnswer) => https.request({ host: upstream.hostname, port: upstream.port, method: req.method, path, headers, agent }, onAnswer), 'sandbox front');
  };

  const start = async (name: FrontName, route: (url: string) => string | undefined): Promise<{ server: https.Server; port: number }> => {
    const server = https.createServer({ ...opts.certs[RIGHT_CA[name]] }, (req, res) => {
      counts[name]++;
      if (refuse[name] > 0) {
        refuse[name]--;
        const status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 };
        req.resume();
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify(status));
        return;
      }
      const path = route(req.url ?? '/');
      if (path === undefined) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 404, message: `sandbox ${name} front: no such path ${req.url ?? ''}` } }));
        return;
      }
      toUpstream(req, res, path);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('front has no port');
    return { server, port: addr.port };
  };

  const gatewayRoute = (url: string): string | undefined => {
    for (const membership of opts.memberships()) {
      const prefix = `/v1/${membership.replace(/\/memberships\//, '/gkeMemberships/')}`;
      if (url === prefix || url.startsWith(`${prefix}/`) || url.startsWith(`${prefix}?`)) return url.slice(prefix.length) || '/';
    }
    return undefined;
  };

  const servers: https.Server[] = [];
  try {
    const dns = await start('dns', (u) => u);
    servers.push(dns.server);
    const internal = await start('internal', (u) => u);
    servers.push(internal.server);
    const gateway = await start('connectGateway', gatewayRoute);
    servers.push(gateway.server);
    return {
      dns: `localhost:${dns.port}`,
      internal: `127.0.0.1:${internal.port}`,
      connectGateway: `https://127.0.0.1:${gateway.port}`,
      counts: () => ({ ...counts }),
      setCa(change) {
        for (const [name, which] of Object.entries(change)) {
          if (!(name in RIGHT_CA)) throw new Error(`unknown front ${JSON.stringify(name)}`);
          if (which !== 'public' && which !== 'cluster') throw new Error(`front CA must be "public" or "cluster", got ${JSON.stringify(which)}`);
        }
        Object.assign(ca, change as Partial<Record<FrontName, FrontCa>>);
        // New handshakes only: kept-alive connections keep the certificate they were made with.
        for (const [i, name] of (['dns', 'internal', 'connectGateway'] as const).entries()) servers[i]?.setSecureContext(opts.certs[ca[name]]);
        return { ...ca };
      },
      unauthorized(change) {
        for (const [name, n] of Object.entries(change)) {
          if (!(name in RIGHT_CA)) throw new Error(`unknown front ${JSON.stringify(name)}`);
          if (!Number.isInteger(n) || n < 0 || n > 100) throw new Error(`front 401 count must be an integer 0..100, got ${JSON.stringify(n)}`);
        }
        Object.assign(refuse, change);
        return { ...refuse };
      },
      async close() {
        agent.destroy();
        await Promise.all(servers.map((s) => new Promise<void>((resolve) => { s.closeAllConnections(); s.close(() => resolve()); })));
      },
    };
  } catch (err) {
    for (const s of servers) s.close();
    agent.destroy();
    throw err;
  }
}
