// A validating admission webhook that the sandbox's kube-apiserver calls for Deployments
// in one namespace, and that holds the first request for a chosen image until the test
// releases it: a slow admission webhook, one of the ways a write can take longer than the
// writer's Lease. It allows everything (held requests too, once released). TLS with its
// own CA (the webhook configuration's caBundle), as the apiserver requires.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeCerts } from '../../sandbox/kube/certs.ts';
import { kubectl } from './sandbox.ts';

export interface HoldingWebhook {
  /** Resolves when the first request for the held image has arrived (it then waits for release()). */
  readonly held: Promise<void>;
  /** Lets held requests (and every later one) through. */
  release(): void;
  close(): Promise<void>;
}

interface Review {
  request?: { uid?: string; dryRun?: boolean; object?: { spec?: { template?: { spec?: { containers?: { image?: string }[] } } } } };
}

export async function holdingWebhook(namespace: string, holdImage: string): Promise<HoldingWebhook> {
  const dir = await mkdtemp(path.join(tmpdir(), 'holding-webhook-'));
  const certs = await makeCerts(dir, 'holding-webhook');
  const [caPem, cert, key] = await Promise.all([readFile(certs.caFile), readFile(certs.certFile), readFile(certs.keyFile)]);
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let arrived!: () => void;
  const held = new Promise<void>((r) => (arrived = r));
  let holding = true;
  let probes = 0;

  const server = https.createServer({ cert, key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Review;
        const images = review.request?.object?.spec?.template?.spec?.containers?.map((c) => c.image) ?? [];
        if (review.request?.dryRun) probes++;
        else if (holding && images.includes(holdImage)) {
          holding = false; // the first one only: the apiserver's own retries pass
          arrived();
          await released;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request?.uid ?? '', allowed: true } }));
      })();
    });
  });
  server.on('tlsClientError', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const name = `hold-${namespace}`;
  const config = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name },
    webhooks: [
      {
        name: 'hold.gke-deployer.test',
        clientConfig: { url: `https://127.0.0.1:${port}/validate`, caBundle: caPem.toString('base64') },
        rules: [{ apiGroups: ['apps'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['deployments'], scope: 'Namespaced' }],
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
        failurePolicy: 'Fail',
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        timeoutSeconds: 30,
      },
    ],
  };
  await kubectl(['apply', '-f', '-'], JSON.stringify(config));
  // The apiserver picks the configuration up asynchronously: probe with server-side dry runs until it calls.
  const end = Date.now() + 30_000;
  while (probes === 0) {
    if (Date.now() > end) throw new Error(`the API server never called webhook ${name} at 127.0.0.1:${port}`);
    await kubectl(['-n', namespace, 'create', 'deployment', 'probe', '--image=probe:1', '--dry-run=server']);
  }
  return {
    held,
    release,
    async close() {
      release();
      await kubectl(['delete', 'validatingwebhookconfiguration', name, '--ignore-not-found']);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
