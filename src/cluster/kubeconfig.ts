// `kubeconfig:` a kubeconfig file and context, with whatever auth it names (token,
// client certificate, exec plugin), resolved by @kubernetes/client-node itself.
import { readFileSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
// The kubeconfig's own validation, without KubeConfig: the module that holds it also loads
// every auth provider, proxy agent and API model at start-up (issue 23).
import { newClusters, newContexts } from '@kubernetes/client-node/dist/config_types.js';
import { parse } from 'yaml';
import type { ClusterAccess, Connection, Credentials } from './connection.ts';

/** KubeConfig, loaded when a kubeconfig cluster is first connected. */
async function load(file: string, context?: string): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node/dist/config.js');
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  if (context) kc.setCurrentContext(context);
  return kc;
}

/**
 * Start-up checks: the context exists, its server is https, and TLS is verified. What
 * KubeConfig.loadFromFile and getCurrentCluster do, with the same validators.
 */
export function kubeconfigProblems(file: string, context?: string): string[] {
  let doc: { clusters?: unknown; contexts?: unknown; 'current-context'?: unknown };
  let clusters, contexts;
  try {
    doc = (parse(readFileSync(file, 'utf8')) ?? {}) as typeof doc;
    clusters = newClusters(doc.clusters);
    contexts = newContexts(doc.contexts);
  } catch (err) {
    return [`cannot load ${file}: ${(err as Error).message}`];
  }
  const name = context ?? doc['current-context'];
  const ctx = contexts.find((c) => c.name === name);
  if (context && !ctx) return [`context "${context}" not found in ${file}`];
  const cluster = clusters.find((c) => c.name === ctx?.cluster);
  if (!cluster) return [`no current cluster in ${file}${context ? ` for context "${context}"` : ''}`];
  const problems: string[] = [];
  if (!cluster.server.startsWith('https://')) problems.push(`cluster "${cluster.name}" server must be https://, got ${cluster.server}`);
  if (cluster.skipTLSVerify) problems.push(`cluster "${cluster.name}" sets insecure-skip-tls-verify; TLS verification is never skipped`);
  return problems;
}

type TlsOptions = { ca?: Buffer; cert?: Buffer; key?: Buffer; headers?: Record<string, unknown> };

/** The Authorization header client-node computed, or undefined (client-certificate auth). */
function authorizationOf(opts: TlsOptions): string | undefined {
  const auth = opts.headers?.Authorization;
  return typeof auth === 'string' ? auth : undefined;
}

export class KubeconfigAccess implements ClusterAccess {
  private readonly file: string;
  private readonly context: string | undefined;
  private connection: Connection | undefined;

  constructor(file: string, context?: string) {
    this.file = file;
    this.context = context;
  }

  async connect(): Promise<Connection> {
    if (this.connection) return this.connection;
    const kc = await load(this.file, this.context);
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error(`no current cluster in ${this.file}`);
    const tls: TlsOptions = {};
    await kc.applyToHTTPSOptions(tls);
    let header: string | undefined | null = authorizationOf(tls); // null: ask again
    const { file, context } = this;
    const credentials: Credentials = {
      // Kept until the cluster refuses it: an exec plugin or token file is asked again
      // only after a 401, not on every request (each ask re-reads the kubeconfig's files).
      async authorization() {
        if (header === null) {
          // A fresh KubeConfig: the old one's exec plugin cache would hand back the refused
          // credential (client-node keeps one without expirationTimestamp forever).
          const opts: TlsOptions = {};
          await (await load(file, context)).applyToHTTPSOptions(opts);
          header = authorizationOf(opts);
        }
        return header;
      },
      invalidate() {
        header = null;
      },
    };
    this.connection = {
      server: cluster.server,
      ...(tls.ca && { ca: tls.ca }),
      ...(tls.cert && tls.key && { clientCert: { cert: tls.cert, key: tls.key } }),
      credentials,
    };
    return this.connection;
  }

  invalidate(connection?: Connection): void {
    if (!connection || connection === this.connection) this.connection = undefined;
  }
}
