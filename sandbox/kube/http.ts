// Minimal HTTPS client for readiness checks and setup calls: verifies the server
// against the sandbox CA (never skips verification) and sends a bearer token.
import https from 'node:https';

export interface HttpResult {
  status: number;
  body: string;
}

export function request(
  url: string,
  opts: { ca: string; token?: string; method?: string; body?: unknown; contentType?: string; timeoutMs?: number },
): Promise<HttpResult> {
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (payload !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      { method: opts.method ?? 'GET', ca: opts.ca, headers, timeout: opts.timeoutMs ?? 5000, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: ${opts.method ?? 'GET'} ${url}`)));
    req.on('error', reject);
    req.end(payload);
  });
}
