// A local fake of a chat incoming webhook (Google Chat's or Slack's): a loopback node:http server
// that records each request (method, path, query, content type, JSON body) and answers as told:
// `ok` (200, as both services answer a message they took), `hang` (never answers), or `refuse`
// (400 quoting the URL it was called on and its key and token, decoded, as an error might).
import { once } from 'node:events';
import http from 'node:http';

export interface ChatPost {
  method: string;
  path: string;
  query: URLSearchParams;
  contentType: string | undefined;
  body: unknown;
}

export interface ChatWebhook {
  /** The webhook URL: this server, `pathAndQuery` appended. */
  url: string;
  posts: ChatPost[];
  close(): Promise<void>;
}

export async function startChatWebhook(pathAndQuery: string, answer: 'ok' | 'hang' | 'refuse' = 'ok'): Promise<ChatWebhook> {
  const posts: ChatPost[] = [];
  let url = '';
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const [path = '', search = ''] = (req.url ?? '').split('?');
      const query = new URLSearchParams(search);
      posts.push({ method: req.method ?? '', path, query, contentType: req.headers['content-type'], body: JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') });
      if (answer === 'hang') return;
      if (answer === 'refuse') {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 400, message: `no such webhook ${url}: key ${query.get('key')}, token ${query.get('token')}`, status: 'INVALID_ARGUMENT' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ name: 'spaces/S/messages/M' }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}${pathAndQuery}`;
  return {
    url,
    posts,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
