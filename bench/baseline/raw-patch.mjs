// The floor a deploy is measured against: one server-side apply PATCH of a Deployment over
// node:https with keep-alive, TLS verified against the cluster CA. Plain JavaScript, so the
// bare-function baseline loads nothing but this and functions-framework.
import https from 'node:https';

/** A Deployment of one container, as the bench targets' manifests declare it. */
export function deployment(name, image) {
  const labels = { app: name };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels },
    spec: { replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'app', image }] } } },
  };
}

/** `patch(obj)` applies `obj` (apiVersion apps/v1 or v1) in `namespace` under `manager`. */
export function rawPatcher({ server, ca, token, namespace, manager }) {
  const agent = new https.Agent({ keepAlive: true, ca });
  const base = new URL(server);
  return {
    patch(obj) {
      const group = obj.apiVersion === 'v1' ? '/api/v1' : `/apis/${obj.apiVersion}`;
      const plural = `${obj.kind.toLowerCase()}s`;
      const body = JSON.stringify(obj);
      return new Promise((resolve, reject) => {
        const req = https.request(
          {
            agent,
            host: base.hostname,
            port: base.port,
            method: 'PATCH',
            path: `${group}/namespaces/${namespace}/${plural}/${obj.metadata.name}?fieldManager=${manager}&force=true`,
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/apply-patch+yaml', 'content-length': Buffer.byteLength(body) },
          },
          (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => (res.statusCode >= 200 && res.statusCode < 300 ? resolve(res.statusCode) : reject(new Error(`PATCH ${res.statusCode}: ${Buffer.concat(chunks).toString()}`))));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    },
    close: () => agent.destroy(),
  };
}
