// Certificates for the sandbox's API fronts. The "public" CA stands in for the publicly
// trusted roots that the DNS endpoint and the Connect gateway present on GKE: the
// function trusts it through NODE_EXTRA_CA_CERTS, the way it trusts the system store.
// Each CA signs one serving certificate for 127.0.0.1 and localhost, so a front can be
// switched to the wrong CA's certificate and a refusal proves trust, not naming.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runOk } from './kube/run.ts';

export interface KeyPair {
  cert: string;
  key: string;
}

export interface FrontCerts {
  publicCaFile: string;
  /** Leaf from the public CA. */
  public: KeyPair;
  /** Leaf from the cluster CA. */
  cluster: KeyPair;
}

const DAYS = '3650';
const SAN = 'IP:127.0.0.1,DNS:localhost';

export async function makeFrontCerts(dir: string, clusterCa: { caFile: string; caKeyFile: string }, reuse?: { caFile: string; caKeyFile: string }): Promise<FrontCerts> {
  const f = (name: string) => path.join(dir, name);
  const publicCa = reuse ?? { caFile: f('public-ca.crt'), caKeyFile: f('public-ca.key') };
  if (!reuse) await runOk('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', DAYS,
    '-keyout', publicCa.caKeyFile, '-out', publicCa.caFile, '-subj', '/CN=gke-deployer-sandbox-public-root',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const [pub, cluster] = await Promise.all([leaf(f('front-public'), publicCa), leaf(f('front-cluster'), clusterCa)]);
  return { publicCaFile: publicCa.caFile, public: pub, cluster };
}

async function leaf(base: string, ca: { caFile: string; caKeyFile: string }): Promise<KeyPair> {
  await Promise.all([
    runOk('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', '/CN=sandbox-front']),
    writeFile(`${base}.ext`, ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth', `subjectAltName=${SAN}`, ''].join('\n')),
  ]);
  await runOk('openssl', [
    'x509', '-req', '-in', `${base}.csr`, '-CA', ca.caFile, '-CAkey', ca.caKeyFile,
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', DAYS, '-extfile', `${base}.ext`, '-out', `${base}.crt`,
  ]);
  const [cert, key] = await Promise.all([readFile(`${base}.crt`, 'utf8'), readFile(`${base}.key`, 'utf8')]);
  return { cert, key };
}
