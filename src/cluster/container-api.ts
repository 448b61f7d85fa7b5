// The Container API client, loaded only when a gke cluster is used (the library is
// slow to import). CONTAINER_API_ENDPOINT=host:port points it at another endpoint (the
// sandbox's), reached exactly as Google's is: TLS verified against the trust store and the
// ADC token on every call. Refused on Cloud Run (src/config/production.ts).
import type { ClusterManagerClient } from '@google-cloud/container';
import type { GoogleAuth } from 'google-auth-library';

// Both libraries are CommonJS: their `default` is module.exports under Node's own loader
// and in the production bundle alike (whose facade gives such a chunk Node's named exports
// too: scripts/bundle-plugins.ts, lazyCommonJs).
export async function containerApiClient(env = process.env, auth?: GoogleAuth): Promise<ClusterManagerClient> {
  // The v1 client alone: the package's index also loads `protos.js` (6 MB of generated message
  // classes the gRPC client never uses) and the v1beta1 client. This file is what the index
  // re-exports as `v1`, the same ClusterManagerClient; scripts/build.ts fails the build if the
  // bundle pulls `protos.js` in anyway. (A literal, so esbuild bundles it.)
  const { ClusterManagerClient } = (await import('@google-cloud/container/build/src/v1/index.js')).default;
  // The instance's ADC, as the clusters get it: the client library does not fetch a token of its own.
  const shared = auth ? { auth } : {};
  const override = env.CONTAINER_API_ENDPOINT;
  if (!override) return new ClusterManagerClient(shared);
  const m = /^([^:]+|\[[^\]]+\]):(\d+)$/.exec(override);
  if (!m?.[1] || !m[2]) throw new Error(`CONTAINER_API_ENDPOINT must be host:port, got "${override}"`);
  return new ClusterManagerClient({
    ...shared,
    apiEndpoint: m[1],
    port: Number(m[2]),
    // Known up front, so the client does not consult ADC for it.
    universeDomain: 'googleapis.com',
  });
}
