// The Container API client, loaded only when a gke cluster is used (the library is
// slow to import). CONTAINER_API_ENDPOINT=host:port points it at a plaintext local
// endpoint (an emulator or the sandbox), as PUBSUB_EMULATOR_HOST does for Pub/Sub.
import type { ClusterManagerClient } from '@google-cloud/container';

// Both libraries are CommonJS: their `default` is module.exports under Node's own loader
// and in the production bundle alike (whose facade gives such a chunk Node's named exports
// too: scripts/build.ts, lazyCommonJs).
export async function containerApiClient(env = process.env): Promise<ClusterManagerClient> {
  // The v1 client alone: the package's index also loads `protos.js` (6 MB of generated message
  // classes the gRPC client never uses) and the v1beta1 client. This file is what the index
  // re-exports as `v1`, the same ClusterManagerClient; scripts/build.ts fails the build if the
  // bundle pulls `protos.js` in anyway. (A literal, so esbuild bundles it.)
  const { ClusterManagerClient } = (await import('@google-cloud/container/build/src/v1/index.js')).default;
  const override = env.CONTAINER_API_ENDPOINT;
  if (!override) return new ClusterManagerClient();
  const m = /^([^:]+|\[[^\]]+\]):(\d+)$/.exec(override);
  if (!m?.[1] || !m[2]) throw new Error(`CONTAINER_API_ENDPOINT must be host:port, got "${override}"`);
  const grpc = (await import('@grpc/grpc-js')).default;
  return new ClusterManagerClient({
    apiEndpoint: m[1],
    port: Number(m[2]),
    sslCreds: grpc.credentials.createInsecure(),
    // Known up front, so the client does not consult ADC for it.
    universeDomain: 'googleapis.com',
  });
}
