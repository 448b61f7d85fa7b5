// What the GitHub and GitLab API fakes share: a loopback node:http server that records every
// call (method, path, whether the token was right, JSON body) and answers from a route table.
import { EventEmitter, once } from 'node:events';
import http from 'node:http';

export interface Call {
  method: string;
  /** The path as sent (still URL-encoded), without the query. */
  path: string;
  /** The query string, parsed. */
  query: URLSearchParams;
  /** The request carried the expected token (the token itself is never recorded). */
  authenticated: boolean;
  userAgent: string | undefined;
  body: Record<string, unknown>;
}

export interface Answer {
  status: number;
  body: unknown;
}

export type Route = (call: Call, match: RegExpExecArray) => Answer;

export interface ApiFake {
  url: string;
  calls: Call[];
  close(): Promise<void>;
}

export async function startApiFake(opts: { authenticated: (req: http.IncomingMessage) => boolean; routes: [string, RegExp, Route][]; prefix?: string }): Promise<ApiFake> {
  const calls: Call[] = [];
  const events = new EventEmitter();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: Record<string, unknown>;
      try {
        body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
      } catch {
        return send(res, { status: 400, body: { message: 'Problems parsing JSON' } });
      }
      const [rawPath, search = ''] = (req.url ?? '/').split('?');
      const path = rawPath!.slice(opts.prefix?.length ?? 0);
      const call: Call = { method: req.method ?? '', path, query: new URLSearchParams(search), authenticated: opts.authenticated(req), userAgent: req.headers['user-agent'], body };
      calls.push(call);
      events.emit('call', call);
      if (!call.authenticated) return send(res, { status: 401, body: { message: 'Bad credentials' } });
      for (const [method, pattern, route] of opts.routes) {
        const m = pattern.exec(path);
        if (m && method === req.method) return send(res, route(call, m));
      }
      send(res, { status: 404, body: { message: 'Not Found' } });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const addr = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${addr.port}${opts.prefix ?? ''}`,
    calls,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function send(res: http.ServerResponse, answer: Answer): void {
  res.writeHead(answer.status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(answer.body));
}

/** A repository's commits and their parents, for the fakes' compare endpoints. */
export class CommitGraph {
  private readonly parents = new Map<string, string[]>();

  /** Adds `sha` (in `repository`) with its parents, which must be added first. */
  add(repository: string, sha: string, ...parents: string[]): this {
    for (const p of parents) if (!this.has(repository, p)) throw new Error(`parent ${p} of ${sha} is not in ${repository}`);
    this.parents.set(`${repository}@${sha}`, parents);
    return this;
  }

  parentsOf(repository: string, sha: string): string[] {
    return this.parents.get(`${repository}@${sha}`) ?? [];
  }

  has(repository: string, sha: string): boolean {
    return this.parents.has(`${repository}@${sha}`);
  }

  /** `sha` and every commit it descends from, nearest first (breadth first). */
  ancestry(repository: string, sha: string): string[] {
    const seen: string[] = [];
    for (let queue = [sha]; queue.length > 0; ) {
      const next = queue.shift()!;
      if (seen.includes(next)) continue;
      seen.push(next);
      queue = [...queue, ...(this.parents.get(`${repository}@${next}`) ?? [])];
    }
    return seen;
  }

  /** The nearest commit both descend from (git merge-base), if any. */
  mergeBase(repository: string, a: string, b: string): string | undefined {
    const ofA = new Set(this.ancestry(repository, a));
    return this.ancestry(repository, b).find((c) => ofA.has(c));
  }
}

/** A field is a string from `allowed` (or any string when absent). */
export function isOneOf(value: unknown, allowed?: readonly string[]): value is string {
  return typeof value === 'string' && (allowed === undefined || allowed.includes(value));
}
