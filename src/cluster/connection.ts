// What every way of reaching a cluster produces: where the API server is, the CA to
// verify it with, and credentials. Nothing here knows what triggered a deploy.

export interface Credentials {
  /** Value of the Authorization header, or undefined for client-certificate auth. */
  authorization(): Promise<string | undefined>;
  /** The API server said 401: forget the cached token so the next call fetches anew. */
  invalidate(): void;
}

export interface Connection {
  /** https://host[:port] */
  server: string;
  /** PEM bundle the server certificate must chain to (absent: the system trust store). TLS is always verified. */
  ca?: Buffer;
  clientCert?: { cert: Buffer; key: Buffer };
  credentials: Credentials;
}

export interface ClusterAccess {
  /** Cached while valid; concurrent callers share one lookup. */
  connect(): Promise<Connection>;
  /**
   * A transport or TLS failure suggests a moved endpoint or rotated CA: look up again.
   * With `connection`, only if it is still the current one: a failure on an older
   * connection must not throw away a newer lookup.
   */
  invalidate(connection?: Connection): void;
}

/** One in-flight promise for concurrent callers; a rejected one is not kept. */
export function shared<T>(fn: () => Promise<T>): () => Promise<T> {
  let inflight: Promise<T> | undefined;
  return () => {
    inflight ??= fn().finally(() => {
      inflight = undefined;
    });
    return inflight;
  };
}
