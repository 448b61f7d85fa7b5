// `endpoint:` clusters: a fixed server, CA file and token file.
import { readFileSync } from 'node:fs';
import type { ClusterAccess, Connection } from './connection.ts';
import { FileToken } from './file-token.ts';

export interface EndpointSpec {
  server: string;
  caFile: string;
  tokenFile: string;
}

export class StaticEndpointAccess implements ClusterAccess {
  private readonly spec: EndpointSpec;
  private readonly credentials: FileToken;
  private connection: Connection | undefined;

  constructor(spec: EndpointSpec) {
    this.spec = spec;
    this.credentials = new FileToken(spec.tokenFile);
  }

  connect(): Promise<Connection> {
    this.connection ??= { server: this.spec.server, ca: readFileSync(this.spec.caFile), credentials: this.credentials };
    return Promise.resolve(this.connection);
  }

  invalidate(connection?: Connection): void {
    // Re-read the CA file: it may have been rotated.
    if (!connection || connection === this.connection) this.connection = undefined;
  }
}
