// Baseline for cold start: the card's recipe as a plain user writes it on the same four
// libraries, with none of the project's work on start-up: per request, look the cluster up
// with the Container API (the package's index, as its README shows), get an ADC token with
// google-auth-library, write the CA to a temp file, and server-side apply the Deployment with
// @kubernetes/client-node, on @google-cloud/functions-framework. The one liberty: the sandbox's
// Container API endpoint (CONTAINER_API_ENDPOINT: TLS with the sandbox's CA, as
// GRPC_DEFAULT_SSL_ROOTS_FILE_PATH names it, and the ADC token checked), as for the function.
// BASELINE_CLUSTER (projects/P/locations/L/clusters/C), BASELINE_NAMESPACE.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ff from '@google-cloud/functions-framework';
import container from '@google-cloud/container';
import { GoogleAuth } from 'google-auth-library';
import * as k8s from '@kubernetes/client-node';
import { deployment } from './raw-patch.mjs';

const env = process.env;
const [host, port] = env.CONTAINER_API_ENDPOINT.split(':');
const clusters = new container.v1.ClusterManagerClient({ apiEndpoint: host, port: Number(port) });
const auth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });

ff.http('deploy', async (req, res) => {
  const [cluster] = await clusters.getCluster({ name: env.BASELINE_CLUSTER });
  const token = await auth.getAccessToken();
  const caFile = path.join(mkdtempSync(path.join(tmpdir(), 'ca-')), 'ca.crt');
  writeFileSync(caFile, Buffer.from(cluster.masterAuth.clusterCaCertificate, 'base64'));
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'gke', server: `https://${cluster.endpoint}`, caFile }],
    users: [{ name: 'adc', token }],
    contexts: [{ name: 'gke', cluster: 'gke', user: 'adc' }],
    currentContext: 'gke',
  });
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const body = deployment('recipe', req.body.image);
  await objects.patch({ ...body, metadata: { ...body.metadata, namespace: env.BASELINE_NAMESPACE } }, undefined, undefined, 'bench-recipe', true, k8s.PatchStrategy.ServerSideApply);
  res.status(200).json({ status: 'applied' });
});
