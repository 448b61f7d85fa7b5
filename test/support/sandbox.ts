// What tests use of the running sandbox (see test/setup.ts).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { readSandboxInfo, type SandboxInfo } from '../../sandbox/index.ts';
import { startContainerApi, type ContainerApi } from '../../sandbox/google/container-api.ts';
import { rememberSecret } from './leaks.ts';

const exec = promisify(execFile);
let cached: SandboxInfo | undefined;

export async function sandbox(): Promise<SandboxInfo> {
  const dir = process.env.SANDBOX_DIR;
  if (!dir) throw new Error('SANDBOX_DIR is not set: run tests with `npm test` (test/setup.ts starts the sandbox)');
  cached ??= await readSandboxInfo(dir);
  return cached;
}

/** Points this process's Google clients at the sandbox, as the function's env would. */
export async function useSandboxEnv(): Promise<SandboxInfo> {
  const info = await sandbox();
  Object.assign(process.env, info.env);
  await trustPublicCa(info);
  return info;
}

/**
 * A function run in this test process trusts the sandbox's "public" CA (its Container API, API
 * fronts and registry) as a function process does through NODE_EXTRA_CA_CERTS, which Node reads
 * only at process start: added to Node's default store here (what gRPC, fetch and https use).
 */
export async function trustPublicCa(info: SandboxInfo): Promise<void> {
  const ca = await readFile(info.publicCaFile, 'utf8');
  const known = tls.getCACertificates('default');
  if (!known.includes(ca)) tls.setDefaultCACertificates([...known, ca]);
}

/** Runs kubectl as the sandbox admin; `input` is piped to stdin (for `-f -`). */
export async function kubectl(args: string[], input?: string): Promise<string> {
  const info = await sandbox();
  const child = exec(info.kubectl, ['--kubeconfig', info.kubeconfig, ...args], { maxBuffer: 16 << 20 });
  if (input !== undefined) child.child.stdin?.end(input);
  const { stdout } = await child;
  return stdout;
}

export async function kubectlJson<T = Record<string, unknown>>(args: string[]): Promise<T> {
  return JSON.parse(await kubectl([...args, '-o', 'json'])) as T;
}

/** Whether the object exists, asked of the API server. */
export async function exists(kind: string, name: string, namespace?: string): Promise<boolean> {
  try {
    await kubectl([...(namespace ? ['-n', namespace] : []), 'get', kind, name]);
    return true;
  } catch (err) {
    if (String((err as { stderr?: string }).stderr).includes('NotFound')) return false;
    throw err;
  }
}

/** A fresh namespace per test, so tests never see each other's objects. */
export async function namespace(prefix = 't'): Promise<string> {
  const ns = `${prefix}-${randomBytes(4).toString('hex')}`;
  await kubectl(['create', 'namespace', ns]);
  return ns;
}

export interface Stats {
  containerApi: { getCluster: number; unauthenticated: number };
  metadata: { token: number; lastExpiresAt: number };
  tokenReview: { rejected: number };
  /** Requests per API front (sandbox/fronts.ts). */
  fronts?: { dns: number; internal: number; connectGateway: number };
  /** The OCI registry front (sandbox/registry.ts). */
  registry?: { proxied: number; tokens: number; unauthorized: number; manifestGets: number; manifestHeads: number; blobGets: number };
}

export async function stats(): Promise<Stats> {
  return (await (await fetch((await sandbox()).stats)).json()) as Stats;
}

export async function control(change: { tokenLifetimeSeconds?: number; containerApiFailure?: string | null; rejectNextTokenReviews?: number }): Promise<void> {
  const res = await fetch((await sandbox()).control, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(change) });
  if (!res.ok) throw new Error(`control: ${res.status} ${await res.text()}`);
}

export async function idToken(req: { audience: string; email: string; emailVerified?: boolean; expiresInSeconds?: number; signWithUnknownKey?: boolean }): Promise<string> {
  const res = await fetch(`${(await sandbox()).identity}/id-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(req) });
  if (!res.ok) throw new Error(`id-token: ${res.status} ${await res.text()}`);
  const { token } = (await res.json()) as { token: string };
  rememberSecret(token);
  return token;
}

export async function accessToken(email: string, lifetimeSeconds?: number): Promise<string> {
  const res = await fetch(`${(await sandbox()).identity}/access-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, lifetimeSeconds }) });
  if (!res.ok) throw new Error(`access-token: ${res.status} ${await res.text()}`);
  const { token } = (await res.json()) as { token: string };
  rememberSecret(token);
  return token;
}

/**
 * Waits until every gke-deployer Lease in `namespaces` has been handed back (an instance
 * keeps a target's Lease between deploys and hands it back once idle): after this, the
 * instances send nothing more for those targets until their next deploy.
 */
export async function leasesHandedBack(namespaces: string[], timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const held = [];
    for (const ns of namespaces) {
      const list = await kubectlJson<{ items: { metadata: { name: string }; spec?: { holderIdentity?: string } }[] }>(['-n', ns, 'get', 'leases']);
      held.push(...list.items.filter((l) => l.metadata.name.startsWith('gke-deployer.') && l.spec?.holderIdentity).map((l) => `${ns}/${l.metadata.name}`));
    }
    if (held.length === 0) return;
    if (Date.now() > end) throw new Error(`Leases still held after ${timeoutMs} ms: ${held.join(', ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A Container API fake of the test's own (to move or fail a cluster), reached as the function
 * reaches Google's: over TLS with the sandbox's public certificate, whose CA every test process
 * trusts through GRPC_DEFAULT_SSL_ROOTS_FILE_PATH. (The sandbox's own fake also checks each call's
 * token: test/sandbox/sandbox.test.ts.) `endpoint` is the TLS one.
 */
export async function startTlsContainerApi(): Promise<ContainerApi> {
  const info = await sandbox();
  const api = await startContainerApi();
  const [cert, key] = await Promise.all([readFile(info.publicCert.certFile, 'utf8'), readFile(info.publicCert.keyFile, 'utf8')]);
  const endpoint = await api.serveTls({ cert, key });
  return { ...api, endpoint, port: Number(endpoint.split(':')[1]) };
}

/** A metadata server of the sandbox's identity fake that answers as `serviceAccount` (a function's own ADC identity). */
export async function metadataHostFor(identityUrl: string, serviceAccount: string): Promise<string> {
  const res = await fetch(`${identityUrl}/metadata-server`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ serviceAccount }) });
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as { metadataHost: string }).metadataHost;
}

/** `kubectl auth can-i` as the identity (the admin impersonates it). */
export async function canI(serviceAccount: string, args: string[]): Promise<boolean> {
  try {
    return (await kubectl(['auth', 'can-i', `--as=${serviceAccount}`, ...args])).trim() === 'yes';
  } catch (err) {
    // can-i exits 1 on "no".
    if (String((err as { stdout?: string }).stdout).trim() === 'no') return false;
    throw err;
  }
}
