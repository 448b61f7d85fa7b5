// Passes one request through to an upstream as it came and streams the answer back
// (watches, logs, blob uploads): what the API fronts (fronts.ts) and the registry's TLS
// front (registry.ts) do once they have decided to let a request through.
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';

/** `send` starts the upstream request (http.request or https.request) with the given answer handler. */
export function forward(req: IncomingMessage, res: ServerResponse, send: (onAnswer: (answer: IncomingMessage) => void) => ClientRequest, label: string): void {
  const out = send((answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  out.on('error', (err) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`${label}: ${err.message}`);
  });
  // A caller that goes away (an aborted watch) ends the upstream request too.
  res.on('close', () => out.destroy());
  req.pipe(out);
}
