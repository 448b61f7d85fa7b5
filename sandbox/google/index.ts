// Google's side of the sandbox: identity/metadata HTTP server plus the Container API
// gRPC fake, wired so /control and /stats on the identity server reach both.
import { startContainerApi, type ClusterSpec, type ContainerApi } from './container-api.ts';
import { startIdentityServer, type GoogleStats, type IdentityServer } from './identity.ts';

export type { ClusterSpec, ContainerApi } from './container-api.ts';
export type { GoogleStats, IdTokenRequest, IdentityServer, TokenReviewStatus, ControlState } from './identity.ts';

export interface GoogleFakesOptions {
  project: string;
  serviceAccount: string;
  tokenLifetimeSeconds?: number;
  /** Where the identity server appends each token it mints (IdentityServerOptions.tokenLog). */
  tokenLog?: string;
}

export interface GoogleFakes {
  /** http://127.0.0.1:PORT: metadata server, OIDC certs, /tokenreview, /control, /stats. */
  readonly identityUrl: string;
  /** 'host:port' of the plaintext ClusterManager gRPC server. */
  readonly containerApiEndpoint: string;
  readonly identity: IdentityServer;
  readonly containerApi: ContainerApi;
  addCluster(spec: ClusterSpec): void;
  stats(): GoogleStats;
  close(): Promise<void>;
}

export async function startGoogleFakes(opts: GoogleFakesOptions): Promise<GoogleFakes> {
  const containerApi = await startContainerApi();
  let identity: IdentityServer;
  try {
    identity = await startIdentityServer({ ...opts, containerApi });
  } catch (err) {
    await containerApi.close();
    throw err;
  }
  return {
    identityUrl: identity.url,
    containerApiEndpoint: containerApi.endpoint,
    identity,
    containerApi,
    addCluster: (spec) => containerApi.addCluster(spec),
    stats: () => identity.stats(),
    async close() {
      await Promise.all([identity.close(), containerApi.close()]);
    },
  };
}
