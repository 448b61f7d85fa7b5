// A throwaway CA and two serving certificates for 127.0.0.1, made with the openssl CLI:
// one for the apiserver (and the controllers' own ports), one for kwok's kubelet server,
// which the apiserver verifies against the same CA when it proxies pod logs; and, when
// asked, a client certificate the apiserver takes as that user (--client-ca-file). The
// apiserver key doubles as the service-account signing key (as kwokctl does): one less
// key to generate, and nothing outside the sandbox trusts it.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runOk } from './run.ts';

export interface Certs {
  caFile: string;
  caKeyFile: string;
  certFile: string;
  keyFile: string;
  /** Service-account signing key (private; the apiserver derives the public half). */
  saKeyFile: string;
  /** kwok's kubelet server (the fake Node's kubeletEndpoint). */
  kubeletCertFile: string;
  kubeletKeyFile: string;
  /** A client certificate (CN: the user) signed by the CA: kubeconfig client-certificate auth. */
  client?: { user: string; certFile: string; keyFile: string };
}

const DAYS = '3650';

export async function makeCerts(dir: string, nodeName: string, clientUser?: string): Promise<Certs> {
  const f = (name: string) => path.join(dir, name);
  const certs: Certs = {
    caFile: f('ca.crt'),
    caKeyFile: f('ca.key'),
    certFile: f('serving.crt'),
    keyFile: f('serving.key'),
    saKeyFile: f('serving.key'),
    kubeletCertFile: f('kubelet.crt'),
    kubeletKeyFile: f('kubelet.key'),
    ...(clientUser !== undefined && { client: { user: clientUser, certFile: f('client.crt'), keyFile: f('client.key') } }),
  };
  const ca = runOk('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', DAYS,
    '-keyout', certs.caKeyFile, '-out', certs.caFile, '-subj', '/CN=gke-deployer-sandbox-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  // Keys and CSRs need no CA, so all three keys are generated at once.
  const leaf = async (name: string, cn: string, san: string | undefined, key: 'rsa' | 'ec') => {
    const newkey = key === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
    const usage = key === 'rsa' ? 'digitalSignature,keyEncipherment' : 'digitalSignature';
    await Promise.all([
      runOk('openssl', ['req', '-new', ...newkey, '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`]),
      // An explicit extension file, so the leaf gets exactly these (no CA:TRUE from openssl.cnf).
      writeFile(
        f(`${name}.ext`),
        ['basicConstraints=critical,CA:FALSE', `keyUsage=critical,${usage}`, ...(san === undefined ? ['extendedKeyUsage=clientAuth'] : ['extendedKeyUsage=serverAuth', `subjectAltName=${san}`]), ''].join('\n'),
      ),
      ca,
    ]);
    await runOk('openssl', [
      'x509', '-req', '-in', f(`${name}.csr`), '-CA', certs.caFile, '-CAkey', certs.caKeyFile,
      // Random serials: the two leaves are signed at the same moment.
      '-set_serial', `0x${randomBytes(8).toString('hex')}`,
      '-days', DAYS, '-extfile', f(`${name}.ext`), '-out', f(`${name}.crt`),
    ]);
  };
  await Promise.all([
    // RSA: this key also signs service-account tokens.
    leaf('serving', 'kube-apiserver', 'IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc', 'rsa'),
    // The apiserver dials the Node's InternalIP (127.0.0.1), so that is the name it checks.
    // EC: generated at once, where a third RSA key would add to start-up on a busy machine.
    leaf('kubelet', nodeName, `IP:127.0.0.1,DNS:${nodeName}`, 'ec'),
    // A client certificate: no name to serve, the user in its CN.
    ...(clientUser !== undefined ? [leaf('client', clientUser, undefined, 'ec')] : []),
  ]);
  return certs;
}
